#pragma once
// examples/train/accounting.hpp — what a strategy's run cost, in two units
// that do not depend on each other:
//
//  * work: forward and backward block passes weighted by each block's share
//    of the model's multiply-adds (one FLOP-weighted unit for both sides of a
//    comparison), with the activation cache's catch-up passes counted and the
//    steps a stop rule did not run kept apart;
//  * time: the measured wall-clock time of everything the strategy caused
//    (its steps with the cache's fills and catch-ups and the criterion's
//    stages inside them, and the validation passes its decisions listen to),
//    next to the per-phase estimate (steps x median step time) that earlier
//    tables showed.
//
// Pure functions and plain structs, so that the tests can check the sums on
// constructed steps (tests/test_trainer.cpp) without a model.
#include <algorithm>
#include <cstdint>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace frost_train {

/// What a block costs, relative to the others: its forward multiply-adds per
/// sample. Backward is taken as two forwards when the block's weights get a
/// gradient (input and weight gradients) and one when only the input gradient
/// passes through it to a training block before it.
struct WorkModel {
  std::vector<double> forward;  ///< per block (BlockMap order): forward MACs per sample

  std::size_t blocks() const { return forward.size(); }
  double total_forward() const { return std::accumulate(forward.begin(), forward.end(), 0.0); }
  /// Forward cost of blocks [from, to).
  double forward_of(std::size_t from, std::size_t to) const {
    double s = 0;
    for (std::size_t b = from; b < std::min(to, forward.size()); ++b) s += forward[b];
    return s;
  }
  /// Full fine-tuning's work for one sample: forward plus a two-forward
  /// backward through every block.
  double full_per_sample() const { return 3.0 * total_forward(); }
};

/// One step as the accounting sees it.
struct StepShape {
  std::int64_t samples = 0;       ///< the batch
  std::int64_t cached_depth = 0;  ///< the frozen prefix the cache serves (k)
  std::int64_t cache_hits = 0;    ///< samples of the batch whose prefix came from the cache
  /// Per block: whether its weights got a gradient this step (training, not
  /// frozen and not in trial).
  std::vector<bool> trains;
};

/// Forward and backward work of one step, in WorkModel units x samples.
struct StepWork {
  double forward = 0;
  double backward = 0;
  double total() const { return forward + backward; }
};

/// The work of one step: every block runs forward except the cached prefix of
/// the samples the cache served; backward runs from the output down to the
/// first training block (2 forwards through a training block, 1 through a
/// block that only passes the gradient on).
inline StepWork step_work(const WorkModel& m, const StepShape& s) {
  if (s.trains.size() != m.blocks())
    throw std::invalid_argument("step_work: " + std::to_string(s.trains.size()) +
                                " training flags for " + std::to_string(m.blocks()) + " blocks");
  StepWork w;
  const auto k = static_cast<std::size_t>(std::max<std::int64_t>(0, s.cached_depth));
  w.forward = static_cast<double>(s.samples) * m.total_forward() -
              static_cast<double>(s.cache_hits) * m.forward_of(0, k);
  std::size_t first = m.blocks();  // the first block with a gradient
  for (std::size_t b = 0; b < m.blocks(); ++b)
    if (s.trains[b]) {
      first = b;
      break;
    }
  double per_sample = 0;
  for (std::size_t b = first; b < m.blocks(); ++b) per_sample += (s.trains[b] ? 2.0 : 1.0) * m.forward[b];
  w.backward = static_cast<double>(s.samples) * per_sample;
  return w;
}

/// The activation cache's catch-up: `samples` entries advanced from depth
/// `from` to `to` (a forward pass of those blocks each).
inline double catch_up_work(const WorkModel& m, std::int64_t samples, std::int64_t from,
                            std::int64_t to) {
  if (samples <= 0 || to <= from) return 0.0;
  return static_cast<double>(samples) *
         m.forward_of(static_cast<std::size_t>(std::max<std::int64_t>(0, from)),
                      static_cast<std::size_t>(to));
}

/// A run's bill: work and time, summed step by step.
struct RunBill {
  // work (WorkModel units x samples)
  double step_work = 0;       ///< the steps run: forward + backward
  double catch_up_work = 0;   ///< the cache's catch-up passes
  double full_work_run = 0;   ///< what full fine-tuning does in the same steps
  std::int64_t steps = 0;     ///< steps run
  // time (seconds, measured)
  double step_s = 0;          ///< steps (cache fills, catch-ups, criterion stages inside)
  double validation_s = 0;    ///< validation passes the strategy's decisions listen to
  double validation_untimed_s = 0;  ///< validation passes it does not need (pictures only)
  /// Per phase (steps that skip the same blocks): every step's time, for the
  /// estimate.
  std::map<std::int64_t, std::vector<double>> phase_times;

  /// Books one step.
  void add_step(const WorkModel& m, const StepShape& s, double seconds, std::int64_t phase,
                double catch_up = 0.0) {
    step_work += step_work_of(m, s);
    catch_up_work += catch_up;
    full_work_run += static_cast<double>(s.samples) * m.full_per_sample();
    step_s += seconds;
    phase_times[phase].push_back(seconds);
    ++steps;
  }
  /// Books a validation pass: counted when the strategy's decisions need it.
  void add_validation(double seconds, bool needed) {
    (needed ? validation_s : validation_untimed_s) += seconds;
  }

  /// Measured wall-clock time of everything the strategy caused.
  double measured_s() const { return step_s + validation_s; }
  /// Share of full fine-tuning's work in the steps run that the strategy did
  /// not do (freezing and caching; catch-up passes counted against it).
  double work_avoided_per_step() const {
    return full_work_run > 0 ? 1.0 - (step_work + catch_up_work) / full_work_run : 0.0;
  }
  /// Share of the planned steps not run (stopping).
  static double steps_not_run(std::int64_t steps, std::int64_t planned) {
    return planned > 0 ? 1.0 - static_cast<double>(steps) / static_cast<double>(planned) : 0.0;
  }
  /// Share of full fine-tuning's work over the whole budget that was avoided
  /// (freezing, caching and stopping together): 1 - work / (planned x full step).
  double work_avoided_total(std::int64_t planned) const {
    if (steps <= 0 || planned <= 0) return 0.0;
    const double full_step = full_work_run / static_cast<double>(steps);
    return 1.0 - (step_work + catch_up_work) / (full_step * static_cast<double>(planned));
  }

  /// The estimate: per phase, steps x the phase's q-quantile step time
  /// (q = 0.5: the median; 0.25 / 0.75: the spread).
  double estimate_s(double q = 0.5) const;

 private:
  static double step_work_of(const WorkModel& m, const StepShape& s) {
    return frost_train::step_work(m, s).total();
  }
};

namespace detail {

/// The q-quantile (0..1) of `v` (linear interpolation; v not empty).
inline double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<std::size_t>(pos);
  const double f = pos - static_cast<double>(i);
  return i + 1 < v.size() ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

}  // namespace detail

inline double RunBill::estimate_s(double q) const {
  double t = 0;
  for (const auto& kv : phase_times)
    if (!kv.second.empty()) t += static_cast<double>(kv.second.size()) * detail::quantile(kv.second, q);
  return t;
}

}  // namespace frost_train
