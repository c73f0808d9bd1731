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
// truncated file (load_file checks every record's CRC-32) are frost::Errors
// that name the file and the mismatch, and the controller is left as it was.
//
// The optimizer's state (Adam moments, including those of blocks in trial) is
// the optimizer's to save: torch::optim's own serialize. frost drops the
// state of frozen blocks, so it is not in the optimizer's checkpoint either.
//
// The envelope (detail::write_envelope / open_envelope) is the checkpoint
// format itself; the controller and each of its parts and policies fill the
// nested archive with their own keys (frost/concepts/state.hpp).
#include <ATen/ATen.h>
#include <ATen/core/List.h>
#include <boost/crc.hpp>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "frost/concepts/state_io.hpp"
#include "frost/detail/archive.hpp"
#include "frost/detail/zip_check.hpp"
#include "frost/error.hpp"

namespace frost {

/// The version of the checkpoint layout written by FreezeController::save.
inline constexpr std::int64_t kCheckpointFormat = 2;

namespace detail {

inline std::uint32_t crc32(const char* data, std::size_t n) {
  boost::crc_32_type c;
  c.process_bytes(data, n);
  return c.checksum();
}

/// Writes `state` into `ar` as one nested archive protected by a CRC-32
/// (keys "frost.format", "frost.state", "frost.crc32").
inline void write_envelope(torch::serialize::OutputArchive& ar,
                           torch::serialize::OutputArchive& state) {
  std::string bytes;
  state.save_to([&](const void* data, std::size_t n) {
    bytes.append(static_cast<const char*>(data), n);
    return n;
  });
  at::Tensor t = at::empty({static_cast<std::int64_t>(bytes.size())}, at::kByte);
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  ar.write("frost.format", c10::IValue(kCheckpointFormat));
  ar.write("frost.state", t, /*is_buffer=*/true);
  ar.write("frost.crc32", c10::IValue(static_cast<std::int64_t>(crc32(bytes.data(), bytes.size()))));
}

/// Opens what write_envelope wrote into `state`: the format, the checksum and
/// the nested archive are checked, and any failure is a frost::Error that
/// names `source`.
inline void open_envelope(torch::serialize::InputArchive& ar,
                          torch::serialize::InputArchive& state, const std::string& source) {
  c10::IValue v;
  torch::serialize::InputArchive nested;
  if (!ar.try_read("frost.format", v) && ar.try_read("frost", nested) &&
      nested.try_read("frost.format", v))
    fail(source, " is a whole-run archive with frost's part under the key 'frost'; read that "
         "part and load it: `torch::serialize::InputArchive f; ar.read(\"frost\", f); "
         "frost::load(ctl, f, path);` (frost::load_checkpoint reads what "
         "frost::save_checkpoint wrote: the controller alone)");
  if (!ar.try_read("frost.format", v))
    fail(source, " holds no frost state ('frost.format' is missing): it was not written by "
         "frost::save, or by a frost before checkpoint format ", kCheckpointFormat,
         " (which did not save the policies' state and cannot resume exactly); start the run "
         "afresh");
  require(v.isInt() && v.toInt() == kCheckpointFormat, source, " is in frost checkpoint format ",
          v.isInt() ? std::to_string(v.toInt()) : "?", "; this frost reads format ",
          kCheckpointFormat);
  at::Tensor bytes;
  c10::IValue crc;
  require(ar.try_read("frost.state", bytes, /*is_buffer=*/true) && ar.try_read("frost.crc32", crc) &&
              crc.isInt() && bytes.defined() && bytes.scalar_type() == at::kByte && bytes.dim() == 1,
          source, " is corrupt: its frost state ('frost.state', 'frost.crc32') is missing or "
          "malformed");
  bytes = bytes.contiguous();
  const auto* data = static_cast<const char*>(bytes.data_ptr());
  const auto n = static_cast<std::size_t>(bytes.numel());
  const std::uint32_t computed = crc32(data, n);
  require(static_cast<std::int64_t>(computed) == crc.toInt(), source,
          " is corrupt: the checksum of its frost state does not match (stored ", crc.toInt(),
          ", computed ", computed, "); the file was damaged after it was written; use an earlier "
          "checkpoint");
  try {
    state.load_from(data, n);
  } catch (const c10::Error& e) {
    fail(source, " is corrupt: its frost state does not parse (", e.what_without_backtrace(), ")");
  }
}

/// What a checkpoint was written for: the composition and the block names.
inline void write_identity(torch::serialize::OutputArchive& f, const std::string& composition,
                           const std::vector<std::string>& blocks) {
  f.write("composition", c10::IValue(composition));
  f.write("blocks", c10::IValue(c10::List<std::string>(blocks)));
}

/// Refuses a checkpoint written for another composition or block map.
inline void check_identity(torch::serialize::InputArchive& f, const std::string& source,
                           const std::string& composition, const std::vector<std::string>& mine) {
  c10::IValue comp, names_v;
  require(f.try_read("composition", comp) && comp.isString(), source,
          " is corrupt: its frost state has no valid 'composition'");
  require(comp.toStringRef() == composition, source, " was written by another strategy: it holds ",
          comp.toStringRef(), ", this controller is ", composition,
          "; resume with the composition that wrote it");
  require(f.try_read("blocks", names_v) && names_v.isList(), source,
          " is corrupt: its frost state has no valid 'blocks'");
  std::vector<std::string> names;
  const auto list = names_v.toList();
  for (std::size_t i = 0; i < list.size(); ++i) {
    const c10::IValue e = list.get(i);
    require(e.isString(), source, " is corrupt: a block name is not a string");
    names.push_back(e.toStringRef());
  }
  if (names == mine) return;
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s;
  };
  fail(source, " was written for another block map: it has ", names.size(), " blocks (",
       join(names), "), this controller ", mine.size(), " (", join(mine),
       "); resume with the model and block map that wrote it");
}

/// Loads one of the controller's parts (its keys sit in the frost state
/// itself) into `part`; its error becomes one that names `source`, joined by
/// `join` (the parts' messages continue the name: "run.frost is corrupt: ...";
/// the learning-rate book's follow it: "run.frost: it was written for ...").
template <class Part>
void load_part(Part& part, torch::serialize::InputArchive& f, const std::string& source,
               const char* join = " ") {
  static_assert(concepts::check_state<Part>(), "see the message above");
  try {
    part.load(f);
  } catch (const Error& e) {
    fail(source, join, std::string(e.what()).substr(7));  // drop "frost: "
  }
}

/// A copy of `part` with its state loaded from `f` (load_part): the
/// controller swaps it in once everything has loaded.
template <class Part>
Part loaded(Part part, torch::serialize::InputArchive& f, const std::string& source,
            const char* join = " ") {
  load_part(part, f, source, join);
  return part;
}

/// Sets policy `p` up and loads its state from `f[key]`; any failure is a
/// frost::Error naming the source and the policy.
template <class P, class Setup>
void load_policy(P& p, torch::serialize::InputArchive& f, const char* key,
                 const std::string& source, Setup&& setup) {
  setup();
  if constexpr (!concepts::is_stateless<P>()) {
    bool found = false;
    try {
      found = concepts::load_state(p, f, key);
    } catch (const Error& e) {
      fail(source, ": the ", key, " (", concepts::name_of<P>(), ") does not load: ",
           std::string(e.what()).substr(7));  // drop "frost: "
    } catch (const c10::Error& e) {
      fail(source, ": the ", key, " (", concepts::name_of<P>(), ") does not load: ",
           e.what_without_backtrace());
    }
    require(found, source, " has no state for the ", key, " (", concepts::name_of<P>(), ")");
  }
}

}  // namespace detail

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
