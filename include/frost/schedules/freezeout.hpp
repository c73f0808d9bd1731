#pragma once
// schedules::FreezeOut<Spacing, Scaling> — FreezeOut's layer-wise cosine
// annealing (Brock et al. 2017; thesis §3.2, eq. 5 and 6), computed as the
// original FreezeOut code does:
//
//   u_i = t0 + (1 - t0) * i / B          blocks i = 0..B-1 from the input side
//   t_i = u_i (Linear) or u_i^3 (Cubic)  the head (frost::kHead) uses t = 1
//   s_i = 1 / t_i (Scaled, eq. 6) or 1 (Unscaled)
//   T = total_steps - warmup_steps,  j = step - warmup_steps
//   m_i(j) = 0.5 * s_i * (1 + cos(pi * j / (t_i * T)))   (eq. 5, as a multiplier of
//                                                          each group's base lr)
//   block i is frozen once j > t_i * T, and stays frozen (lr_scale 0)
//
// The original's `u_i` divides by the number of blocks B, not B - 1, so the last
// block's t is below 1 and only the head (which the original gives layer index
// B) anneals over the whole run; the head is never frozen by the schedule.
//
// Warm-up (thesis §3.4, Fig. 3): during step w < W the multiplier is s_i * w / W,
// a linear ramp to each block's own initial rate, meeting the cosine at j = 0.
//
// t0 defaults by spacing (t0 = 0 in the options means "the spacing's default"):
// 0.5 for Linear (FreezeOut's README, the ViTFreeze code, SmartFRZ's appendix),
// 0.8 for Cubic (the thesis). Controller::Options() fills it in, so describe()
// shows the value used.
//
// Where the ViTFreeze code differs from this (the original FreezeOut rule):
//  * it spaces u_i with a B - 1 divisor, u_i = t0 + (1 - t0) * i / (B - 1), so
//    its last block trains to the end of the run (t = 1); here, as in the
//    original, only the head does;
//  * its warm-up ramps every block to the *base* rate (multiplier w / W) and
//    applies the scaled rate s_i only from the end of the warm-up, so scaled
//    blocks jump at j = 0; here the ramp ends at s_i and meets the cosine.
// frost keeps the original rule, which the schedule tests check step by step.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "frost/concepts/schedule.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"
#include "frost/schedules/spacing.hpp"

namespace frost::schedules {

struct FreezeOutOptions {
  FROST_OPTIONS(
      /// Linear freezing time of the first block, as a fraction of the steps after
      /// warm-up; in (0, 1], or 0 for the spacing's default (0.5 Linear, 0.8 Cubic:
      /// with Cubic spacing the first block then freezes at 0.8^3 = 0.512). t0 = 1
      /// anneals every block over the whole run (no freezing before the end).
      (double, t0, 0.0));
};

}  // namespace frost::schedules

namespace frost::detail {

/// The arithmetic shared by FreezeOut, LayerWise and (through them) StageWise:
/// per-block freezing times t_i and initial multipliers s_i, warm-up and the
/// cosine of eq. 5. `spacing` maps u_i to t_i, `scaling` maps t_i to s_i.
class FreezeOutRule {
 public:
  template <class SpacingFn, class ScalingFn>
  void setup(const ScheduleSetup& ss, double t0, const char* who, SpacingFn spacing,
             ScalingFn scaling) {
    require(std::isfinite(t0) && t0 > 0.0 && t0 <= 1.0, "schedule.t0 is ", t0, "; ", who,
            " needs t0 in (0, 1] (the fraction of the post-warm-up steps after which the first "
            "block freezes), or 0 for the spacing's default (0.5 Linear, 0.8 Cubic)");
    require(ss.num_blocks > 0, who, " needs at least one block (num_blocks is ", ss.num_blocks,
            "); describe the model's blocks in the BlockMap");
    require(ss.total_steps > 0, who, " needs controller.total_steps (the number of training "
            "steps, warm-up included) to place the freezing times; it is ", ss.total_steps);
    require(ss.warmup_steps >= 0, "controller.warmup_steps is ", ss.warmup_steps,
            "; it must be 0 or more");
    require(ss.warmup_steps < ss.total_steps, "controller.warmup_steps (", ss.warmup_steps,
            ") must be less than controller.total_steps (", ss.total_steps, ") for ", who,
            ": the blocks anneal and freeze after the warm-up");
    B_ = ss.num_blocks;
    W_ = ss.warmup_steps;
    T_ = ss.total_steps - ss.warmup_steps;
    t_.resize(static_cast<std::size_t>(B_) + 1);
    s_.resize(t_.size());
    for (std::int64_t i = 0; i < B_; ++i) {
      // Same expression and evaluation order as the original code, so the
      // freezing step (a double comparison j > t_i * T) is the same.
      const double u = t0 + (1.0 - t0) * static_cast<double>(i) / static_cast<double>(B_);
      t_[static_cast<std::size_t>(i)] = spacing(u);
    }
    t_.back() = 1.0;  // the head: u = 1, and 1^3 = 1
    for (std::size_t i = 0; i < t_.size(); ++i) {
      s_[i] = scaling(t_[i]);
      require(std::isfinite(s_[i]) && s_[i] >= 0.0, who, ": the learning-rate multiplier of block ",
              i, " is ", s_[i], " (t = ", t_[i], "); check the schedule's options");
    }
    ready_ = true;
  }

  double lr_scale(std::int64_t step, std::int64_t block) const {
    const std::size_t k = index(block);
    const double s = s_[k];
    if (step < W_) return s * static_cast<double>(step < 0 ? 0 : step) / static_cast<double>(W_);
    const double j = static_cast<double>(step - W_);
    const double end = t_[k] * static_cast<double>(T_);
    if (j > end) return 0.0;  // frozen (a block) or past the end of the run (the head)
    const double m = 0.5 * s * (1.0 + std::cos(kPi * j / end));
    return m > 0.0 ? m : 0.0;  // cos(pi) + 1 may round a hair below 0
  }

  bool frozen(std::int64_t step, std::int64_t block) const {
    const std::size_t k = index(block);
    if (block == kHead || step < W_) return false;
    return static_cast<double>(step - W_) > t_[k] * static_cast<double>(T_);
  }

  double t(std::int64_t block) const { return t_[index(block)]; }
  double scale(std::int64_t block) const { return s_[index(block)]; }
  std::int64_t num_blocks() const noexcept { return B_; }
  bool ready() const noexcept { return ready_; }

 private:
  static constexpr double kPi = 3.14159265358979323846;

  std::size_t index(std::int64_t block) const {
    if (!ready_) fail("the schedule was used before setup(); the controller calls it for you");
    if (block == kHead) return static_cast<std::size_t>(B_);
    if (block < 0 || block >= B_)
      fail("schedule asked about block ", block, " but there are ", B_,
           " blocks (0..", B_ - 1, ", or frost::kHead for the head)");
    return static_cast<std::size_t>(block);
  }

  std::int64_t B_ = 0, W_ = 0, T_ = 0;
  std::vector<double> t_, s_;  // blocks 0..B-1, then the head
  bool ready_ = false;
};

/// What FreezeOut and LayerWise share: options, a FreezeOutRule (each sets it
/// up with its own scaling), and the Schedule members that read the rule.
template <class Options>
class FreezeOutFamily {
 public:
  static constexpr bool stateless = true;  // a pure function of the options and the setup
  double lr_scale(std::int64_t step, std::int64_t block) const { return rule_.lr_scale(step, block); }
  bool frozen(std::int64_t step, std::int64_t block) const { return rule_.frozen(step, block); }
  /// t_i: the fraction of the post-warm-up steps block `block` trains for (1 for kHead).
  double t(std::int64_t block) const { return rule_.t(block); }
  /// s_i: the block's initial multiplier.
  double scale(std::int64_t block) const { return rule_.scale(block); }
  const Options& options() const noexcept { return o_; }

 protected:
  explicit FreezeOutFamily(const Options& o) : o_(o) {}
  Options o_;
  FreezeOutRule rule_;
};

}  // namespace frost::detail

namespace frost::schedules {

template <class Spacing, class Scaling>
class FreezeOut : public frost::detail::FreezeOutFamily<FreezeOutOptions> {
  static_assert(is_spacing_v<Spacing>,
                "frost: FreezeOut's first parameter must be frost::Linear or frost::Cubic");
  static_assert(is_scaling_v<Scaling>,
                "frost: FreezeOut's second parameter must be frost::Scaled or frost::Unscaled");

 public:
  using Options = FreezeOutOptions;
  using spacing_type = Spacing;
  using scaling_type = Scaling;

  static std::string name() {
    return std::string("FreezeOut<") + Spacing::name + "," + Scaling::name + ">";
  }

  explicit FreezeOut(const Options& o = default_options()) : FreezeOutFamily(o) {}
  /// t0 by spacing (see the header comment).
  static Options default_options() { return Options().t0(Spacing::default_t0); }

  void setup(const ScheduleSetup& ss) {
    const double t0 = o_.t0() == 0.0 ? Spacing::default_t0 : o_.t0();
    rule_.setup(ss, t0, "FreezeOut", &Spacing::apply, &Scaling::apply);
  }
  // lr_scale, frozen, t (t_i), scale (s_i = 1/t_i or 1), options: FreezeOutFamily.
};

}  // namespace frost::schedules
