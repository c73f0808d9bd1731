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
// (criterion, schedule, stop rule), the block names, every trained
// parameter's name and shape (the blocks' and the head's), the run shape
// (total, warm-up and epoch steps), the step, every block's state, the
// learning-rate bookkeeping, the timeline, and the state of every stateful
// policy (each policy saves and loads its own, or declares itself stateless:
// concepts/state.hpp), as one nested archive with a CRC-32.
// Loading reads and checks all of it before changing anything: another
// composition, another block map (by names), another model (a parameter's
// name or shape), another run shape (unless controller.allow_new_run_shape:
// then a timeline warning), another number of param groups, an unknown
// format, a controller that has already stepped, a corrupt or truncated file
// (load_file checks every record's CRC-32) are frost::Errors that name the
// file and the mismatch, and the controller is left as it was. A checkpoint
// written before the shapes and the run shape were saved (the same format 2)
// has nothing to compare there and loads as before.
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
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <unordered_set>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/concepts/run_shape.hpp"
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
  // The nested archive is checked like the file (a stranger can compute a CRC).
  check_archive(data, n, source, "the frost state in", "use an earlier checkpoint");
  try {
    state.load_from(data, n);
  } catch (const c10::Error& e) {
    fail(source, " is corrupt: its frost state does not parse (", e.what_without_backtrace(), ")");
  } catch (const std::exception& e) {  // TorchScript's compiler: torch::jit::ErrorReport
    fail(source, " is corrupt: its frost state does not parse (", e.what(), ")");
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
/// itself) into `part`; its error (what is wrong) becomes one that names
/// `source` and the part, as a policy's does (load_policy):
/// "run.frost: the step clock does not load: step -2 is negative".
template <class Part>
void load_part(Part& part, torch::serialize::InputArchive& f, const std::string& source,
               const char* part_name) {
  static_assert(concepts::check_state<Part>(), "see the message above");
  try {
    part.load(f);
  } catch (const Error& e) {
    fail(source, ": the ", part_name, " does not load: ", e.message());
  }
}

/// A copy of `part` with its state loaded from `f` (load_part): the
/// controller swaps it in once everything has loaded.
template <class Part>
Part loaded(Part part, torch::serialize::InputArchive& f, const std::string& source,
            const char* part_name) {
  load_part(part, f, source, part_name);
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
           e.message());
    } catch (const c10::Error& e) {
      fail(source, ": the ", key, " (", concepts::name_of<P>(), ") does not load: ",
           e.what_without_backtrace());
    }
    require(found, source, " has no state for the ", key, " (", concepts::name_of<P>(), ")");
  }
}

// --- what a checkpoint knows of its model and its run ---------------------
// Block names alone let a checkpoint of another model through (another
// hidden size, another vocabulary): LibTorch's loader then takes the old
// shapes and the run fails far from the cause, or trains on. So the frost
// state also carries every trained parameter's name and shape (keys
// "model.*") and the run shape it was planned for ("run.*"); a checkpoint
// without them (written before they were added) has nothing to compare.

/// One trained parameter as a checkpoint records it: its block (kHead for
/// the head: a parameter the optimizer trains outside the block map), its
/// name in the model and its shape.
struct ParamShape {
  std::int64_t block = -1;
  std::string name;
  std::vector<std::int64_t> shape;
};
using ModelShape = std::vector<ParamShape>;

/// The parameters of `blocks` (block by block) and then the head's: the
/// model's parameters in no block that `optimizer` trains, in model order.
inline ModelShape model_shape(const torch::nn::Module& model, const BlockMap& blocks,
                              const torch::optim::Optimizer& optimizer) {
  ModelShape out;
  std::unordered_set<const void*> in_blocks, trained;
  for (std::size_t b = 0; b < blocks.size(); ++b)
    for (std::size_t i = 0; i < blocks[b].params.size(); ++i) {
      in_blocks.insert(blocks[b].params[i].unsafeGetTensorImpl());
      out.push_back({static_cast<std::int64_t>(b), blocks[b].param_names[i],
                     blocks[b].params[i].sizes().vec()});
    }
  for (const auto& g : optimizer.param_groups())
    for (const auto& p : g.params()) trained.insert(p.unsafeGetTensorImpl());
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    const void* impl = item.value().unsafeGetTensorImpl();
    if (!in_blocks.count(impl) && trained.count(impl))
      out.push_back({-1, item.key(), item.value().sizes().vec()});
  }
  return out;
}

/// Keys "model.block", "model.param", "model.rank", "model.sizes": one
/// column per field, the shapes flattened.
inline void write_model_shape(torch::serialize::OutputArchive& f, const ModelShape& m) {
  std::vector<std::int64_t> block, rank, sizes;
  std::vector<std::string> names;
  for (const auto& p : m) {
    block.push_back(p.block);
    names.push_back(p.name);
    rank.push_back(static_cast<std::int64_t>(p.shape.size()));
    sizes.insert(sizes.end(), p.shape.begin(), p.shape.end());
  }
  f.write("model.block", c10::IValue(block));
  f.write("model.param", c10::IValue(c10::List<std::string>(names)));
  f.write("model.rank", c10::IValue(rank));
  f.write("model.sizes", c10::IValue(sizes));
}

/// What write_model_shape wrote, for a checkpoint of `num_blocks` blocks;
/// nullopt when the checkpoint predates it.
inline std::optional<ModelShape> read_model_shape(torch::serialize::InputArchive& f,
                                                  const std::string& source,
                                                  std::size_t num_blocks) {
  c10::IValue block, names, rank, sizes;
  if (!f.try_read("model.param", names)) return std::nullopt;
  require(names.isList() && f.try_read("model.block", block) && block.isIntList() &&
              f.try_read("model.rank", rank) && rank.isIntList() &&
              f.try_read("model.sizes", sizes) && sizes.isIntList(),
          source, " is corrupt: its frost state has no valid 'model.*' (parameter shapes)");
  const auto b = block.toIntVector(), r = rank.toIntVector(), s = sizes.toIntVector();
  const auto n = names.toList();
  require(b.size() == n.size() && r.size() == n.size(), source,
          " is corrupt: its parameter shapes ('model.*') differ in length");
  ModelShape out;
  std::size_t pos = 0;  // where parameter i's sizes begin in the flat column
  for (std::size_t i = 0; i < n.size(); ++i) {
    require(n.get(i).isString() && b[i] >= -1 && b[i] < static_cast<std::int64_t>(num_blocks) &&
                r[i] >= 0 && pos + static_cast<std::size_t>(r[i]) <= s.size(),
            source, " is corrupt: parameter shape ", i, " ('model.*')");
    const auto end = pos + static_cast<std::size_t>(r[i]);
    out.push_back({b[i], n.get(i).toStringRef(),
                   std::vector<std::int64_t>(s.begin() + static_cast<std::ptrdiff_t>(pos),
                                             s.begin() + static_cast<std::ptrdiff_t>(end))});
    pos = end;
  }
  require(pos == s.size(), source,
          " is corrupt: its parameter shapes ('model.*') differ in length");
  return out;
}

inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// How the parameters of one block (or the head) differ, checkpoint `was`
/// against the model `now`, one phrase per difference, appended to `out`.
inline void param_differences(const std::string& where, const ModelShape& was,
                              const ModelShape& now, std::int64_t block,
                              std::vector<std::string>& out) {
  auto find = [block](const ModelShape& m, const std::string& name) -> const ParamShape* {
    for (const auto& p : m)
      if (p.block == block && p.name == name) return &p;
    return nullptr;
  };
  for (const auto& p : was) {
    if (p.block != block) continue;
    const ParamShape* q = find(now, p.name);
    if (!q)
      out.push_back(where + ": parameter '" + p.name + "' " + shape_string(p.shape) +
                    " is in the checkpoint, not in the model now");
    else if (q->shape != p.shape)
      out.push_back(where + ": parameter '" + p.name + "' has shape " + shape_string(p.shape) +
                    " in the checkpoint and " + shape_string(q->shape) + " now");
  }
  for (const auto& q : now)
    if (q.block == block && !find(was, q.name))
      out.push_back(where + ": parameter '" + q.name + "' " + shape_string(q.shape) +
                    " is in the model now, not in the checkpoint");
}

/// Refuses a checkpoint written for a model whose trained parameters
/// (`mine`, blocks named `blocks`) have other names or shapes, naming the
/// block, the parameter and both shapes. A checkpoint without them passes.
inline void check_model_shape(torch::serialize::InputArchive& f, const std::string& source,
                              const ModelShape& mine, const std::vector<std::string>& blocks) {
  const std::optional<ModelShape> was = read_model_shape(f, source, blocks.size());
  if (!was) return;
  std::vector<std::string> diffs;
  for (std::size_t b = 0; b < blocks.size(); ++b)
    param_differences("block '" + blocks[b] + "'", *was, mine, static_cast<std::int64_t>(b), diffs);
  param_differences("the head (parameters the optimizer trains outside the block map)", *was, mine,
                    -1, diffs);
  if (diffs.empty()) return;
  std::string list;
  for (std::size_t i = 0; i < diffs.size() && i < 3; ++i) list += (i ? "; " : "") + diffs[i];
  if (diffs.size() > 3) list += "; and " + std::to_string(diffs.size() - 3) + " more";
  fail(source, " was written for another model: ", list,
       ". Resume with the model (and optimizer) that wrote it, or start the run afresh; nothing "
       "was loaded");
}

/// Opens a controller checkpoint's envelope from `ar` into `f` and checks
/// that it was written for this composition, these blocks and this model.
inline void open_checked(torch::serialize::InputArchive& ar, torch::serialize::InputArchive& f,
                         const std::string& source, const std::string& composition,
                         const ModelShape& mine, const std::vector<std::string>& blocks) {
  open_envelope(ar, f, source);
  check_identity(f, source, composition, blocks);
  check_model_shape(f, source, mine, blocks);
}

/// Keys "run.total_steps", "run.steps_per_epoch", "run.warmup_steps": the
/// run shape the checkpoint's run was planned for.
inline void write_run_shape(torch::serialize::OutputArchive& f, const RunShape& r) {
  f.write("run.total_steps", c10::IValue(r.total_steps));
  f.write("run.steps_per_epoch", c10::IValue(r.steps_per_epoch));
  f.write("run.warmup_steps", c10::IValue(r.warmup_steps));
}

/// What write_run_shape wrote (the numbers only; blocks and stages are the
/// controller's), or nullopt when the checkpoint predates it.
inline std::optional<RunShape> read_run_shape(torch::serialize::InputArchive& f,
                                              const std::string& source) {
  c10::IValue total, spe, warmup;
  if (!f.try_read("run.total_steps", total)) return std::nullopt;
  require(total.isInt() && f.try_read("run.steps_per_epoch", spe) && spe.isInt() &&
              f.try_read("run.warmup_steps", warmup) && warmup.isInt() && total.toInt() >= 0 &&
              spe.toInt() >= 0 && warmup.toInt() >= 0,
          source, " is corrupt: its frost state has no valid 'run.*' (the run shape)");
  RunShape r;
  r.total_steps = total.toInt();
  r.steps_per_epoch = spe.toInt();
  r.warmup_steps = warmup.toInt();
  return r;
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
/// flushed to the disk (fsync), then renamed over `path` (and the directory
/// flushed), so a run killed mid-write, a full disk, a file size limit or a
/// power cut leaves the previous checkpoint intact. Every write is checked
/// (LibTorch's own file writer would not notice a failed final flush); a
/// failure is a frost::Error naming the file and the system's reason, and the
/// temporary file is removed. A missing directory, or a path that is a
/// directory, is a frost::Error that says so.
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
  const auto failed = [&](const std::string& why) {
    std::remove(tmp.c_str());
    detail::fail("cannot write checkpoint ", path, " (", why,
                 "); check that the directory is writable and the disk has room; the previous "
                 "checkpoint, if any, is unchanged");
  };
  std::remove(tmp.c_str());  // a link left there must not redirect the write
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) failed(std::string("cannot create ") + tmp + ": " + std::strerror(errno));
  int err = 0;  // the first write's errno
  try {
    // After a failed write the rest is skipped but reported written: told of
    // a short write, LibTorch's zip writer throws, and its destructor then
    // writes (and throws) again while unwinding, which ends the process.
    ar.save_to([&](const void* data, std::size_t n) -> std::size_t {
      for (std::size_t done = 0; done < n && err == 0;) {
        const ssize_t w = ::write(fd, static_cast<const char*>(data) + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) err = w < 0 ? errno : ENOSPC;
        else done += static_cast<std::size_t>(w);
      }
      return n;
    });
  } catch (const c10::Error& e) {
    ::close(fd);
    failed(err ? std::strerror(err) : e.what_without_backtrace());
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) failed(std::strerror(err));
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    detail::fail("could not move checkpoint ", tmp, " to ", path, " (", why,
                 "); check that the directory is writable");
  }
  // the rename itself survives a power cut once the directory is on the disk
  if (const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
    (void)::fsync(d);
    ::close(d);
  }
}

/// Reads a checkpoint file into `ar`. A missing file, a directory, an empty,
/// truncated or foreign file is a frost::Error naming the file, and so is a
/// record (a tensor of the model or the optimizer, frost's state) whose bytes
/// no longer match the CRC-32 the archive stores for it: LibTorch's reader
/// does not check them, so a damaged weight would load silently. A file that
/// holds TorchScript code or a pickle naming anything but tensors and the
/// archive's own classes is refused before LibTorch's reader sees it
/// (detail/zip_check.hpp: one more pass over the file).
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
  // Before LibTorch's reader, which compiles the archive's TorchScript and
  // calls what its pickle names: frost's checks (detail/zip_check.hpp).
  detail::check_archive(path);
  try {
    ar.load_from(path, device);
  } catch (const c10::Error& e) {
    std::string why = e.what_without_backtrace();
    if (const auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
    detail::fail("checkpoint ", path, " cannot be read: it is truncated, corrupt or not a "
                 "LibTorch archive (", why, ")");
  } catch (const std::exception& e) {  // TorchScript's compiler: torch::jit::ErrorReport
    std::string why = e.what();
    if (const auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
    detail::fail("checkpoint ", path, " cannot be read: LibTorch refused it (", why, ")");
  }
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
