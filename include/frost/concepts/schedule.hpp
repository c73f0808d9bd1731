#pragma once
// The Schedule concept: per-block learning-rate multipliers and the schedule's
// own freezing times (FreezeOut freezes a block once its rate reaches zero).
//
//   struct MySchedule {
//     using Options = MyScheduleOptions;              // FROST_OPTIONS
//     static constexpr const char* name = "MySchedule";
//     explicit MySchedule(const Options&);
//     void setup(const frost::ScheduleSetup&);       // validate, precompute; throw frost::Error
//     double lr_scale(std::int64_t step, std::int64_t block) const;  // block == frost::kHead for
//     bool frozen(std::int64_t step, std::int64_t block) const;      //   parameters in no block
//     static constexpr bool stateless = true;      // or save/load (concepts/state.hpp)
//     // optional:
//     static Options default_options();            // defaults that depend on the template
//   };                                             // arguments (FreezeOut's t0 by spacing)
//
// `step` counts from 0 over the whole run, warm-up included. lr_scale multiplies
// each param group's base learning rate. Both are pure host arithmetic: they
// are called every step and must not touch tensors.
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "frost/concepts/detect.hpp"
#include "frost/concepts/run_shape.hpp"
#include "frost/concepts/state.hpp"

namespace frost {

/// Block index that stands for the parameters outside the block map (the head).
inline constexpr std::int64_t kHead = -1;

namespace concepts {
namespace ops {
template <class S>
using options = typename S::Options;
template <class S>
using name = decltype(S::name);
template <class S>
using ctor = decltype(S(std::declval<const typename S::Options&>()));
template <class S>
using setup = decltype(std::declval<S&>().setup(std::declval<const ScheduleSetup&>()));
template <class S>
using lr_scale = decltype(double{std::declval<const S&>().lr_scale(std::int64_t{}, std::int64_t{})});
template <class S>
using frozen = decltype(bool{std::declval<const S&>().frozen(std::int64_t{}, std::int64_t{})});
template <class S>
using default_options = decltype(typename S::Options{S::default_options()});
}  // namespace ops

/// `P::default_options()` when the policy has it, else its Options' defaults.
template <class P>
typename P::Options default_options() {
  if constexpr (is_detected<ops::default_options, P>)
    return P::default_options();
  else
    return typename P::Options{};
}

template <class S>
constexpr bool check_schedule() {
  static_assert(is_detected<ops::options, S>,
                "frost: a Schedule needs a nested `using Options = ...;` (its reflected options)");
  static_assert(is_detected<ops::name, S>,
                "frost: a Schedule needs `static constexpr const char* name = \"...\";`");
  if constexpr (is_detected<ops::options, S>)
    static_assert(is_detected<ops::ctor, S>,
                  "frost: a Schedule needs a constructor `explicit S(const Options&)`");
  static_assert(is_detected<ops::setup, S>,
                "frost: a Schedule needs `void setup(const frost::ScheduleSetup&)`");
  static_assert(is_detected<ops::lr_scale, S>,
                "frost: a Schedule needs `double lr_scale(std::int64_t step, std::int64_t block) "
                "const`");
  static_assert(is_detected<ops::frozen, S>,
                "frost: a Schedule needs `bool frozen(std::int64_t step, std::int64_t block) const`");
  static_assert(check_state<S>(), "see the message above");
  return true;
}
}  // namespace concepts
}  // namespace frost
