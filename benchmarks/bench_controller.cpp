// benchmarks/bench_controller.cpp — what the FreezeController costs per step.
//
// Three families (names are `key:value` segments, so --benchmark_filter can
// pick any slice: 'device:cpu', 'criterion:GradientNormChange', '^train/'):
//
//   ctl/model:M/criterion:C/schedule:S/mode:step|decision/device:D
//       The controller alone: before_step + after_backward + after_step on a
//       ViT whose gradients were set once to random tensors (so observe() has
//       real work), no forward/backward/optimizer. mode:step configures every
//       criterion so that no decision point falls in the run (the cost paid on
//       every step); mode:decision makes every step a decision point (the
//       cost paid once per evaluation interval). Nothing ever freezes: a
//       benchmark whose run froze a block stops with an error.
//       Models: w64-d12/24/48 (ViT of width 64 with 12/24/48 blocks, CPU),
//       tiny (the example's ViT, CPU) and base (ViT-B/16, CUDA only).
//
//   train/model:M/criterion:C/schedule:S/device:D
//       A full training step (forward, cross-entropy, backward, AdamW) with
//       and without the controller, interleaved so that both see the same
//       machine state. Counters:
//         plain_ms           step without the controller (median)
//         step_ms            step with the controller (median)
//         ctl_ms             host time of the controller's three calls, read
//                            with a steady clock around each call (median)
//         overhead_pct       100 * ctl_ms / plain_ms (the figure the targets
//                            apply to; no decision point falls in the run)
//         overhead_diff_pct  100 * (step_ms - plain_ms) / plain_ms (noisy)
//         overhead_vs_min_pct 100 * ctl_ms / the fastest plain step (the
//                            figure for an idle machine; conservative)
//       CPU: model tiny (ViTOptions::tiny(), batch 128 of 28x28x1, the example
//       trainer's default). CUDA: model base (ViTOptions::base(), batch 64 of
//       224x224x3, fp32), timed in rounds of N steps with a synchronisation
//       only at the round boundaries; there ctl_ms is the host-side (launch)
//       time and overhead_diff_pct also contains the controller's GPU work.
//       train/.../criterion:none is the plain step alone, for reference.
//
// Threads: as frost-train sets them: on the CPU one intra-op thread (and OpenBLAS
// single-threaded, examples/common/system.hpp), with a GPU one per core
// (FROST_BENCH_THREADS=N to change). FROST_BENCH_OPS=1 prints the ATen calls
// of one controller step.
//
// scripts/bench-table.py turns the JSON output into the overhead table
// (docs/benchmarks.md). Adding a criterion is one FROST_BENCH_CRITERION line.
#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <benchmark/benchmark.h>
#include <torch/cuda.h>
#include <torch/optim/adamw.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "frost/frost.hpp"
#include "frost/predictor.hpp"
#include "system.hpp"
#include "vit.hpp"

#if __has_include("frost/criteria/gradient_threshold.hpp")
#include "frost/criteria/gradient_threshold.hpp"
#define FROST_BENCH_HAVE_GRADIENT_THRESHOLD 1
#endif
#if __has_include("frost/criteria/gradient_norm_change.hpp")
#include "frost/criteria/gradient_norm_change.hpp"
#define FROST_BENCH_HAVE_GRADIENT_NORM_CHANGE 1
#endif

namespace {

using Clock = std::chrono::steady_clock;
using frost_examples::ViT;
using frost_examples::ViTOptions;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---------------------------------------------------------------------------
// The criteria under test.
// ---------------------------------------------------------------------------

/// What a criterion's options may depend on.
struct Ctx {
  std::int64_t num_blocks = 0;  ///< blocks in the map (stem included)
  bool decide_every_step = false;  ///< mode:decision: every step is a decision point
};

/// Steps per epoch given to the controller: "never" (no decision point in a
/// run) or 1 (every step ends an epoch).
constexpr std::int64_t kNoDecision = std::int64_t{1} << 40;
std::int64_t steps_per_epoch(const Ctx& c) { return c.decide_every_step ? 1 : kNoDecision; }

struct CaseInfo {
  std::string label;
  std::function<void(const std::string& label)> register_all;
};
std::vector<CaseInfo>& cases() {
  static std::vector<CaseInfo> c;
  return c;
}
template <class Case>
void register_case();

// FROST_BENCH_CRITERION(Id, "label", CriterionType, decisions per epoch in the
//                       example's configuration, options expression using `ctx`)
// The options must make the criterion evaluate at its decision points (epoch
// ends, see steps_per_epoch()) without ever asking to freeze a block.
#define FROST_BENCH_CRITERION(ID, LABEL, TYPE, DECISIONS_PER_EPOCH, ...)                \
  struct ID {                                                                           \
    using type = TYPE;                                                                  \
    static constexpr const char* label = LABEL;                                         \
    static constexpr double decisions_per_epoch = DECISIONS_PER_EPOCH;                  \
    static typename TYPE::Options options(const Ctx& ctx) {                             \
      (void)ctx;                                                                        \
      return __VA_ARGS__;                                                               \
    }                                                                                   \
  };                                                                                    \
  const bool ID##_registered = (cases().push_back({LABEL, [](const std::string&) {      \
                                  register_case<ID>();                                  \
                                }}),                                                    \
                                true);

namespace fc = frost::criteria;
FROST_BENCH_CRITERION(CNever, "Never", fc::Never, 0, fc::NeverOptions{})
// Every block scheduled far in the future: before_step() checks them all, every step.
FROST_BENCH_CRITERION(CAtSteps, "AtSteps", fc::AtSteps, 0,
                      fc::AtStepsOptions::prefix(ctx.num_blocks, kNoDecision))
#ifdef FROST_BENCH_HAVE_GRADIENT_THRESHOLD
// threshold 0: evaluates once per epoch (DyF) but never freezes (mean |g| > 0).
FROST_BENCH_CRITERION(CGradThreshold, "GradientThreshold", fc::GradientThreshold, 1,
                      fc::GradientThresholdOptions().threshold(0.0))
#endif
#ifdef FROST_BENCH_HAVE_GRADIENT_NORM_CHANGE
// percentile 0: the bar is the smallest eta and no eta is below it, so the
// criterion evaluates (AutoFreeze: 4 times per epoch) but never freezes. Its
// interval in steps follows the decision points of steps_per_epoch(): every
// step in mode:decision (4 evaluations in a 1-step epoch is refused), never
// in mode:step.
FROST_BENCH_CRITERION(CGradNormExact, "GradientNormChange-exact", fc::GradientNormChange, 4,
                      fc::GradientNormChangeOptions().percentile(0.0).accumulate(
                          fc::Accumulate::exact).interval(steps_per_epoch(ctx)))
FROST_BENCH_CRITERION(CGradNormCheap, "GradientNormChange-cheap", fc::GradientNormChange, 4,
                      fc::GradientNormChangeOptions().percentile(0.0).accumulate(
                          fc::Accumulate::cheap).interval(steps_per_epoch(ctx)))
#endif
// R = C = "never": every step records (the hot path: a one-hot, a matmul and a
// column sum into the class memory), no phase ever ends, nothing is put on trial.
FROST_BENCH_CRITERION(CTokenSim, "TokenSimilarity", fc::TokenSimilarity, 0,
                      fc::TokenSimilarityOptions().num_classes(10).record_steps(kNoDecision)
                          .compare_steps(kNoDecision))

// SmartFRZ: records every 2 steps (the shipped predictor's cadence) into the
// ring; at each epoch's end every block with a record is judged by the
// predictor (min_records 1: the stage runs from the first epoch on). A
// threshold this close to 1 never freezes a block.
FROST_BENCH_CRITERION(CAttnPredictor, "AttentionPredictor", fc::AttentionPredictor, 1,
                      fc::AttentionPredictorOptions().threshold(0.9999999).min_records(1))

template <class Criterion, class Schedule>
using Controller = frost::FreezeController<Criterion, Schedule, frost::stop::Never>;

template <class Case, class Schedule>
typename Controller<typename Case::type, Schedule>::Options controller_options(const Ctx& ctx) {
  typename Controller<typename Case::type, Schedule>::Options o;
  // total_steps so large that FreezeOut freezes nothing during a benchmark
  // (its per-step arithmetic is the same at every step).
  o.controller().total_steps(kNoDecision).steps_per_epoch(steps_per_epoch(ctx));
  o.criterion(Case::options(ctx));
  return o;
}

using FreezeOutCS = frost::schedules::FreezeOut<frost::Cubic, frost::Scaled>;
template <class S>
const char* schedule_label();
template <>
const char* schedule_label<frost::schedules::Constant>() { return "Constant"; }
template <>
const char* schedule_label<FreezeOutCS>() { return "FreezeOut-Cubic-Scaled"; }

// ---------------------------------------------------------------------------
// Models.
// ---------------------------------------------------------------------------

struct ModelSpec {
  std::string name;
  ViTOptions vit;
  std::int64_t batch = 0;            ///< for train/ benchmarks
  std::int64_t steps_per_epoch = 0;  ///< the real run's epoch, for amortising decisions
};
ModelSpec width64(std::int64_t depth) {
  return {"w64-d" + std::to_string(depth), ViTOptions::tiny().depth(depth), 0, 0};
}
// Fashion-MNIST: 60000 images / 128 = 469 steps per epoch (the example trainer).
ModelSpec tiny() { return {"tiny", ViTOptions::tiny(), 128, 469}; }
// ImageNet-1k: 1281167 images / 64 = 20019 steps per epoch.
ModelSpec base() { return {"base", ViTOptions::base(), 64, 20019}; }

struct Setup {
  ViT model{nullptr};
  frost::BlockMap blocks;
  std::unique_ptr<torch::optim::AdamW> opt;
};
Setup make_setup(const ModelSpec& m, const at::Device& dev) {
  torch::manual_seed(0);
  Setup s;
  s.model = ViT(m.vit);
  s.model->to(dev);
  s.model->train();
  s.blocks = frost::BlockMap::detect(*s.model);
  s.opt = std::make_unique<torch::optim::AdamW>(frost::param_groups(s.blocks, *s.model),
                                                torch::optim::AdamWOptions(1e-3));
  return s;
}

void sync(const at::Device& dev) {
  if (dev.is_cuda()) torch::cuda::synchronize();
}

// ---------------------------------------------------------------------------
// ATen op counting (untimed pass) — how many dispatcher calls one step makes.
// ---------------------------------------------------------------------------
struct OpCounter {
  static std::int64_t& count() {
    static thread_local std::int64_t c = 0;
    return c;
  }
  static std::map<std::string, std::int64_t>& names() {
    static thread_local std::map<std::string, std::int64_t> n;
    return n;
  }
  static bool& by_name() {
    static thread_local bool b = false;
    return b;
  }
  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    ++count();
    if (by_name()) ++names()[fn.name()];
    return nullptr;
  }
  explicit OpCounter(bool with_names) {
    count() = 0;
    names().clear();
    by_name() = with_names;
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback(&OpCounter::on_start).scopes({at::RecordScope::FUNCTION}));
  }
  ~OpCounter() { at::removeCallback(handle_); }
  OpCounter(const OpCounter&) = delete;
  OpCounter& operator=(const OpCounter&) = delete;

 private:
  at::CallbackHandle handle_;
};

/// FROST_BENCH_OPS=1 prints the ATen ops of one controller step per benchmark.
bool print_ops() {
  const char* e = std::getenv("FROST_BENCH_OPS");
  return e != nullptr && *e != '\0' && *e != '0';
}

// ---------------------------------------------------------------------------
// ctl/: the controller alone.
// ---------------------------------------------------------------------------
template <class Case, class Schedule>
void bm_controller(benchmark::State& state, std::string name, ModelSpec m, at::Device dev,
                   bool decision) {
  Setup s = make_setup(m, dev);
  {
    at::NoGradGuard ng;
    for (auto& p : s.model->parameters()) p.mutable_grad() = at::randn_like(p);
  }
  Ctx ctx;
  ctx.num_blocks = static_cast<std::int64_t>(s.blocks.size());
  ctx.decide_every_step = decision;
  Controller<typename Case::type, Schedule> ctl(s.model, *s.opt, s.blocks,
                                                controller_options<Case, Schedule>(ctx));
  // Class tokens and labels for criteria that compare features (token similarity).
  constexpr bool features = frost::concepts::uses_features<typename Case::type>();
  at::Tensor cls, labels;
  if constexpr (features) {
    // the model's batch (the controller-only models have none: frost-train's 128)
    const std::int64_t n = m.batch > 0 ? m.batch : 128;
    cls = at::randn({n, m.vit.dim()}, at::TensorOptions().device(dev));
    labels = at::randint(m.vit.num_classes(), {n}, at::TensorOptions().dtype(at::kLong).device(dev));
  }
  auto observe = [&] {
    if constexpr (features) ctl.observe_features(cls, labels);
  };
  auto one_step = [&] {
    ctl.before_step();
    observe();
    ctl.after_backward();
    ctl.after_step();
  };
  for (int i = 0; i < 3; ++i) one_step();  // warm-up (allocations, first decision)
  sync(dev);

  double ops = 0;
  {
    const bool names = print_ops();
    OpCounter counter(names);
    one_step();
    ops = static_cast<double>(OpCounter::count());
    if (names) {
      std::fprintf(stderr, "[ops] %s: %lld ATen calls in one controller step\n",
                   name.c_str(), static_cast<long long>(OpCounter::count()));
      std::vector<std::pair<std::int64_t, std::string>> v;
      for (const auto& kv : OpCounter::names()) v.emplace_back(kv.second, kv.first);
      std::sort(v.rbegin(), v.rend());
      for (const auto& kv : v)
        std::fprintf(stderr, "[ops]   %6lld  %s\n", static_cast<long long>(kv.first),
                     kv.second.c_str());
    }
  }
  sync(dev);

  double t_before = 0, t_observe = 0, t_after = 0;
  std::int64_t decision_steps = 0;
  const std::int64_t reads0 = frost::host::reads();
  for (auto _ : state) {
    const std::int64_t r = frost::host::reads();
    const auto t0 = Clock::now();
    ctl.before_step();
    const auto t1 = Clock::now();
    observe();
    ctl.after_backward();
    const auto t2 = Clock::now();
    ctl.after_step();
    sync(dev);
    const auto t3 = Clock::now();
    using D = std::chrono::duration<double>;
    t_before += D(t1 - t0).count();
    t_observe += D(t2 - t1).count();
    t_after += D(t3 - t2).count();
    state.SetIterationTime(D(t3 - t0).count());
    if (frost::host::reads() != r) ++decision_steps;
  }
  if (ctl.num_frozen() != 0) {
    state.SkipWithError("a block froze during the benchmark; its criterion options must not freeze");
    return;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["before_us"] = 1e6 * t_before / n;
  state.counters["observe_us"] = 1e6 * t_observe / n;
  state.counters["after_us"] = 1e6 * t_after / n;
  state.counters["ctl_us"] = 1e6 * (t_before + t_observe + t_after) / n;
  state.counters["aten_ops"] = ops;
  state.counters["map_blocks"] = static_cast<double>(s.blocks.size());
  state.counters["block_tensors"] = [&] {
    double t = 0;
    for (const auto& b : s.blocks) t += static_cast<double>(b.params.size());
    return t;
  }();
  state.counters["block_params_M"] = static_cast<double>(s.blocks.numel()) / 1e6;
  state.counters["decision_steps"] = static_cast<double>(decision_steps);
  state.counters["host_reads"] = static_cast<double>(frost::host::reads() - reads0);
  state.counters["threads"] = at::get_num_threads();
}

// ---------------------------------------------------------------------------
// train/: the training step, with and without the controller.
// ---------------------------------------------------------------------------
struct Batch {
  at::Tensor x, y;
};
Batch make_batch(const ModelSpec& m, const at::Device& dev) {
  auto gen_x = at::randn({m.batch, m.vit.in_channels(), m.vit.image_size(), m.vit.image_size()});
  auto gen_y = at::randint(m.vit.num_classes(), {m.batch}, at::TensorOptions().dtype(at::kLong));
  return {gen_x.to(dev), gen_y.to(dev)};
}

struct StepTimes {
  double before = 0, observe = 0, after = 0;
  double total() const { return before + observe + after; }
};

/// One training step; the controller's calls (when given) are timed on the host.
template <class Ctl>
void train_step(Setup& s, const Batch& b, Ctl* ctl, StepTimes* t) {
  if (ctl) {
    const auto t0 = Clock::now();
    ctl->before_step();
    t->before += seconds_since(t0);
  }
  s.opt->zero_grad();
  at::Tensor logits;
  if constexpr (frost::concepts::uses_features<typename Ctl::criterion_type>()) {
    // the class token the head sees, handed to the controller (timed with observe)
    const auto cls = s.model->forward_features(b.x).select(1, 0);
    if (ctl) {
      const auto t0 = Clock::now();
      ctl->observe_features(cls, b.y);
      t->observe += seconds_since(t0);
    }
    logits = s.model->head->forward(cls);
  } else {
    logits = s.model->forward(b.x);
  }
  auto loss = at::cross_entropy_loss(logits, b.y);
  loss.backward();
  if (ctl) {
    const auto t0 = Clock::now();
    ctl->after_backward();
    t->observe += seconds_since(t0);
  }
  s.opt->step();
  if (ctl) {
    const auto t0 = Clock::now();
    ctl->after_step();
    t->after += seconds_since(t0);
  }
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Per-step figures of one benchmark: each vector holds one value per
/// iteration (the per-step average of that iteration's steps). Medians, not
/// means: a 2-core machine shared with compilers has long outliers.
struct TrainSamples {
  std::vector<double> plain, with, ctl;
};

void train_counters(benchmark::State& state, const Setup& s, const TrainSamples& t,
                    const StepTimes& ct, double steps) {
  const double plain = median(t.plain), with = median(t.with), ctl = median(t.ctl);
  state.counters["plain_ms"] = 1e3 * plain;
  state.counters["step_ms"] = 1e3 * with;
  state.counters["ctl_ms"] = 1e3 * ctl;
  state.counters["ctl_mean_ms"] = 1e3 * ct.total() / steps;
  state.counters["before_us"] = 1e6 * ct.before / steps;
  state.counters["observe_us"] = 1e6 * ct.observe / steps;
  state.counters["after_us"] = 1e6 * ct.after / steps;
  state.counters["overhead_pct"] = 100.0 * ctl / plain;
  // The fastest plain step approximates the step on an idle machine; against
  // it the overhead is the least flattering (a shared machine slows the
  // multi-threaded step far more than the controller's small kernels).
  const double plain_min = *std::min_element(t.plain.begin(), t.plain.end());
  state.counters["plain_min_ms"] = 1e3 * plain_min;
  state.counters["overhead_vs_min_pct"] = 100.0 * ctl / plain_min;
  state.counters["overhead_diff_pct"] = 100.0 * (with - plain) / plain;
  state.counters["params_M"] =
      static_cast<double>(frost_examples::count_parameters(*s.model)) / 1e6;
  state.counters["threads"] = at::get_num_threads();
}

/// Steps per benchmark: CPU interleaves one plain and one controlled step per
/// iteration; CUDA runs `rounds` rounds of `round_steps` plain then
/// `round_steps` controlled steps (order alternating), synchronised only at
/// the round boundaries.
struct TrainPlan {
  int warmup = 3;
  int round_steps = 1;
};

template <class Case, class Schedule>
void bm_train(benchmark::State& state, ModelSpec m, at::Device dev, TrainPlan plan) {
  Setup s = make_setup(m, dev);
  const Batch batch = make_batch(m, dev);
  Ctx ctx;
  ctx.num_blocks = static_cast<std::int64_t>(s.blocks.size());
  Controller<typename Case::type, Schedule> ctl(s.model, *s.opt, s.blocks,
                                                controller_options<Case, Schedule>(ctx));
  using CtlT = decltype(ctl);
  StepTimes scratch;
  for (int i = 0; i < plan.warmup; ++i) {
    train_step<CtlT>(s, batch, nullptr, nullptr);
    train_step(s, batch, &ctl, &scratch);
  }
  sync(dev);

  StepTimes ct;
  TrainSamples samples;
  double steps = 0;
  bool plain_first = true;
  const std::int64_t reads0 = frost::host::reads();
  for (auto _ : state) {
    double round_plain = 0, round_with = 0;
    const double ctl_before = ct.total();
    for (int phase = 0; phase < 2; ++phase) {
      const bool plain = (phase == 0) == plain_first;
      const auto t0 = Clock::now();
      for (int k = 0; k < plan.round_steps; ++k)
        if (plain)
          train_step<CtlT>(s, batch, nullptr, nullptr);
        else
          train_step(s, batch, &ctl, &ct);
      sync(dev);
      (plain ? round_plain : round_with) += seconds_since(t0);
    }
    plain_first = !plain_first;
    samples.plain.push_back(round_plain / plan.round_steps);
    samples.with.push_back(round_with / plan.round_steps);
    samples.ctl.push_back((ct.total() - ctl_before) / plan.round_steps);
    steps += plan.round_steps;
    state.SetIterationTime(round_with / plan.round_steps);  // reported time: the controlled step
  }
  if (ctl.num_frozen() != 0) {
    state.SkipWithError("a block froze during the benchmark; its criterion options must not freeze");
    return;
  }
  train_counters(state, s, samples, ct, steps);
  // For amortising the decision points (scripts/bench-table.py joins these
  // with the ctl/.../mode:decision benchmark of the same model and device).
  state.counters["steps_per_epoch"] = static_cast<double>(m.steps_per_epoch);
  state.counters["decisions_per_epoch"] = Case::decisions_per_epoch;
  state.counters["host_reads"] = static_cast<double>(frost::host::reads() - reads0);
}

/// The plain step alone (criterion:none).
void bm_train_plain(benchmark::State& state, ModelSpec m, at::Device dev, TrainPlan plan) {
  Setup s = make_setup(m, dev);
  const Batch batch = make_batch(m, dev);
  using NoCtl = Controller<frost::criteria::Never, frost::schedules::Constant>;
  for (int i = 0; i < plan.warmup; ++i) train_step<NoCtl>(s, batch, nullptr, nullptr);
  sync(dev);
  std::vector<double> per_step;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    for (int k = 0; k < plan.round_steps; ++k) train_step<NoCtl>(s, batch, nullptr, nullptr);
    sync(dev);
    const double t = seconds_since(t0);
    per_step.push_back(t / plan.round_steps);
    state.SetIterationTime(t / plan.round_steps);
  }
  state.counters["plain_ms"] = 1e3 * median(per_step);
  state.counters["plain_min_ms"] = 1e3 * *std::min_element(per_step.begin(), per_step.end());
  state.counters["params_M"] =
      static_cast<double>(frost_examples::count_parameters(*s.model)) / 1e6;
  state.counters["threads"] = at::get_num_threads();
}

// ---------------------------------------------------------------------------
// Registration.
// ---------------------------------------------------------------------------
bool g_cuda = false;

std::string bench_name(const std::string& family, const ModelSpec& m, const std::string& crit,
                       const std::string& sched, const std::string& extra, const at::Device& dev) {
  return family + "/model:" + m.name + "/criterion:" + crit + "/schedule:" + sched + extra +
         "/device:" + (dev.is_cuda() ? "cuda" : "cpu");
}

template <class Case, class Schedule>
void register_controller(const ModelSpec& m, const at::Device& dev, bool decision,
                         std::int64_t iterations) {
  const std::string name = bench_name("ctl", m, Case::label, schedule_label<Schedule>(),
                                      decision ? "/mode:decision" : "/mode:step", dev);
  benchmark::RegisterBenchmark(name.c_str(), bm_controller<Case, Schedule>, name, m, dev,
                               decision)
      ->UseManualTime()
      ->Iterations(iterations)
      ->Unit(benchmark::kMicrosecond);
}

template <class Case, class Schedule>
void register_train(const ModelSpec& m, const at::Device& dev, TrainPlan plan, std::int64_t its) {
  const std::string name =
      bench_name("train", m, Case::label, schedule_label<Schedule>(), "", dev);
  benchmark::RegisterBenchmark(name.c_str(), bm_train<Case, Schedule>, m, dev, plan)
      ->UseManualTime()
      ->Iterations(its)
      ->Unit(benchmark::kMillisecond);
}

// CPU: 2 cores here; the iteration counts keep the whole CPU run near 3 minutes.
constexpr std::int64_t kCtlIterationsCpu = 300;
constexpr std::int64_t kCtlDecisionIterationsCpu = 30;
constexpr std::int64_t kTrainIterationsCpu = 30;  // pairs of steps
const TrainPlan kTrainPlanCpu{3, 1};
// CUDA (ViT-B/16, ~0.1-0.2 s per fp32 step on an H100): 3 rounds of 10 + 10 steps.
constexpr std::int64_t kCtlIterationsCuda = 100;
constexpr std::int64_t kCtlDecisionIterationsCuda = 10;
constexpr std::int64_t kTrainRoundsCuda = 3;
const TrainPlan kTrainPlanCuda{3, 10};

template <class Case>
void register_case() {
  using frost::schedules::Constant;
  const at::Device cpu(at::kCPU);
  for (std::int64_t depth : {12, 24, 48}) {
    register_controller<Case, Constant>(width64(depth), cpu, false, kCtlIterationsCpu);
    register_controller<Case, FreezeOutCS>(width64(depth), cpu, false, kCtlIterationsCpu);
  }
  for (std::int64_t depth : {12, 48})
    register_controller<Case, Constant>(width64(depth), cpu, true, kCtlDecisionIterationsCpu);
  register_controller<Case, Constant>(tiny(), cpu, false, kCtlIterationsCpu);
  register_controller<Case, Constant>(tiny(), cpu, true, kCtlDecisionIterationsCpu);
  register_train<Case, Constant>(tiny(), cpu, kTrainPlanCpu, kTrainIterationsCpu);

  if (g_cuda) {
    const at::Device cuda(at::kCUDA);
    register_controller<Case, Constant>(base(), cuda, false, kCtlIterationsCuda);
    register_controller<Case, Constant>(base(), cuda, true, kCtlDecisionIterationsCuda);
    register_train<Case, Constant>(base(), cuda, kTrainPlanCuda, kTrainRoundsCuda);
  }
}

void register_all() {
  const at::Device cpu(at::kCPU);
  benchmark::RegisterBenchmark(
      bench_name("train", tiny(), "none", "none", "", cpu).c_str(), bm_train_plain, tiny(), cpu,
      kTrainPlanCpu)
      ->UseManualTime()
      ->Iterations(kTrainIterationsCpu)
      ->Unit(benchmark::kMillisecond);
  if (g_cuda) {
    const at::Device cuda(at::kCUDA);
    benchmark::RegisterBenchmark(
        bench_name("train", base(), "none", "none", "", cuda).c_str(), bm_train_plain, base(),
        cuda, kTrainPlanCuda)
        ->UseManualTime()
        ->Iterations(kTrainRoundsCuda)
        ->Unit(benchmark::kMillisecond);
  }
  for (const auto& c : cases()) c.register_all(c.label);
  // The schedule's own per-step cost inside a training step (host arithmetic).
  register_train<CNever, FreezeOutCS>(tiny(), cpu, kTrainPlanCpu, kTrainIterationsCpu);
}

}  // namespace

int main(int argc, char** argv) {
  // Like the example trainer (frost-train --threads 0, examples/train/app.hpp):
  // one intra-op thread when training on the CPU, one per core with a GPU, and
  // OpenBLAS on one thread. FROST_BENCH_THREADS=N overrides.
  g_cuda = torch::cuda::is_available();
  int threads = g_cuda ? static_cast<int>(std::thread::hardware_concurrency()) : 1;
  if (const char* e = std::getenv("FROST_BENCH_THREADS")) threads = std::atoi(e);
  if (threads > 0) at::set_num_threads(threads);
  frost_examples::single_threaded_blas();
  register_all();
  benchmark::AddCustomContext("libtorch", TORCH_VERSION);
  benchmark::AddCustomContext("torch_threads", std::to_string(at::get_num_threads()));
  benchmark::AddCustomContext("blas_threads", "1");
  benchmark::AddCustomContext("cuda", g_cuda ? "available" : "not available");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
