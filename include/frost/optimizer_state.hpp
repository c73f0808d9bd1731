#pragma once
// Inspecting the optimizer state frost keeps or releases: a block in trial
// keeps its parameters' state (Adam moments, momentum), a frozen block's is
// released.
#include <torch/optim/optimizer.h>

#include "frost/detail/optimizer_access.hpp"

namespace frost {

/// The optimizer's state for `p` (cast it to the optimizer's own type, e.g.
/// torch::optim::AdamWParamState), or nullptr when it holds none.
inline const torch::optim::OptimizerParamState* optimizer_state(const torch::optim::Optimizer& opt,
                                                                const at::Tensor& p) {
  const auto& state = opt.state();
  const auto it = state.find(detail::state_key(state, p));
  return it == state.end() ? nullptr : it->second.get();
}

/// Whether the optimizer holds state (Adam moments, momentum buffers) for `p`.
inline bool has_optimizer_state(const torch::optim::Optimizer& opt, const at::Tensor& p) {
  return detail::has_state(opt, p);
}

}  // namespace frost
