#pragma once
// examples/train/app.hpp — frost-train's driver: command line to results.
// main.cpp only calls run_app; the tests call it too (a tiny end-to-end run).
//
// The rooms, in the order a run passes through them:
//   cli.hpp         the command line (TrainConfig, parse_args, --help)
//   plan.hpp        the run plan: --resume, the strategies, --set, the frontier
//   world.hpp       the ranks: one process, or several through c10d
//   strategies.hpp  the freezing strategies, by name
//   data.hpp        Fashion-MNIST's two tasks, a rank's shard, accuracy on a split
//   pretraining.hpp the cached pre-training the strategies start from
//   trainer.hpp     one strategy's fine-tuning (StrategyRun; run.hpp: what a run is)
//   runner.hpp      the interleaved runner: a seed's runs take turns; the seeds
//   output.hpp      the report files and tables (report.hpp, study.hpp, svg.hpp)
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "device.hpp"
#include "output.hpp"
#include "plan.hpp"
#include "report.hpp"
#include "runner.hpp"
#include "strategies.hpp"
#include "study.hpp"
#include "svg.hpp"
#include "text_data.hpp"
#include "trainer.hpp"
#include "world.hpp"

namespace frost_train {

using frost_examples::single_threaded_blas;  // examples/common/system.hpp

/// --list: every strategy compiled in, its summary and its options.
inline void print_strategies(const std::vector<Strategy>& all, std::ostream& out) {
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
}

/// The output directory (rank 0's, for all ranks), the data and cache
/// directories, and args.txt for --resume; the global batch must split evenly
/// over the ranks.
inline void prepare_output(RunPlan& plan, const World& world) {
  TrainConfig& cfg = plan.cfg;
  if (cfg.batch_size % world.size != 0)
    throw UsageError("--batch-size " + std::to_string(cfg.batch_size) + " is the global batch; "
                     "with " + std::to_string(world.size) + " ranks it must be a multiple of " +
                     std::to_string(world.size));
  if (cfg.out_dir.empty() && world.root()) cfg.out_dir = join("out", timestamp());
  cfg.out_dir = world.share("out_dir", cfg.out_dir);
  if (cfg.data_dir.empty())
    cfg.data_dir = reads_text_task(cfg.model) ? default_text_data_path()
                                              : frost_examples::default_fashion_mnist_dir();
  make_dirs(cfg.out_dir);
  make_dirs(cfg.cache_dir);  // now, not after a minute of pre-training
  if (!plan.resume && world.root()) {
    std::string a;
    for (const auto& x : cfg.argv) a += x + "\n";
    write_file_atomic(join(cfg.out_dir, "args.txt"), a);
  }
}

/// LibTorch's intra-op threads of a run. On the GPU the cores only
/// feed it (all of them, shared by the ranks of this machine: torchrun's
/// LOCAL_WORLD_SIZE, else all ranks). On the CPU one per run: an OpenMP
/// step waits for its slowest thread, and on a shared 2-core machine a second
/// process (a compiler) made 2-thread steps of the tiny ViT take 2 s instead
/// of 68 ms (measured), while one thread only slows by what it loses; one
/// thread is also as fast here (3.0 s against 2.8 s for an epoch). --threads
/// N overrides. (--jobs puts the other cores to work: runs side by side.)
inline int thread_count(const TrainConfig& cfg, const World& world, const torch::Device& requested) {
  int local_ranks = world.size;
  if (const char* l = std::getenv("LOCAL_WORLD_SIZE"); l && std::atoi(l) > 0) local_ranks = std::atoi(l);
  return cfg.threads > 0 ? cfg.threads
         : requested.is_cpu()
             ? 1
             : std::max(1, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) /
                               local_ranks);
}
/// Sets them, and OpenBLAS to one thread; returns how many.
inline int set_threads(const TrainConfig& cfg, const World& world, const torch::Device& requested) {
  const int threads = thread_count(cfg, world, requested);
  torch::set_num_threads(threads);
  single_threaded_blas();
  return threads;
}

/// How many strategy turns train at once (--jobs). On the CPU of one
/// process the cores this process may use, divided by the threads each turn
/// uses (0), or what was asked; each turn then runs on a core of its own
/// (runner.hpp). A GPU is one device the runs would share, and ranks must
/// meet in their collectives in one order: one at a time there.
inline int resolve_jobs(const TrainConfig& cfg, const World& world, const torch::Device& requested) {
  if (!requested.is_cpu() || world.parallel()) {
    if (cfg.jobs > 1)
      throw UsageError("--jobs " + std::to_string(cfg.jobs) + ": strategies train side by side "
                       "only on the CPU of a single process (this run " +
                       (world.parallel() ? "has " + std::to_string(world.size) + " ranks"
                                         : "trains on " + cfg.device) +
                       "); leave --jobs out or give --jobs 1");
    return 1;
  }
  if (cfg.jobs > 0) return cfg.jobs;
  const int cores = std::max(1, static_cast<int>(allowed_cores().size()));
  return std::max(1, cores / std::max(1, thread_count(cfg, world, requested)));
}

/// This rank's device: several ranks on one machine share its GPUs by
/// LOCAL_RANK (more ranks than GPUs: they take turns, as on a one-GPU test
/// machine).
inline torch::Device rank_device(const World& world, const torch::Device& requested) {
  if (!world.parallel() || !requested.is_cuda() || requested.has_index()) return requested;
  const int gpus = std::max<int>(1, static_cast<int>(torch::cuda::device_count()));
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(world.local_rank % gpus));
}

/// The lines that open a run: model, machine, data, budget, strategies, output.
inline std::string run_header(const RunPlan& plan, const TaskData& data, const Plan& budget,
                              const torch::Device& device, int threads, const World& world) {
  const TrainConfig& cfg = plan.cfg;
  std::ostringstream m;
  m << "frost-train: " << describe_model(cfg) << " on " << device.str() << ", " << threads
    << " threads";
  if (cfg.jobs > 1)
    m << " per run, " << cfg.jobs << " runs at a time (--jobs), each on a core of its own";
  m << ", seed " << cfg.seed << "\n"
    << "  data: " << cfg.data_dir << "; ";
  if (reads_text_task(cfg.model)) {
    m << describe_text_task(cfg, data) << "\n";
  } else {
    if (pretrains_itself(cfg.model))
      m << "pre-train on classes 0-4 (" << data.pretrain.size() << " images)";
    else
      m << "no pre-training (ImageNet weights)";
    m << ", fine-tune on classes 5-9 (" << data.train.size() << " images, test "
      << data.test.size() << ")\n";
  }
  m << "  fine-tuning budget: " << cfg.epochs << " epochs = " << budget.total_steps
    << " steps of batch " << cfg.batch_size << ", AdamW lr " << cfg.lr << " wd "
    << cfg.weight_decay << ", warm-up " << cfg.warmup_steps << "\n"
    << "  strategies:";
  for (auto* s : plan.chosen) m << " " << s->name;
  m << "\n  output: " << cfg.out_dir << (plan.resume ? " (resuming)" : "");
  if (world.parallel())
    m << "\n  data-parallel: " << world.size << " ranks (c10d), batch " << cfg.batch_size / world.size
      << " per rank, each on its own fixed shard of the fine-tuning images";
  return m.str();
}

/// The whole program. Returns the exit status; results go to `out` (and the
/// last seed's rows to `results` when given).
inline int run_app(TrainConfig cfg, std::ostream& out, std::vector<RunResult>* results = nullptr) {
  if (cfg.help) {
    out << usage();
    return 0;
  }
  if (cfg.list) {
    print_strategies(all_strategies(), out);
    return 0;
  }
  if (!cfg.report.empty()) return report_dirs(cfg, out);
  RunPlan plan = make_run_plan(std::move(cfg));

  const torch::Device requested = parse_device(plan.cfg.device);
  const World world = join_world(plan.cfg, requested.is_cuda());
  plan.cfg.jobs = resolve_jobs(plan.cfg, world, requested);
  prepare_output(plan, world);
  const int threads = set_threads(plan.cfg, world, requested);
  const torch::Device device = rank_device(world, requested);
  const TrainConfig& c = plan.cfg;
  const std::function<void(const std::string&)> log = [&](const std::string& m) {
    if (!c.quiet && world.root()) out << m << std::endl;
  };

  const TaskData data = load_run_data(plan.cfg);  // the text task sets plan.cfg's text_* fields
  const Plan budget = make_plan(c, data.train.size());
  if (c.warmup_steps >= budget.total_steps)
    throw UsageError("--warmup " + std::to_string(c.warmup_steps) + " is not below the " +
                     std::to_string(budget.total_steps) + " fine-tuning steps (--epochs, " +
                     "--train-limit, --batch-size); give fewer warm-up steps");
  log(run_header(plan, data, budget, device, threads, world));
  add_frontier(plan, log);

  const SeedRunner runner{c, data, device, world, plan.resume, log, out};
  return run_seeds(runner, plan, out, results);
}

}  // namespace frost_train
