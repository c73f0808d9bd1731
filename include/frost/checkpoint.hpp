#pragma once
// Checkpointing a FreezeController, so that a resumed run makes exactly the
// decisions an uninterrupted one makes.
//
//   // one file for the controller alone:
//   frost::save_checkpoint(ctl, "run.frost");        // atomic: temp file + rename
//   frost::load_checkpoint(ctl, "run.frost");        // into a freshly built controller
//
//   // or nested next to the model's and the optimizer's state:
//   torch::serialize::OutputArchive ar;
//   model->save(ar); optimizer.save(ar);  (in sub-archives of your choice)
//   frost::save(ctl, ar);
//   frost::save_file(ar, "run.ckpt");
//   ...
//   torch::serialize::InputArchive in;
//   frost::load_file(in, "run.ckpt");                // frost::Error naming the file
//   frost::load(ctl, in, "run.ckpt");                // validates, then applies
//
// What is saved (FreezeController::save): a format version, the composition
// (criterion, schedule, stop rule), the block names, the step, every block's
// state, the learning-rate bookkeeping, the timeline, and the state of every
// stateful policy (each policy saves and loads its own, or declares itself
// stateless: concepts/state.hpp), as one nested archive with a CRC-32.
// Loading reads and checks all of it before changing anything: another
// composition, another block map (by names), another number of param groups,
// an unknown format, a controller that has already stepped, a corrupt or
// truncated file (load_file checks every record's CRC-32) are frost::Errors that name the file and the mismatch, and
// the controller is left as it was.
//
// The optimizer's state (Adam moments, including those of blocks in trial) is
// the optimizer's to save: torch::optim's own serialize. frost drops the
// state of frozen blocks, so it is not in the optimizer's checkpoint either.
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "frost/detail/archive.hpp"
#include "frost/detail/zip_check.hpp"
#include "frost/error.hpp"

namespace frost {

/// Writes the controller's complete state into `ar`.
template <class Controller>
void save(const Controller& ctl, torch::serialize::OutputArchive& ar) {
  ctl.save(ar);
}

/// Restores what save() wrote; `source` names the checkpoint in errors.
template <class Controller>
void load(Controller& ctl, torch::serialize::InputArchive& ar,
          const std::string& source = "the checkpoint") {
  ctl.load(ar, source);
}

/// Reads one value of an archive (yours, next to frost's) with a frost::Error
/// naming the key when it is missing.
inline c10::IValue read_value(torch::serialize::InputArchive& ar, const std::string& key) {
  return detail::read_value(ar, key);
}

/// Writes `ar` to `path` atomically: to a temporary file in the same directory,
/// then renamed over `path`, so a run killed mid-write leaves the previous
/// checkpoint intact. A missing directory, or a path that is a directory, is a
/// frost::Error that says so.
inline void save_file(torch::serialize::OutputArchive& ar, const std::string& path) {
  namespace fs = std::filesystem;
  detail::require(!path.empty(), "save_file: the checkpoint path is empty");
  const fs::path p(path);
  std::error_code ec;
  detail::require(!fs::is_directory(p, ec), "cannot write checkpoint ", path,
                  ": it is a directory; give a file name inside it");
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  detail::require(fs::is_directory(dir, ec), "cannot write checkpoint ", path, ": directory ",
                  dir.string(), " does not exist; create it first");
  const std::string tmp = path + ".tmp";
  try {
    ar.save_to(tmp);
  } catch (const c10::Error& e) {
    std::remove(tmp.c_str());
    detail::fail("cannot write checkpoint ", path, " (", e.what_without_backtrace(),
                 "); check that the directory is writable and the disk has room");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    detail::fail("could not move checkpoint ", tmp, " to ", path, " (", why,
                 "); check that the directory is writable");
  }
}

/// Reads a checkpoint file into `ar`. A missing file, a directory, an empty,
/// truncated or foreign file is a frost::Error naming the file, and so is a
/// record (a tensor of the model or the optimizer, frost's state) whose bytes
/// no longer match the CRC-32 the archive stores for it: LibTorch's reader
/// does not check them, so a damaged weight would load silently
/// (detail/zip_check.hpp; one more pass over the file).
inline void load_file(torch::serialize::InputArchive& ar, const std::string& path,
                      const c10::optional<c10::Device>& device = c10::nullopt) {
  namespace fs = std::filesystem;
  std::error_code ec;
  detail::require(fs::exists(fs::path(path), ec), "no checkpoint at ", path);
  detail::require(!fs::is_directory(fs::path(path), ec), "checkpoint ", path,
                  " is a directory; give the checkpoint file");
  const auto size = fs::file_size(fs::path(path), ec);
  detail::require(!ec && size > 0, "checkpoint ", path, " is empty (a run killed while "
                  "writing it?); use an earlier checkpoint");
  try {
    ar.load_from(path, device);
  } catch (const c10::Error& e) {
    std::string why = e.what_without_backtrace();
    if (const auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
    detail::fail("checkpoint ", path, " cannot be read: it is truncated, corrupt or not a "
                 "LibTorch archive (", why, ")");
  }
  detail::check_zip_crcs(path);
}

/// The controller alone, in its own file (atomic).
template <class Controller>
void save_checkpoint(const Controller& ctl, const std::string& path) {
  torch::serialize::OutputArchive ar;
  ctl.save(ar);
  save_file(ar, path);
}

/// Loads what save_checkpoint wrote into a freshly built controller.
template <class Controller>
void load_checkpoint(Controller& ctl, const std::string& path) {
  torch::serialize::InputArchive ar;
  load_file(ar, path);
  ctl.load(ar, path);
}

}  // namespace frost
