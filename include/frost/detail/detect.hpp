#pragma once
// The detection idiom: `frost::detail::is_detected<Op, Args...>` is true when
// Op<Args...> is well-formed. A general helper, so it lives in detail/: the
// concept checks (concepts/) and the policies (the activation cache's model
// protocol) both use it without one reaching into the other's layer.
#include <type_traits>

namespace frost::detail {

template <class, template <class...> class Op, class... Args>
struct detector : std::false_type {};
template <template <class...> class Op, class... Args>
struct detector<std::void_t<Op<Args...>>, Op, Args...> : std::true_type {};

template <template <class...> class Op, class... Args>
inline constexpr bool is_detected = detector<void, Op, Args...>::value;

}  // namespace frost::detail
