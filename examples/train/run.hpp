#pragma once
// examples/train/run.hpp — what a fine-tuning run is, apart from how it
// trains: its context (RunContext), its step budget (Plan), what it produces
// (RunResult, EvalPoint), and the interface the runner drives (Run).
// trainer.hpp's StrategyRun implements it.
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "frost/frost.hpp"

#include "cli.hpp"
#include "data.hpp"
#include "world.hpp"

namespace frost_train {

/// One validation of a run (at an epoch's end): where it stood, and when.
struct EvalPoint {
  std::int64_t step = 0;      ///< the last completed step
  double time_s = 0.0;        ///< measured time so far (RunBill::measured_s)
  double val_accuracy = 0.0;  ///< % on the validation split
  double val_loss = 0.0;
};

/// What a fine-tuning run produced (one row of the comparison table).
struct RunResult {
  std::string strategy;
  std::string composition;               ///< "criterion / schedule / stop"
  double test_accuracy = std::numeric_limits<double>::quiet_NaN();  ///< %
  std::uint64_t seed = 0;                ///< --seed of this run (data order, pre-trained body)
  double epochs = 0.0;                   ///< its budget in epochs (the frontier's runs differ)
  bool on_frontier = false;              ///< full fine-tuning at some budget (the frontier's points)
  bool timing_control = false;           ///< full's work again, judged at 1.00x (Strategy::timing_control)
  // Measured wall-clock time (examples/train/accounting.hpp): the steps, with
  // the cache's fills and catch-ups and the criterion's stages inside them,
  // and the validation passes the strategy's decisions listen to. Test-set
  // evaluation and checkpoint writes stay out, the same for every strategy.
  double measured_s = 0.0;               ///< steps + needed validation: the headline
  double validation_s = 0.0;             ///< of which validation (0 when not needed)
  double wall_s = 0.0;                   ///< the steps alone (sum of step times)
  std::int64_t steps = 0;                ///< steps run
  std::int64_t planned_steps = 0;        ///< the full fine-tuning budget
  double frozen_share = 0.0;             ///< mean over the steps run of frozen_fraction()
  double backward_avoided = 0.0;         ///< 1 - sum_t (1 - frozen_fraction_t) / planned_steps
  std::vector<std::string> block_names;
  std::vector<std::int64_t> freeze_step; ///< per block: step it froze, -1 never
  // Peak memory of this run (this session's, after a --resume): on the CPU
  // the most bytes of CPU tensors it held at once (device.hpp, MemoryMeter),
  // on CUDA the caching allocator's peak during its steps.
  double peak_mem_mib = std::numeric_limits<double>::quiet_NaN();
  std::string peak_mem_kind;
  // The frontier at this strategy's own cost (study.hpp, plan_matched): full
  // fine-tuning annealed to the steps that cost what this run cost at full's
  // measured step time, run after the seed's runs (or one of them reused).
  std::string matched_run;               ///< its name ("full-<N>st", "full", "full-<E>ep"); "" none
  std::int64_t matched_steps = 0;        ///< its steps
  double matched_s = std::numeric_limits<double>::quiet_NaN();        ///< its measured time
  double matched_accuracy = std::numeric_limits<double>::quiet_NaN(); ///< its test accuracy, %
  bool matched_capped = false;           ///< cost more than full: full is its matched run
  /// Only some strategy's matched run ("full-<N>st"), not a budget of the
  /// frontier's line: left out of the study's rows and of the line.
  bool matched_only = false;
  /// Batches skipped because their loss was not finite (trainer.hpp, skip_batch).
  std::int64_t skipped_batches = 0;
  // The estimate beside it (see docs/main-job.md): per phase (steps with the
  // same blocks skipped) steps x median step time, plus validation_s; the
  // spread from the quartiles. It drops one-off costs by construction.
  double time_est_s = 0.0;               ///< sum over phases of steps x median (+ validation_s)
  double time_lo_s = 0.0;                ///< the same with each phase's 25th percentile
  double time_hi_s = 0.0;                ///< ... and 75th percentile
  // FLOP-weighted work (accounting.hpp): shares of full fine-tuning's.
  double work_avoided = 0.0;             ///< over the whole budget (freezing, cache and stopping)
  double work_avoided_per_step = 0.0;    ///< in the steps run (freezing and cache, catch-ups counted)
  double catch_up_share = 0.0;           ///< the cache's catch-up passes, share of full's work in the steps run
  double steps_not_run = 0.0;            ///< share of the planned steps a stop rule left out
  std::vector<EvalPoint> evals;          ///< validation after every epoch
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();  ///< % at the end
  std::int64_t cache_hits = 0;           ///< samples whose frozen prefix came from the cache
  std::int64_t cache_misses = 0;         ///< samples whose frozen prefix ran (cache on)
  std::int64_t cache_samples = 0;        ///< samples held at the end
  double cache_mib = 0.0;                ///< memory held by the cache at the end
  bool cached = false;                   ///< ran with the activation cache
  int ranks = 1;                         ///< data-parallel ranks
  double comm_mib = 0.0;                 ///< gradients all-reduced by this rank (payload)
  double comm_full_mib = 0.0;            ///< the same had nothing been frozen
  std::vector<double> losses;            ///< per step
  frost::Timeline timeline;
  frost::OptionList config;              ///< ctl.describe()
  std::string out_dir;
  bool completed = false;                ///< false: ended by --max-steps (resumable)
  bool resumed = false;
};

/// Everything a strategy run needs besides its composition.
struct RunContext {
  TrainConfig cfg;
  const TaskData* data = nullptr;
  std::string pretrained;                 ///< weights to start from
  torch::Device device{torch::kCPU};
  std::string out_dir;                    ///< this strategy's own directory
  bool resume = false;                    ///< continue from out_dir/checkpoint.pt when present
  std::vector<std::pair<std::string, std::string>> sets;  ///< --set for this strategy
  std::function<void(const std::string&)> log = [](const std::string&) {};
  const World* world = nullptr;           ///< null: one process
  /// The strategy's decisions listen to the validation loss (early stopping):
  /// its validation passes count in its measured time.
  bool validation_needed = false;
};

/// The fine-tuning budget: steps per epoch and total steps.
struct Plan {
  std::int64_t steps_per_epoch = 0;
  std::int64_t total_steps = 0;
};
inline Plan make_plan(const TrainConfig& cfg, std::int64_t n_train) {
  Plan p;
  p.steps_per_epoch = steps_per_epoch(n_train, cfg.batch_size);
  p.total_steps = std::max<std::int64_t>(
      1, static_cast<std::int64_t>(std::llround(cfg.epochs * static_cast<double>(p.steps_per_epoch))));
  return p;
}

inline std::uint64_t data_seed(const TrainConfig& cfg, std::int64_t epoch) {
  return cfg.seed * 1000003ULL + 1000 + static_cast<std::uint64_t>(epoch);
}

/// "criterion / schedule / stop" from describe()'s first three entries.
inline std::string concepts_names(const frost::OptionList& config) {
  std::string c, s, p;
  for (const auto& kv : config) {
    if (kv.first == "criterion") c = kv.second;
    if (kv.first == "schedule") s = kv.second;
    if (kv.first == "stop") p = kv.second;
  }
  return c + " / " + s + " / " + p;
}

/// One strategy's fine-tuning, a step at a time, so that the runner (runner.hpp) can
/// interleave the strategies (an epoch of each in turn): every strategy then
/// meets the same machine, and a timing comparison says something on a shared
/// 2-core box. See docs/main-job.md.
class Run {
 public:
  virtual ~Run() = default;
  /// Nothing left to do (budget spent, stopped by the stop rule, or
  /// --max-steps reached this session).
  virtual bool done() const = 0;
  /// One training step; at an epoch's end also the validation.
  virtual void step() = 0;
  virtual std::int64_t steps_done() const = 0;
  virtual std::int64_t planned_steps() const = 0;
  virtual const std::string& name() const = 0;
  /// Measured time so far (RunBill::measured_s) and the validations so far:
  /// the progress lines.
  virtual double measured_s() const = 0;
  virtual const std::vector<EvalPoint>& evals() const = 0;
  /// Final checkpoint, test accuracy, the result row.
  virtual RunResult finish() = 0;
};

}  // namespace frost_train
