#pragma once
// frost::BlockParams: the parameter side of a block's state. Out of training
// a block's parameters get no gradient (requires_grad off and gradients
// released, so autograd records no graph for an input-side prefix and the
// optimizer skips them); frozen for good, their optimizer state is released
// too. Parameters the user had already fixed (requires_grad false) when the
// controller was built stay fixed whatever their block's state; a block with
// every parameter fixed is the controller's to freeze from step 0.
// (The learning rate is the LrBook's, the module mode the ModeGuard's.)
#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/block_state.hpp"
#include "frost/detail/optimizer_access.hpp"

namespace frost {

class BlockParams {
 public:
  BlockParams() = default;
  /// Notes which parameters of `blocks` the user has fixed already.
  explicit BlockParams(const BlockMap& blocks) {
    for (const auto& blk : blocks) {
      std::vector<char> fixed;
      for (const auto& p : blk.params) fixed.push_back(!p.requires_grad());
      const auto n = static_cast<std::size_t>(std::count(fixed.begin(), fixed.end(), 1));
      num_fixed_.push_back(n);
      // A block fixed whole trains whole if it is ever unfrozen.
      if (n == fixed.size()) fixed.assign(fixed.size(), 0);
      fixed_.push_back(std::move(fixed));
    }
  }

  /// How many of block b's parameters the user had fixed.
  std::size_t num_fixed(std::size_t b) const { return num_fixed_.at(b); }
  /// Whether the user had fixed every parameter of block b.
  bool all_fixed(std::size_t b) const { return num_fixed_.at(b) == fixed_.at(b).size(); }
  /// For a block with some parameters fixed, what happens to them.
  std::string fixed_note(std::size_t b) const {
    return std::to_string(num_fixed_.at(b)) + " of " + std::to_string(fixed_.at(b).size()) +
           " parameters already had requires_grad false; they stay fixed, the rest of the block "
           "follows its state";
  }

  /// Block b (`blk`) moves to `to`.
  void enter(const Block& blk, std::size_t b, BlockState to,
             torch::optim::Optimizer& optimizer) const {
    if (meaning(to).trains) {
      for (std::size_t i = 0; i < blk.params.size(); ++i)
        if (!fixed_[b][i]) blk.params[i].requires_grad_(true);
      return;
    }
    for (auto p : blk.params) {
      p.requires_grad_(false);
      if (p.grad().defined()) p.mutable_grad() = at::Tensor();
      if (!meaning(to).keeps_optimizer_state) detail::drop_state(optimizer, p);
    }
  }

 private:
  std::vector<std::size_t> num_fixed_;    // per block: parameters the user fixed
  std::vector<std::vector<char>> fixed_;  // per block parameter: stays fixed when training
};

}  // namespace frost
