#pragma once
// examples/train/trainer.hpp — frost-train's work: the data (Fashion-MNIST
// split into a pre-training task, classes 0-4, and a fine-tuning task,
// classes 5-9), the cached pre-training run, and the fine-tuning loop that
// drives a frost::FreezeController, logs every step, checkpoints atomically
// and resumes.
#include <torch/nn/functional/loss.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>
#include <torch/cuda.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iomanip>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(FROST_TRAIN_CUDA_STATS) && __has_include(<c10/cuda/CUDACachingAllocator.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define FROST_TRAIN_HAVE_CUDA_STATS 1
#endif

#include <nlohmann/json.hpp>

#include "frost/checkpoint.hpp"
#include "frost/frost.hpp"
#include "idx.hpp"
#include "vit.hpp"

#include "cli.hpp"
#include "progress.hpp"
#include "world.hpp"

namespace frost_train {

namespace fx = frost_examples;

// --- small utilities ----------------------------------------------------------

inline bool path_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

/// mkdir -p.
inline void make_dirs(const std::string& path) {
  if (path.empty()) return;
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  if (path[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
      throw std::runtime_error("cannot create directory " + cur + ": " + std::strerror(errno));
  }
}

inline std::string join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

/// Writes `text` to `path` atomically (temporary file + rename).
inline void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("cannot write " + tmp);
    f << text;
    if (!f.flush()) throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

/// steps.jsonl: one JSON object per line, keys in the order written.
using Json = nlohmann::ordered_json;

/// A number for steps.jsonl, to 6 significant digits; null when not finite
/// (JSON has no NaN or infinity).
inline Json json_number(double v) {
  if (!std::isfinite(v)) return nullptr;
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return std::strtod(b, nullptr);
}

/// `j` as one line of a JSON-lines file (invalid UTF-8 replaced, not thrown).
inline std::string json_line(const Json& j) {
  return j.dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace) + "\n";
}

/// A number for the CSV files: 6 significant digits, "null" when not finite.
inline std::string csv_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream os;
  os << std::setprecision(6) << v;
  return os.str();
}

// --- memory ---------------------------------------------------------------

/// Resets the peak-memory counter of `device` (CUDA: the caching allocator's
/// peak; CPU: the process' peak RSS through /proc/self/clear_refs, Linux).
inline void reset_peak_memory(const torch::Device& device) {
  if (device.is_cuda()) {
#ifdef FROST_TRAIN_HAVE_CUDA_STATS
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index() : 0);
#endif
    return;
  }
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);  // resets VmHWM to the current RSS
    std::fclose(f);
  }
}

/// Peak memory in MiB since reset_peak_memory and what it measures; NaN when
/// not measurable.
inline std::pair<double, std::string> peak_memory_mib(const torch::Device& device) {
  if (device.is_cuda()) {
#ifdef FROST_TRAIN_HAVE_CUDA_STATS
    const auto stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
    return {static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0),
            "CUDA max allocated"};
#else
    return {std::numeric_limits<double>::quiet_NaN(), "not measurable in this build"};
#endif
  }
  // CPU: the process' peak resident set (VmHWM; model, data and LibTorch
  // itself, a rough measure).
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
      long kb = 0;
      if (std::sscanf(line, "VmHWM: %ld kB", &kb) == 1) {
        std::fclose(f);
        return {static_cast<double>(kb) / 1024.0, "process peak RSS"};
      }
    }
    std::fclose(f);
  }
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return {static_cast<double>(ru.ru_maxrss) / 1024.0, "process max RSS"};
}

// --- data ---------------------------------------------------------------------

struct TaskData {
  fx::Dataset pretrain;  ///< train split, classes 0-4
  fx::Dataset train;     ///< train split, classes 5-9 (labels kept: 5..9)
  fx::Dataset test;      ///< t10k split, classes 5-9
};

inline std::string default_data_dir() {
  if (const char* e = std::getenv("FROST_FASHION_MNIST"); e && *e) return e;
#ifdef FROST_DEFAULT_DATA_DIR
  return FROST_DEFAULT_DATA_DIR;
#else
  return fx::kDefaultFashionMnistDir;
#endif
}

/// Adds the package hint to every data error (the reader's "file not found"
/// already has it; a corrupt file's message does not).
inline fx::DataError with_package_hint(const fx::DataError& e) {
  std::string m = e.what();
  if (m.find("dataset-fashion-mnist") == std::string::npos)
    m += "\n  (the Fashion-MNIST files come from the Debian package dataset-fashion-mnist: "
         "apt-get install --reinstall dataset-fashion-mnist, or pass --data DIR with the four "
         "*-ubyte.gz files)";
  return fx::DataError(m);
}

inline TaskData load_task_data(const std::string& dir, std::int64_t pretrain_limit,
                               std::int64_t train_limit, std::int64_t test_limit) {
  try {
    const auto train = fx::load_fashion_mnist(dir, /*train=*/true);
    const auto test = fx::load_fashion_mnist(dir, /*train=*/false);
    TaskData d;
    d.pretrain = fx::filter_classes(train, {0, 1, 2, 3, 4}, /*relabel=*/false);
    d.train = fx::filter_classes(train, {5, 6, 7, 8, 9}, /*relabel=*/false);
    d.test = fx::filter_classes(test, {5, 6, 7, 8, 9}, /*relabel=*/false);
    if (pretrain_limit >= 0) d.pretrain = fx::take_first(d.pretrain, pretrain_limit);
    if (train_limit >= 0) d.train = fx::take_first(d.train, train_limit);
    if (test_limit >= 0) d.test = fx::take_first(d.test, test_limit);
    if (d.pretrain.size() == 0 || d.train.size() == 0 || d.test.size() == 0)
      throw fx::DataError("Fashion-MNIST in " + dir + " has no images for one of the tasks");
    return d;
  } catch (const fx::DataError& e) {
    throw with_package_hint(e);
  }
}

// --- model ----------------------------------------------------------------------

inline fx::ViTOptions model_options(const std::string& name) {
  if (name == "small") return fx::ViTOptions::small_fmnist().dropout(0.0);
  if (name == "tiny") return fx::ViTOptions::tiny().num_classes(10).dropout(0.0);
  throw UsageError("unknown model '" + name + "' (tiny or small)");
}

inline torch::Device parse_device(const std::string& s) {
  torch::Device d(torch::kCPU);
  try {
    d = torch::Device(s);
  } catch (const std::exception&) {
    throw UsageError("--device: cannot parse '" + s + "' (cpu, cuda or cuda:N)");
  }
  if (d.is_cuda() && !torch::cuda::is_available())
    throw UsageError("--device " + s +
                     ": CUDA is not available (a CPU-only LibTorch, or no GPU); use --device cpu");
  if (!d.is_cpu() && !d.is_cuda()) throw UsageError("--device " + s + ": only cpu and cuda");
  return d;
}

inline void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.has_index() ? d.index() : -1);
}

/// Top-1 accuracy (in %) of `model` on `ds`. With several ranks each takes
/// its contiguous part and the counts are summed (every rank gets the result).
inline double evaluate(fx::ViT& model, const fx::Dataset& ds, const torch::Device& device,
                       const World& world = World{}, std::int64_t batch = 500) {
  torch::NoGradGuard ng;
  const bool was_training = model->is_training();
  model->eval();
  const std::int64_t begin = ds.size() * world.rank / world.size;
  const std::int64_t end = ds.size() * (world.rank + 1) / world.size;
  at::Tensor correct = at::zeros({}, at::TensorOptions().dtype(at::kLong).device(device));
  for (std::int64_t i = begin; i < end; i += batch) {
    const auto n = std::min(batch, end - i);
    auto x = ds.images.narrow(0, i, n).to(device);
    auto y = ds.labels.narrow(0, i, n).to(device);
    correct += model->forward(x).argmax(1).eq(y).sum();
  }
  if (was_training) model->train();
  world.sum_(correct);
  return ds.size() ? 100.0 * static_cast<double>(correct.item<std::int64_t>()) /
                         static_cast<double>(ds.size())
                   : 0.0;
}

/// Rank r's fixed shard of `ds`: samples r, r + W, r + 2W, ... The same number
/// on every rank (the last size % W samples are left out), so that every rank
/// runs the same number of steps; fixed, so that a sample stays on its rank
/// for the whole run (what a per-rank activation cache needs).
inline fx::Dataset shard(const fx::Dataset& ds, const World& world) {
  if (!world.parallel()) return ds;
  const std::int64_t per = ds.size() / world.size;
  const auto idx = at::arange(world.rank, per * world.size, world.size, at::kLong);
  return {ds.images.index_select(0, idx), ds.labels.index_select(0, idx)};
}

// --- pre-training (classes 0-4), cached -------------------------------------------

inline std::int64_t steps_per_epoch(std::int64_t n, std::int64_t batch) {
  return std::max<std::int64_t>(1, (n + batch - 1) / batch);
}

inline std::string pretrain_key(const TrainConfig& cfg, std::int64_t n) {
  std::ostringstream k;
  k << "pretrain-" << cfg.model << "-seed" << cfg.seed << "-n" << n << "-ep" << cfg.pretrain_epochs
    << "-lr" << cfg.pretrain_lr << "-bs" << cfg.batch_size << ".pt";
  return k.str();
}

/// Returns the path of the pre-trained weights, training them first when the
/// cache has none for this configuration. `log` gets one-line messages.
inline std::string ensure_pretrained(const TrainConfig& cfg, const TaskData& data,
                                     const torch::Device& device,
                                     const std::function<void(const std::string&)>& log) {
  make_dirs(cfg.cache_dir);
  const std::string path = join(cfg.cache_dir, pretrain_key(cfg, data.pretrain.size()));
  if (path_exists(path)) {
    log("pre-trained model: " + path + " (cached)");
    return path;
  }
  torch::manual_seed(cfg.seed);
  fx::ViT model(model_options(cfg.model));
  model->to(device);
  if (cfg.pretrain_epochs > 0) {
    const auto spe = steps_per_epoch(data.pretrain.size(), cfg.batch_size);
    const auto total = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(std::llround(cfg.pretrain_epochs * static_cast<double>(spe))));
    auto blocks = frost::BlockMap::detect(*model);
    torch::optim::AdamW opt(frost::param_groups(blocks, *model),
                            torch::optim::AdamWOptions(cfg.pretrain_lr).weight_decay(cfg.weight_decay));
    // frost with nothing to freeze is just a warm-up + cosine schedule.
    using Ctl = frost::FreezeController<frost::criteria::Never, frost::schedules::Cosine,
                                        frost::stop::Never>;
    Ctl::Options o;
    o.controller().total_steps(total).warmup_steps(std::min<std::int64_t>(total / 10, 50));
    Ctl ctl(model, opt, blocks, o);
    log("pre-training on classes 0-4: " + std::to_string(data.pretrain.size()) + " images, " +
        std::to_string(total) + " steps (once; cached in " + path + ")");
    Progress bar("pre-train", total, cfg.quiet ? 0 : cfg.progress);
    const auto t0 = std::chrono::steady_clock::now();
    std::int64_t step = 0;
    for (std::int64_t epoch = 0; step < total; ++epoch) {
      fx::Batches bs(data.pretrain, cfg.batch_size, cfg.seed * 1000003ULL + 17 + epoch);
      for (std::int64_t b = 0; b < bs.size() && step < total; ++b, ++step) {
        auto batch = bs[b];
        ctl.before_step();
        opt.zero_grad();
        auto loss = torch::nn::functional::cross_entropy(model->forward(batch.images.to(device)),
                                                         batch.labels.to(device));
        loss.backward();
        ctl.after_backward();
        opt.step();
        ctl.after_step();
        if (bar.enabled() && (step % 10 == 0 || step + 1 == total)) {
          std::ostringstream e;
          e << "loss " << std::fixed << std::setprecision(3) << loss.item<double>();
          bar.update(step + 1, e.str());
        }
      }
    }
    bar.finish();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::ostringstream m;
    m << "pre-training done in " << std::fixed << std::setprecision(1) << secs << " s";
    log(m.str());
  }
  model->to(torch::kCPU);
  const std::string tmp = path + ".tmp";
  torch::save(model, tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot move " + tmp + " to " + path);
  return path;
}

// --- fine-tuning with one strategy ---------------------------------------------------

/// One validation of a run (at an epoch's end): where it stood, and when.
struct EvalPoint {
  std::int64_t step = 0;      ///< the last completed step
  double time_s = 0.0;        ///< fine-tuning time so far (sum of measured step times)
  double val_accuracy = 0.0;  ///< % on the validation split
  double val_loss = 0.0;
};

/// What a fine-tuning run produced (one row of the comparison table).
struct RunResult {
  std::string strategy;
  std::string composition;               ///< "criterion / schedule / stop"
  double test_accuracy = std::numeric_limits<double>::quiet_NaN();  ///< %
  double wall_s = 0.0;                   ///< fine-tuning loop only (no eval, no checkpoint I/O)
  std::int64_t steps = 0;                ///< steps run
  std::int64_t planned_steps = 0;        ///< the full fine-tuning budget
  double frozen_share = 0.0;             ///< mean over the steps run of frozen_fraction()
  double backward_avoided = 0.0;         ///< 1 - sum_t (1 - frozen_fraction_t) / planned_steps
  std::vector<std::string> block_names;
  std::vector<std::int64_t> freeze_step; ///< per block: step it froze, -1 never
  double peak_mem_mib = std::numeric_limits<double>::quiet_NaN();
  std::string peak_mem_kind;
  // Timing a user can trust (see docs/main-job.md): every step is timed; the
  // run's time is estimated per phase (steps with the same blocks skipped) as
  // steps x median step time, and the spread from the quartiles.
  double time_est_s = 0.0;               ///< sum over phases of steps x median
  double time_lo_s = 0.0;                ///< the same with each phase's 25th percentile
  double time_hi_s = 0.0;                ///< ... and 75th percentile
  double work_avoided = 0.0;             ///< block passes (forward + backward) not run, share of full's
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

namespace detail {

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  if (!f) throw std::runtime_error("cannot write " + path);
  f << text;
}

/// Keeps the lines of steps.jsonl for steps before `step` (a resumed run
/// rewrites what came after its checkpoint).
inline void truncate_log(const std::string& path, std::int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  while (std::getline(in, line)) {
    const auto k = line.find("\"step\":");
    if (k == std::string::npos) continue;
    const long long s = std::atoll(line.c_str() + k + 7);
    if (s < step) kept += line + "\n";
  }
  in.close();
  write_file_atomic(path, kept);
}

inline std::string timeline_csv(const frost::Timeline& tl) {
  std::ostringstream os;
  os << "step,kind,block,block_name,policy,statistic,detail\n";
  for (const auto& e : tl) {
    std::string d = e.detail;
    for (auto& c : d)
      if (c == '"') c = '\'';
    os << e.step << ',' << frost::to_string(e.kind) << ',' << e.block << ',' << e.block_name << ','
       << e.policy << ',' << csv_number(e.statistic) << ",\"" << d << "\"\n";
  }
  return os.str();
}

}  // namespace detail

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

/// Fine-tunes the pre-trained model on classes 5-9 with the strategy
/// FreezeController<C, S, P>, configured by `configure` (the strategy's
/// defaults) and then ctx.sets (the user's --set).
template <class C, class S, class P>
RunResult run_strategy(
    const RunContext& ctx, const std::string& name,
    const std::function<void(typename TrainController<C, S, P>::Options&, const Plan&,
                             const frost::BlockMap&)>& configure) {
  using Ctl = TrainController<C, S, P>;
  const TrainConfig& cfg = ctx.cfg;
  const TaskData& data = *ctx.data;
  const torch::Device device = ctx.device;
  const World single;
  const World& world = ctx.world ? *ctx.world : single;
  // This rank's shard and its part of the (global) batch.
  const fx::Dataset train = shard(data.train, world);
  const std::int64_t batch_size = cfg.batch_size / world.size;
  make_dirs(ctx.out_dir);
  const std::string ckpt_path = join(ctx.out_dir, "checkpoint.pt");
  const std::string log_path = join(ctx.out_dir, "steps.jsonl");

  RunResult r;
  r.strategy = name;
  r.out_dir = ctx.out_dir;

  // Model from the pre-trained weights, optimizer with one group per block.
  torch::manual_seed(cfg.seed + 1);
  fx::ViT model(model_options(cfg.model));
  torch::load(model, ctx.pretrained);
  {
    // A new classifier for the new classes: the pre-trained head only ever
    // saw classes 0-4 and pushed the logits of 5-9 down; start it from zero
    // (loss ln 10) and keep the body's features.
    torch::NoGradGuard ng;
    model->head->weight.zero_();
    model->head->bias.zero_();
  }
  model->to(device);
  model->train();
#ifdef FROST_TRAIN_DISTRIBUTED
  // Rank 0's weights everywhere; then gradients averaged over the ranks,
  // frozen blocks left out of the all-reduce.
  std::unique_ptr<frost::dist::GradientSync> grad_sync;
  if (world.parallel()) grad_sync = std::make_unique<frost::dist::GradientSync>(*model, world.group);
  std::int64_t comm_bytes = 0, comm_full_bytes = 0, full_numel = 0;
  for (const auto& p : model->parameters()) full_numel += p.numel();
#endif
  auto blocks = frost::BlockMap::detect(*model);
  torch::optim::AdamW opt(frost::param_groups(blocks, *model),
                          torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));

  const Plan plan = make_plan(cfg, data.train.size());
  typename Ctl::Options opts;
  opts.controller()
      .total_steps(plan.total_steps)
      .steps_per_epoch(plan.steps_per_epoch)
      .warmup_steps(std::min(cfg.warmup_steps, plan.total_steps - 1));
  if (configure) configure(opts, plan, blocks);
  for (const auto& kv : ctx.sets) Ctl::set_option(opts, kv.first, kv.second);
#ifdef FROST_TRAIN_DISTRIBUTED
  opts.reducer().group(world.group);  // every rank takes every decision
#endif
  Ctl ctl(model, opt, blocks, opts);
  r.config = ctl.describe();
  r.composition = concepts_names(r.config);
  for (const auto& b : ctl.blocks()) r.block_names.push_back(b.name);

  // Trainer state beyond the controller's.
  std::int64_t step = 0;
  double elapsed = 0.0, frozen_sum = 0.0, busy_sum = 0.0;
  std::vector<double> losses;

  if (ctx.resume && path_exists(ckpt_path)) {
    torch::serialize::InputArchive ar;
    frost::load_file(ar, ckpt_path, device);
    torch::serialize::InputArchive msub, osub, fsub;
    ar.read("model", msub);
    model->load(msub);
    ar.read("optimizer", osub);
    opt.load(osub);
    ar.read("frost", fsub);
    frost::load(ctl, fsub, ckpt_path);
    elapsed = frost::read_value(ar, "trainer.elapsed").toDouble();
    frozen_sum = frost::read_value(ar, "trainer.frozen_sum").toDouble();
    busy_sum = frost::read_value(ar, "trainer.busy_sum").toDouble();
    losses = frost::read_value(ar, "trainer.losses").toDoubleVector();
    step = ctl.step();
    if (world.root()) detail::truncate_log(log_path, step);
    r.resumed = true;
    ctx.log("[" + name + "] resumed from " + ckpt_path + " at step " + std::to_string(step));
  } else if (world.root()) {
    detail::write_text(log_path, "");
  }

  // Rank 0 keeps the log and the checkpoint (the ranks hold the same state).
  std::ofstream log;
  if (world.root()) {
    log.open(log_path, std::ios::app);
    if (!log) throw std::runtime_error("cannot write " + log_path);
  }

  auto save_checkpoint = [&]() {
    if (!world.root()) return;
    torch::serialize::OutputArchive ar, msub, osub, fsub;
    model->save(msub);
    opt.save(osub);
    frost::save(ctl, fsub);
    ar.write("model", msub);
    ar.write("optimizer", osub);
    ar.write("frost", fsub);
    ar.write("trainer.elapsed", c10::IValue(elapsed));
    ar.write("trainer.frozen_sum", c10::IValue(frozen_sum));
    ar.write("trainer.busy_sum", c10::IValue(busy_sum));
    ar.write("trainer.losses", c10::IValue(losses));
    frost::save_file(ar, ckpt_path);
  };

  // Per-step rows wait for their loss: losses stay on the device and are read
  // in one transfer every few steps (no synchronisation per step on a GPU).
  struct Row {
    std::int64_t step;
    double lr_head;
    std::vector<double> lr;
    std::int64_t frozen;
    double frozen_fraction;
    Json events = Json::array();
  };
  std::vector<Row> rows;
  std::vector<torch::Tensor> pending;
  auto flush = [&]() {
    if (rows.empty()) return;
    auto host = torch::stack(pending).to(torch::kCPU, torch::kDouble);
    world.mean_(host);  // the loss of the global batch: one collective per flush
    const double* lp = host.data_ptr<double>();
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& row = rows[i];
      losses.push_back(lp[i]);
      Json lr = Json::array();
      for (const double x : row.lr) lr.push_back(json_number(x));
      log << json_line({{"step", row.step},
                        {"epoch", row.step / plan.steps_per_epoch},
                        {"loss", json_number(lp[i])},
                        {"lr_head", json_number(row.lr_head)},
                        {"lr", std::move(lr)},
                        {"frozen", row.frozen},
                        {"frozen_fraction", json_number(row.frozen_fraction)},
                        {"events", row.events}});
    }
    log.flush();
    rows.clear();
    pending.clear();
  };

  std::size_t seen_events = ctl.timeline().size();
  Progress bar(name, plan.total_steps, cfg.quiet || !world.root() ? 0 : cfg.progress);
  // Flushes are collectives with several ranks: every rank flushes at the same
  // steps, whether or not it draws a progress bar.
  const bool ticks = world.parallel() || bar.enabled();
  reset_peak_memory(device);
  std::int64_t session_steps = 0;
  bool interrupted = false;

  fx::Batches epoch_batches(train, batch_size, data_seed(cfg, step / plan.steps_per_epoch));
  std::int64_t batches_epoch = step / plan.steps_per_epoch;
  auto t0 = std::chrono::steady_clock::now();
  while (step < plan.total_steps && !ctl.should_stop()) {
    if (cfg.max_steps >= 0 && session_steps >= cfg.max_steps) {
      interrupted = true;
      break;
    }
    const std::int64_t epoch = step / plan.steps_per_epoch;
    if (epoch != batches_epoch) {
      epoch_batches = fx::Batches(train, batch_size, data_seed(cfg, epoch));
      batches_epoch = epoch;
    }
    auto batch = epoch_batches[std::min(step % plan.steps_per_epoch, epoch_batches.size() - 1)];

    ctl.before_step();
    const double ff = ctl.frozen_fraction();
    frozen_sum += ff;
    busy_sum += 1.0 - ctl.no_grad_fraction();  // blocks in trial get no gradient either
    opt.zero_grad();
    const auto images = batch.images.to(device, /*non_blocking=*/true);
    const auto labels = batch.labels.to(device, /*non_blocking=*/true);
    at::Tensor logits;
    if constexpr (frost::concepts::uses_features<C>()) {
      // The class token the head sees (after the final norm), for criteria
      // that compare features (token similarity).
      const auto cls = model->forward_features(images).select(1, 0);
      ctl.observe_features(cls, labels);
      logits = model->head->forward(cls);
    } else {
      logits = model->forward(images);
    }
    auto loss = torch::nn::functional::cross_entropy(logits, labels);
    loss.backward();
#ifdef FROST_TRAIN_DISTRIBUTED
    if (grad_sync) {
      grad_sync->synchronize();  // before the criterion reads the gradients
      comm_bytes += grad_sync->bytes_last_step();
      comm_full_bytes += full_numel * 4;
    }
#endif
    ctl.after_backward();
    opt.step();
    ctl.after_step();

    Row row;
    row.step = step;
    row.lr_head = opt.param_groups().back().options().get_lr();
    for (std::size_t g = 0; g < ctl.blocks().size(); ++g)
      row.lr.push_back(opt.param_groups()[g].options().get_lr());
    row.frozen = ctl.num_frozen();
    row.frozen_fraction = ff;
    for (; seen_events < ctl.timeline().size(); ++seen_events) {
      const auto& e = ctl.timeline()[seen_events];
      row.events.push_back(Json{{"kind", frost::to_string(e.kind)},
                                {"step", e.step},
                                {"block", e.block},
                                {"block_name", e.block_name},
                                {"policy", e.policy},
                                {"statistic", json_number(e.statistic)},
                                {"detail", e.detail}});
      const bool froze = e.kind == frost::EventKind::freeze || e.kind == frost::EventKind::commit;
      if (froze && !cfg.quiet && !bar.enabled() && cfg.progress != 0)
        ctx.log("[" + name + "] step " + std::to_string(e.step) + ": froze " + e.block_name);
    }
    rows.push_back(std::move(row));
    pending.push_back(loss.detach());
    ++step;
    ++session_steps;

    const bool ckpt_due = cfg.checkpoint_every > 0 && step % cfg.checkpoint_every == 0 &&
                          step < plan.total_steps && !ctl.should_stop();
    const bool eval_due = cfg.eval_every > 0 && step % cfg.eval_every == 0;
    if (rows.size() >= 25 || ckpt_due || eval_due || (ticks && step % 10 == 0)) {
      {
        sync(device);
        elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        flush();
        if (eval_due) {
          const double acc = evaluate(model, data.test, device, world);
          log << json_line({{"step", step - 1}, {"test_accuracy", json_number(acc)}});
          log.flush();
        }
        if (ckpt_due) save_checkpoint();
        std::ostringstream e;
        if (!losses.empty())
          e << "loss " << std::fixed << std::setprecision(3) << losses.back() << " frozen "
            << ctl.num_frozen() << "/" << ctl.blocks().size();
        bar.update(step, e.str());
        t0 = std::chrono::steady_clock::now();
      }
    }
  }
  sync(device);
  elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  flush();
  bar.finish();
  save_checkpoint();  // also the final state: --resume of a finished run only evaluates

  const auto mem = peak_memory_mib(device);
  r.peak_mem_mib = mem.first;
  r.peak_mem_kind = mem.second;
  r.steps = step;
  r.planned_steps = plan.total_steps;
  r.wall_s = elapsed;
  r.frozen_share = step > 0 ? frozen_sum / static_cast<double>(step) : 0.0;
  r.backward_avoided = 1.0 - busy_sum / static_cast<double>(plan.total_steps);
  r.losses = losses;
  r.timeline = ctl.timeline();
  r.freeze_step.assign(ctl.blocks().size(), -1);
  for (const auto& e : r.timeline)
    if ((e.kind == frost::EventKind::freeze || e.kind == frost::EventKind::commit) &&
        e.block >= 0 && r.freeze_step[static_cast<std::size_t>(e.block)] < 0)
      r.freeze_step[static_cast<std::size_t>(e.block)] = e.step;
  r.completed = !interrupted;
  r.ranks = world.size;
#ifdef FROST_TRAIN_DISTRIBUTED
  r.comm_mib = static_cast<double>(comm_bytes) / (1024.0 * 1024.0);
  r.comm_full_mib = static_cast<double>(comm_full_bytes) / (1024.0 * 1024.0);
#endif
  if (world.parallel()) {
    // Every rank's own timeline: identical across ranks by construction.
    const std::string mine = join(ctx.out_dir, "rank" + std::to_string(world.rank));
    make_dirs(mine);
    detail::write_text(join(mine, "timeline.csv"), detail::timeline_csv(r.timeline));
  }
  if (world.root()) {
    detail::write_text(join(ctx.out_dir, "timeline.csv"), detail::timeline_csv(r.timeline));
    std::ostringstream c;
    for (const auto& kv : r.config) c << kv.first << "=" << kv.second << "\n";
    detail::write_text(join(ctx.out_dir, "config.txt"), c.str());
  }
  if (r.completed) r.test_accuracy = evaluate(model, data.test, device, world);
  return r;
}

}  // namespace frost_train
