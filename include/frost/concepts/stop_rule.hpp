#pragma once
// The StopRule concept: decides when training should end.
//
//   struct MyStop {
//     using Options = MyStopOptions;                 // FROST_OPTIONS
//     static constexpr const char* name = "MyStop";
//     explicit MyStop(const Options&);
//     bool should_stop(const frost::StopState&);      // after each step (host only)
//     // state: save/load, or static constexpr bool stateless = true (concepts/state.hpp)
//     // optional:
//     void setup(const frost::StopSetup&);           // once, when the controller is built
//     void on_validation(double loss, const frost::StopState&);
//   };
//
// Blocks in trial do not count as frozen: AllFrozen means all frozen for good.
#include <cstdint>
#include <string>
#include <type_traits>

#include "frost/concepts/detect.hpp"
#include "frost/concepts/run_shape.hpp"
#include "frost/concepts/state.hpp"

namespace frost {

/// What a stop rule sees after each step.
struct StopState {
  std::int64_t steps_done = 0;     ///< completed steps (the last one has index steps_done - 1)
  std::int64_t step = -1;          ///< 0-based index of the last completed step (-1: none yet)
  std::int64_t epoch = 0;          ///< the epoch of that step
  bool epoch_end = false;          ///< that step ended an epoch
  std::int64_t steps_per_epoch = 0;  ///< 0 when the user did not say
  std::int64_t num_blocks = 0;
  std::int64_t num_frozen = 0;     ///< frozen for good (trials do not count)
  std::int64_t num_trial = 0;
  std::int64_t frozen_prefix = 0;  ///< leading blocks frozen for good, from the input side
};

namespace concepts {
namespace ops {
template <class P>
using stop_should = decltype(bool{std::declval<P&>().should_stop(std::declval<const StopState&>())});
template <class P>
using stop_on_validation =
    decltype(std::declval<P&>().on_validation(double{}, std::declval<const StopState&>()));
template <class P>
using stop_on_validation_name = decltype(&P::on_validation);
template <class P>
using stop_setup = decltype(std::declval<P&>().setup(std::declval<const StopSetup&>()));
template <class P>
using stop_setup_name = decltype(&P::setup);
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
  static_assert(!is_detected<ops::stop_on_validation_name, P> ||
                    is_detected<ops::stop_on_validation, P>,
                "frost: a StopRule's on_validation must be `void on_validation(double loss, const "
                "frost::StopState&)`");
  static_assert(!is_detected<ops::stop_setup_name, P> || is_detected<ops::stop_setup, P>,
                "frost: a StopRule's setup must be `void setup(const frost::StopSetup&)`");
  static_assert(check_state<P>(), "see the message above");
  return true;
}

template <class P>
void setup_stop(P& p, const StopSetup& s) {
  if constexpr (is_detected<ops::stop_setup, P>) p.setup(s);
}

template <class P>
void notify_validation(P& p, double loss, const StopState& s) {
  if constexpr (is_detected<ops::stop_on_validation, P>) p.on_validation(loss, s);
}
}  // namespace concepts
}  // namespace frost
