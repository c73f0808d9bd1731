#pragma once
// examples/train/app.hpp — frost-train's driver: command line to results.
// main.cpp only calls run_app; the tests call it too (a tiny end-to-end run).

#include <algorithm>
#include <csignal>
#include <ctime>
#include <fstream>
#include <map>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "report.hpp"
#include "strategies.hpp"
#include "study.hpp"
#include "svg.hpp"
#include "trainer.hpp"

namespace frost_train {

using frost_examples::single_threaded_blas;  // examples/common/system.hpp

inline std::string timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y%m%d-%H%M%S", &tm);
  return b;
}

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

  /// 0, or the exit status (130 interrupted, 3 stopped by --max-steps).
  int run(const TrainConfig& cfg, const std::vector<const Strategy*>& chosen,
          const std::vector<std::vector<std::pair<std::string, std::string>>>& sets,
          std::vector<RunResult>& rs) const {
    if (base.seeds > 1) log("\n=== seed " + std::to_string(cfg.seed) + " (" + cfg.out_dir + ")");
    make_dirs(cfg.out_dir);
    // Rank 0 pre-trains (or finds the cache); the others wait for its path.
    std::string pretrained;
    if (world.root()) pretrained = ensure_pretrained(cfg, data, device, log);
    pretrained = world.share("pretrained", pretrained);

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
      ctx.log = log;
      ctx.world = &world;
      ctx.validation_needed = chosen[i]->validation_needed;
      ctxs.push_back(ctx);
    }
    for (std::size_t i = 0; i < chosen.size(); ++i) runs.push_back(chosen[i]->start(ctxs[i]));
    take_turns(cfg, runs);
    for (std::size_t i = 0; i < runs.size(); ++i) {
      log("\n== " + chosen[i]->name + ": " + chosen[i]->summary);
      RunResult r = runs[i]->finish();
      runs[i].reset();
      r.on_frontier = chosen[i]->on_frontier;
      log_result(r);
      if (r.completed && world.root())
        write_file_atomic(join(ctxs[i].out_dir, "timeline.svg"), render_svg({r}));
      rs.push_back(std::move(r));
    }
    bool all_done = rs.size() == chosen.size();
    for (const auto& r : rs) all_done = all_done && r.completed;
    if (!all_done) return interrupted() ? 130 : 3;
    if (world.root()) write_seed_report(cfg, rs);
    return 0;
  }

 private:
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

  void write_seed_report(const TrainConfig& cfg, const std::vector<RunResult>& rs) const {
    const std::string svg_path = join(cfg.out_dir, "timeline.svg");
    const std::string acc_path = join(cfg.out_dir, "accuracy.svg");
    const std::string csv_path = join(cfg.out_dir, "results.csv");
    write_file_atomic(svg_path, render_svg(rs));
    write_file_atomic(acc_path, render_accuracy_svg(rs));
    write_file_atomic(csv_path, format_csv(rs));
    write_file_atomic(join(cfg.out_dir, "validation.csv"), format_evals_csv(rs));
    out << "\n" << format_table(rs)
        << "(speed-up: full fine-tuning's measured wall-clock time / this strategy's: its steps, "
           "with the activation cache's fills and catch-up passes and the criterion's stages, and "
           "the validation passes its early stopping listens to; test evaluation and checkpoint "
           "writes are left out, the same for all; the strategies take turns epoch by epoch. "
           "estimate: the same from steps x median step time per phase. work avoided/step: "
           "FLOP-weighted forward and backward block work of full fine-tuning not done in the "
           "steps run (catch-up passes counted); steps not run: left out by a stop rule; to "
           "full-0.3: measured time until the validation accuracy reached full's final one minus "
           "0.3 points; see docs/main-job.md)\n"
        << format_control(rs);
    out << "\nper strategy: " << join(cfg.out_dir, "<strategy>/") << "{steps.jsonl, timeline.csv, "
        << "timeline.svg, config.txt, checkpoint.pt}\n"
        << "table: " << csv_path << " (validation points: " << join(cfg.out_dir, "validation.csv")
        << ")\npictures: " << acc_path << " (validation accuracy against time), " << svg_path
        << " (freeze timeline)\n";
  }
};

/// The summary over the seeds: the table with paired intervals and the
/// frontier, the verdict, summary.csv, results.csv (every run) and the
/// accuracy-against-time picture with the frontier.
inline void report_study(const TrainConfig& cfg, const std::vector<std::vector<RunResult>>& per_seed,
                         std::ostream& out) {
  const auto summary = summarize(per_seed);
  const std::string sum_path = join(cfg.out_dir, "summary.csv");
  const std::string fr_path = join(cfg.out_dir, "frontier.svg");
  write_file_atomic(sum_path, format_study_csv(summary));
  write_file_atomic(fr_path, render_frontier_svg(summary));
  if (per_seed.size() > 1) {
    std::string csv = format_csv(per_seed.front());
    for (std::size_t k = 1; k < per_seed.size(); ++k) {
      const std::string more = format_csv(per_seed[k]);
      csv += more.substr(more.find('\n') + 1);  // without its header
    }
    write_file_atomic(join(cfg.out_dir, "results.csv"), csv);
  }
  std::ostringstream seeds;
  for (const auto& rs : per_seed)
    if (!rs.empty()) seeds << " " << rs.front().seed;
  out << "\n== over " << per_seed.size() << " seed" << (per_seed.size() == 1 ? "" : "s")
      << " (seeds" << seeds.str() << ")\n"
      << format_study_table(summary)
      << "(vs full: test accuracy minus full fine-tuning's of the same seed, mean and 95 % "
         "interval; speed-up: measured, mean and min-max over the seeds; vs frontier: test "
         "accuracy minus what full fine-tuning reaches in the same measured time, interpolated "
         "between the budgets full-<E>ep and full)\n"
      << format_verdict(summary, static_cast<int>(per_seed.size()))
      << "summary: " << sum_path << "; picture: " << fr_path
      << " (test accuracy against measured time: the frontier and every strategy)\n";
}

/// --report: the summary over the seeds of finished runs (each directory's
/// results.csv: one seed, or every seed of a --seeds run), written to --out.
inline int report_dirs(TrainConfig cfg, std::ostream& out) {
  std::map<std::uint64_t, std::vector<RunResult>> by_seed;
  for (const auto& dir : cfg.report)
    for (auto& r : read_results_csv(join(dir, "results.csv"))) {
      auto& rs = by_seed[r.seed];
      if (find_strategy(rs, r.strategy))
        throw UsageError("--report: seed " + std::to_string(r.seed) + " of strategy " +
                         r.strategy + " appears twice (" + dir + " and another directory)");
      rs.push_back(std::move(r));
    }
  std::vector<std::vector<RunResult>> per_seed;
  for (auto& kv : by_seed) per_seed.push_back(std::move(kv.second));
  if (per_seed.empty()) throw UsageError("--report: no runs in the results.csv files given");
  if (cfg.out_dir.empty()) cfg.out_dir = join("out", timestamp() + "-report");
  make_dirs(cfg.out_dir);
  cfg.seed = by_seed.begin()->first;
  report_study(cfg, per_seed, out);
  return 0;
}

/// The whole program. Returns the exit status; results go to `out`.
inline int run_app(TrainConfig cfg, std::ostream& out, std::vector<RunResult>* results = nullptr) {
  const auto all = all_strategies();
  if (cfg.help) {
    out << usage();
    return 0;
  }
  if (cfg.list) {
    for (const auto& s : all) {
      out << s.name << (s.adaptive ? "  [adaptive]" : "") << "\n    " << s.summary << "\n    ";
      std::string line;
      for (const auto& kv : s.options()) {
        const std::string item = kv.first + "=" + kv.second;
        if (line.size() + item.size() > 90) {
          out << line << "\n    ";
          line.clear();
        }
        line += (line.empty() ? "" : "  ") + item;
      }
      out << line << "\n";
    }
    out << "(the defaults above are the library's; each strategy's own settings are printed when "
           "it starts)\n";
    return 0;
  }
  if (!cfg.report.empty()) return report_dirs(cfg, out);
  bool resume = false;
  if (!cfg.resume_dir.empty()) {
    std::ifstream f(join(cfg.resume_dir, "args.txt"));
    if (!f)
      throw UsageError("--resume " + cfg.resume_dir + ": no args.txt there (not a frost-train "
                       "output directory)");
    // The run's settings are those it was started with: only what does not
    // change its results may be given again.
    static const char* const may_repeat[] = {
        "--resume", "--max-steps", "--threads", "--progress", "--no-progress", "--quiet",
        "--rank", "--local-rank", "--world-size", "--master-addr", "--master-port",
        "--dist-timeout"};
    for (const auto& g : cfg.given)
      if (std::find(std::begin(may_repeat), std::end(may_repeat), g) == std::end(may_repeat))
        throw UsageError("--resume " + cfg.resume_dir + " continues the run with the settings it "
                         "was started with (" + join(cfg.resume_dir, "args.txt") + "); " + g +
                         " cannot change them. Start a new run (--out) for other settings");
    std::vector<std::string> args;
    std::string line;
    while (std::getline(f, line)) args.push_back(line);
    const std::string dir = cfg.resume_dir;
    const std::int64_t max_steps = cfg.max_steps;
    const int progress = cfg.progress;
    TrainConfig again;
    parse_args(args, again);
    cfg = again;
    cfg.out_dir = dir;
    cfg.max_steps = max_steps;
    if (progress != -1) cfg.progress = progress;
    resume = true;
  }
  const std::vector<std::string> original_args = cfg.argv;

  if (cfg.study) {
    if (cfg.strategies.empty()) cfg.strategies = study_comparison();
    auto given = [&](const char* f) {
      return std::find(cfg.given.begin(), cfg.given.end(), f) != cfg.given.end();
    };
    if (!given("--seeds")) cfg.seeds = 5;
    if (!given("--frontier")) cfg.frontier = {3, 4, 6, 8};
  }
  if (cfg.strategies.empty()) {
    cfg.strategies = default_comparison();
    cfg.compare = true;
  }
  if (cfg.strategies.size() > 1) cfg.compare = true;
  std::vector<const Strategy*> chosen;
  for (const auto& n : cfg.strategies) {
    const Strategy* s = find_strategy(all, n);
    if (!s) {
      std::string names;
      for (const auto& x : all) names += " " + x.name;
      throw UsageError("unknown strategy '" + n + "'; compiled in:" + names);
    }
    chosen.push_back(s);
  }
  // --set routing: "name:key=value" for one strategy, "key=value" for those that have the key.
  std::vector<std::vector<std::pair<std::string, std::string>>> sets(chosen.size());
  for (const auto& kv : cfg.sets) {
    std::string key = kv.first, only;
    const auto colon = key.find(':');
    if (colon != std::string::npos) {
      only = key.substr(0, colon);
      key = key.substr(colon + 1);
      if (!find_strategy(all, only)) throw UsageError("--set " + kv.first + ": no strategy '" + only + "'");
    }
    bool used = false;
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      if (!only.empty() && chosen[i]->name != only) continue;
      if (has_option(*chosen[i], key)) {
        sets[i].emplace_back(key, kv.second);
        used = true;
      } else if (!only.empty() || chosen.size() == 1) {
        std::string keys;
        for (const auto& o : chosen[i]->options())
          if (o.first.find('.') != std::string::npos) keys += " " + o.first;
        throw UsageError("--set " + kv.first + ": strategy " + chosen[i]->name +
                         " has no option '" + key + "'; its options:" + keys);
      }
    }
    if (!used)
      throw UsageError("--set " + kv.first + ": none of the chosen strategies has option '" + key +
                       "' (see --list)");
  }

  const torch::Device requested = parse_device(cfg.device);
  const World world = join_world(cfg, requested.is_cuda());
  if (cfg.batch_size % world.size != 0)
    throw UsageError("--batch-size " + std::to_string(cfg.batch_size) + " is the global batch; "
                     "with " + std::to_string(world.size) + " ranks it must be a multiple of " +
                     std::to_string(world.size));
  // One output directory for all ranks: rank 0's.
  if (cfg.out_dir.empty() && world.root()) cfg.out_dir = join("out", timestamp());
  cfg.out_dir = world.share("out_dir", cfg.out_dir);
  if (cfg.data_dir.empty()) cfg.data_dir = frost_examples::default_fashion_mnist_dir();
  make_dirs(cfg.out_dir);
  make_dirs(cfg.cache_dir);  // now, not after a minute of pre-training
  if (!resume && world.root()) {
    std::string a;
    for (const auto& x : original_args) a += x + "\n";
    write_file_atomic(join(cfg.out_dir, "args.txt"), a);
  }
  // Threads: on the GPU the cores only feed it (all of them, shared by the
  // ranks of this machine: torchrun's LOCAL_WORLD_SIZE, else all ranks). On
  // the CPU one per process: an OpenMP step waits for its slowest thread, and
  // on a shared 2-core machine a second process (a compiler) made 2-thread
  // steps of the tiny ViT take 2 s instead of 68 ms (measured), while one
  // thread only slows by what it loses; one thread is also as fast here
  // (3.0 s against 2.8 s for an epoch). --threads N overrides.
  int local_ranks = world.size;
  if (const char* l = std::getenv("LOCAL_WORLD_SIZE"); l && std::atoi(l) > 0) local_ranks = std::atoi(l);
  const int threads =
      cfg.threads > 0 ? cfg.threads
      : requested.is_cpu()
          ? 1
          : std::max(1, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) /
                            local_ranks);
  torch::set_num_threads(threads);
  single_threaded_blas();
  // Several ranks on one machine share its GPUs by LOCAL_RANK.
  // (more ranks than GPUs: they take turns, as on a one-GPU test machine).
  const torch::Device device =
      world.parallel() && requested.is_cuda() && !requested.has_index()
          ? torch::Device(torch::kCUDA,
                          static_cast<c10::DeviceIndex>(
                              world.local_rank % std::max<int>(1, static_cast<int>(torch::cuda::device_count()))))
          : requested;
  auto log = [&](const std::string& m) {
    if (!cfg.quiet && world.root()) out << m << std::endl;
  };

  const TaskData data =
      load_task_data(cfg.data_dir, cfg.pretrain_limit, cfg.train_limit, cfg.test_limit,
                     cfg.val_limit);
  const Plan plan = make_plan(cfg, data.train.size());
  if (cfg.warmup_steps >= plan.total_steps)
    throw UsageError("--warmup " + std::to_string(cfg.warmup_steps) + " is not below the " +
                     std::to_string(plan.total_steps) + " fine-tuning steps (--epochs, " +
                     "--train-limit, --batch-size); give fewer warm-up steps");
  {
    std::ostringstream m;
    const auto mo = model_options(cfg.model);
    m << "frost-train: ViT-" << cfg.model << " (" << mo.depth() << " blocks, width " << mo.dim()
      << ", patch " << mo.patch_size() << ") on " << device.str() << ", " << threads
      << " threads, seed " << cfg.seed << "\n"
      << "  data: " << cfg.data_dir << "; pre-train on classes 0-4 (" << data.pretrain.size()
      << " images), fine-tune on classes 5-9 (" << data.train.size() << " images, test "
      << data.test.size() << ")\n"
      << "  fine-tuning budget: " << cfg.epochs << " epochs = " << plan.total_steps
      << " steps of batch " << cfg.batch_size << ", AdamW lr " << cfg.lr << " wd "
      << cfg.weight_decay << ", warm-up " << cfg.warmup_steps << "\n"
      << "  strategies:";
    for (auto* s : chosen) m << " " << s->name;
    m << "\n  output: " << cfg.out_dir << (resume ? " (resuming)" : "");
    if (world.parallel())
      m << "\n  data-parallel: " << world.size << " ranks (c10d), batch " << cfg.batch_size / world.size
        << " per rank, each on its own fixed shard of the fine-tuning images";
    log(m.str());
  }
  // The runs of every seed: the chosen strategies and the frontier's
  // shorter full fine-tuning budgets.
  std::vector<Strategy> frontier;
  for (const double e : cfg.frontier) {
    if (e >= cfg.epochs) {
      log("frontier: a budget of " + frontier_strategy(e).name.substr(5) + " is not shorter than "
          "the full budget; left out");
      continue;
    }
    frontier.push_back(frontier_strategy(e));
  }
  // (right after full, so that the last run of a turn stays the user's last)
  std::vector<const Strategy*> runs_of_seed = chosen;
  std::vector<std::vector<std::pair<std::string, std::string>>> run_sets = sets;
  const auto full = std::find_if(chosen.begin(), chosen.end(),
                                 [](const Strategy* s) { return s->name == "full"; });
  if (full != chosen.end()) {
    const auto at = static_cast<std::ptrdiff_t>(full - chosen.begin()) + 1;
    for (std::size_t i = 0; i < frontier.size(); ++i) {
      runs_of_seed.insert(runs_of_seed.begin() + at + static_cast<std::ptrdiff_t>(i), &frontier[i]);
      run_sets.insert(run_sets.begin() + at + static_cast<std::ptrdiff_t>(i),
                      std::vector<std::pair<std::string, std::string>>());
    }
  }

  SeedRunner runner{cfg, data, device, world, resume, log, out};
  std::vector<std::vector<RunResult>> per_seed;
  for (std::int64_t k = 0; k < cfg.seeds; ++k) {
    TrainConfig c = cfg;
    c.seed = cfg.seed + static_cast<std::uint64_t>(k);
    if (cfg.seeds > 1) c.out_dir = join(cfg.out_dir, "seed" + std::to_string(c.seed));
    std::vector<RunResult> rs;
    const int status = runner.run(c, runs_of_seed, run_sets, rs);
    if (status != 0) {
      if (results) *results = std::move(rs);
      return status;
    }
    per_seed.push_back(std::move(rs));
  }
  if (!world.root()) {  // rank 0 writes the tables and the pictures
    if (results) *results = std::move(per_seed.back());
    return 0;
  }
  report_study(cfg, per_seed, out);
  if (results) *results = std::move(per_seed.back());
  return 0;
}

}  // namespace frost_train
