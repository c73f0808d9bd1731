#pragma once
// Inspecting the optimizer state frost keeps or releases: a block in trial
// keeps its parameters' state (Adam moments, momentum), a frozen block's is
// released.
#include <torch/optim/optimizer.h>

#include "frost/detail/optimizer_access.hpp"

namespace frost {

/// Whether the optimizer holds state (Adam moments, momentum buffers) for `p`.
inline bool has_optimizer_state(const torch::optim::Optimizer& opt, const at::Tensor& p) {
  return detail::has_state(opt, p);
}

}  // namespace frost
