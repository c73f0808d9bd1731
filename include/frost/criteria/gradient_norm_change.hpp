#pragma once
// criteria::GradientNormChange — the gradient-norm test of AutoFreeze and of
// "Data-parallel freezing" (../shared/papers/data-parallel-freezing-gradient-
// norm-test.txt, §3.2, Eq. (1) and Algorithm 1).
//
// Over each evaluation interval of T steps the gradient of every active block
// is accumulated, Delta_{T,l} = sum over the interval of g_l. At the end of the
// interval each active block's norm n_l = ||Delta_{T,l}|| is taken (L1 summed
// over the block's parameters, as AutoFreeze's code does, or L2), and from the
// second evaluation on (Eq. (1))
//
//     eta_l = | n_{prev,l} - n_l | / n_{prev,l}
//
// the relative change of the block's accumulated-gradient norm. Blocks whose
// gradient has stopped changing are the ones that have stopped learning. The
// N-th percentile p of eta over the active blocks (numpy's default linear
// interpolation) is the bar; then, by `mode`:
//
//   sequential (default, AutoFreeze): scan the active blocks from the input
//       side; the leading ones with eta < p (strictly) freeze; the first one
//       with eta >= p (or whose eta could not be computed) ends the scan.
//   prefix_to_slowest (the paper's §1 and §5.2: "freeze up to the k-th
//       layer", "chose layers 2 and 8 at epochs 11, 41"): the active block with
//       the smallest eta (ties: the input-side one) and every active block
//       before it freeze in one decision. The percentile is not used.
//   slowest_if_first (one reading of Algorithm 1 as printed, whose loop body
//       freezes layer l when it "is the slowest changing layer" and the layers
//       in front of it are frozen): only the block with the smallest eta may
//       freeze, and only when it is the first active block; at most one block
//       per decision. (Called slowest_prefix before; that name still parses.)
//   any_order: every active block with eta < p freezes.
//
// Blocks in trial are not evaluated; a block that returns to training
// (a revert, or ctl.unfreeze) starts afresh: its next evaluation only records
// n_prev.
//
// Defaults: percentile 50 and L1 norms follow AutoFreeze's code;
// evals_per_epoch = 4 comes from SmartFRZ's appendix (the settings of its
// AutoFreeze baseline), not from AutoFreeze or the data-parallel paper, which
// evaluate once per interval of their own choosing. min_epochs = 1 is ours: no
// freeze during the first epoch. It needs controller.steps_per_epoch: without
// one an epoch has no length, and the guard is refused (set min_epochs(0)).
// AutoFreeze fine-tunes pre-trained models; trained from scratch, its test
// froze most of a ResNet's blocks within the first epoch, while every block
// still learns fast (issue 22: five of seven within 0.75 epoch; 4.3 of 7 on
// average in docs/from-scratch.md), at a cost in accuracy. min_epochs(0) is
// the paper's behaviour.
//
// Edge cases (our choices):
//  * One active block: p equals its own eta, so the strict rule freezes
//    nothing in sequential/any_order. We keep that: the percentile test ranks
//    blocks against each other and a lone block has nothing to be slow
//    relative to. More generally the block with the largest eta is never below
//    p, so these modes always leave at least one block training; end such runs
//    with stop::MaxSteps or stop::Patience, not stop::AllFrozen.
//    slowest_if_first and prefix_to_slowest freeze the last block too.
//  * Ties: a block whose eta equals p is not below it; if all etas are equal
//    nothing freezes in sequential/any_order.
//  * n_prev = 0, a non-finite norm, or a block that got no gradient during the
//    interval: never frozen on it. Decisions::warn is emitted and the block is
//    skipped: it does not count as "below" (so it ends a sequential scan) and
//    its eta is left out of the percentile. The current norm still becomes the
//    next evaluation's n_prev (no gradient: the block starts afresh).
//  * A block frozen mid-interval (by any policy): on_state_change drops its buffers
//    (the exact-mode copy of its gradients is freed) and it is not evaluated.
//  * Intervals of unequal length (steps_per_epoch not divisible by the number
//    of evaluations, or a block that skipped steps): n is divided by the
//    number of steps in which the block had a gradient. For equal intervals
//    this is a common factor and eta is exactly Eq. (1).
//
// accumulate:
//   exact: Delta is kept per parameter on the device (Delta + g every step,
//       staged until the step completes so that an abandoned step leaves no
//       trace); memory: one extra copy of the trainable block parameters,
//       and a second one between after_backward() and after_step().
//   cheap: only per-step block norms are summed, sum_t ||g_{l,t}||, no copy
//       of the parameters. For L1 (and L2) this is an upper bound of the exact
//       ||sum_t g_{l,t}|| by the triangle inequality, equal only when the
//       step gradients agree in sign (L1) / direction (L2); it measures how
//       much gradient flowed, not how much of it was consistent, so it reacts
//       less to gradients that cancel out near a minimum. eta is computed the
//       same way from it.
//
// Cost: per step, cheap takes the block norms of the step's gradients (block_
// gradients.hpp: a fixed handful of ops whatever the number of tensors; one
// fused _foreach_norm on CUDA) and adds them up; exact issues one out-of-place
// _foreach_add (one fused kernel on CUDA, one vectorised add per tensor on
// the CPU) and takes the norms only at the end of an interval. So on the
// CPU exact is the faster per step on small models (one pass over the
// values against cheap's three; tiny ViT 47 against 59 us) and cheap on deep
// ones (its call count does not grow with the tensors; 48 blocks: 440 against
// 515 us), and cheap's decision points are 2-2.6x cheaper (docs/benchmarks.md):
// choose cheap for memory, not for the per-step time of a small model. Neither
// synchronises; at the end of an interval statistics() hands the [num_blocks]
// norms to the controller, which reads them once (through the reducer) and
// passes them to decide(). Accumulators are float32 whatever the gradients'
// dtype (block_gradients.hpp).
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

/// Which blocks a gradient-norm test freezes (see the header comment).
enum class FreezeMode { sequential, prefix_to_slowest, slowest_if_first, any_order };
inline const char* to_string(FreezeMode m) {
  switch (m) {
    case FreezeMode::sequential: return "sequential";
    case FreezeMode::prefix_to_slowest: return "prefix_to_slowest";
    case FreezeMode::slowest_if_first: return "slowest_if_first";
    case FreezeMode::any_order: return "any_order";
  }
  return "?";
}
inline bool from_string(const std::string& s, FreezeMode& m) {
  if (s == "sequential") return (m = FreezeMode::sequential), true;
  if (s == "prefix_to_slowest") return (m = FreezeMode::prefix_to_slowest), true;
  if (s == "slowest_if_first" || s == "slowest_prefix")  // the milestone-1 name
    return (m = FreezeMode::slowest_if_first), true;
  if (s == "any_order") return (m = FreezeMode::any_order), true;
  return false;
}

/// How the interval's gradient is accumulated (see the header comment).
enum class Accumulate { exact, cheap };
inline const char* to_string(Accumulate a) { return a == Accumulate::exact ? "exact" : "cheap"; }
inline bool from_string(const std::string& s, Accumulate& a) {
  if (s == "exact") return (a = Accumulate::exact), true;
  if (s == "cheap") return (a = Accumulate::cheap), true;
  return false;
}

struct GradientNormChangeOptions {
  FROST_OPTIONS(
      /// N: the percentile of eta over the active blocks that is the bar (AutoFreeze: 50).
      (double, percentile, 50.0),
      /// Evaluations per epoch (4: SmartFRZ's appendix, for its AutoFreeze baseline);
      /// needs controller.steps_per_epoch, and at most one per step.
      (std::int64_t, evals_per_epoch, 4),
      /// T in steps; 0 = use evals_per_epoch.
      (std::int64_t, interval, 0),
      (FreezeMode, mode, FreezeMode::sequential),
      (GradNorm, norm, GradNorm::l1),
      (Accumulate, accumulate, Accumulate::exact),
      /// No freeze before this many epochs have run (needs controller.steps_per_epoch:
      /// above 0 without it, the controller refuses to start). Evaluations before still record each
      /// block's norm, so the first decision after the guard has an eta to judge.
      /// 1 (frost's guard): trained from scratch, AutoFreeze's test froze most of a
      /// ResNet within the first epoch at a cost in accuracy (docs/from-scratch.md).
      /// 0: AutoFreeze's own behaviour, decisions from the second evaluation on.
      (double, min_epochs, 1.0));
};

class GradientNormChange {
 public:
  using Options = GradientNormChangeOptions;
  static constexpr const char* name = "GradientNormChange";
  static constexpr bool uses_gradients = true;

  explicit GradientNormChange(const Options& o = {}) : o_(o) {
    frost::detail::require(std::isfinite(o_.percentile()) && o_.percentile() >= 0.0 &&
                               o_.percentile() <= 100.0,
                           "criterion.percentile is ", o_.percentile(),
                           "; give a percentile in [0, 100] (AutoFreeze: 50)");
    frost::detail::require(o_.interval() >= 0, "criterion.interval is ", o_.interval(),
                           "; give the interval in steps, or 0 to use evals_per_epoch");
    frost::detail::require(std::isfinite(o_.min_epochs()) && o_.min_epochs() >= 0.0,
                           "criterion.min_epochs is ", o_.min_epochs(),
                           "; give 0 (decide from the second evaluation, as AutoFreeze) or more");
    frost::detail::require(o_.interval() > 0 || o_.evals_per_epoch() > 0,
                           "criterion.evals_per_epoch is ", o_.evals_per_epoch(),
                           "; give 1 or more evaluations per epoch, or an interval in steps");
  }

  /// numpy.percentile(x, q) with the default linear interpolation: sorted x,
  /// rank (n - 1) q / 100, interpolated between the neighbouring order
  /// statistics. NaN for an empty x.
  static double percentile(std::vector<double> x, double q) {
    if (x.empty()) return std::numeric_limits<double>::quiet_NaN();
    std::sort(x.begin(), x.end());
    const double rank = static_cast<double>(x.size() - 1) * q / 100.0;
    const auto lo = static_cast<std::size_t>(std::floor(rank));
    const auto hi = std::min(lo + 1, x.size() - 1);
    const double frac = rank - static_cast<double>(lo);
    return frac == 0.0 ? x[lo] : x[lo] + (x[hi] - x[lo]) * frac;
  }

  void setup(const CriterionSetup& s) {
    frost::detail::require(s.blocks != nullptr && !s.blocks->empty(), name, ": no blocks");
    spe_ = s.steps_per_epoch;
    frost::detail::require(o_.interval() > 0 || spe_ > 0,
                           "GradientNormChange evaluates ", o_.evals_per_epoch(),
                           " times per epoch by default but controller.steps_per_epoch is 0 "
                           "(unknown); set controller.steps_per_epoch or criterion.interval (in "
                           "steps)");
    frost::detail::require(o_.interval() > 0 || o_.evals_per_epoch() <= spe_,
                           "criterion.evals_per_epoch is ", o_.evals_per_epoch(),
                           " but an epoch has only ", spe_,
                           " steps (controller.steps_per_epoch); give at most one evaluation per "
                           "step, or criterion.interval in steps");
    frost::detail::require_epoch_length(name, o_.min_epochs(), spe_);
    bg_.setup(*s.blocks, name);
    const auto nb = static_cast<std::size_t>(bg_.num_blocks());
    had_grad_.assign(nb, 0);
    steps_.assign(nb, 0);
    last_steps_.assign(nb, 0);
    has_prev_.assign(nb, 0);
    prev_.assign(nb, 0.0);
    norm_.assign(nb, nan());
    eta_.assign(nb, nan());
    at::NoGradGuard ng;
    const auto opts = at::TensorOptions().dtype(at::kFloat).device(bg_.device());
    if (o_.accumulate() == Accumulate::exact) {
      acc_.clear();
      live_.assign(bg_.num_params(), 1);
      for (std::size_t i = 0; i < bg_.num_params(); ++i)
        acc_.push_back(at::zeros(bg_.param(i).sizes(), opts));
    } else {
      block_acc_ = at::zeros({bg_.num_blocks()}, opts);
    }
  }

  /// After backward: this step's gradients on the device, staged until the
  /// step completes (commit_step) or is abandoned (abort_step). Exact mode
  /// stages Delta + g out of place (one more accumulator's memory until the
  /// step's end; see detail::StagedGradients).
  void observe(const StepState& s) {
    at::NoGradGuard ng;
    auto list = bg_.grads(s, had_grad_, name);
    staged_.drop();
    staged_.pending = true;
    staged_.had = had_grad_;
    if (std::find(had_grad_.begin(), had_grad_.end(), 1) == had_grad_.end()) return;
    if (o_.accumulate() == Accumulate::exact) {
      std::vector<at::Tensor> acc, g;
      for (std::size_t i = 0; i < bg_.num_params(); ++i) {
        if (!live_[i] || !list[i].defined()) continue;  // defined: its block trains
        staged_.which.push_back(i);
        acc.push_back(acc_[i]);
        g.push_back(list[i]);
      }
      if (!acc.empty()) staged_.next = at::_foreach_add(acc, g);  // Delta + g (one fused kernel on CUDA)
    } else {
      staged_.block_sums = bg_.norms(list, o_.norm());
    }
  }
  /// The step completed (after optimizer.step()): its gradients join the interval.
  void commit_step(const StepState&) {
    staged_.commit(steps_, block_acc_.defined() ? &block_acc_ : nullptr, &acc_);
  }
  /// The step was abandoned: its gradients leave no trace.
  void abort_step(const StepState&) { staged_.drop(); }

  /// Whether min_epochs still holds decisions back at this step.
  bool held(const StepState& s) const {
    return frost::detail::held_by_min_epochs(s.step, o_.min_epochs(), spe_);
  }

  /// Whether `step` ends an evaluation interval.
  bool decision_point(const StepState& s) const { return decision_point(s.step); }
  bool decision_point(std::int64_t step) const {
    if (o_.interval() > 0) return (step + 1) % o_.interval() == 0;
    // evals_per_epoch points per epoch, the last at the epoch's end:
    // position k (1..spe) ends an interval when floor(k E / spe) increases.
    const std::int64_t k = step % spe_ + 1, E = o_.evals_per_epoch();
    return (k * E) / spe_ > ((k - 1) * E) / spe_;
  }

  /// The interval's accumulated-gradient norm per block ([num_blocks],
  /// float32, on the device); undefined when no block trains.
  at::Tensor statistics(const StepState& s) const {
    bool any = false;
    for (std::size_t b = 0; b < steps_.size(); ++b) any = any || BD::active(s, b);
    if (!any) return at::Tensor();
    at::NoGradGuard ng;
    if (o_.accumulate() == Accumulate::cheap) return block_acc_.clone();
    std::vector<at::Tensor> acc(bg_.num_params());  // the freed ones (undefined) count as 0
    for (std::size_t i = 0; i < bg_.num_params(); ++i)
      if (live_[i]) acc[i] = acc_[i];
    return bg_.norms(acc, o_.norm());
  }

  /// Eq. (1), the percentile and the mode, on the host values of statistics().
  void decide(const StepState& s, HostValues n, Decisions& out) {
    const auto nb = static_cast<std::size_t>(bg_.num_blocks());
    std::vector<std::size_t> active;
    for (std::size_t b = 0; b < nb; ++b)
      if (BD::active(s, b)) active.push_back(b);
    if (active.empty() || n.empty()) return reset();
    frost::detail::require(n.size() == nb, name, ": got ", n.size(), " statistics for ", nb,
                           " blocks");
    ++evaluations_;
    reset();

    // Eq. (1) for every active block; `valid` marks those with a usable eta.
    std::vector<char> valid(nb, 0);
    std::vector<double> finite_etas;
    for (std::size_t b : active)
      if (judge(b, n[b], out)) {
        valid[b] = 1;
        finite_etas.push_back(eta_[b]);
      }
    bar_ = percentile(finite_etas, o_.percentile());
    if (finite_etas.empty() || held(s)) return;
    freeze_by_mode(active, valid, out);
  }

 private:
  /// Eq. (1) for the active block `b`, whose gradient norm summed over the
  /// interval's last_steps_[b] steps is `sum`: eta = |n_prev - n| / n_prev.
  /// False (with a warning, or silently at its first evaluation) when the
  /// block has no usable eta this time.
  bool judge(std::size_t b, double sum, Decisions& out) {
    const auto blk = static_cast<std::int64_t>(b);
    eta_[b] = nan();
    if (last_steps_[b] == 0) {
      norm_[b] = nan();
      has_prev_[b] = 0;
      out.warn(blk, nan(), "no gradient during the interval (unused parameters?); not judged");
      return false;
    }
    const double cur = sum / static_cast<double>(last_steps_[b]);
    norm_[b] = cur;
    const bool had_prev = has_prev_[b] != 0;
    const double prev = prev_[b];
    prev_[b] = cur;
    has_prev_[b] = 1;
    if (!had_prev) return false;  // first evaluation of this block: nothing to compare with
    if (!std::isfinite(cur) || !std::isfinite(prev)) {
      out.warn(blk, std::isfinite(cur) ? prev : cur,
               std::isfinite(cur)
                   ? "the previous interval's gradient norm was not finite; eta not computed, "
                     "block not judged (judged again from the next interval)"
                   : "gradient norm is not finite; eta not computed, block not judged");
      return false;
    }
    if (prev == 0.0) {
      out.warn(blk, 0.0, "previous gradient norm is 0; eta undefined, block not judged");
      return false;
    }
    eta_[b] = std::abs(prev - cur) / prev;
    return true;
  }

  /// Asks to freeze block `b` on its own eta, saying `why`.
  void ask(std::size_t b, const std::string& why, Decisions& out) const {
    std::ostringstream d;
    d << "eta " << eta_[b] << " " << why << " (" << to_string(o_.mode()) << ", p"
      << o_.percentile() << " = " << bar_ << ", norm " << norm_[b] << ")";
    out.freeze(static_cast<std::int64_t>(b), eta_[b], d.str());
  }

  /// The mode's rule (see the header comment) over the `active` blocks, the
  /// `valid` ones with their eta against the bar p.
  void freeze_by_mode(const std::vector<std::size_t>& active, const std::vector<char>& valid,
                      Decisions& out) const {
    const std::size_t nb = valid.size();
    std::size_t slowest = nb;  // the valid block with the smallest eta (ties: input side)
    for (std::size_t b : active)
      if (valid[b] && (slowest == nb || eta_[b] < eta_[slowest])) slowest = b;
    switch (o_.mode()) {
      case FreezeMode::sequential:
        for (std::size_t b : active) {
          if (!valid[b] || !(eta_[b] < bar_)) break;  // the first block not below ends the scan
          ask(b, "< percentile", out);
        }
        break;
      case FreezeMode::any_order:
        for (std::size_t b : active)
          if (valid[b] && eta_[b] < bar_) ask(b, "< percentile", out);
        break;
      case FreezeMode::prefix_to_slowest:
        for (std::size_t b : active) {
          if (b > slowest) break;
          if (b == slowest) {
            ask(b, "is the smallest", out);
          } else {
            // Frozen with the slowest block: its own eta may be NaN (not
            // judged this time), so the statistic is the slowest block's.
            std::ostringstream d;
            d << "before the slowest block " << slowest << " (eta " << eta_[slowest]
              << ", prefix_to_slowest; own eta " << eta_[b] << ")";
            out.freeze(static_cast<std::int64_t>(b), eta_[slowest], d.str());
          }
        }
        break;
      case FreezeMode::slowest_if_first:
        if (slowest == active.front())
          ask(slowest, "is the smallest and every block before it is frozen", out);
        break;
    }
  }

 public:
  /// A block that leaves training drops its accumulator (exact mode frees its
  /// copy of the gradients); one that comes back starts afresh.
  void on_state_change(std::int64_t block, BlockState, BlockState to) {
    if (block < 0 || static_cast<std::size_t>(block) >= steps_.size()) return;
    const auto b = static_cast<std::size_t>(block);
    staged_.forget_block(b, bg_);
    has_prev_[b] = 0;
    steps_[b] = 0;
    at::NoGradGuard ng;
    if (o_.accumulate() == Accumulate::exact) {
      for (std::size_t i = 0; i < bg_.num_params(); ++i) {
        if (static_cast<std::size_t>(bg_.block_of(i)) != b) continue;
        if (meaning(to).trains) {
          acc_[i] = at::zeros(bg_.param(i).sizes(),
                              at::TensorOptions().dtype(at::kFloat).device(bg_.device()));
          live_[i] = 1;
        } else {
          acc_[i] = at::Tensor();  // freed
          live_[i] = 0;
        }
      }
    } else {
      block_acc_.select(0, block).zero_();
    }
  }

  // --- checkpointing (frost::save / frost::load) ----------------------------
 private:
  // The state, listed once for save() and load() (frost/state_fields.hpp);
  // before them: their deduced return type must be known where they are used.
  FROST_STATE(evaluations, steps, last_steps, has_prev, prev, norm, eta, bar)

 public:
  /// The interval's accumulators, counters and previous norms, so a resumed run
  /// decides as an uninterrupted one would (loaded into a freshly set-up criterion).
  /// (The members FROST_STATE lists below, plus the accumulators of the
  /// accumulate mode; load runs on a fresh copy.)
  void save(torch::serialize::OutputArchive& ar) const {
    frost::save_fields(ar, state_fields());
    if (o_.accumulate() == Accumulate::exact) {
      for (std::size_t i = 0; i < bg_.num_params(); ++i)
        if (live_[i]) ar.write("acc." + std::to_string(i), acc_[i], /*is_buffer=*/true);
      ar.write("acc_live", c10::IValue(std::vector<std::int64_t>(live_.begin(), live_.end())));
    } else {
      ar.write("block_acc", block_acc_, /*is_buffer=*/true);
    }
  }
  void load(torch::serialize::InputArchive& ar) {
    const auto nb = steps_.size();
    frost::load_fields(ar, state_fields());
    for (std::size_t size : {steps_.size(), last_steps_.size(), has_prev_.size(), prev_.size(),
                             norm_.size(), eta_.size()})
      frost::detail::require(size == nb, name, ": the state is for ", size,
                             " blocks, this block map has ", nb);
    at::NoGradGuard ng;
    const auto opts = at::TensorOptions().dtype(at::kFloat).device(bg_.device());
    if (o_.accumulate() == Accumulate::exact) {
      const auto live = frost::detail::read_value(ar, "acc_live").toIntVector();
      frost::detail::require(live.size() == bg_.num_params(), name, ": the state is for ",
                             live.size(), " parameters, this block map has ", bg_.num_params());
      live_.assign(live.begin(), live.end());
      acc_.assign(bg_.num_params(), at::Tensor());  // freed where not live
      for (std::size_t i = 0; i < bg_.num_params(); ++i) {
        if (!live_[i]) continue;
        at::Tensor t;
        ar.read("acc." + std::to_string(i), t, /*is_buffer=*/true);
        frost::detail::require(t.sizes() == bg_.param(i).sizes(), name, ": accumulator ", i,
                               " has shape ", t.sizes(), ", its parameter ", bg_.param(i).sizes());
        acc_[i] = t.to(opts).clone();
      }
    } else {
      ar.read("block_acc", block_acc_, /*is_buffer=*/true);
      frost::detail::require(block_acc_.numel() == static_cast<std::int64_t>(nb), name,
                             ": the state is for ", block_acc_.numel(),
                             " blocks, this block map has ", nb);
      block_acc_ = block_acc_.to(opts).reshape({static_cast<std::int64_t>(nb)}).clone();
    }
  }

  // --- inspection -----------------------------------------------------------
  /// Interval length in steps when fixed (0: evals_per_epoch within each epoch).
  std::int64_t interval() const noexcept { return o_.interval(); }
  /// Per block, from the last evaluation: the normalised accumulated-gradient
  /// norm, eta (NaN: not computed) and the percentile used.
  const std::vector<double>& norms() const noexcept { return norm_; }
  const std::vector<double>& etas() const noexcept { return eta_; }
  double bar() const noexcept { return bar_; }
  std::int64_t evaluations() const noexcept { return evaluations_; }
  /// Bytes of device memory held for accumulation (exact: a float32 copy of
  /// the training blocks' parameters; cheap: one float per block).
  std::int64_t buffer_bytes() const {
    std::int64_t n = 0;
    if (o_.accumulate() == Accumulate::exact) {
      for (std::size_t i = 0; i < bg_.num_params(); ++i)
        if (live_[i]) n += acc_[i].numel() * static_cast<std::int64_t>(acc_[i].element_size());
    } else if (block_acc_.defined()) {
      n = block_acc_.numel() * static_cast<std::int64_t>(block_acc_.element_size());
    }
    return n;
  }

 private:
  using BD = frost::detail::BlockGradients;
  static double nan() { return std::numeric_limits<double>::quiet_NaN(); }

  void reset() {
    at::NoGradGuard ng;
    if (o_.accumulate() == Accumulate::exact) {
      std::vector<at::Tensor> live;
      for (std::size_t i = 0; i < bg_.num_params(); ++i)
        if (live_[i]) live.push_back(acc_[i]);
      if (!live.empty()) at::_foreach_zero_(live);
    } else {
      block_acc_.zero_();
    }
    last_steps_ = steps_;
    std::fill(steps_.begin(), steps_.end(), 0);
  }

  Options o_;
  BD bg_;
  std::int64_t spe_ = 0;
  std::int64_t evaluations_ = 0;
  std::vector<at::Tensor> acc_;        // exact: Delta per parameter, float32 (undefined: freed)
  std::vector<char> live_;             // exact: per parameter, acc_ holds a real buffer
  at::Tensor block_acc_;               // cheap: sum of per-step block norms
  std::vector<char> had_grad_;
  frost::detail::StagedGradients staged_;  // this step's gradients until the step ends
  std::vector<std::int64_t> steps_;       // per block: steps with a gradient, this interval
  std::vector<std::int64_t> last_steps_;  // the same for the interval just evaluated
  std::vector<char> has_prev_;
  std::vector<double> prev_, norm_, eta_;
  double bar_ = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace frost::criteria
