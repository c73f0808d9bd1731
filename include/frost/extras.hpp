#pragma once
// Extra policies of a FreezeController, given after the three main ones as
// tagged, defaulted template arguments (in the style of Boost.SML's policies):
//
//   frost::FreezeController<Criterion, Schedule, Stop>                        // defaults
//   frost::FreezeController<Criterion, Schedule, Stop,
//                           frost::with_reducer<MyAllReduce>>                 // data-parallel
//
// Each tag may appear once, in any order; a missing tag takes its default.
//   with_reducer<R>   what decision-point statistics and validation losses go
//                     through before the host reads them (default
//                     reducers::Identity; see concepts/reducer.hpp)
#include <type_traits>

#include "frost/concepts/reducer.hpp"
#include "frost/reducers/identity.hpp"

namespace frost {

namespace extras {
struct reducer_tag {};
}  // namespace extras

/// The reducer extra: `R` satisfies concepts::check_reducer.
template <class R>
struct with_reducer {
  static_assert(concepts::check_reducer<R>(), "see the message above");
  using extra_tag = extras::reducer_tag;
  using type = R;
};

namespace extras {
template <class T, class = void>
struct is_extra : std::false_type {};
template <class T>
struct is_extra<T, std::void_t<typename T::extra_tag>> : std::true_type {};

/// The `type` of the extra tagged `Tag` among `Es`, or `Default`.
template <class Tag, class Default, class... Es>
struct find {
  using type = Default;
};
template <class Tag, class Default, class E, class... Es>
struct find<Tag, Default, E, Es...> {
  using type = std::conditional_t<std::is_same_v<typename E::extra_tag, Tag>, typename E::type,
                                  typename find<Tag, Default, Es...>::type>;
};

/// The reducer among `Es` (frost::with_reducer<R>), or reducers::Identity.
template <class... Es>
using reducer_t = typename find<reducer_tag, reducers::Identity, Es...>::type;

template <class Tag, class... Es>
inline constexpr int count = (0 + ... + (std::is_same_v<typename Es::extra_tag, Tag> ? 1 : 0));

template <class... Es>
constexpr bool check() {
  static_assert((is_extra<Es>::value && ...),
                "frost: FreezeController's arguments after the stop rule are extra policies: "
                "frost::with_reducer<R> (see frost/extras.hpp); wrap the policy in its tag");
  if constexpr ((is_extra<Es>::value && ...))
    static_assert(count<reducer_tag, Es...> <= 1,
                  "frost: frost::with_reducer<...> is given twice; give each extra policy once");
  return true;
}
}  // namespace extras

}  // namespace frost
