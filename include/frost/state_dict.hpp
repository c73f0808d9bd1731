#pragma once
// frost::load_state_dict / frost::save_state_dict — weights from Python (or
// anywhere) into any torch::nn::Module in C++, by name, without Python.
//
//   auto report = frost::load_state_dict(*model, "efficientnet-lite0.safetensors");
//   auto report = frost::load_state_dict(*model, path, frost::LoadOptions()
//       .rename([](const std::string& k) { return k.rfind("_fc.", 0) == 0 ? "" : k; })  // "": skip
//       .allow_missing({"_fc"}));                                     // the new head stays as it is
//
// The file is safetensors (frost/io/safetensors.hpp says why). Loaded are the
// module's parameters *and* buffers (batch-norm running_mean, running_var,
// num_batches_tracked), matched by their names in named_parameters() /
// named_buffers() ("_blocks.3._bn1.running_var").
//
// * rename: maps each name in the file to the module's name for it, for
//   modules registered under other names; "" skips the entry (report.skipped).
// * strict (default): every module tensor must get a value (apart from the
//   names in allow_missing, dotted prefixes) and every file entry must find
//   one; otherwise the missing / unexpected names are an error. Non-strict:
//   they are only listed in the report.
// * Shape and dtype must match exactly in both modes (no silent conversion:
//   a float16 file into a float32 model is a mistake more often than not).
//
// Every problem is a frost::Error naming the file, the key and the fix, and is
// found before anything is copied: on error the module is unchanged. The copy
// goes to each tensor's own device, under NoGradGuard (requires_grad kept).
//
// Where it lives: a header of the library (like frost/checkpoint.hpp), not an
// optional target, because it needs nothing beyond LibTorch and the standard
// library (the JSON of the safetensors header is read by a small parser of
// its own, no new dependency) and because getting pretrained weights in is the
// first step of any fine-tuning run frost is for.
#include <torch/nn/module.h>
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/error.hpp"
#include "frost/io/safetensors.hpp"
#include "frost/options.hpp"

namespace frost {

struct LoadOptions {
  /// Missing or unexpected names are errors (true) or only reported (false).
  FROST_ARG(bool, strict) = true;
  /// File name -> module name; "" skips the entry. Empty: names as they are.
  FROST_ARG(std::function<std::string(const std::string&)>, rename) = {};
  /// Module names (dotted prefixes: "_fc" covers "_fc.weight") that may stay
  /// unloaded even when strict: parts the user replaced, such as a new head.
  FROST_ARG(std::vector<std::string>, allow_missing) = {};
};

/// What load_state_dict did (names are the module's, except skipped and
/// unexpected, which are the file's as renamed / as written).
struct LoadReport {
  std::string path;
  std::vector<std::string> loaded;      ///< module tensors given the file's values
  std::vector<std::string> missing;     ///< module tensors the file had no value for
  std::vector<std::string> unexpected;  ///< file entries no module tensor is called (after rename)
  std::vector<std::string> skipped;     ///< file entries the rename hook dropped ("")
  std::int64_t loaded_numel = 0;        ///< scalars copied

  std::string summary() const {
    std::ostringstream os;
    os << path << ": " << loaded.size() << " tensors loaded (" << loaded_numel << " values), "
       << missing.size() << " missing, " << unexpected.size() << " unexpected, " << skipped.size()
       << " skipped";
    return os.str();
  }
};

namespace detail {

inline std::string list_names(const std::vector<std::string>& names, std::size_t max = 6) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < max; ++i) out += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > max) out += " and " + std::to_string(names.size() - max) + " more";
  return out;
}

inline std::string shape_text(at::IntArrayRef s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

/// The module's parameters and buffers by name (parameters first, each in model order).
inline std::vector<std::pair<std::string, at::Tensor>> named_state(const torch::nn::Module& m) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : m.named_parameters(/*recurse=*/true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : m.named_buffers(/*recurse=*/true))
    if (b.value().defined()) out.emplace_back(b.key(), b.value());
  return out;
}

}  // namespace detail

/// Loads `file` (already read) into `module`: validates every entry, then copies.
inline LoadReport load_state_dict(torch::nn::Module& module, const io::SafeTensors& file,
                                  const std::string& path, const LoadOptions& options = {}) {
  using detail::fail;
  using detail::require;
  LoadReport report;
  report.path = path;
  const auto state = detail::named_state(module);
  std::map<std::string, at::Tensor> by_name;
  for (const auto& [name, t] : state) by_name.emplace(name, t);

  // 1. Names: rename, skip, and find each entry's module tensor.
  std::vector<std::pair<at::Tensor, const at::Tensor*>> copies;  // destination, source
  std::map<std::string, std::string> source_of;                  // module name -> file name
  for (const auto& [file_name, src] : file.tensors) {
    const std::string name = options.rename() ? options.rename()(file_name) : file_name;
    if (name.empty()) {
      report.skipped.push_back(file_name);
      continue;
    }
    const auto it = by_name.find(name);
    if (it == by_name.end()) {
      report.unexpected.push_back(name);
      continue;
    }
    const auto [prev, fresh] = source_of.emplace(name, file_name);
    require(fresh, "load_state_dict('", path, "'): entries '", prev->second, "' and '", file_name,
            "' both map to module tensor '", name, "'; make the rename hook map them apart (or "
            "return \"\" for one to skip it)");
    const at::Tensor& dst = it->second;
    require(dst.sizes() == src.sizes(), "load_state_dict('", path, "'): '", file_name, "' has shape ",
            detail::shape_text(src.sizes()), " in the file but module tensor '", name, "' has ",
            detail::shape_text(dst.sizes()), "; build the module with the file's sizes, or skip the "
            "entry (rename hook returns \"\", allow_missing for the module's) to keep the module's own");
    require(dst.scalar_type() == src.scalar_type(), "load_state_dict('", path, "'): '", file_name,
            "' is ", src.scalar_type(), " in the file but module tensor '", name, "' is ",
            dst.scalar_type(), "; convert the module (module->to(", src.scalar_type(),
            ")) or the file to one dtype (frost does not convert silently)");
    copies.emplace_back(dst, &src);
    report.loaded.push_back(name);
    report.loaded_numel += src.numel();
  }
  // 2. Module tensors the file did not give.
  for (const auto& [name, t] : state) {
    if (source_of.count(name)) continue;
    bool allowed = false;
    for (const auto& p : options.allow_missing()) allowed = allowed || detail::has_prefix(name, p);  // dotted, block_map.hpp
    if (!allowed) report.missing.push_back(name);
  }
  if (options.strict()) {
    require(report.missing.empty(), "load_state_dict('", path, "'): ", report.missing.size(),
            " module tensors have no entry in the file: ", detail::list_names(report.missing),
            "; map the file's names to them with LoadOptions().rename(...), list parts that keep "
            "their own values in allow_missing, or load with strict(false)");
    require(report.unexpected.empty(), "load_state_dict('", path, "'): ", report.unexpected.size(),
            " file entries match no module tensor: ", detail::list_names(report.unexpected),
            "; map them to the module's names with LoadOptions().rename(...), skip them (rename "
            "returns \"\"), or load with strict(false)");
  }
  // 3. Copy: nothing above changed the module.
  at::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(*src);
  return report;
}

/// Reads the safetensors file at `path` and loads it into `module` (see the header comment).
inline LoadReport load_state_dict(torch::nn::Module& module, const std::string& path,
                                  const LoadOptions& options = {}) {
  return load_state_dict(module, io::read_safetensors(path), path, options);
}

/// Writes the module's parameters and buffers (named as load_state_dict reads
/// them) to `path` as safetensors, with `metadata`.
inline void save_state_dict(const torch::nn::Module& module, const std::string& path,
                            std::map<std::string, std::string> metadata = {}) {
  io::write_safetensors(path, detail::named_state(module), std::move(metadata));
}

}  // namespace frost
