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
//   slowest_prefix (the paper's Algorithm 1): only the block with the smallest
//       eta (ties: the input-side one) may freeze, and only if every block
//       before it is already frozen, i.e. it is the first active block. The
//       percentile is not used, as in Algorithm 1.
//   any_order: every active block with eta < p freezes.
//
// Frozen blocks never come back.
//
// Edge cases (our choices):
//  * One active block: p equals its own eta, so the strict rule freezes
//    nothing in sequential/any_order. We keep that: the percentile test ranks
//    blocks against each other and a lone block has nothing to be slow
//    relative to. More generally the block with the largest eta is never below
//    p, so these modes always leave at least one block training; end such runs
//    with stop::MaxSteps or stop::Patience, not stop::AllFrozen.
//    slowest_prefix follows Algorithm 1 literally and freezes the last block
//    too (one block per interval).
//  * Ties: a block whose eta equals p is not below it; if all etas are equal
//    nothing freezes in sequential/any_order.
//  * n_prev = 0, a non-finite norm, or a block that got no gradient during the
//    interval: never frozen on it. Decisions::warn is emitted and the block is
//    skipped: it does not count as "below" (so it ends a sequential scan) and
//    its eta is left out of the percentile. The current norm still becomes the
//    next evaluation's n_prev (no gradient: the block starts afresh).
//  * A block frozen mid-interval (by any policy): on_frozen drops its buffers
//    (the exact-mode copy of its gradients is freed) and it is not evaluated.
//  * Intervals of unequal length (steps_per_epoch not divisible by the number
//    of evaluations, or a block that skipped steps): n is divided by the
//    number of steps in which the block had a gradient. For equal intervals
//    this is a common factor and eta is exactly Eq. (1).
//
// accumulate:
//   exact: Delta is kept per parameter on the device (_foreach_add_ every
//       step); memory: one extra copy of the trainable block parameters.
//   cheap: only per-step block norms are summed, sum_t ||g_{l,t}||, no copy
//       of the parameters. For L1 (and L2) this is an upper bound of the exact
//       ||sum_t g_{l,t}|| by the triangle inequality, equal only when the
//       step gradients agree in sign (L1) / direction (L2); it measures how
//       much gradient flowed, not how much of it was consistent, so it reacts
//       less to gradients that cancel out near a minimum. eta is computed the
//       same way from it.
//
// Cost: observe() issues _foreach_norm (cheap) or _foreach_add_ (exact) plus a
// few small kernels per step, never synchronises; decide() reads one
// [num_blocks] tensor through frost::host::read at the end of an interval and
// returns at once otherwise.
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

namespace frost::criteria {

/// Which blocks a gradient-norm test freezes (see the header comment).
enum class FreezeMode { sequential, slowest_prefix, any_order };
inline const char* to_string(FreezeMode m) {
  switch (m) {
    case FreezeMode::sequential: return "sequential";
    case FreezeMode::slowest_prefix: return "slowest_prefix";
    case FreezeMode::any_order: return "any_order";
  }
  return "?";
}
inline bool from_string(const std::string& s, FreezeMode& m) {
  if (s == "sequential") return (m = FreezeMode::sequential), true;
  if (s == "slowest_prefix") return (m = FreezeMode::slowest_prefix), true;
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
  /// N: the percentile of eta over the active blocks that is the bar (AutoFreeze: 50).
  FROST_ARG(double, percentile) = 50.0;
  /// Evaluations per epoch (AutoFreeze: 4); needs controller.steps_per_epoch.
  FROST_ARG(std::int64_t, evals_per_epoch) = 4;
  /// T in steps; 0 = use evals_per_epoch.
  FROST_ARG(std::int64_t, interval) = 0;
  FROST_ARG(FreezeMode, mode) = FreezeMode::sequential;
  FROST_ARG(GradNorm, norm) = GradNorm::l1;
  FROST_ARG(Accumulate, accumulate) = Accumulate::exact;
};

class GradientNormChange {
 public:
  using Options = GradientNormChangeOptions;
  static constexpr const char* name = "GradientNormChange";

  explicit GradientNormChange(const Options& o = {}) : o_(o) {
    frost::detail::require(std::isfinite(o_.percentile()) && o_.percentile() >= 0.0 &&
                               o_.percentile() <= 100.0,
                           "criterion.percentile is ", o_.percentile(),
                           "; give a percentile in [0, 100] (AutoFreeze: 50)");
    frost::detail::require(o_.interval() >= 0, "criterion.interval is ", o_.interval(),
                           "; give the interval in steps, or 0 to use evals_per_epoch");
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
    bg_.setup(*s.blocks, name);
    const auto nb = static_cast<std::size_t>(bg_.num_blocks());
    dropped_.assign(nb, 0);
    had_grad_.assign(nb, 0);
    steps_.assign(nb, 0);
    has_prev_.assign(nb, 0);
    prev_.assign(nb, 0.0);
    norm_.assign(nb, nan());
    eta_.assign(nb, nan());
    at::NoGradGuard ng;
    const auto opts = at::TensorOptions().dtype(at::kFloat).device(bg_.device());
    if (o_.accumulate() == Accumulate::exact) {
      acc_.clear();
      for (std::size_t i = 0; i < bg_.num_params(); ++i) acc_.push_back(at::zeros_like(bg_.param(i)));
      acc_.push_back(bg_.tail());
    } else {
      block_acc_ = at::zeros({bg_.num_blocks()}, opts);
    }
  }

  /// After backward: accumulates this step's gradients on the device.
  void observe(const StepState& s) {
    at::NoGradGuard ng;
    auto list = bg_.grads(s, dropped_, had_grad_, name);
    std::vector<at::Tensor> acc, g;
    for (std::size_t b = 0; b < had_grad_.size(); ++b) steps_[b] += had_grad_[b];
    if (o_.accumulate() == Accumulate::exact) {
      for (std::size_t i = 0; i < bg_.num_params(); ++i) {
        const auto b = static_cast<std::size_t>(bg_.block_of(i));
        // frozen without on_frozen (e.g. a restored checkpoint): free its copy too
        if (!BD::active(s, dropped_, b) && acc_[i].unsafeGetTensorImpl() != bg_.zero(i).unsafeGetTensorImpl())
          acc_[i] = bg_.zero(i);
        if (!had_grad_[static_cast<std::size_t>(bg_.block_of(i))]) continue;
        if (!bg_.param(i).grad().defined()) continue;
        acc.push_back(acc_[i]);
        g.push_back(list[i]);
      }
      if (!acc.empty()) at::_foreach_add_(acc, g);  // Delta += g, one fused kernel
    } else {
      bool any = false;
      for (char h : had_grad_) any = any || h;
      if (any) block_acc_.add_(bg_.per_block(at::_foreach_norm(list, ord()), o_.norm()));
    }
  }

  /// At the end of an interval: one host read, Eq. (1), the percentile and the mode.
  void decide(const StepState& s, Decisions& out) {
    if (!decision_point(s.step)) return;
    const auto nb = static_cast<std::size_t>(bg_.num_blocks());
    std::vector<std::size_t> active;
    for (std::size_t b = 0; b < nb; ++b)
      if (BD::active(s, dropped_, b)) active.push_back(b);
    if (active.empty()) return;
    ++evaluations_;
    at::Tensor blocks;
    {
      at::NoGradGuard ng;
      blocks = o_.accumulate() == Accumulate::exact
                   ? bg_.per_block(at::_foreach_norm(acc_, ord()), o_.norm())
                   : block_acc_;
    }
    const std::vector<double> n = host::read(blocks);  // the one synchronisation
    reset();

    // Eq. (1) for every active block; `valid` marks those with a usable eta.
    std::vector<char> valid(nb, 0);
    std::vector<double> finite_etas;
    for (std::size_t b : active) {
      const auto blk = static_cast<std::int64_t>(b);
      eta_[b] = nan();
      if (last_steps_[b] == 0) {
        norm_[b] = nan();
        has_prev_[b] = 0;
        out.warn(blk, nan(), "no gradient during the interval (unused parameters?); not judged");
        continue;
      }
      const double cur = n[b] / static_cast<double>(last_steps_[b]);
      norm_[b] = cur;
      const bool had_prev = has_prev_[b] != 0;
      const double prev = prev_[b];
      prev_[b] = cur;
      has_prev_[b] = 1;
      if (!had_prev) continue;  // first evaluation of this block: nothing to compare with
      if (!std::isfinite(cur) || !std::isfinite(prev)) {
        out.warn(blk, std::isfinite(cur) ? prev : cur,
                 "gradient norm is not finite; eta not computed, block not judged");
        continue;
      }
      if (prev == 0.0) {
        out.warn(blk, 0.0, "previous gradient norm is 0; eta undefined, block not judged");
        continue;
      }
      eta_[b] = std::abs(prev - cur) / prev;
      valid[b] = 1;
      finite_etas.push_back(eta_[b]);
    }
    bar_ = percentile(finite_etas, o_.percentile());
    if (finite_etas.empty()) return;

    auto ask = [&](std::size_t b, const char* why) {
      std::ostringstream d;
      d << "eta " << eta_[b] << " " << why << " (" << to_string(o_.mode()) << ", p"
        << o_.percentile() << " = " << bar_ << ", norm " << norm_[b] << ")";
      out.freeze(static_cast<std::int64_t>(b), eta_[b], d.str());
    };
    switch (o_.mode()) {
      case FreezeMode::sequential:
        for (std::size_t b : active) {
          if (!valid[b] || !(eta_[b] < bar_)) break;  // the first block not below ends the scan
          ask(b, "< percentile");
        }
        break;
      case FreezeMode::any_order:
        for (std::size_t b : active)
          if (valid[b] && eta_[b] < bar_) ask(b, "< percentile");
        break;
      case FreezeMode::slowest_prefix: {
        std::size_t best = nb;
        for (std::size_t b : active)
          if (valid[b] && (best == nb || eta_[b] < eta_[best])) best = b;
        // Algorithm 1: the slowest block, if all blocks before it are frozen.
        if (best == active.front()) ask(best, "is the smallest and every block before it is frozen");
        break;
      }
    }
  }

  void on_frozen(std::int64_t block) {
    if (block < 0 || static_cast<std::size_t>(block) >= dropped_.size()) return;
    const auto b = static_cast<std::size_t>(block);
    dropped_[b] = 1;
    has_prev_[b] = 0;
    if (o_.accumulate() == Accumulate::exact)
      for (std::size_t i = 0; i < bg_.num_params(); ++i)
        if (static_cast<std::size_t>(bg_.block_of(i)) == b) acc_[i] = bg_.zero(i);  // freed
  }

  // --- checkpointing (frost::save / frost::load) ----------------------------
  /// The interval's accumulators, counters and previous norms, so a resumed run
  /// decides as an uninterrupted one would (setup() must have run first).
  void save(torch::serialize::OutputArchive& ar) const {
    auto ints = [](const std::vector<char>& v) { return std::vector<std::int64_t>(v.begin(), v.end()); };
    ar.write("evaluations", c10::IValue(evaluations_));
    ar.write("dropped", c10::IValue(ints(dropped_)));
    ar.write("steps", c10::IValue(steps_));
    ar.write("last_steps", c10::IValue(last_steps_));
    ar.write("has_prev", c10::IValue(ints(has_prev_)));
    ar.write("prev", c10::IValue(prev_));
    ar.write("norm", c10::IValue(norm_));
    ar.write("eta", c10::IValue(eta_));
    ar.write("bar", c10::IValue(bar_));
    if (o_.accumulate() == Accumulate::exact) {
      std::vector<std::int64_t> live;
      for (std::size_t i = 0; i < bg_.num_params(); ++i) {
        const bool l = acc_[i].unsafeGetTensorImpl() != bg_.zero(i).unsafeGetTensorImpl();
        live.push_back(l);
        if (l) ar.write("acc." + std::to_string(i), acc_[i], /*is_buffer=*/true);
      }
      ar.write("acc_live", c10::IValue(live));
    } else {
      ar.write("block_acc", block_acc_, /*is_buffer=*/true);
    }
  }
  void load(torch::serialize::InputArchive& ar) {
    auto chars = [](const std::vector<std::int64_t>& v) { return std::vector<char>(v.begin(), v.end()); };
    evaluations_ = frost::detail::read_value(ar, "evaluations").toInt();
    const auto d = chars(frost::detail::read_value(ar, "dropped").toIntVector());
    frost::detail::require(d.size() == dropped_.size(), name,
                           ": the checkpoint was written for a different block map");
    dropped_ = d;
    steps_ = frost::detail::read_value(ar, "steps").toIntVector();
    last_steps_ = frost::detail::read_value(ar, "last_steps").toIntVector();
    has_prev_ = chars(frost::detail::read_value(ar, "has_prev").toIntVector());
    prev_ = frost::detail::read_value(ar, "prev").toDoubleVector();
    norm_ = frost::detail::read_value(ar, "norm").toDoubleVector();
    eta_ = frost::detail::read_value(ar, "eta").toDoubleVector();
    bar_ = frost::detail::read_value(ar, "bar").toDouble();
    at::NoGradGuard ng;
    if (o_.accumulate() == Accumulate::exact) {
      const auto live = frost::detail::read_value(ar, "acc_live").toIntVector();
      frost::detail::require(live.size() == bg_.num_params(), name,
                             ": the checkpoint was written for a different block map");
      for (std::size_t i = 0; i < bg_.num_params(); ++i) {
        if (live[i]) {
          at::Tensor t;
          ar.read("acc." + std::to_string(i), t, /*is_buffer=*/true);
          if (acc_[i].unsafeGetTensorImpl() == bg_.zero(i).unsafeGetTensorImpl())
            acc_[i] = at::zeros_like(bg_.param(i));
          acc_[i].copy_(t);
        } else {
          acc_[i] = bg_.zero(i);
        }
      }
    } else {
      at::Tensor t;
      ar.read("block_acc", t, /*is_buffer=*/true);
      block_acc_.copy_(t);
    }
  }

  // --- inspection -----------------------------------------------------------
  /// Interval length in steps when fixed (0: evals_per_epoch within each epoch).
  std::int64_t interval() const noexcept { return o_.interval(); }
  /// Whether `step` ends an evaluation interval.
  bool decision_point(std::int64_t step) const {
    if (o_.interval() > 0) return (step + 1) % o_.interval() == 0;
    // evals_per_epoch points per epoch, the last at the epoch's end:
    // position k (1..spe) ends an interval when floor(k E / spe) increases.
    const std::int64_t k = step % spe_ + 1, E = o_.evals_per_epoch();
    return (k * E) / spe_ > ((k - 1) * E) / spe_;
  }
  /// Per block, from the last evaluation: the normalised accumulated-gradient
  /// norm, eta (NaN: not computed) and the percentile used.
  const std::vector<double>& norms() const noexcept { return norm_; }
  const std::vector<double>& etas() const noexcept { return eta_; }
  double bar() const noexcept { return bar_; }
  std::int64_t evaluations() const noexcept { return evaluations_; }
  /// Bytes of device memory held for accumulation (exact: a copy of the
  /// active blocks' parameters; cheap: one float per block).
  std::int64_t buffer_bytes() const {
    std::int64_t n = 0;
    if (o_.accumulate() == Accumulate::exact) {
      for (std::size_t i = 0; i < bg_.num_params(); ++i)
        if (acc_[i].unsafeGetTensorImpl() != bg_.zero(i).unsafeGetTensorImpl())
          n += acc_[i].numel() * static_cast<std::int64_t>(acc_[i].element_size());
    } else if (block_acc_.defined()) {
      n = block_acc_.numel() * static_cast<std::int64_t>(block_acc_.element_size());
    }
    return n;
  }

 private:
  using BD = frost::detail::BlockGradients;
  static double nan() { return std::numeric_limits<double>::quiet_NaN(); }
  double ord() const { return o_.norm() == GradNorm::l1 ? 1.0 : 2.0; }

  void reset() {
    at::NoGradGuard ng;
    if (o_.accumulate() == Accumulate::exact) {
      std::vector<at::Tensor> live;
      for (std::size_t i = 0; i < bg_.num_params(); ++i)
        if (acc_[i].unsafeGetTensorImpl() != bg_.zero(i).unsafeGetTensorImpl()) live.push_back(acc_[i]);
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
  std::vector<at::Tensor> acc_;        // exact: Delta per parameter (+ the trailing zero)
  at::Tensor block_acc_;               // cheap: sum of per-step block norms
  std::vector<char> dropped_;
  std::vector<char> had_grad_;
  std::vector<std::int64_t> steps_;       // per block: steps with a gradient, this interval
  std::vector<std::int64_t> last_steps_;  // the same for the interval just evaluated
  std::vector<char> has_prev_;
  std::vector<double> prev_, norm_, eta_;
  double bar_ = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace frost::criteria

FROST_REFLECT(frost::criteria::GradientNormChangeOptions, percentile, evals_per_epoch, interval,
              mode, norm, accumulate);
