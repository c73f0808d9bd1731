#pragma once
// The detection idiom, used by the concept checks: `has_member<Op, T>` is true
// when Op<T> is well-formed.
#include <type_traits>

namespace frost::concepts {

namespace detail {
template <class, template <class...> class Op, class... Args>
struct detector : std::false_type {};
template <template <class...> class Op, class... Args>
struct detector<std::void_t<Op<Args...>>, Op, Args...> : std::true_type {};
}  // namespace detail

template <template <class...> class Op, class... Args>
inline constexpr bool is_detected = detail::detector<void, Op, Args...>::value;

}  // namespace frost::concepts

#include <string>

namespace frost::concepts {
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
