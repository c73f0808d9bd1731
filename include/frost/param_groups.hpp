#pragma once
// frost::param_groups: the optimizer param groups the controller needs, one per
// block (so each block gets its own learning rate and can be set to zero) and
// one for every trainable parameter outside the map (the head).
//
//   auto blocks = frost::BlockMap::detect(*model);
//   torch::optim::AdamW opt(frost::param_groups(blocks, *model), torch::optim::AdamWOptions(1e-3));
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <unordered_set>
#include <vector>

#include "frost/block_map.hpp"

namespace frost {

inline std::vector<torch::optim::OptimizerParamGroup> param_groups(const BlockMap& blocks,
                                                                   const torch::nn::Module& model) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  std::unordered_set<const void*> in_blocks;
  for (const auto& b : blocks) {
    groups.emplace_back(b.params);
    for (const auto& p : b.params) in_blocks.insert(p.unsafeGetTensorImpl());
  }
  std::vector<at::Tensor> rest;
  for (const auto& p : model.parameters(/*recurse=*/true))
    if (in_blocks.count(p.unsafeGetTensorImpl()) == 0) rest.push_back(p);
  if (!rest.empty()) groups.emplace_back(std::move(rest));
  return groups;
}

}  // namespace frost
