#pragma once
// reducers::Identity — the default reducer: one process, nothing to combine.
#include <ATen/core/Tensor.h>

#include "frost/concepts/reducer.hpp"
#include "frost/options.hpp"

namespace frost::reducers {

struct IdentityOptions {};

class Identity {
 public:
  using Options = IdentityOptions;
  static constexpr const char* name = "Identity";
  static constexpr bool stateless = true;
  static constexpr bool identity = true;
  explicit Identity(const Options& = {}) {}
  at::Tensor reduce(const at::Tensor& statistics) const { return statistics; }
};

}  // namespace frost::reducers

FROST_REFLECT_NONE(frost::reducers::IdentityOptions);
