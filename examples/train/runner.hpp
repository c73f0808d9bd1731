#pragma once
// examples/train/runner.hpp — the interleaved runner: one seed's runs built
// first, then taking turns (an epoch each, or --interleave steps) so that
// machine noise falls on all of them alike, --jobs turns at a time, each on
// a core of its own; the results, that seed's report; and the loop over the
// seeds. Ctrl-C ends a run after the step in flight, with a checkpoint to
// --resume from.
#include <ATen/Parallel.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <exception>
#include <functional>
#include <iomanip>
#include <limits>
#include <memory>
#include <mutex>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "device.hpp"
#include "output.hpp"
#include "plan.hpp"
#include "progress.hpp"
#include "strategies.hpp"
#include "trainer.hpp"
#include "world.hpp"

namespace frost_train {

namespace detail {
inline volatile std::sig_atomic_t g_interrupted = 0;
inline void on_interrupt(int sig) {
  g_interrupted = 1;
  std::signal(sig, SIG_DFL);  // a second one kills at once
}
}  // namespace detail

/// Whether Ctrl-C (SIGINT) or SIGTERM arrived while an InterruptGuard was on.
inline bool interrupted() { return detail::g_interrupted != 0; }

/// Turns SIGINT and SIGTERM into interrupted() while it lives (when `on`).
class InterruptGuard {
 public:
  explicit InterruptGuard(bool on) : on_(on) {
    if (!on_) return;
    detail::g_interrupted = 0;
    old_int_ = std::signal(SIGINT, detail::on_interrupt);
    old_term_ = std::signal(SIGTERM, detail::on_interrupt);
  }
  ~InterruptGuard() {
    if (!on_) return;
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  bool on_;
  void (*old_int_)(int) = SIG_DFL;
  void (*old_term_)(int) = SIG_DFL;
};

/// The threads that train turns side by side (--jobs): worker w is pinned to
/// the w-th core this process may use (when there are enough), so two turns
/// never share a core and a turn never moves mid-step. A turn goes to
/// whichever worker is idle: which core a run gets follows which turn ended
/// first, so no strategy keeps one core.
class TurnWorkers {
 public:
  explicit TurnWorkers(int jobs) {
    const std::vector<int> cores = allowed_cores();
    const bool pin = static_cast<int>(cores.size()) >= jobs;
    for (int w = 0; w < jobs; ++w)
      threads_.emplace_back(
          [this, core = pin ? cores[static_cast<std::size_t>(w)] : -1] { work(core); });
  }
  ~TurnWorkers() {
    {
      std::lock_guard<std::mutex> l(m_);
      stop_ = true;
    }
    todo_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  TurnWorkers(const TurnWorkers&) = delete;
  TurnWorkers& operator=(const TurnWorkers&) = delete;

  /// Hands turn `id` to an idle worker.
  void start(std::size_t id, std::function<void()> turn) {
    {
      std::lock_guard<std::mutex> l(m_);
      todo_.emplace_back(id, std::move(turn));
    }
    todo_cv_.notify_one();
  }

  /// Waits for a turn to end: its id, and what it threw (null: nothing).
  std::pair<std::size_t, std::exception_ptr> wait() {
    std::unique_lock<std::mutex> l(m_);
    done_cv_.wait(l, [&] { return !done_.empty(); });
    auto d = done_.front();
    done_.pop_front();
    return d;
  }

 private:
  void work(int core) {
    if (core >= 0) pin_to_core(core);
    // This thread's OpenMP team size from set_threads: a new thread would
    // start from OpenMP's default (every core) and oversubscribe them.
    at::init_num_threads();
    for (;;) {
      std::pair<std::size_t, std::function<void()>> job;
      {
        std::unique_lock<std::mutex> l(m_);
        todo_cv_.wait(l, [&] { return stop_ || !todo_.empty(); });
        if (todo_.empty()) return;  // stopped
        job = std::move(todo_.front());
        todo_.pop_front();
      }
      std::exception_ptr error;
      try {
        job.second();
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> l(m_);
        done_.emplace_back(job.first, error);
      }
      done_cv_.notify_one();
    }
  }

  std::mutex m_;
  std::condition_variable todo_cv_, done_cv_;
  std::deque<std::pair<std::size_t, std::function<void()>>> todo_;
  std::deque<std::pair<std::size_t, std::exception_ptr>> done_;
  bool stop_ = false;
  std::vector<std::thread> threads_;  // last: the members above exist before they start
};

/// A run whose CPU tensors count against a MemoryMeter of its own
/// (device.hpp): the meter is the thread's while the run steps (and while the
/// runner builds it), so with --jobs two runs stepping side by side each count
/// their own. Its peak goes into the result before finish's test evaluation
/// (not attributed: the same for every run). On CUDA the trainer's figure
/// (the caching allocator's peak) stays.
class MeteredRun final : public Run {
 public:
  MeteredRun(std::unique_ptr<Run> run, MemoryMeter* meter)
      : run_(std::move(run)), meter_(meter), first_step_(run_->steps_done()) {}
  bool done() const override { return run_->done(); }
  void step() override {
    const MeterScope scope(meter_);
    run_->step();
  }
  std::int64_t steps_done() const override { return run_->steps_done(); }
  std::int64_t planned_steps() const override { return run_->planned_steps(); }
  const std::string& name() const override { return run_->name(); }
  double measured_s() const override { return run_->measured_s(); }
  const std::vector<EvalPoint>& evals() const override { return run_->evals(); }
  RunResult finish() override {
    const double peak = meter_->peak_mib();
    const bool stepped = run_->steps_done() > first_step_;
    RunResult r = run_->finish();
    if (!(r.peak_mem_mib >= 0)) {
      // a run resumed after its last step only loaded its checkpoint: no peak
      r.peak_mem_mib = stepped ? peak : std::numeric_limits<double>::quiet_NaN();
      r.peak_mem_kind = stepped ? kCpuPeakKind : "not measured (resumed after its last step)";
    }
    return r;
  }

 private:
  std::unique_ptr<Run> run_;
  MemoryMeter* meter_;
  std::int64_t first_step_;  // steps done before this session (--resume)
};

/// One seed's comparison: pre-training (or its cache), every run built first,
/// then taking turns (an epoch each, or --interleave steps) so that machine
/// noise falls on all of them alike, then the results and that seed's table.
struct SeedRunner {
  const TrainConfig& base;
  const TaskData& data;
  torch::Device device;
  const World& world;
  bool resume;
  std::function<void(const std::string&)> log;
  std::ostream& out;
  /// Guards `out` (and `log`, which writes to it) while turns run side by side.
  std::shared_ptr<std::mutex> out_mutex = std::make_shared<std::mutex>();

  /// `log` behind the runner's output lock: one line at a time from any thread.
  std::function<void(const std::string&)> locked_log() const {
    return [log = log, m = out_mutex](const std::string& line) {
      std::lock_guard<std::mutex> l(*m);
      log(line);
    };
  }

  /// 0, or the exit status (130 interrupted, 3 stopped by --max-steps).
  int run(const TrainConfig& cfg, const std::vector<const Strategy*>& chosen,
          const std::vector<StrategySets>& sets, std::vector<RunResult>& rs) const {
    if (base.seeds > 1) log("\n=== seed " + std::to_string(cfg.seed) + " (" + cfg.out_dir + ")");
    make_dirs(cfg.out_dir);
    // Rank 0 pre-trains (or finds the cache, or the family's weights file);
    // the others wait for its path.
    std::string pretrained;
    if (world.root()) pretrained = starting_weights(cfg, data, device, log);
    pretrained = world.share("pretrained", pretrained);

    const auto t0 = std::chrono::steady_clock::now();
    if (const int status = run_all(cfg, pretrained, chosen, sets, false, rs)) return status;
    if (cfg.matched_frontier > 0) {
      const auto t1 = std::chrono::steady_clock::now();
      if (const int status = run_matched(cfg, pretrained, rs)) return status;
      // what the matched runs cost this invocation, beside the seed's runs
      const auto t2 = std::chrono::steady_clock::now();
      const double runs_s = std::chrono::duration<double>(t1 - t0).count();
      const double matched_s = std::chrono::duration<double>(t2 - t1).count();
      std::ostringstream m;
      m << std::fixed << std::setprecision(1) << "\nmatched frontier: " << matched_s
        << " s of wall-clock time after " << runs_s << " s for the seed's runs (+"
        << std::setprecision(0) << (runs_s > 0 ? 100.0 * matched_s / runs_s : 0.0)
        << " %); --matched-frontier off leaves them out";
      log(m.str());
    }
    if (world.root()) write_seed_report(cfg, rs, out);
    return 0;
  }

 private:
  /// Builds the runs, lets them take turns, and appends their results to
  /// `rs`; 0, or the exit status when one did not complete.
  int run_all(const TrainConfig& cfg, const std::string& pretrained,
              const std::vector<const Strategy*>& chosen, const std::vector<StrategySets>& sets,
              bool matched_only, std::vector<RunResult>& rs) const {
    std::vector<std::unique_ptr<Run>> runs;
    std::vector<RunContext> ctxs;
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      RunContext ctx;
      ctx.cfg = cfg;
      ctx.data = &data;
      ctx.pretrained = pretrained;
      ctx.device = device;
      ctx.out_dir = join(cfg.out_dir, chosen[i]->name);
      ctx.resume = resume;
      ctx.sets = sets[i];
      ctx.log = locked_log();  // runs log from their worker threads with --jobs
      ctx.world = &world;
      ctx.validation_needed = chosen[i]->validation_needed;
      ctxs.push_back(ctx);
    }
    // Each run's peak memory on the CPU: a meter of its own (MeteredRun).
    const bool metered = device.is_cpu() && install_memory_meters();
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      if (!metered) {
        runs.push_back(chosen[i]->start(ctxs[i]));
        continue;
      }
      MemoryMeter* meter = new_memory_meter();
      const MeterScope scope(meter);  // the weights, the optimizer, a resumed checkpoint
      runs.push_back(std::make_unique<MeteredRun>(chosen[i]->start(ctxs[i]), meter));
    }
    take_turns(cfg, runs);
    const std::size_t first = rs.size();
    for (std::size_t i = 0; i < runs.size(); ++i) {
      log("\n== " + chosen[i]->name + ": " + chosen[i]->summary);
      RunResult r = runs[i]->finish();
      runs[i].reset();
      r.on_frontier = chosen[i]->on_frontier;
      r.timing_control = chosen[i]->timing_control;
      r.matched_only = matched_only;
      log_result(r);
      if (r.completed && world.root())
        write_file_atomic(join(ctxs[i].out_dir, "timeline.svg"), render_svg({r}));
      rs.push_back(std::move(r));
    }
    bool all_done = rs.size() - first == chosen.size();
    for (std::size_t i = first; i < rs.size(); ++i) all_done = all_done && rs[i].completed;
    return all_done ? 0 : interrupted() ? 130 : 3;
  }

  /// The frontier at each strategy's own cost (study.hpp, plan_matched):
  /// once the seed's runs are done, full fine-tuning annealed to each
  /// strategy's cost in steps at full's measured step time, the runs that
  /// are not full or a frontier budget already, taking turns as the others
  /// did (--jobs side by side); then each strategy's matched_* fields.
  /// Every rank runs rank 0's budgets (its measured times).
  int run_matched(const TrainConfig& cfg, const std::string& pretrained, std::vector<RunResult>& rs) const {
    const std::vector<MatchedBudget> plan = plan_matched(rs);
    std::string list;
    for (const auto n : matched_runs_to_start(plan)) list += std::to_string(n) + ",";
    list = world.share("matched_runs", list);
    if (plan.empty() && world.root()) {
      log("\nmatched frontier: none (no completed full run in this seed to take the step time from, "
          "or no strategy to match)");
      return 0;
    }
    const Plan budget = make_plan(cfg, data.train.size());
    std::vector<Strategy> strategies;
    for (const auto& n : detail::split(list, ','))
      strategies.push_back(matched_strategy(std::stoll(n), budget.steps_per_epoch));
    std::ostringstream m;
    m << "\n== the frontier at each strategy's own cost: full fine-tuning annealed to the steps "
         "that cost what the strategy cost (full's step "
      << std::fixed << std::setprecision(1) << 1000.0 * full_step_s(rs) << " ms measured):";
    for (const auto& b : plan)
      m << "\n   " << b.strategy << ": " << b.steps << " steps, " << b.run
        << (b.capped ? " (it cost more than full)" : "") << (b.to_run ? "" : " (already run)");
    log(m.str());
    std::vector<const Strategy*> chosen;
    for (const auto& s : strategies) chosen.push_back(&s);
    if (const int status = run_all(cfg, pretrained, chosen, std::vector<StrategySets>(chosen.size()), true, rs))
      return status;
    attach_matched(rs, plan);
    return 0;
  }

  // Ctrl-C (or SIGTERM) in one process ends the run after the step in
  // flight, with a checkpoint to --resume from; a second one kills at once.
  // Not with several ranks: they would stop at different steps.
  void take_turns(const TrainConfig& cfg, std::vector<std::unique_ptr<Run>>& runs) const {
    std::int64_t total = 0;
    for (const auto& r : runs) total += r->planned_steps();
    const Plan plan = make_plan(cfg, data.train.size());
    const std::int64_t turn = cfg.interleave > 0 ? cfg.interleave : plan.steps_per_epoch;
    const InterruptGuard interrupt(!world.parallel());
    Progress bar("fine-tune", total, cfg.quiet || !world.root() ? 0 : cfg.progress);
    // Without a bar (not a terminal: a pipe, CI, a batch job) one line per
    // turn says where each run stands.
    const bool lines = !bar.enabled() && !cfg.quiet && world.root();
    const auto t0 = std::chrono::steady_clock::now();
    if (cfg.jobs > 1 && runs.size() > 1) {
      take_turns_side_by_side(cfg, runs, turn, bar, lines ? &plan : nullptr, t0);
      bar.finish();
      return;
    }
    for (bool any = true; any && !interrupted();) {
      any = false;
      for (auto& r : runs) {
        if (r->done()) continue;
        for (std::int64_t k = 0; k < turn && !r->done() && !interrupted(); ++k) r->step();
        any = any || !r->done();
        if (bar.enabled()) {
          std::int64_t done = 0;
          for (const auto& x : runs) done += x->done() ? x->planned_steps() : x->steps_done();
          bar.update(done, r->name());
        }
        if (lines) out << progress_line(cfg, *r, plan, t0) << std::endl;
      }
    }
    bar.finish();
  }

  // --jobs N: the same turns in the same cyclic order, N at a time, each on
  // a worker pinned to its own core. A run's next turn waits for its last;
  // an idle worker takes the next run in the order that is neither done nor
  // busy, so the cores stay busy across the rounds' ends (the timing control,
  // last in every round, does not run alone). The runs share no state, so
  // their results are those of --jobs 1; only their times differ.
  void take_turns_side_by_side(const TrainConfig& cfg, std::vector<std::unique_ptr<Run>>& runs,
                               std::int64_t turn, Progress& bar, const Plan* lines,
                               std::chrono::steady_clock::time_point t0) const {
    const std::size_t n = runs.size();
    const int jobs = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(cfg.jobs), n));
    std::vector<char> busy(n, 0);
    // The bar's count, read from each run at its last turn's end (not while it steps).
    const auto counted = [](const Run& r) { return r.done() ? r.planned_steps() : r.steps_done(); };
    std::vector<std::int64_t> progress(n, 0);
    for (std::size_t i = 0; i < n; ++i) progress[i] = counted(*runs[i]);
    std::size_t cursor = 0;
    int in_flight = 0;
    std::exception_ptr error;
    TurnWorkers workers(jobs);
    for (;;) {
      while (!error && !interrupted() && in_flight < jobs) {
        std::size_t k = 0;
        while (k < n && (busy[(cursor + k) % n] || runs[(cursor + k) % n]->done())) ++k;
        if (k == n) break;  // every run done or in flight
        const std::size_t i = (cursor + k) % n;
        cursor = (i + 1) % n;
        busy[i] = 1;
        ++in_flight;
        workers.start(i, [&r = *runs[i], turn] {
          for (std::int64_t s = 0; s < turn && !r.done() && !interrupted(); ++s) r.step();
        });
      }
      if (in_flight == 0) break;
      const auto [i, e] = workers.wait();
      busy[i] = 0;
      --in_flight;
      if (e && !error) error = e;  // the others finish their turns first: they use the runs
      const Run& r = *runs[i];
      progress[i] = counted(r);
      if (bar.enabled()) {
        std::int64_t done = 0;
        for (const auto p : progress) done += p;
        bar.update(done, r.name());
      }
      if (lines) {
        std::lock_guard<std::mutex> l(*out_mutex);
        out << progress_line(cfg, r, *lines, t0) << std::endl;
      }
    }
    if (error) std::rethrow_exception(error);
  }

  static std::string progress_line(const TrainConfig& cfg, const Run& r, const Plan& plan,
                                   std::chrono::steady_clock::time_point t0) {
    std::ostringstream m;
    const double spe = static_cast<double>(plan.steps_per_epoch);
    m << "  [seed " << cfg.seed << " " << format_duration(std::chrono::duration<double>(
                                                                std::chrono::steady_clock::now() - t0)
                                                                .count())
      << "] " << r.name() << ": epoch " << std::fixed << std::setprecision(0)
      << std::ceil(static_cast<double>(r.steps_done()) / spe) << "/"
      << static_cast<double>(r.planned_steps()) / spe << ", " << std::setprecision(1)
      << r.measured_s() << " s measured";
    if (!r.evals().empty()) m << std::setprecision(2) << ", validation " << r.evals().back().val_accuracy << " %";
    if (r.done()) m << " (done)";
    return m.str();
  }

  void log_result(const RunResult& r) const {
    std::ostringstream m;
    m << "   config:";
    std::size_t width = 10;
    for (const auto& kv : r.config) {
      const std::string item = " " + kv.first + "=" + kv.second;
      if (width + item.size() > 100) {
        m << "\n          ";
        width = 10;
      }
      m << item;
      width += item.size();
    }
    log(m.str());
    if (!r.completed) {
      log("   stopped after " + std::to_string(r.steps) + " of " + std::to_string(r.planned_steps) +
          " steps (" + (interrupted() ? "interrupted" : "--max-steps") + "); continue with --resume " +
          base.out_dir);
      return;
    }
    std::ostringstream o;
    o << std::fixed << std::setprecision(2) << "   test accuracy " << r.test_accuracy << "%, "
      << "validation " << r.val_accuracy << "%, " << std::setprecision(1) << r.measured_s
      << " s measured (validation " << r.validation_s << " s of it), " << r.steps << "/"
      << r.planned_steps << " steps, froze at: " << freeze_steps_text(r);
    if (r.cached && r.cache_hits + r.cache_misses > 0)
      o << "\n   activation cache: " << r.cache_samples << " samples, " << std::setprecision(1)
        << r.cache_mib << " MiB, " << std::setprecision(0)
        << 100.0 * static_cast<double>(r.cache_hits) / static_cast<double>(r.cache_hits + r.cache_misses)
        << "% of frozen-prefix forwards served from it";
    if (world.parallel() && r.comm_full_mib > 0)
      o << "\n   gradients all-reduced: " << std::setprecision(1) << r.comm_mib << " MiB per rank ("
        << std::setprecision(0) << 100.0 * r.comm_mib / r.comm_full_mib
        << "% of what an all-reduce of every gradient sends)";
    log(o.str());
  }
};

/// Every seed's runs in turn (seed, seed+1, ...; each in <out>/seed<N> when
/// there are several), then, on rank 0, the summary over the seeds. Returns
/// the exit status; the last seed's results (of the seed that stopped, if one
/// did) go to `results` when given.
/// With --jobs 2 or more and several seeds: when seed `c`'s body is not
/// cached yet, the next seed's (`next`) pre-trains beside it on the other
/// core (pre-training is one thread: a core would idle), each from its own
/// seed (`seeded`), the same weights as one at a time. Rank 0 of a single
/// process only: the runner then finds both cached.
inline void pretrain_pair(const SeedRunner& runner, const TrainConfig& c, const TrainConfig& next) {
  if (c.jobs < 2 || runner.world.parallel() || !pretrains_itself(c.model)) return;
  const std::int64_t n = runner.data.pretrain.size();
  if (path_exists(join(c.cache_dir, pretrain_key(c, n))) ||
      path_exists(join(next.cache_dir, pretrain_key(next, n))))
    return;
  TrainConfig quiet = next;
  quiet.progress = 0;  // one bar on stderr: this seed's
  std::exception_ptr error;
  std::thread beside([&] {
    try {
      ensure_pretrained(quiet, runner.data, runner.device, runner.locked_log());
    } catch (...) {
      error = std::current_exception();
    }
  });
  try {
    ensure_pretrained(c, runner.data, runner.device, runner.locked_log());
  } catch (...) {
    beside.join();
    throw;
  }
  beside.join();
  if (error) std::rethrow_exception(error);
}

inline int run_seeds(const SeedRunner& runner, const RunPlan& plan, std::ostream& out,
                     std::vector<RunResult>* results) {
  const TrainConfig& cfg = plan.cfg;
  std::vector<std::vector<RunResult>> per_seed;
  for (std::int64_t k = 0; k < cfg.seeds; ++k) {
    TrainConfig c = cfg;
    c.seed = cfg.seed + static_cast<std::uint64_t>(k);
    if (cfg.seeds > 1) c.out_dir = join(cfg.out_dir, "seed" + std::to_string(c.seed));
    if (k + 1 < cfg.seeds) {
      TrainConfig next = cfg;
      next.seed = c.seed + 1;
      pretrain_pair(runner, c, next);
    }
    std::vector<RunResult> rs;
    const int status = runner.run(c, plan.runs, plan.run_sets, rs);
    if (status != 0) {
      if (results) *results = std::move(rs);
      return status;
    }
    per_seed.push_back(std::move(rs));
  }
  if (runner.world.root()) report_study(cfg, per_seed, out);  // rank 0 writes the summary
  if (results) *results = std::move(per_seed.back());
  return 0;
}

}  // namespace frost_train
