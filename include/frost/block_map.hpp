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
//
// A recurrent torch::nn::LSTM, GRU or RNN keeps every layer in one module
// (parameters weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ..._l1, and
// ..._reverse for the backward direction): detect and from_children split it
// into one block per layer, "lstm.l0", "lstm.l1", each owning its layer's
// parameters of both directions.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/rnn.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "frost/error.hpp"
#include "frost/options.hpp"

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
/// The three of `candidates` closest to `wanted` (edit distance), quoted.
inline std::string closest_of(const std::string& wanted, std::vector<std::string> candidates) {
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
/// The closest prefixes of a model's parameter names: the names and each of
/// their dotted ancestors ("layer1.0.conv1.weight" -> "layer1", "layer1.0", ...).
inline std::string closest_names(const std::string& wanted,
                                 const std::vector<std::string>& param_names) {
  std::vector<std::string> candidates;
  for (const auto& n : param_names) {
    std::string::size_type pos = 0;
    while ((pos = n.find('.', pos)) != std::string::npos) candidates.push_back(n.substr(0, pos++));
    candidates.push_back(n);
  }
  return closest_of(wanted, std::move(candidates));
}
}  // namespace detail

/// What BlockMap::detect makes one block of.
enum class Granularity {
  blocks,  ///< one block per child of every stage container ("blocks.3", "layer2.1"); the default
  stages,  ///< one block per stage container ("layer2")
};

/// Options of BlockMap::detect.
struct DetectOptions {
  /// One block per residual/transformer block (default) or one per stage.
  FROST_ARG(Granularity, granularity) = Granularity::blocks;
};

namespace detail {
inline bool is_container(const torch::nn::Module& m) {
  return m.as<torch::nn::ModuleList>() != nullptr || m.as<torch::nn::Sequential>() != nullptr;
}

/// Whether `m` is a torch::nn::LSTM, GRU or RNN: a stack of layers in one
/// module, told apart by their parameters' names, not by submodules.
inline bool is_recurrent(const torch::nn::Module& m) {
  return m.as<torch::nn::LSTM>() != nullptr || m.as<torch::nn::GRU>() != nullptr ||
         m.as<torch::nn::RNN>() != nullptr;
}

/// The layer of a recurrent module's parameter: "weight_ih_l1", "weight_hr_l1"
/// and "bias_hh_l1_reverse" -> 1; -1 for a name without the "_l<k>" suffix.
inline long recurrent_layer_of(std::string leaf) {
  const std::string reverse = "_reverse";
  if (leaf.size() > reverse.size() &&
      leaf.compare(leaf.size() - reverse.size(), reverse.size(), reverse) == 0)
    leaf.resize(leaf.size() - reverse.size());
  std::size_t digits = leaf.size();
  while (digits > 0 && leaf[digits - 1] >= '0' && leaf[digits - 1] <= '9') --digits;
  if (digits == leaf.size() || digits < 2 || leaf.compare(digits - 2, 2, "_l") != 0) return -1;
  return std::stol(leaf.substr(digits));
}

/// One spec per layer of the recurrent module `m` named `name` ("" for the
/// model itself): "<name>.l<k>" owning the layer's parameters by their full
/// names, both directions of a bidirectional layer in one block, in layer
/// order (LibTorch registers the parameters layer by layer).
inline std::vector<BlockSpec> recurrent_layer_specs(const std::string& name,
                                                    const torch::nn::Module& m) {
  std::vector<BlockSpec> specs;
  const std::string dotted = name.empty() ? "" : name + ".";
  for (const auto& p : m.named_parameters(/*recurse=*/false)) {
    const long layer = recurrent_layer_of(p.key());
    require(layer >= 0, "recurrent module '", name, "' has parameter '", p.key(),
            "', which names no layer (<name>_l<k>); name its blocks with BlockMap::from_specs");
    const auto k = static_cast<std::size_t>(layer);
    if (specs.size() <= k) specs.resize(k + 1);
    specs[k].name = dotted + "l" + std::to_string(k);
    specs[k].prefixes.push_back(dotted + p.key());
  }
  return specs;
}

/// A stack detect can take blocks from: a ModuleList or Sequential (its
/// children) or a recurrent module (its layers).
inline bool is_stack(const torch::nn::Module& m) { return is_container(m) || is_recurrent(m); }

/// How many blocks a stack holds at most: its children, or its layers.
inline std::size_t stack_size(const torch::nn::Module& m) {
  return is_recurrent(m) ? recurrent_layer_specs("", m).size() : m.children().size();
}

/// "a.b.layer2" -> {"a.b", "layer2"}; "layer2" -> {"", "layer2"}.
inline std::pair<std::string, std::string> split_parent(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return {"", name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

/// The text before a name's trailing number ("layer2" -> "layer", "3" -> ""),
/// and whether there is a trailing number at all.
inline std::pair<std::string, bool> series_text(const std::string& leaf) {
  std::size_t end = leaf.size();
  while (end > 0 && leaf[end - 1] >= '0' && leaf[end - 1] <= '9') --end;
  return {leaf.substr(0, end), end < leaf.size()};
}

/// The stage containers BlockMap::detect uses (see there), or none.
inline std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> find_stages(
    const torch::nn::Module& model) {
  const auto named = model.named_modules(/*name_prefix=*/"", /*include_self=*/false);
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> modules;
  for (const auto& m : named) modules.emplace_back(m.key(), m.value());
  for (std::size_t depth = 0; depth < 4; ++depth) {
    for (std::size_t i = 0; i < modules.size(); ++i) {
      const auto& [name, module] = modules[i];
      if (static_cast<std::size_t>(std::count(name.begin(), name.end(), '.')) != depth ||
          !is_stack(*module))
        continue;
      std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> series{modules[i]};
      std::size_t children = stack_size(*module);
      const auto [parent, leaf] = split_parent(name);
      const auto [text, numbered] = series_text(leaf);
      if (numbered) {
        for (std::size_t j = i + 1; j < modules.size(); ++j) {
          const auto [p2, leaf2] = split_parent(modules[j].first);
          if (p2 != parent || !is_stack(*modules[j].second)) continue;
          const auto [text2, numbered2] = series_text(leaf2);
          if (!numbered2 || text2 != text) continue;
          series.push_back(modules[j]);
          children += stack_size(*modules[j].second);
        }
      }
      if (children >= 2) return series;
    }
  }
  // Last: a one-layer recurrent module (embedding + LSTM + head) is a stage
  // of one block, so the map holds it and the stem before it.
  for (std::size_t depth = 0; depth < 4; ++depth)
    for (const auto& m : modules)
      if (static_cast<std::size_t>(std::count(m.first.begin(), m.first.end(), '.')) == depth &&
          is_recurrent(*m.second))
        return {m};
  return {};
}

/// A block BlockMap::detect makes besides the stem, and its stage (1, 2, ...).
struct DetectedUnit {
  std::string name;
  int stage;
  std::vector<std::string> prefixes;  ///< what it owns: {name}, or a recurrent layer's parameters
};

/// detect's step 3: the blocks of the stages with parameters, by `granularity`;
/// `num_stages` counts those stages.
inline std::vector<DetectedUnit> detected_units(
    const std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>>& stages,
    Granularity granularity, int& num_stages) {
  std::vector<DetectedUnit> units;
  num_stages = 0;
  for (const auto& [stage_name, stage] : stages) {
    if (stage->parameters().empty()) continue;
    ++num_stages;
    if (granularity == Granularity::stages) {
      units.push_back({stage_name, num_stages, {stage_name}});
    } else if (is_recurrent(*stage)) {
      for (auto& layer : recurrent_layer_specs(stage_name, *stage))
        units.push_back({layer.name, num_stages, std::move(layer.prefixes)});
    } else {
      for (const auto& child : stage->named_children()) {
        const std::string name = stage_name + "." + child.key();
        if (!child.value()->parameters().empty()) units.push_back({name, num_stages, {name}});
      }
    }
  }
  return units;
}

/// detect's steps 4-6: which block each parameter (`names`, in the model's
/// order) goes to: -1 the stem, the units' indices, -2 outside.
inline std::vector<long> detected_owners(const std::vector<std::string>& names,
                                         const std::vector<DetectedUnit>& units) {
  std::vector<long> block_of;
  for (const auto& name : names) {
    long b = -2;
    for (std::size_t u = 0; u < units.size() && b == -2; ++u)
      for (const auto& prefix : units[u].prefixes)
        if (has_prefix(name, prefix)) b = static_cast<long>(u);
    block_of.push_back(b);
  }
  long next = -2;  // the block of the nearest unit parameter after, scanning backwards
  bool seen_unit = false;
  std::vector<long> after(names.size(), -2);
  for (std::size_t i = names.size(); i-- > 0;) {
    if (block_of[i] >= 0) next = block_of[i];
    after[i] = next;
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (block_of[i] >= 0) {
      seen_unit = true;
    } else if (!seen_unit) {
      block_of[i] = -1;  // before the first block: the stem
    } else {
      block_of[i] = after[i];  // between stages: the following block (-2 after the last)
    }
  }
  return block_of;
}

/// `n`'s dotted ancestors, shortest first, and `n` itself.
inline std::vector<std::string> dotted_ancestors(const std::string& n) {
  std::vector<std::string> out;
  for (std::string::size_type pos = 0; (pos = n.find('.', pos)) != std::string::npos; ++pos)
    out.push_back(n.substr(0, pos));
  out.push_back(n);
  return out;
}

/// The specs detect hands to from_specs: "stem" first, then the units; each
/// parameter's prefix is its shortest dotted ancestor (or itself) whose
/// parameters all go to the same block.
inline std::vector<BlockSpec> detected_specs(const std::vector<std::string>& names,
                                             const std::vector<long>& block_of,
                                             const std::vector<DetectedUnit>& units) {
  std::unordered_map<std::string, long> owner_of_prefix;  // -3: mixed
  for (std::size_t i = 0; i < names.size(); ++i)
    for (const auto& a : dotted_ancestors(names[i])) {
      auto [it, fresh] = owner_of_prefix.emplace(a, block_of[i]);
      if (!fresh && it->second != block_of[i]) it->second = -3;
    }
  std::vector<BlockSpec> specs(units.size() + 1);
  specs[0].name = "stem";
  for (std::size_t u = 0; u < units.size(); ++u) specs[u + 1].name = units[u].name;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (block_of[i] == -2) continue;
    for (const auto& a : dotted_ancestors(names[i])) {
      if (owner_of_prefix.at(a) != block_of[i]) continue;
      auto& prefixes = specs[static_cast<std::size_t>(block_of[i] + 1)].prefixes;
      if (std::find(prefixes.begin(), prefixes.end(), a) == prefixes.end())
        prefixes.push_back(a);
      break;
    }
  }
  return specs;
}
}  // namespace detail

/// A block named by its index or by its name, for the calls that take
/// either: ctl.freeze(2), ctl.freeze("encoder.layers.2").
class BlockRef {
 public:
  template <class I, std::enable_if_t<std::is_integral_v<I>, int> = 0>
  BlockRef(I index) : index_(static_cast<std::int64_t>(index)) {}  // NOLINT: implicit on purpose
  BlockRef(std::string name) : name_(std::move(name)) {}           // NOLINT
  BlockRef(const char* name) : name_(std::string(name)) {}         // NOLINT

  std::int64_t index() const noexcept { return index_; }
  const std::optional<std::string>& name() const noexcept { return name_; }

 private:
  std::int64_t index_ = -1;
  std::optional<std::string> name_;
};

class BlockMap {
 public:
  BlockMap() = default;

  /// One block per spec, each owning the parameters whose names equal one of
  /// its prefixes or start with `prefix + "."` (prefixes of one block may
  /// nest: {"blocks", "blocks.1"}). Throws frost::Error when there are no
  /// blocks, when two blocks have the same name, when a prefix is given twice
  /// (in one block or in two), when a prefix matches nothing (naming the
  /// closest names), when two blocks share a parameter, or when a block ends
  /// up with no parameters.
  static BlockMap from_specs(const torch::nn::Module& model, const std::vector<BlockSpec>& specs) {
    detail::require(!specs.empty(),
                    "the block map is empty; name at least one block (e.g. {\"blocks.0\"})");
    const auto named = model.named_parameters(/*recurse=*/true);
    const auto modules = model.named_modules(/*name_prefix=*/"", /*include_self=*/false);
    std::vector<std::string> all_names;
    for (const auto& item : named) all_names.push_back(item.key());
    std::unordered_map<std::string, std::size_t> rank;
    for (std::size_t i = 0; i < all_names.size(); ++i) rank[all_names[i]] = i;

    BlockMap map;
    std::unordered_map<std::string, std::size_t> owner;        // parameter name -> block index
    std::unordered_map<std::string, std::size_t> block_named;  // block name -> block index
    std::unordered_map<std::string, std::size_t> prefix_of;    // prefix -> block index
    for (std::size_t k = 0; k < specs.size(); ++k) {
      const auto& spec = specs[k];
      detail::require(!spec.name.empty(), "a block needs a non-empty name (block ", k, ")");
      detail::require(!spec.prefixes.empty(), "block '", spec.name, "' has no prefixes");
      const auto [same_name, fresh_name] = block_named.emplace(spec.name, k);
      detail::require(fresh_name, "two blocks are named '", spec.name, "' (blocks ",
                      same_name->second, " and ", k, "); give every block its own name");
      Block b;
      b.name = spec.name;
      b.prefixes = spec.prefixes;
      for (const auto& prefix : spec.prefixes) {
        const auto [given, fresh_prefix] = prefix_of.emplace(prefix, k);
        if (!fresh_prefix && given->second == k)
          detail::fail("block '", spec.name, "' lists prefix '", prefix,
                       "' twice; list each prefix once");
        detail::require(fresh_prefix, "prefix '", prefix, "' is given to two blocks, '",
                        specs[given->second].name, "' and '", spec.name,
                        "'; give it to one block only");
        bool matched = false;
        for (const auto& item : named) {
          if (!detail::has_prefix(item.key(), prefix)) continue;
          matched = true;
          auto [it, fresh] = owner.emplace(item.key(), k);
          if (!fresh && it->second == k) continue;  // two prefixes of one block nest
          detail::require(fresh, "blocks '", specs[it->second].name, "' and '", spec.name,
                          "' overlap: both own parameter '", item.key(),
                          "' (prefix '", prefix, "' of '", spec.name,
                          "'); give each parameter to one block only");
          b.param_names.push_back(item.key());
          b.params.push_back(item.value());
          b.numel += item.value().numel();
        }
        detail::require(matched, "block prefix '", prefix, "' matches no parameter of the model",
                        "; closest names: ", detail::closest_names(prefix, all_names));
        // The module of that exact name, if any (eval() recurses into its children).
        if (const auto* m = modules.find(prefix)) b.modules.push_back(*m);
      }
      detail::require(!b.params.empty(), "block '", spec.name,
                      "' owns no parameters; remove it or give it a prefix of its own");
      // Keep parameters in model order whatever order the prefixes came in.
      std::vector<std::size_t> order(b.params.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
        return rank.at(b.param_names[x]) < rank.at(b.param_names[y]);
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
  /// Throws frost::Error naming a prefix given twice (and see from_specs).
  static BlockMap from_prefixes(const torch::nn::Module& model,
                                const std::vector<std::string>& prefixes) {
    std::vector<BlockSpec> specs;
    for (std::size_t i = 0; i < prefixes.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j)
        detail::require(prefixes[j] != prefixes[i], "prefix '", prefixes[i],
                        "' is given twice (positions ", j, " and ", i,
                        "); list each block's prefix once");
      specs.push_back({prefixes[i], {prefixes[i]}});
    }
    return from_specs(model, specs);
  }

  /// One block per child of the ModuleList/Sequential at `container` (a dotted
  /// module name such as "blocks" or "encoder.layers"), in order; at a
  /// torch::nn::LSTM, GRU or RNN, one block per layer ("lstm.l0", "lstm.l1").
  static BlockMap from_children(const torch::nn::Module& model, const std::string& container) {
    const auto modules = model.named_modules("", /*include_self=*/false);
    const auto* found = modules.find(container);
    if (found == nullptr) {
      std::vector<std::string> names;
      for (const auto& m : modules) names.push_back(m.key());
      detail::fail("no submodule named '", container, "' in the model; closest names: ",
                   detail::closest_names(container, names));
    }
    if (detail::is_recurrent(**found))
      return from_specs(model, detail::recurrent_layer_specs(container, **found));
    std::vector<BlockSpec> specs;
    for (const auto& child : (*found)->named_children()) {
      const std::string name = container + "." + child.key();
      if (!child.value()->parameters().empty()) specs.push_back({name, {name}});
    }
    detail::require(!specs.empty(), "module '", container,
                    "' has no children with parameters; name the blocks with from_prefixes");
    return from_specs(model, specs);
  }

  /// Automatic detection for the common layouts: a ViT or BERT-like encoder
  /// (a ModuleList of blocks), a torch::nn::TransformerEncoder (its "layers"),
  /// a torchvision-style ResNet (a conv/bn stem, stages "layer1".."layer4",
  /// each a Sequential of residual blocks). What it recognises, exactly:
  ///
  /// 1. The first container: the submodules are searched breadth-first
  ///    (dotted depth 0 to 3, registration order within a depth) for the
  ///    first ModuleList or Sequential that has two or more children, or that
  ///    starts a numbered series (2.) holding two or more children in all.
  ///    A recurrent torch::nn::LSTM, GRU or RNN counts as a container whose
  ///    children are its layers; when nothing else is found, the first
  ///    one-layer recurrent module is the container (embedding + LSTM + head).
  /// 2. The stages: when that container's name ends in a number ("layer1"),
  ///    its sibling ModuleLists/Sequentials (children of the same parent)
  ///    named with the same text and another number ("layer2", "layer3", any
  ///    count of children each) are stages too, in registration order.
  ///    Unnumbered siblings are not stages: a VGG-style `classifier` or a
  ///    Sequential head keeps training. A container without such siblings
  ///    ("blocks", "encoder.layers") is the only stage.
  /// 3. The blocks: with Granularity::blocks (the default), one block per
  ///    child with parameters of every stage, in order, named
  ///    "<stage>.<child>" ("blocks.0", "layer2.1"), or one block per layer
  ///    of a recurrent stage, named "<stage>.l<k>" ("lstm.l0": weight_ih_l0,
  ///    weight_hh_l0, bias_ih_l0, bias_hh_l0 and their _reverse twins; a
  ///    layer of a multi-layer module has no module of its own, so
  ///    eval_frozen leaves the module's mode, and its dropout between
  ///    layers, as they are); with Granularity::stages, one block per stage
  ///    with parameters, named after it ("layer2", "lstm").
  /// 4. The stem: every parameter listed before the first block (the model's
  ///    own parameters such as a class token or positional embedding, which
  ///    LibTorch lists first, and earlier submodules such as a patch
  ///    embedding or a conv/bn stem) forms an input-side block "stem"; there
  ///    is none when no parameter comes first.
  /// 5. Parameters listed between two stages that belong to neither (a
  ///    transition module registered between "layer1" and "layer2") join the
  ///    following block ("layer2.0", or "layer2" by stage): the input passes
  ///    through them before it, and nothing is silently left out.
  /// 6. Everything after the last block (a final norm, pooling, the head)
  ///    stays outside the map and trains.
  ///
  /// With two or more stages every block's `stage` is set for the stage-wise
  /// (SR-LR) schedule: the k-th stage's blocks get k and the stem gets 1 (it
  /// shares the first stage's rate factor); with one stage they stay 0
  /// (unset). Each block's prefixes are the shortest dotted names that cover
  /// its parameters and no other's ("conv1", "bn1", "layer2.0"), so
  /// Block::modules holds its modules. Layouts it does not know can leave most
  /// of a model outside the map: check coverage(model), or name the blocks
  /// with from_children / from_prefixes / from_specs.
  static BlockMap detect(const torch::nn::Module& model,
                         const DetectOptions& options = DetectOptions()) {
    const auto stages = detail::find_stages(model);
    detail::require(!stages.empty(),
                    "could not detect the blocks of this model (no ModuleList or Sequential with "
                    "two or more children, nor numbered ones such as layer1, layer2 holding two "
                    "in all, nor a recurrent torch::nn::LSTM, GRU or RNN); use "
                    "BlockMap::from_children(model, \"<list name>\") or "
                    "BlockMap::from_prefixes(model, {...})");
    int num_stages = 0;
    const auto units = detail::detected_units(stages, options.granularity(), num_stages);
    detail::require(!units.empty(), "module '", stages.front().first,
                    "' has no children with parameters; name the blocks with "
                    "BlockMap::from_prefixes(model, {...})");
    std::vector<std::string> names;
    for (const auto& item : model.named_parameters(/*recurse=*/true)) names.push_back(item.key());
    const auto block_of = detail::detected_owners(names, units);
    auto specs = detail::detected_specs(names, block_of, units);
    const bool has_stem = !specs[0].prefixes.empty();
    if (!has_stem) specs.erase(specs.begin());
    BlockMap map = from_specs(model, specs);
    if (num_stages >= 2) {
      std::vector<int> s;
      if (has_stem) s.push_back(1);
      for (const auto& u : units) s.push_back(u.stage);
      map.stages(s);
    }
    return map;
  }

  /// How much of a model the map's blocks own, in parameter elements (numel).
  struct Coverage {
    std::int64_t owned = 0, total = 0;
    /// owned / total (0..1); 0 for a model without parameters.
    double share() const {
      return total == 0 ? 0.0 : static_cast<double>(owned) / static_cast<double>(total);
    }
    /// "the block map holds 120 of the model's 200 parameters (60%)".
    std::string describe() const {
      return "the block map holds " + std::to_string(owned) + " of the model's " +
             std::to_string(total) + " parameters (" +
             std::to_string(static_cast<int>(std::lround(100.0 * share()))) + "%)";
    }
  };
  /// What the map's blocks own of `model`; a parameter registered twice
  /// counts once. Every parameter counts, whether it requires grad or not:
  /// the figure says how much of the model the map can freeze, and must not
  /// change when the controller freezes blocks (requires_grad_(false)) or
  /// when the user has frozen parts of the model by hand.
  Coverage coverage_of(const torch::nn::Module& model) const {
    std::unordered_set<const void*> mine;
    for (const auto& b : blocks_)
      for (const auto& p : b.params) mine.insert(p.unsafeGetTensorImpl());
    std::unordered_set<const void*> seen;
    Coverage c;
    for (const auto& p : model.parameters(/*recurse=*/true)) {
      if (!seen.insert(p.unsafeGetTensorImpl()).second) continue;
      c.total += p.numel();
      if (mine.count(p.unsafeGetTensorImpl()) != 0) c.owned += p.numel();
    }
    return c;
  }
  /// The fraction (0..1) of the model's parameter elements that the map's
  /// blocks own (coverage_of(model).share()).
  double coverage(const torch::nn::Module& model) const { return coverage_of(model).share(); }

  /// Refuses a map that cannot drive `model`: an empty map, a block without
  /// parameters, a parameter that is not the model's.
  void check_parameters_of(const torch::nn::Module& model) const {
    detail::require(!blocks_.empty(),
                    "the block map is empty; build it with frost::BlockMap::detect(model) or "
                    "from_prefixes/from_children");
    std::unordered_set<const void*> params;
    for (const auto& p : model.parameters(/*recurse=*/true)) params.insert(p.unsafeGetTensorImpl());
    for (const auto& b : blocks_) {
      detail::require(!b.params.empty(), "block '", b.name,
                      "' has no parameters; give every block at least one");
      for (std::size_t i = 0; i < b.params.size(); ++i)
        detail::require(params.count(b.params[i].unsafeGetTensorImpl()) != 0, "parameter '",
                        b.param_names[i], "' of block '", b.name,
                        "' is not a parameter of the model given to the controller; build the "
                        "block map from the same model");
    }
  }

  /// Adds the blocks of `other` after this map's blocks (input side first).
  /// Throws (leaving this map unchanged) when they share a parameter or a
  /// block name.
  BlockMap& append(const BlockMap& other) {
    std::unordered_map<const void*, std::string> owner;
    std::unordered_set<std::string> names;
    for (const auto& b : blocks_) {
      names.insert(b.name);
      for (const auto& p : b.params) owner[p.unsafeGetTensorImpl()] = b.name;
    }
    for (const auto& b : other.blocks_) {
      for (std::size_t i = 0; i < b.params.size(); ++i) {
        auto it = owner.find(b.params[i].unsafeGetTensorImpl());
        detail::require(it == owner.end(), "blocks '", it == owner.end() ? "" : it->second,
                        "' and '", b.name, "' overlap: both own parameter '", b.param_names[i],
                        "'; give each parameter to one block only");
      }
      detail::require(names.count(b.name) == 0, "two blocks are named '", b.name,
                      "'; give every block its own name");
    }
    for (const auto& b : other.blocks_) blocks_.push_back(b);
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

  /// The index of `block` (an index or a name) for the call `call`; throws
  /// naming the call when there is no such block.
  std::size_t index_of(const BlockRef& block, const char* call) const {
    if (block.name()) return index_of(*block.name());
    detail::require(block.index() >= 0 && block.index() < static_cast<std::int64_t>(size()), call,
                    "(", block.index(), "): there are only ", size(), " blocks");
    return static_cast<std::size_t>(block.index());
  }

  /// Index of the block called `name`; throws with the known names otherwise.
  std::size_t index_of(const std::string& name) const {
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      if (blocks_[i].name == name) return i;
    std::vector<std::string> names;
    for (const auto& b : blocks_) names.push_back(b.name);
    detail::fail("no block named '", name, "'; closest: ", detail::closest_of(name, names));
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
