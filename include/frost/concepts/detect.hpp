#pragma once
// The concept checks' helpers: `is_detected` (the general detection idiom,
// frost/detail/detect.hpp) under the concepts' name, and a policy's name.
#include <string>

#include "frost/detail/detect.hpp"

namespace frost::concepts {
using ::frost::detail::is_detected;

namespace ops {
template <class P>
using name_is_function = decltype(P::name());
}
/// A policy's display name: `static constexpr const char* name = "..."` or a
/// static function `name()` (templates that spell out their parameters).
template <class P>
std::string name_of() {
  if constexpr (is_detected<ops::name_is_function, P>)
    return std::string(P::name());
  else
    return std::string(P::name);
}
}  // namespace frost::concepts
