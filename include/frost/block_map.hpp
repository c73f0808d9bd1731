#pragma once
// frost::BlockMap: the ordered freezable units of a torch::nn::Module.
//
// A block is a set of parameters that freeze together (a transformer block,
// the patch embedding, a ResNet stage). Blocks are ordered from the input side
// so that "the frozen prefix" is meaningful: when blocks 0..k are frozen and
// the input does not require grad, autograd records nothing for them and the
// backward pass stops at block k+1 without any change to the user's forward.
// Parameters that belong to no block (a classifier head, a final norm) stay
// trainable and follow the schedule's head rule.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "frost/error.hpp"

namespace frost {

/// One freezable unit.
struct Block {
  std::string name;
  std::vector<std::string> prefixes;        ///< module/parameter name prefixes it was built from
  std::vector<std::string> param_names;     ///< full parameter names, in model order
  std::vector<at::Tensor> params;           ///< the parameters (shared storage with the model)
  std::vector<std::shared_ptr<torch::nn::Module>> modules;  ///< submodules it covers (for eval mode)
  std::int64_t numel = 0;                   ///< parameter count
  int stage = 0;                            ///< 1..S for SR-LR; 0 = not set
};

/// How to build one block: a name and the prefixes whose parameters it owns.
struct BlockSpec {
  std::string name;
  std::vector<std::string> prefixes;
};

namespace detail {
inline bool has_prefix(const std::string& name, const std::string& prefix) {
  return name == prefix ||
         (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
          name[prefix.size()] == '.');
}

inline std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

/// The names a prefix could have meant: every parameter name and each of its
/// dotted ancestors, ranked by edit distance.
inline std::string closest_names(const std::string& wanted,
                                 const std::vector<std::string>& param_names) {
  std::vector<std::string> candidates;
  for (const auto& n : param_names) {
    std::string::size_type pos = 0;
    while ((pos = n.find('.', pos)) != std::string::npos) candidates.push_back(n.substr(0, pos++));
    candidates.push_back(n);
  }
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  std::stable_sort(candidates.begin(), candidates.end(), [&](const auto& x, const auto& y) {
    return edit_distance(wanted, x) < edit_distance(wanted, y);
  });
  std::string out;
  for (std::size_t i = 0; i < candidates.size() && i < 3; ++i)
    out += (i ? ", " : "") + ("'" + candidates[i] + "'");
  return out;
}
}  // namespace detail

class BlockMap {
 public:
  BlockMap() = default;

  /// One block per spec, each owning the parameters whose names equal one of
  /// its prefixes or start with `prefix + "."`. Throws frost::Error when a
  /// prefix matches nothing, when two blocks share a parameter, or when there
  /// are no blocks.
  static BlockMap from_specs(const torch::nn::Module& model, const std::vector<BlockSpec>& specs) {
    detail::require(!specs.empty(),
                    "the block map is empty; name at least one block (e.g. {\"blocks.0\"})");
    const auto named = model.named_parameters(/*recurse=*/true);
    const auto modules = model.named_modules(/*name_prefix=*/"", /*include_self=*/false);
    std::vector<std::string> all_names;
    for (const auto& item : named) all_names.push_back(item.key());

    BlockMap map;
    std::unordered_map<std::string, std::string> owner;  // parameter name -> block name
    for (const auto& spec : specs) {
      detail::require(!spec.name.empty(), "a block needs a non-empty name");
      detail::require(!spec.prefixes.empty(), "block '", spec.name, "' has no prefixes");
      Block b;
      b.name = spec.name;
      b.prefixes = spec.prefixes;
      for (const auto& prefix : spec.prefixes) {
        bool matched = false;
        for (const auto& item : named) {
          if (!detail::has_prefix(item.key(), prefix)) continue;
          matched = true;
          auto [it, fresh] = owner.emplace(item.key(), spec.name);
          if (!fresh && it->second == spec.name) continue;  // two prefixes of one block overlap
          detail::require(fresh, "blocks '", it->second, "' and '", spec.name,
                          "' overlap: both own parameter '", item.key(),
                          "'; give each parameter to one block only");
          b.param_names.push_back(item.key());
          b.params.push_back(item.value());
          b.numel += item.value().numel();
        }
        detail::require(matched, "block prefix '", prefix, "' matches no parameter of the model",
                        "; closest names: ", detail::closest_names(prefix, all_names));
        // The module of that exact name, if any (eval() recurses into its children).
        if (const auto* m = modules.find(prefix)) b.modules.push_back(*m);
      }
      // Keep parameters in model order whatever order the prefixes came in.
      std::vector<std::size_t> order(b.params.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::unordered_map<std::string, std::size_t> rank;
      for (std::size_t i = 0; i < all_names.size(); ++i) rank[all_names[i]] = i;
      std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
        return rank[b.param_names[x]] < rank[b.param_names[y]];
      });
      Block sorted = b;
      for (std::size_t i = 0; i < order.size(); ++i) {
        sorted.param_names[i] = b.param_names[order[i]];
        sorted.params[i] = b.params[order[i]];
      }
      map.push_back(std::move(sorted));
    }
    return map;
  }

  /// One block per prefix, named after it: {"patch_embed", "blocks.0", ...}.
  static BlockMap from_prefixes(const torch::nn::Module& model,
                                const std::vector<std::string>& prefixes) {
    std::vector<BlockSpec> specs;
    for (const auto& p : prefixes) specs.push_back({p, {p}});
    return from_specs(model, specs);
  }

  /// One block per child of the ModuleList/Sequential at `container` (a dotted
  /// module name such as "blocks" or "encoder.layers"), in order.
  static BlockMap from_children(const torch::nn::Module& model, const std::string& container) {
    const auto modules = model.named_modules("", /*include_self=*/false);
    const auto* found = modules.find(container);
    if (found == nullptr) {
      std::vector<std::string> names;
      for (const auto& m : modules) names.push_back(m.key());
      detail::fail("no submodule named '", container, "' in the model; closest names: ",
                   detail::closest_names(container, names));
    }
    std::vector<BlockSpec> specs;
    for (const auto& child : (*found)->named_children()) {
      const std::string name = container + "." + child.key();
      if (!child.value()->parameters().empty()) specs.push_back({name, {name}});
    }
    detail::require(!specs.empty(), "module '", container,
                    "' has no children with parameters; name the blocks with from_prefixes");
    return from_specs(model, specs);
  }

  /// Automatic detection for common layouts (ViT, BERT-like encoders, ResNet
  /// style stacks): the first ModuleList/Sequential with at least two children
  /// (searched breadth-first) gives one block per child; the parameters
  /// registered before it (the model's own parameters such as a class token or
  /// positional embedding, and earlier submodules such as a patch embedding)
  /// form an input-side block "stem"; everything after it (final norm, head)
  /// stays outside the map and trains.
  static BlockMap detect(const torch::nn::Module& model) {
    const auto modules = model.named_modules("", /*include_self=*/false);
    std::string container;
    for (std::size_t depth = 0; depth < 4 && container.empty(); ++depth) {
      for (const auto& m : modules) {
        const auto dots = std::count(m.key().begin(), m.key().end(), '.');
        if (static_cast<std::size_t>(dots) != depth) continue;
        const bool is_list = m.value()->as<torch::nn::ModuleList>() != nullptr ||
                             m.value()->as<torch::nn::Sequential>() != nullptr;
        if (is_list && m.value()->children().size() >= 2) {
          container = m.key();
          break;
        }
      }
    }
    detail::require(!container.empty(),
                    "could not detect the blocks of this model (no ModuleList or Sequential with "
                    "two or more children); use BlockMap::from_children(model, \"<list name>\") or "
                    "BlockMap::from_prefixes(model, {...})");
    BlockMap body = from_children(model, container);
    // Everything registered before the first parameter of the container is the stem.
    const auto named = model.named_parameters(true);
    const std::string& first_body_param = body.blocks_.front().param_names.front();
    std::vector<std::string> stem;
    for (const auto& item : named) {
      if (item.key() == first_body_param) break;
      // Use the top-level name (module or own parameter) as the prefix.
      const std::string top = item.key().substr(0, item.key().find('.'));
      if (std::find(stem.begin(), stem.end(), top) == stem.end()) stem.push_back(top);
    }
    if (stem.empty()) return body;
    BlockMap map = from_specs(model, {BlockSpec{"stem", stem}});
    map.append(body);
    return map;
  }

  /// Adds the blocks of `other` after this map's blocks (input side first).
  /// Throws when they share a parameter.
  BlockMap& append(const BlockMap& other) {
    std::unordered_map<const void*, std::string> owner;
    for (const auto& b : blocks_)
      for (const auto& p : b.params) owner[p.unsafeGetTensorImpl()] = b.name;
    for (const auto& b : other.blocks_) {
      for (std::size_t i = 0; i < b.params.size(); ++i) {
        auto it = owner.find(b.params[i].unsafeGetTensorImpl());
        detail::require(it == owner.end(), "blocks '", it == owner.end() ? "" : it->second,
                        "' and '", b.name, "' overlap: both own parameter '", b.param_names[i],
                        "'; give each parameter to one block only");
      }
      blocks_.push_back(b);
    }
    return *this;
  }

  /// Stage index (1..S, non-decreasing from the input side) of every block,
  /// used by the stage-wise (SR-LR) schedule.
  BlockMap& stages(const std::vector<int>& s) {
    detail::require(s.size() == blocks_.size(), "stages: got ", s.size(), " stage indices for ",
                    blocks_.size(), " blocks; give one per block");
    for (std::size_t i = 0; i < s.size(); ++i) {
      detail::require(s[i] >= 1, "stages: stage of block '", blocks_[i].name, "' is ", s[i],
                      "; stages are numbered from 1 at the input side");
      detail::require(i == 0 || s[i] >= s[i - 1], "stages: stage indices must not decrease from "
                      "the input side (block '", blocks_[i].name, "')");
      blocks_[i].stage = s[i];
    }
    return *this;
  }

  /// The stage of every block (0 where not set).
  std::vector<int> stages() const {
    std::vector<int> out;
    for (const auto& b : blocks_) out.push_back(b.stage);
    return out;
  }

  std::size_t size() const noexcept { return blocks_.size(); }
  bool empty() const noexcept { return blocks_.empty(); }
  const Block& operator[](std::size_t i) const { return blocks_.at(i); }
  Block& operator[](std::size_t i) { return blocks_.at(i); }
  auto begin() const noexcept { return blocks_.begin(); }
  auto end() const noexcept { return blocks_.end(); }

  /// Index of the block called `name`; throws with the known names otherwise.
  std::size_t index_of(const std::string& name) const {
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      if (blocks_[i].name == name) return i;
    std::vector<std::string> names;
    for (const auto& b : blocks_) names.push_back(b.name);
    detail::fail("no block named '", name, "'; closest: ", detail::closest_names(name, names));
  }

  std::int64_t numel() const {
    std::int64_t n = 0;
    for (const auto& b : blocks_) n += b.numel;
    return n;
  }

 private:
  void push_back(Block b) { blocks_.push_back(std::move(b)); }
  std::vector<Block> blocks_;
};

}  // namespace frost
