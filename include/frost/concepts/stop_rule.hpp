#pragma once
// The StopRule concept: decides when training should end.
//
//   struct MyStop {
//     using Options = MyStopOptions;                 // FROST_REFLECT'ed
//     static constexpr const char* name = "MyStop";
//     explicit MyStop(const Options&);
//     bool should_stop(const frost::StopState&);      // after each step (host only)
//     // optional:
//     void on_validation(double loss, const frost::StopState&);
//   };
#include <cstdint>
#include <string>
#include <type_traits>

#include "frost/concepts/detect.hpp"

namespace frost {

/// What a stop rule sees after each step.
struct StopState {
  std::int64_t step = 0;           ///< 0-based index of the step just completed
  std::int64_t epoch = 0;
  bool epoch_end = false;
  std::int64_t num_blocks = 0;
  std::int64_t num_frozen = 0;
  std::int64_t frozen_prefix = 0;  ///< leading frozen blocks from the input side
};

namespace concepts {
namespace ops {
template <class P>
using stop_should = decltype(bool{std::declval<P&>().should_stop(std::declval<const StopState&>())});
template <class P>
using stop_on_validation =
    decltype(std::declval<P&>().on_validation(double{}, std::declval<const StopState&>()));
template <class P>
using stop_options = typename P::Options;
template <class P>
using stop_name = decltype(P::name);
template <class P>
using stop_ctor = decltype(P(std::declval<const typename P::Options&>()));
}  // namespace ops

template <class P>
constexpr bool check_stop_rule() {
  static_assert(is_detected<ops::stop_options, P>,
                "frost: a StopRule needs a nested `using Options = ...;` (its reflected options)");
  static_assert(is_detected<ops::stop_name, P>,
                "frost: a StopRule needs `static constexpr const char* name = \"...\";`");
  if constexpr (is_detected<ops::stop_options, P>)
    static_assert(is_detected<ops::stop_ctor, P>,
                  "frost: a StopRule needs a constructor `explicit P(const Options&)`");
  static_assert(is_detected<ops::stop_should, P>,
                "frost: a StopRule needs `bool should_stop(const frost::StopState&)`");
  return true;
}

template <class P>
void notify_validation(P& p, double loss, const StopState& s) {
  if constexpr (is_detected<ops::stop_on_validation, P>) p.on_validation(loss, s);
}
}  // namespace concepts
}  // namespace frost
