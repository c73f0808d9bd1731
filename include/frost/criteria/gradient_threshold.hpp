#pragma once
// criteria::GradientThreshold — DyF ("Dynamic Freezing", see
// ../shared/papers/dyf-gradient-threshold-freezing.txt, Algorithm 1 and §4):
// every active block's average gradient is compared with a threshold once per
// evaluation window (an epoch in the paper); a block whose average has fallen
// to the threshold is frozen. Paired with stop::AllFrozen ("until all the
// blocks are frozen") this is DyF.
//
//   average_b = (1 / steps_b) * sum over the window's steps t of
//                 ( sum over the block's params p of sum |g_{p,t}| ) / numel_b
//   freeze b  when  average_b <= threshold_b
//
// i.e. the mean absolute gradient entry of the block, averaged over the steps
// of the window in which the block received a gradient (steps_b). The paper
// used threshold = 0.001 (§4, "I set the threshold as 0.001 through some
// tests").
//
// NOTE: Algorithm 1 as printed reads "if average gradient > threshold then
// i-th block = frozen". That is the wrong way round: the paper's intent (and
// its results, where blocks freeze as fine-tuning converges) is to freeze a
// block whose gradient has become *small*. We freeze when average <= threshold.
//
// Beyond the paper (its §6 asks for an automatic threshold): with
// `relative(r)`, r in (0, 1), each block gets its own threshold
// r * (its average over the first window in which it had a gradient), so a
// block freezes once its gradient has shrunk to r of where it started, with no
// hand-tuned absolute value. `relative(0)` (the default) uses `threshold`.
//
// Cost: observe() computes the per-block sums of |g| on the device every step
// with a fixed handful of ops (block_gradients.hpp: on the CPU a cat, abs_ and
// sum per group of same-shaped tensors, on CUDA one fused _foreach_norm; then
// index_select + sum + add_), no host synchronisation; at the end of each
// window statistics() hands the [num_blocks] sums to the controller, which
// reads them once (through the reducer) and passes the host values to decide().
//
// DyF's own run (its Table 2) trains one more epoch with only the head after
// the last block froze: stop::AllFrozenOptions().extra_epochs(1).
#include <ATen/ATen.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "frost/concepts/criterion.hpp"
#include "frost/criteria/block_gradients.hpp"
#include "frost/detail/archive.hpp"
#include "frost/error.hpp"
#include "frost/host.hpp"
#include "frost/options.hpp"
#include "frost/state_fields.hpp"

namespace frost::criteria {

/// What a relative threshold is relative to.
enum class Reference {
  first,  ///< the block's first judged window (the gradient "where it started")
  peak,   ///< the largest window average seen so far: robust when gradients first
          ///< grow (a classifier head trained from zero feeds the body little
          ///< gradient at first), at the price of never freezing on the first window
};
inline const char* to_string(Reference r) { return r == Reference::first ? "first" : "peak"; }
inline bool from_string(const std::string& s, Reference& r) {
  if (s == "first") return (r = Reference::first), true;
  if (s == "peak") return (r = Reference::peak), true;
  return false;
}

struct GradientThresholdOptions {
  FROST_OPTIONS(
      /// Freeze a block when its window-average mean |grad| is <= this (DyF: 0.001).
      (double, threshold, 0.001),
      /// Evaluation window in steps; 0 = one epoch (needs controller.steps_per_epoch).
      (std::int64_t, window, 0),
      /// 0 = off; r in (0, 1): per-block threshold r * the block's first-window average.
      (double, relative, 0.0),
      /// With `relative`: the block's first-window average (default) or its peak.
      (Reference, reference, Reference::first),
      /// No freeze before this many epochs have run (needs controller.steps_per_epoch:
      /// above 0 without it, the controller refuses to start); windows before still set the relative
      /// threshold's reference. 0: DyF's behaviour. See docs/from-scratch.md.
      (double, min_epochs, 0.0));
};

class GradientThreshold {
 public:
  using Options = GradientThresholdOptions;
  static constexpr const char* name = "GradientThreshold";
  static constexpr bool uses_gradients = true;

  explicit GradientThreshold(const Options& o = {}) : o_(o) {
    detail::require(std::isfinite(o_.threshold()) && o_.threshold() >= 0.0,
                    "criterion.threshold is ", o_.threshold(),
                    "; give a finite mean |grad| of 0 or more (DyF used 0.001)");
    detail::require(o_.window() >= 0, "criterion.window is ", o_.window(),
                    "; give a window in steps, or 0 for one epoch");
    detail::require(std::isfinite(o_.min_epochs()) && o_.min_epochs() >= 0.0,
                    "criterion.min_epochs is ", o_.min_epochs(),
                    "; give 0 (decide from the first window, as DyF) or more");
    detail::require(std::isfinite(o_.relative()) && o_.relative() >= 0.0 && o_.relative() < 1.0,
                    "criterion.relative is ", o_.relative(),
                    "; give 0 (off, use criterion.threshold) or a fraction in (0, 1) of each "
                    "block's first-window gradient");
  }

  void setup(const CriterionSetup& s) {
    detail::require(s.blocks != nullptr && !s.blocks->empty(), "GradientThreshold: no blocks");
    window_ = o_.window() > 0 ? o_.window() : s.steps_per_epoch;
    spe_ = s.steps_per_epoch;
    detail::require(window_ > 0,
                    "GradientThreshold evaluates once per epoch by default but "
                    "controller.steps_per_epoch is 0 (unknown); set controller.steps_per_epoch "
                    "or criterion.window (in steps)");
    frost::detail::require_epoch_length(name, o_.min_epochs(), spe_);
    bg_.setup(*s.blocks, name);
    const auto nb = static_cast<std::size_t>(bg_.num_blocks());
    had_grad_.assign(nb, 0);
    steps_.assign(nb, 0);
    reference_.assign(nb, std::numeric_limits<double>::quiet_NaN());
    average_.assign(nb, std::numeric_limits<double>::quiet_NaN());
    at::NoGradGuard ng;
    acc_ = at::zeros({bg_.num_blocks()}, at::TensorOptions().dtype(at::kFloat).device(bg_.device()));
  }

  /// After backward: each training block's sum |g| on the device, staged
  /// until the step completes (commit_step) or is abandoned (abort_step).
  void observe(const StepState& s) {
    at::NoGradGuard ng;
    auto list = bg_.grads(s, had_grad_, name);
    staged_.drop();
    staged_.pending = true;
    staged_.had = had_grad_;
    if (std::find(had_grad_.begin(), had_grad_.end(), 1) != had_grad_.end())
      staged_.block_sums = bg_.norms(list, GradNorm::l1);
  }
  /// The step completed (after optimizer.step()): its sums join the window.
  void commit_step(const StepState&) { staged_.commit(steps_, &acc_, nullptr); }
  /// The step was abandoned: its gradients leave no trace.
  void abort_step(const StepState&) { staged_.drop(); }

  /// The end of every window.
  bool decision_point(const StepState& s) const { return (s.step + 1) % window_ == 0; }

  /// The window's sums of |g| per block ([num_blocks], float32, on the device);
  /// undefined when no block trains (nothing to judge, nothing to read).
  at::Tensor statistics(const StepState& s) const {
    // A copy: a reducer may all-reduce in place, the accumulator is ours.
    for (std::size_t b = 0; b < steps_.size(); ++b)
      if (BD::active(s, b)) return acc_.clone();
    return at::Tensor();
  }

  /// The threshold test on the host values of statistics().
  void decide(const StepState& s, HostValues sums, Decisions& out) {
    ++evaluations_;
    if (sums.empty()) return reset();
    detail::require(sums.size() == steps_.size(), name, ": got ", sums.size(),
                    " statistics for ", steps_.size(), " blocks");
    for (std::size_t b = 0; b < steps_.size(); ++b) {
      average_[b] = std::numeric_limits<double>::quiet_NaN();
      if (!BD::active(s, b)) continue;
      const auto blk = static_cast<std::int64_t>(b);
      if (steps_[b] == 0) {
        out.warn(blk, std::numeric_limits<double>::quiet_NaN(),
                 "no gradient during the window (unused parameters?); not judged");
        continue;
      }
      const double avg = sums[b] / bg_.numel(b) / static_cast<double>(steps_[b]);
      average_[b] = avg;
      if (!std::isfinite(avg)) {
        out.warn(blk, avg, "mean |grad| over the window is not finite; not judged");
        continue;
      }
      double thr = o_.threshold();
      if (o_.relative() > 0.0) {
        if (std::isnan(reference_[b]) ||
            (o_.reference() == Reference::peak && avg > reference_[b]))
          reference_[b] = avg;  // the first judged window, or the peak so far
        thr = o_.relative() * reference_[b];
      }
      if (avg <= thr && !held(s)) {  // DyF: freeze when the gradient is small (see the note above)
        std::ostringstream d;
        d << "mean |grad| " << avg << " <= threshold " << thr << " over " << steps_[b]
          << " steps";
        out.freeze(blk, avg, d.str());
      }
    }
    reset();
  }

  /// A block back in training starts a fresh window (its partial sums from
  /// before it left are dropped); its reference is kept.
  void on_state_change(std::int64_t block, BlockState, BlockState to) {
    if (block < 0 || static_cast<std::size_t>(block) >= steps_.size()) return;
    staged_.forget_block(static_cast<std::size_t>(block), bg_);
    if (!meaning(to).trains) return;
    steps_[static_cast<std::size_t>(block)] = 0;
    at::NoGradGuard ng;
    acc_.select(0, block).zero_();
  }

  // --- checkpointing (frost::save / frost::load) ----------------------------
 private:
  // The state, listed once for save() and load() (frost/state_fields.hpp);
  // before them: their deduced return type must be known where they are used.
  FROST_STATE(evaluations, acc, steps, reference, average)

 public:
  /// The window's accumulator and counters, so a resumed run decides as an
  /// uninterrupted one would (loaded into a freshly set-up criterion).
  /// (The members FROST_STATE lists below; load runs on a fresh copy.)
  void save(torch::serialize::OutputArchive& ar) const { frost::save_fields(ar, state_fields()); }
  void load(torch::serialize::InputArchive& ar) {
    const auto nb = steps_.size();
    frost::load_fields(ar, state_fields());
    detail::require(acc_.numel() == static_cast<std::int64_t>(nb) && steps_.size() == nb &&
                        reference_.size() == nb && average_.size() == nb,
                    name, ": the state is for ", steps_.size(), " blocks, this block map has ", nb);
    for (auto n : steps_) detail::require(n >= 0, name, ": a negative step count");
    at::NoGradGuard ng;
    acc_ = acc_.to(bg_.device(), at::kFloat).reshape({static_cast<std::int64_t>(nb)}).clone();
  }

  // --- inspection -----------------------------------------------------------
  std::int64_t window() const noexcept { return window_; }
  /// Per block: the window average of the last evaluation (NaN: not judged).
  const std::vector<double>& averages() const noexcept { return average_; }
  /// Per block: the first-window reference of the relative threshold (NaN: none yet).
  const std::vector<double>& references() const noexcept { return reference_; }
  std::int64_t evaluations() const noexcept { return evaluations_; }

 private:
  using BD = detail::BlockGradients;

  /// Whether min_epochs still holds decisions back at this step.
  bool held(const StepState& s) const {
    return frost::detail::held_by_min_epochs(s.step, o_.min_epochs(), spe_);
  }

  void reset() {
    at::NoGradGuard ng;
    acc_.zero_();
    std::fill(steps_.begin(), steps_.end(), 0);
  }

  Options o_;
  BD bg_;
  std::int64_t window_ = 0;
  std::int64_t spe_ = 0;  // controller.steps_per_epoch (0: unknown)
  std::int64_t evaluations_ = 0;
  at::Tensor acc_;                   // [num_blocks] sum over the window of sum |g|
  std::vector<char> had_grad_;       // scratch: this step
  detail::StagedGradients staged_;   // this step's sums until the step ends
  std::vector<std::int64_t> steps_;  // per block: steps with a gradient in this window
  std::vector<double> reference_;
  std::vector<double> average_;
};

}  // namespace frost::criteria
