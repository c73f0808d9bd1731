#pragma once
// schedules::Cosine — one cosine annealing for every block and the head (the
// usual single-group schedule; FreezeOut with t_i = 1 and s_i = 1 for all):
//
//   m(j) = min_scale + (1 - min_scale) * 0.5 * (1 + cos(pi * j / T)),
//   T = total_steps - warmup_steps, j = step - warmup_steps,
//
// after a linear warm-up of w / W at step w < W. `min_scale` is the floor the
// cosine ends at (PyTorch CosineAnnealingLR's eta_min, as a fraction of the
// base rate); it holds there past the end. Never freezes anything; needs
// controller.total_steps.
#include <cmath>
#include <cstdint>

#include "frost/concepts/schedule.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"

namespace frost::schedules {

struct CosineOptions {
  FROST_OPTIONS(
      /// Multiplier the cosine anneals down to, in [0, 1] (0 = to zero).
      (double, min_scale, 0.0));
};

class Cosine {
 public:
  using Options = CosineOptions;
  static constexpr const char* name = "Cosine";
  static constexpr bool stateless = true;

  explicit Cosine(const Options& o = {}) : o_(o) {}

  void setup(const ScheduleSetup& ss) {
    const double m = o_.min_scale();
    frost::detail::require(std::isfinite(m) && m >= 0.0 && m <= 1.0, "schedule.min_scale is ", m,
                           "; it must be in [0, 1] (a fraction of the base learning rate)");
    frost::detail::require(ss.total_steps > 0, "Cosine needs controller.total_steps (the number "
                           "of training steps, warm-up included); it is ", ss.total_steps);
    frost::detail::require(ss.warmup_steps >= 0, "controller.warmup_steps is ", ss.warmup_steps,
                           "; it must be 0 or more");
    frost::detail::require(ss.warmup_steps < ss.total_steps, "controller.warmup_steps (",
                           ss.warmup_steps, ") must be less than controller.total_steps (",
                           ss.total_steps, ") for Cosine");
    W_ = ss.warmup_steps;
    T_ = ss.total_steps - ss.warmup_steps;
  }

  double lr_scale(std::int64_t step, std::int64_t /*block*/) const {
    if (step < W_) return static_cast<double>(step < 0 ? 0 : step) / static_cast<double>(W_);
    const double j = static_cast<double>(step - W_);
    const double m = o_.min_scale();
    if (j >= static_cast<double>(T_)) return m;
    const double c = 0.5 * (1.0 + std::cos(kPi * j / static_cast<double>(T_)));
    return m + (1.0 - m) * c;
  }
  bool frozen(std::int64_t, std::int64_t) const { return false; }
  const Options& options() const noexcept { return o_; }

 private:
  static constexpr double kPi = 3.14159265358979323846;
  Options o_;
  std::int64_t W_ = 0, T_ = 0;
};

}  // namespace frost::schedules
