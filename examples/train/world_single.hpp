#pragma once
// examples/train/world_single.hpp — the World of a build without
// frost::distributed: one process, every collective a no-op. Included by
// world.hpp only (which also names the alternative, world_c10d.hpp).
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "frost/reducers/identity.hpp"

namespace frost_train {

using Reducer = frost::reducers::Identity;

/// The gradient all-reduce of one model: nothing to exchange with one process.
class GradientExchange {
 public:
  void after_backward() {}
  double mib() const { return 0.0; }       ///< payload sent by this rank
  double full_mib() const { return 0.0; }  ///< the same had nothing been frozen
};

struct World : Ranks {
  void mean_(at::Tensor&) const {}
  void sum_(at::Tensor&) const {}
  std::string share(const std::string&, const std::string& value,
                    std::chrono::seconds = std::chrono::seconds(3600)) const {
    return value;
  }
  void barrier() const {}
  template <class ReducerOptions>
  void bind_reducer(ReducerOptions&) const {}
  GradientExchange gradient_exchange(torch::nn::Module&) const { return {}; }
};

/// One process; asked for more (--world-size, WORLD_SIZE), a UsageError that
/// says what to install.
inline World join_world(const TrainConfig& cfg, bool /*cuda*/) {
  int size = cfg.world_size;
  if (size <= 0) {
    const char* e = std::getenv("WORLD_SIZE");
    size = e && *e ? std::atoi(e) : 1;
  }
  if (size > 1)
    throw UsageError("this frost-train was built without frost::distributed (the Gloo headers, "
                     "Debian's libgloo-dev, were missing when CMake ran): it cannot run " +
                     std::to_string(size) + " ranks; install libgloo-dev and rebuild");
  return World{};
}

}  // namespace frost_train
