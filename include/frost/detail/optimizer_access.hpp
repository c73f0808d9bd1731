#pragma once
// Version-independent access to torch::optim internals the controller needs:
// the per-parameter state map changed its key from a printed TensorImpl
// pointer (LibTorch 1.x) to the pointer itself (2.x).
#include <torch/optim/optimizer.h>

#include <sstream>
#include <string>
#include <type_traits>

namespace frost::detail {

template <class Map>
typename Map::key_type state_key(const Map&, const at::Tensor& p) {
  using Key = typename Map::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;  // what c10::guts::to_string did in 1.x
    os << p.unsafeGetTensorImpl();
    return os.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

/// Drops the optimizer state (Adam moments, momentum buffers) of `p`; returns
/// whether there was any.
inline bool drop_state(torch::optim::Optimizer& opt, const at::Tensor& p) {
  auto& state = opt.state();
  return state.erase(state_key(state, p)) > 0;
}

/// Whether the optimizer holds state for `p`.
inline bool has_state(const torch::optim::Optimizer& opt, const at::Tensor& p) {
  const auto& state = opt.state();
  return state.find(state_key(state, p)) != state.end();
}

}  // namespace frost::detail
