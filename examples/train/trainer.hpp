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
#include <map>
#include <memory>
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

#include "frost/cache/activation_cache.hpp"
#include "frost/checkpoint.hpp"
#include "frost/frost.hpp"
#include "idx.hpp"
#include "system.hpp"

#include "accounting.hpp"
#include "cli.hpp"
#include "model.hpp"
#include "progress.hpp"
#include "world.hpp"

namespace frost_train {

namespace fx = frost_examples;

// --- small utilities ----------------------------------------------------------

inline bool path_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

using frost_examples::make_dirs;  // mkdir -p (examples/common/system.hpp)

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
  fx::Dataset val;       ///< train split, classes 5-9, the images after `train`'s: validation
  fx::Dataset test;      ///< t10k split, classes 5-9
};

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
                               std::int64_t train_limit, std::int64_t test_limit,
                               std::int64_t val_limit = 1000) {
  try {
    const auto train = fx::load_fashion_mnist(dir, /*train=*/true);
    const auto test = fx::load_fashion_mnist(dir, /*train=*/false);
    TaskData d;
    d.pretrain = fx::filter_classes(train, {0, 1, 2, 3, 4}, /*relabel=*/false);
    d.train = fx::filter_classes(train, {5, 6, 7, 8, 9}, /*relabel=*/false);
    {
      // Validation: held-out training images of classes 5-9 (never trained
      // on), the ones after the fine-tuning set; early stopping and the
      // time-to-accuracy picture read them, the test set stays untouched.
      const std::int64_t n = d.train.size();
      const std::int64_t n_val = std::max<std::int64_t>(0, std::min(val_limit, n / 2));
      const std::int64_t n_train =
          train_limit >= 0 ? std::min(train_limit, n - n_val) : n - n_val;
      d.val = {d.train.images.narrow(0, n_train, n_val), d.train.labels.narrow(0, n_train, n_val)};
      d.train = fx::take_first(d.train, n_train);
    }
    d.test = fx::filter_classes(test, {5, 6, 7, 8, 9}, /*relabel=*/false);
    if (pretrain_limit >= 0) d.pretrain = fx::take_first(d.pretrain, pretrain_limit);
    if (test_limit >= 0) d.test = fx::take_first(d.test, test_limit);
    if (d.pretrain.size() == 0 || d.train.size() == 0 || d.test.size() == 0 || d.val.size() == 0)
      throw fx::DataError("Fashion-MNIST in " + dir + " has no images for one of the tasks");
    return d;
  } catch (const fx::DataError& e) {
    throw with_package_hint(e);
  }
}

// --- model ----------------------------------------------------------------------

// model_options (the ViT's), TaskNet and the choice of the family: model.hpp

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

namespace detail {

/// Accuracy (%) and mean cross-entropy of `model` on `ds`. With several ranks
/// each takes its contiguous part and the sums are added (every rank gets
/// the result).
inline std::pair<double, double> validate(TaskNet& model, const fx::Dataset& ds,
                                          const torch::Device& device, const World& world,
                                          std::int64_t batch = 500) {
  torch::NoGradGuard ng;
  const bool was_training = model.module().is_training();
  model.module().eval();
  const std::int64_t begin = ds.size() * world.rank / world.size;
  const std::int64_t end = ds.size() * (world.rank + 1) / world.size;
  at::Tensor sums = at::zeros({2}, at::TensorOptions().dtype(at::kDouble).device(device));
  for (std::int64_t i = begin; i < end; i += batch) {
    const auto n = std::min(batch, end - i);
    auto x = ds.images.narrow(0, i, n).to(device);
    auto y = ds.labels.narrow(0, i, n).to(device);
    const auto logits = model.forward(x);
    sums[0] += logits.argmax(1).eq(y).sum().to(at::kDouble);
    sums[1] += torch::nn::functional::cross_entropy(
                   logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                   .to(at::kDouble);
  }
  if (was_training) model.module().train();
  world.sum_(sums);
  const auto h = sums.cpu();
  const double n = static_cast<double>(std::max<std::int64_t>(1, ds.size()));
  return {100.0 * h[0].item<double>() / n, h[1].item<double>() / n};
}

}  // namespace detail

/// Top-1 accuracy (in %) of `model` on `ds` (see detail::validate).
inline double evaluate(TaskNet& model, const fx::Dataset& ds, const torch::Device& device,
                       const World& world = World{}, std::int64_t batch = 500) {
  return detail::validate(model, ds, device, world, batch).first;
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

/// The weights a fine-tuning run starts from: frost-train's own pre-training
/// (the ViT, cached) or the family's file (effnet-lite0; a missing file is an
/// error naming the set-up step). Rank 0 calls it.
inline std::string starting_weights(const TrainConfig& cfg, const TaskData& data,
                                    const torch::Device& device,
                                    const std::function<void(const std::string&)>& log) {
  if (pretrains_itself(cfg.model)) return ensure_pretrained(cfg, data, device, log);
  const std::string path = effnet_weights_path(cfg);
  log("pretrained model: " + path + " (ImageNet weights; no pre-training)");
  return path;
}

// --- fine-tuning with one strategy ---------------------------------------------------

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
  double peak_mem_mib = std::numeric_limits<double>::quiet_NaN();
  std::string peak_mem_kind;
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

/// Fine-tunes the pre-trained model on classes 5-9 with the strategy
/// FreezeController<C, S, P>, configured by `configure` (the strategy's
/// defaults) and then ctx.sets (the user's --set).
template <class C, class S, class P>
class StrategyRun final : public Run {
 public:
  using Ctl = TrainController<C, S, P>;
  using Configure = std::function<void(typename Ctl::Options&, const Plan&, const frost::BlockMap&)>;

  StrategyRun(const RunContext& ctx, std::string name, const Configure& configure)
      : ctx_(ctx), cfg_(ctx_.cfg), data_(*ctx.data), device_(ctx.device),
        world_(ctx.world ? *ctx.world : single_), train_(shard(data_.train, world_)),
        batch_size_(cfg_.batch_size / world_.size), name_(std::move(name)),
        net_(make_model()), blocks_(frost::BlockMap::detect(net_->module())),
        opt_(frost::param_groups(blocks_, net_->module()),
             torch::optim::AdamWOptions(cfg_.lr).weight_decay(cfg_.weight_decay)),
        plan_(make_plan(cfg_, data_.train.size())), ctl_(net_->module(), opt_, blocks_, options(configure)),
        work_model_{net_->block_macs()},
        ckpt_path_(join(ctx.out_dir, "checkpoint.pt")), log_path_(join(ctx.out_dir, "steps.jsonl")) {
    make_dirs(ctx.out_dir);
    r_.strategy = name_;
    r_.seed = cfg_.seed;
    r_.epochs = cfg_.epochs;
    r_.out_dir = ctx.out_dir;
    if (work_model_.blocks() != ctl_.blocks().size())
      throw std::logic_error("frost-train: the model reports the cost of " +
                             std::to_string(work_model_.blocks()) + " blocks, the BlockMap has " +
                             std::to_string(ctl_.blocks().size()));
    r_.config = ctl_.describe();
    r_.composition = concepts_names(r_.config);
    for (const auto& b : ctl_.blocks()) r_.block_names.push_back(b.name);
    // The cache applies once a prefix is frozen for good, on inputs that are
    // the same every epoch (frost-train does not augment).
    if (cfg_.cache && cfg_.cache_mb > 0)
      cache_ = std::make_unique<frost::cache::ActivationCache>(
          train_.size(), frost::cache::ActivationCacheOptions().budget_mb(cfg_.cache_mb));
    r_.cached = cache_ != nullptr;
    if (ctx.resume && path_exists(ckpt_path_)) resume();
    else if (world_.root()) detail::write_text(log_path_, "");
    if (world_.root()) {
      log_.open(log_path_, std::ios::app);
      if (!log_) throw std::runtime_error("cannot write " + log_path_);
    }
    seen_events_ = ctl_.timeline().size();
    batches_epoch_ = step_ / plan_.steps_per_epoch;
    batches_ = std::make_unique<fx::Batches>(train_, batch_size_, data_seed(cfg_, batches_epoch_));
  }

  const std::string& name() const override { return name_; }
  std::int64_t steps_done() const override { return step_; }
  std::int64_t planned_steps() const override { return plan_.total_steps; }
  double measured_s() const override { return bill_.measured_s(); }
  const std::vector<EvalPoint>& evals() const override { return r_.evals; }
  bool done() const override {
    return step_ >= plan_.total_steps || ctl_.should_stop() ||
           (cfg_.max_steps >= 0 && session_steps_ >= cfg_.max_steps);
  }

  void step() override {
    // Everything the step causes is timed: the batch, the cache's fills and
    // catch-up passes, the criterion's work (a predictor stage included).
    const auto t0 = std::chrono::steady_clock::now();
    // Peak device memory: the strategies interleave, so the counter restarts
    // with each of this strategy's steps (a host call, no synchronisation).
    if (device_.is_cuda()) reset_peak_memory(device_);
    const fx::Batch batch = next_batch();
    ctl_.before_step();
    StepShape shape = training_blocks();  // the states after_step may change
    const double ff = ctl_.frozen_fraction();
    const double no_grad = ctl_.no_grad_fraction();
    frozen_sum_ += ff;
    busy_sum_ += 1.0 - no_grad;  // blocks in trial get no gradient either
    opt_.zero_grad();
    const CacheMark mark = cache_mark();
    const at::Tensor loss = forward_backward(batch, mark.k);
    grads_.after_backward();  // before the criterion reads the gradients (several ranks)
    ctl_.after_backward();
    opt_.step();
    ctl_.after_step();
    sync(device_);  // the step's time, not the queue's (CUDA)
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (device_.is_cuda()) {  // the largest of its steps (every strategy's weights resident)
      const auto mem = peak_memory_mib(device_);
      if (!(r_.peak_mem_mib >= mem.first)) r_.peak_mem_mib = mem.first;
      r_.peak_mem_kind = mem.second;
    }

    account(shape, batch, mark, dt);
    record(ff, dt, loss);
    ++step_;
    ++session_steps_;
    after_step_io();
  }

  RunResult finish() override {
    flush();
    save_checkpoint();  // also the final state: --resume of a finished run only evaluates
    r_.steps = step_;
    r_.planned_steps = plan_.total_steps;
    r_.wall_s = bill_.step_s;
    r_.measured_s = bill_.measured_s();
    r_.validation_s = bill_.validation_s;
    r_.frozen_share = step_ > 0 ? frozen_sum_ / static_cast<double>(step_) : 0.0;
    r_.backward_avoided = 1.0 - busy_sum_ / static_cast<double>(plan_.total_steps);
    r_.work_avoided = bill_.work_avoided_total(plan_.total_steps);
    r_.work_avoided_per_step = bill_.work_avoided_per_step();
    r_.catch_up_share = bill_.full_work_run > 0 ? bill_.catch_up_work / bill_.full_work_run : 0.0;
    r_.steps_not_run = RunBill::steps_not_run(step_, plan_.total_steps);
    // The estimate: per phase steps x median (and quartiles), plus the
    // validation it needed as measured; see docs/main-job.md.
    r_.time_est_s = bill_.estimate_s(0.5) + bill_.validation_s;
    r_.time_lo_s = bill_.estimate_s(0.25) + bill_.validation_s;
    r_.time_hi_s = bill_.estimate_s(0.75) + bill_.validation_s;
    r_.losses = losses_;
    r_.timeline = ctl_.timeline();
    r_.freeze_step.assign(ctl_.blocks().size(), -1);
    for (const auto& e : r_.timeline)
      if ((e.kind == frost::EventKind::freeze || e.kind == frost::EventKind::commit) &&
          e.block >= 0 && r_.freeze_step[static_cast<std::size_t>(e.block)] < 0)
        r_.freeze_step[static_cast<std::size_t>(e.block)] = e.step;
    r_.completed = step_ >= plan_.total_steps || ctl_.should_stop();
    r_.ranks = world_.size;
    if (cache_) {
      const auto& st = cache_->stats();
      r_.cache_hits = cache_hits0_ + st.hits;  // with the sessions before a resume
      r_.cache_misses = cache_misses0_ + st.misses;
      r_.cache_samples = st.cached_samples;
      r_.cache_mib = static_cast<double>(st.bytes) / (1024.0 * 1024.0);
    }
    r_.comm_mib = grads_.mib();
    r_.comm_full_mib = grads_.full_mib();
    if (world_.parallel()) {
      // Every rank's own timeline: identical across ranks by construction.
      const std::string mine = join(ctx_.out_dir, "rank" + std::to_string(world_.rank));
      make_dirs(mine);
      detail::write_text(join(mine, "timeline.csv"), detail::timeline_csv(r_.timeline));
    }
    if (world_.root()) {
      detail::write_text(join(ctx_.out_dir, "timeline.csv"), detail::timeline_csv(r_.timeline));
      std::ostringstream c;
      for (const auto& kv : r_.config) c << kv.first << "=" << kv.second << "\n";
      detail::write_text(join(ctx_.out_dir, "config.txt"), c.str());
    }
    if (r_.completed) r_.test_accuracy = evaluate(*net_, data_.test, device_, world_);
    if (!r_.evals.empty()) r_.val_accuracy = r_.evals.back().val_accuracy;
    return r_;
  }

 private:
  struct Row {
    std::int64_t step;
    double lr_head;
    std::vector<double> lr;
    std::int64_t frozen;
    double frozen_fraction;
    double step_ms;
    Json events = Json::array();
  };

  /// Where the activation cache stood before a step's forward pass.
  struct CacheMark {
    std::int64_t k = 0;  ///< the frozen prefix (frozen for good, never a trial) it serves
    std::int64_t hits = 0, advanced = 0, depth = 0;
  };

  /// This step's batch (a new shuffle at each epoch).
  fx::Batch next_batch() {
    const std::int64_t epoch = step_ / plan_.steps_per_epoch;
    if (epoch != batches_epoch_) {
      batches_ = std::make_unique<fx::Batches>(train_, batch_size_, data_seed(cfg_, epoch));
      batches_epoch_ = epoch;
    }
    return (*batches_)[std::min(step_ % plan_.steps_per_epoch, batches_->size() - 1)];
  }

  /// Which blocks get a gradient this step.
  StepShape training_blocks() const {
    StepShape shape;
    shape.trains.resize(ctl_.blocks().size());
    for (std::size_t b = 0; b < shape.trains.size(); ++b)
      shape.trains[b] = ctl_.block_state(b) == frost::BlockState::training;
    return shape;
  }

  CacheMark cache_mark() const {
    if (!cache_) return {};
    const auto& st = cache_->stats();
    return {ctl_.frozen_prefix(), st.hits, st.advanced, st.depth};
  }

  /// The forward pass (the frozen prefix from the cache) and the backward
  /// pass; the loss stays on the device.
  at::Tensor forward_backward(const fx::Batch& batch, std::int64_t k) {
    const auto labels = batch.labels.to(device_, /*non_blocking=*/true);
    at::Tensor h = cache_ ? cache_->activations(*net_, batch.index, batch.images.to(device_), k)
                          : batch.images.to(device_, /*non_blocking=*/true);
    at::Tensor logits;
    if constexpr (frost::concepts::uses_features<C>()) {
      // The class token the head sees (after the final norm), for criteria
      // that compare features (token similarity).
      const auto cls = net_->features_from(h, k);
      ctl_.observe_features(cls, labels);
      logits = net_->head(cls);
    } else {
      logits = net_->forward_range(h, k, frost::cache::kOutput);
    }
    auto loss = torch::nn::functional::cross_entropy(logits, labels);
    loss.backward();
    return loss;
  }

  // The step's work, FLOP-weighted (accounting.hpp): forward through the
  // blocks not served from the cache, backward down to the first block with
  // a gradient; a catch-up pass of the cache through newly frozen blocks
  // counts against the strategy.
  void account(StepShape& shape, const fx::Batch& batch, const CacheMark& mark, double dt) {
    const std::int64_t hits = cache_ ? cache_->stats().hits - mark.hits : 0;
    const double hit_share =
        cache_ && mark.k > 0
            ? static_cast<double>(hits) /
                  static_cast<double>(std::max<std::int64_t>(1, batch.index.numel()))
            : 0.0;
    shape.samples = batch.index.numel();
    shape.cached_depth = mark.k;
    shape.cache_hits = hits;
    const double catch_up =
        cache_ ? catch_up_work(work_model_, cache_->stats().advanced - mark.advanced, mark.depth,
                               cache_->stats().depth)
               : 0.0;
    std::int64_t no_grad_blocks = 0;
    for (const bool t : shape.trains) no_grad_blocks += t ? 0 : 1;
    // The phase: which blocks this step skipped (a step's cost depends on it).
    const auto phase = no_grad_blocks * 1000 + mark.k * 10 + (hit_share >= 1.0 ? 1 : 0);
    bill_.add_step(work_model_, shape, dt, phase, catch_up);
  }

  /// The step's row of steps.jsonl, written at the next flush (its loss is
  /// read then), with the timeline's new events.
  void record(double frozen_fraction, double dt, const at::Tensor& loss) {
    Row row;
    row.step = step_;
    row.lr_head = opt_.param_groups().back().options().get_lr();
    for (std::size_t g = 0; g < ctl_.blocks().size(); ++g)
      row.lr.push_back(opt_.param_groups()[g].options().get_lr());
    row.frozen = ctl_.num_frozen();
    row.frozen_fraction = frozen_fraction;
    row.step_ms = dt * 1000.0;
    for (; seen_events_ < ctl_.timeline().size(); ++seen_events_) {
      const auto& e = ctl_.timeline()[seen_events_];
      row.events.push_back(Json{{"kind", frost::to_string(e.kind)},
                                {"step", e.step},
                                {"block", e.block},
                                {"block_name", e.block_name},
                                {"policy", e.policy},
                                {"statistic", json_number(e.statistic)},
                                {"detail", e.detail}});
    }
    rows_.push_back(std::move(row));
    pending_.push_back(loss.detach());
  }

  // After a completed step: the log, and at an epoch's end the validation;
  // the test accuracy (--eval-every) and the checkpoint when due. Flushes
  // are collectives with several ranks: every rank flushes at the same steps.
  void after_step_io() {
    const bool epoch_end = step_ % plan_.steps_per_epoch == 0 || step_ == plan_.total_steps;
    const bool ckpt_due = cfg_.checkpoint_every > 0 && step_ % cfg_.checkpoint_every == 0 &&
                          step_ < plan_.total_steps;
    const bool eval_due = cfg_.eval_every > 0 && step_ % cfg_.eval_every == 0;
    if (rows_.size() < 25 && !ckpt_due && !eval_due && !epoch_end) return;
    flush();
    if (epoch_end) validate();
    if (eval_due) {
      const double acc = evaluate(*net_, data_.test, device_, world_);
      log_ << json_line({{"step", step_ - 1}, {"test_accuracy", json_number(acc)}});
      log_.flush();
    }
    if (ckpt_due && !ctl_.should_stop()) save_checkpoint();
  }

  std::unique_ptr<TaskNet> make_model() {
    // Model from the pre-trained weights with a new head (model.hpp),
    // optimizer with one group per block.
    torch::manual_seed(cfg_.seed + 1);
    auto net = make_task_net(cfg_, ctx_.pretrained);
    net->module().to(device_);
    net->module().train();
    // With several ranks: rank 0's weights everywhere; then gradients averaged
    // over the ranks, frozen blocks left out of the all-reduce.
    grads_ = world_.gradient_exchange(net->module());
    return net;
  }

  typename Ctl::Options options(const Configure& configure) {
    typename Ctl::Options opts;
    opts.controller()
        .total_steps(plan_.total_steps)
        .steps_per_epoch(plan_.steps_per_epoch)
        .warmup_steps(std::min(cfg_.warmup_steps, plan_.total_steps - 1));
    if (configure) configure(opts, plan_, blocks_);
    for (const auto& kv : ctx_.sets) Ctl::set_option(opts, kv.first, kv.second);
    world_.bind_reducer(opts.reducer());  // every rank takes every decision
    return opts;
  }

  void resume() {
    torch::serialize::InputArchive ar;
    frost::load_file(ar, ckpt_path_, device_);
    torch::serialize::InputArchive msub, osub, fsub;
    ar.read("model", msub);
    net_->module().load(msub);
    ar.read("optimizer", osub);
    opt_.load(osub);
    ar.read("frost", fsub);
    frost::load(ctl_, fsub, ckpt_path_);
    bill_.step_s = frost::read_value(ar, "trainer.elapsed").toDouble();
    frozen_sum_ = frost::read_value(ar, "trainer.frozen_sum").toDouble();
    busy_sum_ = frost::read_value(ar, "trainer.busy_sum").toDouble();
    losses_ = frost::read_value(ar, "trainer.losses").toDoubleVector();
    // What the report adds up over the whole run (absent in checkpoints of
    // an older frost-train: then only this session's steps count).
    c10::IValue v;
    if (ar.try_read("trainer.world_size", v) && v.toInt() != world_.size)
      throw std::runtime_error("--resume: " + ckpt_path_ + " was trained on " +
                               std::to_string(v.toInt()) + " rank(s); resume it on the same " +
                               "number (this is " + std::to_string(world_.size) + ")");
    // The work account (absent before the FLOP-weighted one: then it counts
    // this session's steps only, like the other sums of older checkpoints).
    if (ar.try_read("trainer.bill", v)) {
      const auto b = v.toDoubleVector();  // step work, catch-up, full's, steps, validation (needed, not)
      if (b.size() == 6) {
        bill_.step_work = b[0];
        bill_.catch_up_work = b[1];
        bill_.full_work_run = b[2];
        bill_.steps = static_cast<std::int64_t>(b[3]);
        bill_.validation_s = b[4];
        bill_.validation_untimed_s = b[5];
      }
    }
    if (ar.try_read("trainer.phase_keys", v)) {
      const auto keys = v.toIntVector();
      c10::IValue counts, times;
      if (ar.try_read("trainer.phase_counts", counts) && ar.try_read("trainer.phase_times", times)) {
        const auto n = counts.toIntVector();
        const auto t = times.toDoubleVector();
        std::size_t at = 0;
        for (std::size_t i = 0; i < keys.size() && i < n.size(); ++i) {
          auto& dst = bill_.phase_times[keys[i]];
          for (std::int64_t j = 0; j < n[i] && at < t.size(); ++j) dst.push_back(t[at++]);
        }
      }
    }
    if (ar.try_read("trainer.evals", v)) {
      const auto e = v.toDoubleVector();  // step, time, accuracy, loss
      for (std::size_t i = 0; i + 3 < e.size(); i += 4)
        r_.evals.push_back({static_cast<std::int64_t>(e[i]), e[i + 1], e[i + 2], e[i + 3]});
    }
    if (ar.try_read("trainer.cache_hits", v)) cache_hits0_ = v.toInt();
    if (ar.try_read("trainer.cache_misses", v)) cache_misses0_ = v.toInt();
    step_ = ctl_.step();
    if (world_.root()) detail::truncate_log(log_path_, step_);
    r_.resumed = true;
    ctx_.log("[" + name_ + "] resumed from " + ckpt_path_ + " at step " + std::to_string(step_));
  }

  void save_checkpoint() {
    if (!world_.root()) return;  // the ranks hold the same state
    torch::serialize::OutputArchive ar, msub, osub, fsub;
    net_->module().save(msub);
    opt_.save(osub);
    frost::save(ctl_, fsub);
    ar.write("model", msub);
    ar.write("optimizer", osub);
    ar.write("frost", fsub);
    ar.write("trainer.elapsed", c10::IValue(bill_.step_s));
    ar.write("trainer.frozen_sum", c10::IValue(frozen_sum_));
    ar.write("trainer.busy_sum", c10::IValue(busy_sum_));
    ar.write("trainer.losses", c10::IValue(losses_));
    ar.write("trainer.world_size", c10::IValue(static_cast<std::int64_t>(world_.size)));
    ar.write("trainer.bill",
             c10::IValue(std::vector<double>{bill_.step_work, bill_.catch_up_work,
                                             bill_.full_work_run, static_cast<double>(bill_.steps),
                                             bill_.validation_s, bill_.validation_untimed_s}));
    std::vector<std::int64_t> keys, counts;
    std::vector<double> times, evals;
    for (const auto& kv : bill_.phase_times) {
      keys.push_back(kv.first);
      counts.push_back(static_cast<std::int64_t>(kv.second.size()));
      times.insert(times.end(), kv.second.begin(), kv.second.end());
    }
    for (const auto& e : r_.evals)
      evals.insert(evals.end(), {static_cast<double>(e.step), e.time_s, e.val_accuracy, e.val_loss});
    ar.write("trainer.phase_keys", c10::IValue(keys));
    ar.write("trainer.phase_counts", c10::IValue(counts));
    ar.write("trainer.phase_times", c10::IValue(times));
    ar.write("trainer.evals", c10::IValue(evals));
    ar.write("trainer.cache_hits", c10::IValue(cache_hits0_ + (cache_ ? cache_->stats().hits : 0)));
    ar.write("trainer.cache_misses",
             c10::IValue(cache_misses0_ + (cache_ ? cache_->stats().misses : 0)));
    frost::save_file(ar, ckpt_path_);
  }

  // Per-step rows wait for their loss: losses stay on the device and are read
  // in one transfer every few steps (no synchronisation per step on a GPU).
  void flush() {
    if (rows_.empty()) return;
    auto host = torch::stack(pending_).to(torch::kCPU, torch::kDouble);
    world_.mean_(host);  // the loss of the global batch: one collective per flush
    const double* lp = host.data_ptr<double>();
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      const auto& row = rows_[i];
      losses_.push_back(lp[i]);
      Json lr = Json::array();
      for (const double x : row.lr) lr.push_back(json_number(x));
      log_ << json_line({{"step", row.step},
                         {"epoch", row.step / plan_.steps_per_epoch},
                         {"loss", json_number(lp[i])},
                         {"lr_head", json_number(row.lr_head)},
                         {"lr", std::move(lr)},
                         {"frozen", row.frozen},
                         {"frozen_fraction", json_number(row.frozen_fraction)},
                         {"step_ms", json_number(row.step_ms)},
                         {"events", row.events}});
      const bool froze = std::any_of(row.events.begin(), row.events.end(), [](const Json& e) {
        return e["kind"] == "freeze" || e["kind"] == "commit";
      });
      if (froze && !cfg_.quiet && cfg_.progress == 0)
        ctx_.log("[" + name_ + "] step " + std::to_string(row.step) + ": froze " +
                 row.events.back()["block_name"].template get<std::string>());
    }
    log_.flush();
    rows_.clear();
    pending_.clear();
  }

  // At an epoch's end: validation accuracy and loss; the loss goes to the
  // controller (early stopping listens to it). Timed, and counted in the
  // strategy's measured time when its decisions listen to it.
  void validate() {
    const auto t0 = std::chrono::steady_clock::now();
    const auto [acc, loss] = detail::validate(*net_, data_.val, device_, world_);
    ctl_.report_validation(loss);
    sync(device_);
    bill_.add_validation(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
        ctx_.validation_needed);
    r_.evals.push_back({step_ - 1, bill_.measured_s(), acc, loss});
    log_ << json_line({{"step", step_ - 1},
                       {"val_accuracy", json_number(acc)},
                       {"val_loss", json_number(loss)},
                       {"time_s", json_number(bill_.measured_s())}});
    log_.flush();
  }

  RunContext ctx_;
  const TrainConfig& cfg_;
  const TaskData& data_;
  torch::Device device_;
  World single_;
  const World& world_;
  fx::Dataset train_;  // this rank's shard
  std::int64_t batch_size_;
  std::string name_;
  GradientExchange grads_;  // the all-reduce of the gradients (world.hpp)
  std::unique_ptr<TaskNet> net_;  // the model behind the seam (model.hpp)
  frost::BlockMap blocks_;
  torch::optim::AdamW opt_;
  Plan plan_;
  Ctl ctl_;
  WorkModel work_model_;  // each block's forward cost (the model's block_macs)
  std::unique_ptr<frost::cache::ActivationCache> cache_;
  std::string ckpt_path_, log_path_;
  std::ofstream log_;
  RunResult r_;
  std::int64_t step_ = 0, session_steps_ = 0, batches_epoch_ = 0;
  std::unique_ptr<fx::Batches> batches_;
  double frozen_sum_ = 0.0, busy_sum_ = 0.0;
  RunBill bill_;  // work and time, step by step (accounting.hpp)
  std::int64_t cache_hits0_ = 0, cache_misses0_ = 0;  // from the sessions before a resume
  std::vector<double> losses_;
  std::vector<Row> rows_;
  std::vector<torch::Tensor> pending_;
  std::size_t seen_events_ = 0;
};

/// The whole run of one strategy, start to finish (no interleaving).
template <class C, class S, class P>
RunResult run_strategy(const RunContext& ctx, const std::string& name,
                       const typename StrategyRun<C, S, P>::Configure& configure) {
  StrategyRun<C, S, P> run(ctx, name, configure);
  while (!run.done()) run.step();
  return run.finish();
}

}  // namespace frost_train
