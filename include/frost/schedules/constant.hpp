#pragma once
// schedules::Constant — every block and the head at the base learning rate
// (multiplier 1), after an optional linear warm-up (w / W at step w < W, the
// same ramp FreezeOut uses). It never freezes anything: use it when a
// criterion, not the schedule, decides what to freeze. It needs no
// total_steps (0 = unknown is fine).
#include <cstdint>

#include "frost/concepts/schedule.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"

namespace frost::schedules {

struct ConstantOptions {};

class Constant {
 public:
  using Options = ConstantOptions;
  static constexpr const char* name = "Constant";
  static constexpr bool stateless = true;

  explicit Constant(const Options& = {}) {}

  void setup(const ScheduleSetup& ss) {
    frost::detail::require(ss.total_steps >= 0, "controller.total_steps is ", ss.total_steps,
                           "; it must be 0 (unknown) or more");
    frost::detail::require(ss.warmup_steps >= 0, "controller.warmup_steps is ", ss.warmup_steps,
                           "; it must be 0 or more");
    frost::detail::require(ss.total_steps == 0 || ss.warmup_steps < ss.total_steps,
                           "controller.warmup_steps (", ss.warmup_steps,
                           ") must be less than controller.total_steps (", ss.total_steps, ")");
    W_ = ss.warmup_steps;
  }

  double lr_scale(std::int64_t step, std::int64_t /*block*/) const {
    if (step < W_) return static_cast<double>(step < 0 ? 0 : step) / static_cast<double>(W_);
    return 1.0;
  }
  bool frozen(std::int64_t, std::int64_t) const { return false; }

 private:
  std::int64_t W_ = 0;
};

}  // namespace frost::schedules

FROST_REFLECT_NONE(frost::schedules::ConstantOptions);
