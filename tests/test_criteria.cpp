// The gradient-based criteria (DyF's GradientThreshold, AutoFreeze's
// GradientNormChange) and the AnyOf/AllOf combinators: decisions on hand-made
// gradient sequences whose right answer is known, option validation, the
// zero-synchronisation hot path (host-read counting on CPU, CUDA sync-debug
// mode on GPU), and real short training runs.
#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#if __has_include(<c10/cuda/CUDAFunctions.h>) && __has_include(<cuda_runtime_api.h>) && \
    __has_include(<c10/cuda/impl/cuda_cmake_macros.h>)
#include <c10/cuda/CUDAFunctions.h>
#define FROST_TEST_HAVE_CUDA_HEADERS 1
#else
#define FROST_TEST_HAVE_CUDA_HEADERS 0
#endif

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "frost/criteria/attention_predictor.hpp"  // the sync-debug test
#include "frost/frost.hpp"
#include "support.hpp"
// last: after every LibTorch header (see doctest_torch.hpp)
#include "doctest_torch.hpp"
#include "frost_checks.hpp"

using frost_test::contains;

using frost::criteria::Accumulate;
using frost::criteria::FreezeMode;
using frost::criteria::GradientNormChange;
using frost::criteria::GradientNormChangeOptions;
using frost::criteria::GradientThreshold;
using frost::criteria::GradientThresholdOptions;
using frost::criteria::GradNorm;
using frost::criteria::Reference;
using frost_test::Net;

namespace {

/// A real loop's parts for criterion C: frost_test::Net (seed 5) on `dev`,
/// its detected blocks, AdamW 3e-3 and a controller whose epoch is `every`
/// steps (the criteria below decide at its end).
template <class C>
struct LoopRig {
  using Ctl = frost::FreezeController<C, frost::schedules::Constant, frost::stop::Never>;
  LoopRig(const typename C::Options& copts, std::int64_t every, const at::Device& dev = at::kCPU)
      : net(seeded_net(dev)),
        blocks(frost::BlockMap::detect(*net)),
        opt(frost::param_groups(blocks, *net), torch::optim::AdamWOptions(3e-3)),
        ctl(net, opt, blocks,
            typename Ctl::Options()
                .controller(frost::ControllerOptions().steps_per_epoch(every))
                .criterion(copts)) {}
  static frost_test::Net seeded_net(const at::Device& dev) {
    torch::manual_seed(5);
    frost_test::Net n;
    n->to(dev);
    return n;
  }
  frost_test::Net net;
  frost::BlockMap blocks;
  torch::optim::AdamW opt;
  Ctl ctl;
};

// Blocks b0..b{n-1}, each with parameters w [4] and v [2] (numel 6).
struct PairImpl : torch::nn::Module {
  PairImpl() {
    w = register_parameter("w", at::zeros({4}));
    v = register_parameter("v", at::zeros({2}));
  }
  at::Tensor w, v;
};
TORCH_MODULE(Pair);

struct Toy : torch::nn::Module {
  explicit Toy(int n) {
    for (int i = 0; i < n; ++i) parts.push_back(register_module("b" + std::to_string(i), Pair()));
  }
  frost::BlockMap blocks() const {
    std::vector<std::string> p;
    for (std::size_t i = 0; i < parts.size(); ++i) p.push_back("b" + std::to_string(i));
    return frost::BlockMap::from_prefixes(*this, p);
  }
  std::vector<Pair> parts;
};

// Drives a criterion the way the controller does, with hand-set gradients.
template <class C>
struct Driver {
  Driver(C c, const frost::BlockMap& blocks, std::int64_t spe = 0)
      : crit(std::move(c)), map(blocks), frozen(blocks.size(), 0),
        states(blocks.size(), frost::BlockState::training) {
    frost::CriterionSetup cs;
    cs.blocks = &map;
    cs.steps_per_epoch = spe;
    crit.setup(cs);
  }
  frost::StepState state() const {
    frost::StepState s;
    s.step = step;
    s.states = &states;
    return s;
  }
  /// One step: grads[b] is the value of every gradient entry of block b
  /// (NaN allowed; `undefined` leaves the block without gradients).
  std::vector<frost::Decisions::Item> run(const std::vector<double>& grads) {
    for (std::size_t b = 0; b < map.size(); ++b)
      for (auto& p : map[b].params) {
        if (frozen[b] || (std::isinf(grads[b]) && grads[b] < 0))
          p.mutable_grad() = at::Tensor();
        else
          p.mutable_grad() = at::full_like(p, grads[b]);
      }
    return raw();
  }
  /// One step with the gradients as they are.
  std::vector<frost::Decisions::Item> raw() {
    frost::Decisions d;
    crit.observe(state());
    frost_test::decide_as_controller(crit, state(), d);
    for (const auto& it : d.items())
      if (it.request == frost::Request::freeze && std::isfinite(it.statistic) &&
          !frozen[it.block]) {
        freeze(it.block);
      }
    ++step;
    return d.items();
  }
  /// Blocks frozen before the run (no notification).
  void preset(const std::vector<char>& f) {
    frozen = f;
    for (std::size_t b = 0; b < f.size(); ++b)
      states[b] = f[b] ? frost::BlockState::frozen : frost::BlockState::training;
  }
  /// A state change the controller would make, and its notification.
  void freeze(std::int64_t b) {
    frozen[static_cast<std::size_t>(b)] = 1;
    states[static_cast<std::size_t>(b)] = frost::BlockState::frozen;
    crit.on_state_change(b, frost::BlockState::training, frost::BlockState::frozen);
  }
  std::set<std::int64_t> frozen_set() const {
    std::set<std::int64_t> s;
    for (std::size_t b = 0; b < frozen.size(); ++b)
      if (frozen[b]) s.insert(static_cast<std::int64_t>(b));
    return s;
  }
  C crit;
  frost::BlockMap map;
  std::vector<char> frozen;
  std::vector<frost::BlockState> states;
  std::int64_t step = 0;
};

const double kNone = -std::numeric_limits<double>::infinity();  // "no gradient" in Driver::run
const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::set<std::int64_t> freezes(const std::vector<frost::Decisions::Item>& items) {
  std::set<std::int64_t> s;
  for (const auto& it : items)
    if (it.request == frost::Request::freeze) s.insert(it.block);
  return s;
}
std::set<std::int64_t> warnings(const std::vector<frost::Decisions::Item>& items) {
  std::set<std::int64_t> s;
  for (const auto& it : items)
    if (it.is_warning()) s.insert(it.block);
  return s;
}

GradientNormChange gnc(FreezeMode mode, GradNorm norm = GradNorm::l1,
                       Accumulate acc = Accumulate::exact, std::int64_t interval = 1,
                       double pct = 50) {
  return GradientNormChange(GradientNormChangeOptions()
                                .interval(interval)
                                .min_epochs(0)  // no epochs here (steps_per_epoch 0)
                                .mode(mode)
                                .norm(norm)
                                .accumulate(acc)
                                .percentile(pct));
}

using S = std::set<std::int64_t>;

// Blocks b0..b2 of 20000 parameters each: sums of |g| over a block reach
// 1e5, beyond fp16's 65504.
struct WideImpl : torch::nn::Module {
  WideImpl() { w = register_parameter("w", at::zeros({20000})); }
  at::Tensor w;
};
TORCH_MODULE(Wide);
struct WideToy : torch::nn::Module {
  WideToy() {
    for (int i = 0; i < 3; ++i) parts.push_back(register_module("b" + std::to_string(i), Wide()));
  }
  frost::BlockMap blocks() const { return frost::BlockMap::from_prefixes(*this, {"b0", "b1", "b2"}); }
  std::vector<Wide> parts;
};

// A criterion that asks for what the test tells it to.
template <int N>
struct ScriptOptions {};
template <int N>
struct Script {
  using Options = ScriptOptions<N>;
  static std::string name() { return "S" + std::to_string(N); }
  static constexpr bool stateless = true;
  explicit Script(const Options&) {}
  void setup(const frost::CriterionSetup&) { ++setups; }
  void observe(const frost::StepState&) { ++observed; }
  bool decision_point(const frost::StepState&) const { return true; }
  void decide(const frost::StepState& s, frost::HostValues, frost::Decisions& d) {
    for (auto& [step, block, stat, freeze] : script)
      if (step == s.step) {
        if (freeze) d.freeze(block, stat, "asked");
        else d.warn(block, stat, "careful");
      }
  }
  void on_state_change(std::int64_t b, frost::BlockState, frost::BlockState) {
    notified.push_back(b);
  }
  void on_validation(double, const frost::StepState&) { ++validations; }
  void observe_activations(std::int64_t, const at::Tensor&) { ++activations; }
  std::vector<std::tuple<std::int64_t, std::int64_t, double, bool>> script;
  std::vector<std::int64_t> notified;
  int setups = 0, observed = 0, validations = 0, activations = 0;
};

template <class Ctl>
double controlled_step(Ctl& ctl, Net& net, torch::optim::Optimizer& opt, const at::Tensor& x,
                        const at::Tensor& y, bool read_loss = true) {
  ctl.before_step();
  opt.zero_grad();
  auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
  loss.backward();
  ctl.after_backward();
  opt.step();
  ctl.after_step();
  return read_loss ? loss.item<double>() : 0.0;
}

/// One step of a loop that clips gradients (to a total L2 norm of 0.01, so it
/// does clip), with after_backward() before clip_grad_norm_ or after it; the
/// per-block L1 norms (sum |g|) of the raw and of the clipped gradients.
struct ClippedStep {
  std::vector<double> raw, clipped;
};
template <class Ctl>
ClippedStep clipped_step(Ctl& ctl, Net& net, const frost::BlockMap& blocks,
                         torch::optim::Optimizer& opt, bool before_clipping) {
  const auto task = frost_test::make_task(64, at::kCPU);
  const auto l1 = [&] {
    std::vector<double> n;
    for (const auto& b : blocks) {
      double sum = 0.0;
      for (const auto& p : b.params) sum += p.grad().abs().sum().item<double>();
      n.push_back(sum);
    }
    return n;
  };
  ctl.before_step();
  opt.zero_grad();
  torch::nn::functional::cross_entropy(net->forward(task.x), task.y).backward();
  ClippedStep out;
  out.raw = l1();
  if (before_clipping) ctl.after_backward();
  torch::nn::utils::clip_grad_norm_(net->parameters(), 0.01);
  out.clipped = l1();
  if (!before_clipping) ctl.after_backward();
  opt.step();
  ctl.after_step();
  return out;
}

}  // namespace

// Options of the test-only Script criteria (global scope, see options.hpp).
FROST_REFLECT_NONE(ScriptOptions<1>);
FROST_REFLECT_NONE(ScriptOptions<2>);

TEST_SUITE("criteria") {
  // --- GradientThreshold (DyF) ---------------------------------------------
  TEST_CASE("GradientThreshold: freezes at the window's end when mean |grad| <= threshold") {
    Toy toy(4);
    Driver<GradientThreshold> d(GradientThreshold(GradientThresholdOptions().threshold(0.25).window(2)),
                                toy.blocks());
    // step 0 / 1: b0 |g| = 0.5 then 0 -> average 0.25 (<= boundary), b1 -0.125 (|g| counts),
    // b2 1.0, b3 0.5 then 0.125 -> 0.3125
    CHECK(d.run({0.5, -0.125, 1.0, 0.5}).empty());  // not a decision point
    auto items = d.run({0.0, -0.125, 1.0, 0.125});
    CHECK(freezes(items) == S{0, 1});
    CHECK(d.crit.averages()[0] == doctest::Approx(0.25));
    CHECK(d.crit.averages()[1] == doctest::Approx(0.125));
    CHECK(d.crit.averages()[3] == doctest::Approx(0.3125));
    CHECK(d.crit.evaluations() == 1);
    // second window: b3 falls to 0.25, b2 stays
    d.run({0, 0, 1.0, 0.25});
    items = d.run({0, 0, 1.0, 0.25});
    CHECK(freezes(items) == S{3});
    CHECK(d.frozen_set() == S{0, 1, 3});
    CHECK(std::isnan(d.crit.averages()[0]));  // frozen: not judged
    for (const auto& it : items) CHECK(contains(it.detail, "<= threshold"));
  }

  TEST_CASE("GradientThreshold: the window defaults to an epoch, unknown epoch is an error") {
    Toy toy(2);
    Driver<GradientThreshold> d(GradientThreshold(GradientThresholdOptions().threshold(0.1)),
                                toy.blocks(), /*steps_per_epoch=*/3);
    CHECK(d.crit.window() == 3);
    CHECK(d.run({0.05, 1}).empty());
    CHECK(d.run({0.05, 1}).empty());
    CHECK(freezes(d.run({0.05, 1})) == S{0});
    CHECK_FROST_ERROR(Driver<GradientThreshold>(GradientThreshold(), toy.blocks(), 0),
                      "steps_per_epoch");
    Driver<GradientThreshold> w(GradientThreshold(GradientThresholdOptions().window(5)),
                                toy.blocks(), 3);
    CHECK(w.crit.window() == 5);  // an explicit window wins
  }

  TEST_CASE("GradientThreshold: relative threshold = r x the block's first-window average") {
    Toy toy(3);
    Driver<GradientThreshold> d(
        GradientThreshold(GradientThresholdOptions().relative(0.5).window(1).threshold(100)),
        toy.blocks());
    // b0 halves over three windows, b1 stays, b2 starts at 0.01 (tiny, but that is its scale)
    CHECK(freezes(d.run({1.0, 1.0, 0.01})).empty());
    CHECK(d.crit.references()[0] == doctest::Approx(1.0));
    CHECK(d.crit.references()[2] == doctest::Approx(0.01));
    CHECK(freezes(d.run({0.75, 1.0, 0.009})).empty());
    CHECK(freezes(d.run({0.5, 0.9, 0.004})) == S{0, 2});
    CHECK(freezes(d.run({0.5, 0.9, 0.004})).empty());
  }

  TEST_CASE("GradientThreshold: relative to the peak follows a growing gradient up first") {
    Toy toy(2);
    Driver<GradientThreshold> d(GradientThreshold(GradientThresholdOptions()
                                                      .relative(0.5)
                                                      .reference(Reference::peak)
                                                      .window(1)
                                                      .threshold(100)),
                                toy.blocks());
    // b0 grows from 0.1 to 1.0 then falls to 0.5 = half its peak; b1 stays flat.
    // Relative to the first window (0.1) b0 would never freeze.
    CHECK(freezes(d.run({0.1, 1.0})).empty());
    CHECK(freezes(d.run({1.0, 1.0})).empty());
    CHECK(d.crit.references()[0] == doctest::Approx(1.0));
    CHECK(freezes(d.run({0.6, 1.0})).empty());
    CHECK(d.crit.references()[0] == doctest::Approx(1.0));  // the peak stays
    CHECK(freezes(d.run({0.5, 1.0})) == S{0});
    CHECK_FROST_ERROR(
        [] {
          GradientThresholdOptions o;
          frost::set_option(o, "reference", "median");
        }(),
        "reference");
  }

  TEST_CASE("GradientThreshold: unused parameters, unused blocks, NaN and Inf are never frozen on") {
    Toy toy(3);
    Driver<GradientThreshold> d(GradientThreshold(GradientThresholdOptions().threshold(0.25).window(2)),
                                toy.blocks());
    // b0: only w gets a gradient (v unused = zero gradient): mean |g| = 4 * 0.3 / 6 = 0.2
    // b1: no gradient at all in the window: warned, not judged
    // b2: NaN in one step: warned, not frozen (even though the other step is tiny)
    for (int i = 0; i < 2; ++i) {
      for (auto& p : d.map[0].params) p.mutable_grad() = at::Tensor();
      toy.parts[0]->w.mutable_grad() = at::full({4}, 0.3);
      for (auto& p : d.map[1].params) p.mutable_grad() = at::Tensor();
      for (auto& p : d.map[2].params) p.mutable_grad() = at::full_like(p, i == 0 ? kNaN : 0.0);
      auto items = d.raw();
      if (i == 1) {
        CHECK(freezes(items) == S{0});
        CHECK(warnings(items) == S{1, 2});
        CHECK(d.crit.averages()[0] == doctest::Approx(0.2));
      }
    }
    // +Inf next window: warned, not frozen; then finite and small: frozen
    d.run({1, 0, std::numeric_limits<double>::infinity()});
    auto items = d.run({1, 0, 0});
    CHECK(warnings(items).count(2) == 1);
    CHECK(freezes(items) == S{1});  // b1 now has zero gradients: mean 0 <= 0.25
    d.run({1, 0, 0});
    CHECK(freezes(d.run({1, 0, 0})) == S{2});
  }

  // --- GradientNormChange (AutoFreeze) ---------------------------------------
  TEST_CASE("percentile matches numpy's linear interpolation") {
    using G = GradientNormChange;
    CHECK(G::percentile({1, 2, 3, 4}, 50) == doctest::Approx(2.5));
    CHECK(G::percentile({4, 1, 3, 2}, 25) == doctest::Approx(1.75));
    CHECK(G::percentile({1, 2, 3, 4}, 0) == 1);
    CHECK(G::percentile({1, 2, 3, 4}, 100) == 4);
    CHECK(G::percentile({3, 1, 2}, 50) == 2);
    CHECK(G::percentile({0.7}, 50) == 0.7);
    CHECK(G::percentile({1, 1, 1, 5}, 50) == 1);
    CHECK(G::percentile({10, 20}, 90) == doctest::Approx(19.0));
    CHECK(std::isnan(G::percentile({}, 50)));
  }

  TEST_CASE("GradientNormChange: eta = |n_prev - n| / n_prev, decided per mode") {
    // step 0 all 1 (first evaluation: no eta); step 1 gives eta = {0.1, 0.5, 0.05, 0.8};
    // p50 = 0.3 (sorted 0.05 0.1 0.5 0.8, rank 1.5)
    const std::vector<double> first{1, 1, 1, 1}, second{0.9, 0.5, 0.95, 0.2};
    Toy toy(4);
    SUBCASE("sequential: leading blocks below the percentile; the first not below ends the scan") {
      Driver<GradientNormChange> d(gnc(FreezeMode::sequential), toy.blocks());
      CHECK(d.run(first).empty());
      auto items = d.run(second);
      CHECK(freezes(items) == S{0});  // b2 (0.05) is below too, but b1 (0.5) ends the scan
      CHECK(d.crit.bar() == doctest::Approx(0.3));
      CHECK(d.crit.etas()[0] == doctest::Approx(0.1).epsilon(1e-5));
      CHECK(d.crit.etas()[3] == doctest::Approx(0.8).epsilon(1e-5));
      CHECK(items[0].statistic == doctest::Approx(0.1).epsilon(1e-5));
      CHECK(contains(items[0].detail, "sequential"));
      // next: active {1, 2, 3} from n = {0.5, 0.95, 0.2}: etas {0.2, 0.0, 0.5}, p50 = 0.2:
      // b1 is not below (0.2 !< 0.2): nothing
      CHECK(freezes(d.run({0, 0.4, 0.95, 0.1})).empty());
      // etas {0.5, 0.5, 0.5}: ties, nothing below
      CHECK(freezes(d.run({0, 0.2, 0.475, 0.05})).empty());
      // etas {0.0, 0.5, 1.0}: b1 freezes, b2 ends the scan
      CHECK(freezes(d.run({0, 0.2, 0.2375, 0.0})) == S{1});
    }
    SUBCASE("any_order: every active block below the percentile") {
      Driver<GradientNormChange> d(gnc(FreezeMode::any_order), toy.blocks());
      d.run(first);
      CHECK(freezes(d.run(second)) == S{0, 2});
    }
    SUBCASE("slowest_if_first (Algorithm 1): only the slowest, only if it leads") {
      Driver<GradientNormChange> d(gnc(FreezeMode::slowest_if_first), toy.blocks());
      d.run(first);
      CHECK(freezes(d.run(second)).empty());  // b2 is slowest but b0, b1 still train
      // etas from {0.9, 0.5, 0.95, 0.2}: b0 0.0 (slowest, leads) -> frozen, alone
      CHECK(freezes(d.run({0.9, 0.45, 0.95, 0.1})) == S{0});
      // ties for the smallest: the input-side one
      CHECK(freezes(d.run({0, 0.45, 0.95, 0.15})) == S{1});
    }
  }

  TEST_CASE("bf16 and fp16 gradients: block statistics equal the float32 ones") {
    for (auto dtype : {at::kHalf, at::kBFloat16}) {
      CAPTURE(dtype);
      WideToy wf, wh;
      wh.to(dtype);
      // The float32 run gets the values the low-precision gradients hold.
      const std::vector<double> g{7.3, 0.011, 3.1};
      std::vector<double> rounded;
      for (double v : g) rounded.push_back(at::scalar_tensor(v).to(dtype).item<double>());
      Driver<GradientThreshold> tf(GradientThreshold(GradientThresholdOptions().window(2).threshold(0)),
                                   wf.blocks());
      Driver<GradientThreshold> th(GradientThreshold(GradientThresholdOptions().window(2).threshold(0)),
                                   wh.blocks());
      for (int i = 0; i < 2; ++i) {
        tf.run(rounded);
        th.run(g);
      }
      for (std::size_t b = 0; b < 3; ++b) {
        CAPTURE(b);
        CHECK(std::isfinite(th.crit.averages()[b]));
        CHECK(th.crit.averages()[b] == doctest::Approx(tf.crit.averages()[b]).epsilon(1e-5));
        CHECK(th.crit.averages()[b] == doctest::Approx(rounded[b]).epsilon(1e-3));  // float32 sums
      }
      for (auto acc : {Accumulate::exact, Accumulate::cheap})
        for (auto norm : {GradNorm::l1, GradNorm::l2}) {
          CAPTURE(frost::criteria::to_string(acc));
          CAPTURE(frost::criteria::to_string(norm));
          Driver<GradientNormChange> nf(gnc(FreezeMode::any_order, norm, acc, 3), wf.blocks());
          Driver<GradientNormChange> nh(gnc(FreezeMode::any_order, norm, acc, 3), wh.blocks());
          for (int i = 0; i < 3; ++i) {
            nf.run(rounded);
            nh.run(g);
          }
          for (std::size_t b = 0; b < 3; ++b) {
            CHECK(std::isfinite(nh.crit.norms()[b]));
            CHECK(nh.crit.norms()[b] == doctest::Approx(nf.crit.norms()[b]).epsilon(1e-5));
          }
          if (acc == Accumulate::exact)  // float32 accumulators whatever the dtype
            CHECK(nh.crit.buffer_bytes() == 3 * 20000 * 4);
        }
    }
  }

  TEST_CASE("BlockGradients: the grouped (CPU) and foreach paths give the formulas' block norms") {
    // Shapes repeated across blocks, a 0-d parameter, a tensor larger than a
    // chunk, same-shaped tensors spread over several chunks, a shape only one
    // block has; then absent gradients, a block that does not train, and back.
    using BG = frost::detail::BlockGradients;
    struct Part : torch::nn::Module {
      explicit Part(bool extra) {
        register_parameter("w", at::randn({3, 5}));
        register_parameter("v", at::randn({5}));
        register_parameter("s", at::randn({}));
        register_parameter("big", at::randn({BG::kChunkValues + 7}));
        register_parameter("mid", at::randn({BG::kChunkValues / 3 + 1, 1}));  // two per chunk
        if (extra) register_parameter("x", at::randn({7, 2}));
      }
    };
    struct Model : torch::nn::Module {
      Model() {
        for (int i = 0; i < 4; ++i) register_module("b" + std::to_string(i), std::make_shared<Part>(i == 2));
      }
    };
    torch::manual_seed(11);
    Model model;
    const auto map = frost::BlockMap::from_prefixes(model, {"b0", "b1", "b2", "b3"});
    BG grouped, foreach;
    grouped.setup(map, "test", BG::Path::grouped);
    foreach.setup(map, "test", BG::Path::foreach);
    CHECK(grouped.grouped());
    CHECK_FALSE(foreach.grouped());
    BG automatic;
    automatic.setup(map, "test");
    CHECK(automatic.grouped());  // CPU parameters
    std::vector<frost::BlockState> states(4, frost::BlockState::training);
    frost::StepState st;
    st.states = &states;
    // The formulas, in double on the host.
    auto expected = [&](const std::vector<at::Tensor>& list, GradNorm kind) {
      std::vector<double> n(4, 0.0);
      for (std::size_t i = 0; i < list.size(); ++i)
        if (list[i].defined()) {
          const auto d = list[i].to(at::kDouble);
          n[static_cast<std::size_t>(grouped.block_of(i))] +=
              kind == GradNorm::l1 ? d.abs().sum().item<double>() : d.mul(d).sum().item<double>();
        }
      if (kind == GradNorm::l2)
        for (auto& v : n) v = std::sqrt(v);
      return n;
    };
    auto check = [&](const std::string& what) {
      CAPTURE(what);
      std::vector<char> had(4, 0), had2(4, 0);
      const auto list = grouped.grads(st, had, "test");
      const auto list2 = foreach.grads(st, had2, "test");
      CHECK(had == had2);
      for (auto kind : {GradNorm::l1, GradNorm::l2}) {
        const std::string norm = frost::criteria::to_string(kind);
        CAPTURE(norm);
        const auto want = expected(list, kind);
        for (int rep = 0; rep < 2; ++rep) {  // the second time from the cached layout
          const auto a = grouped.norms(list, kind), b = foreach.norms(list2, kind);
          CHECK((a.scalar_type() == at::kFloat));
          REQUIRE(a.numel() == 4);
          for (std::int64_t k = 0; k < 4; ++k) {
            CAPTURE(k);
            CHECK(a[k].item<double>() == doctest::Approx(want[static_cast<std::size_t>(k)]).epsilon(1e-5));
            // (LibTorch's CPU L1 norm kernel sums sequentially in float32:
            // ~1e-5 off over this block's 0.35 M values; abs + sum is pairwise)
            CHECK(b[k].item<double>() == doctest::Approx(want[static_cast<std::size_t>(k)]).epsilon(1e-4));
          }
        }
      }
    };
    for (auto& p : model.parameters()) p.mutable_grad() = at::randn_like(p);
    check("all gradients");
    map[1].params[0].mutable_grad() = at::Tensor();
    map[2].params[3].mutable_grad() = at::Tensor();
    for (auto& p : map[3].params) p.mutable_grad() = at::Tensor();
    check("some gradients undefined, block 3 none");
    states[0] = frost::BlockState::frozen;
    states[2] = frost::BlockState::trial;
    check("blocks 0 and 2 not training");
    states[0] = states[2] = frost::BlockState::training;
    for (auto& p : model.parameters()) p.mutable_grad() = at::randn_like(p).mul_(1e-3);
    check("all again, new values");
    // NaN and Inf propagate (the criteria warn on them)
    map[1].params[1].mutable_grad()[0] = std::numeric_limits<double>::quiet_NaN();
    std::vector<char> had(4, 0);
    const auto n = grouped.norms(grouped.grads(st, had, "test"), GradNorm::l1);
    CHECK(std::isnan(n[1].item<double>()));
    CHECK(std::isfinite(n[0].item<double>()));
  }

  TEST_CASE("GradientNormChange prefix_to_slowest: the prefix up to the slowest block, at once") {
    Toy toy(4);
    Driver<GradientNormChange> d(gnc(FreezeMode::prefix_to_slowest), toy.blocks());
    d.run({1, 1, 1, 1});
    // etas {0.5, 0.7, 0.1, 0.5}: b2 is the slowest; b0..b2 freeze in one decision
    auto items = d.run({0.5, 0.3, 0.9, 0.5});
    CHECK(freezes(items) == S{0, 1, 2});
    for (const auto& it : items) {
      CHECK(it.statistic == doctest::Approx(0.1).epsilon(1e-5));  // the slowest block's eta
      if (it.block < 2) CHECK(contains(it.detail, "before the slowest block 2"));
    }
    // the lone block left is the slowest of one, and freezes too
    CHECK(freezes(d.run({0, 0, 0, 0.5})) == S{3});
    // the percentile rule on the same sequence freezes nothing (0.5 is not below p50 = 0.5)
    Driver<GradientNormChange> q(gnc(FreezeMode::sequential), toy.blocks());
    q.run({1, 1, 1, 1});
    CHECK(freezes(q.run({0.5, 0.3, 0.9, 0.5})).empty());
    // the milestone-1 name still parses, as slowest_if_first
    FreezeMode m{};
    CHECK(frost::criteria::from_string("slowest_prefix", m));
    CHECK(m == FreezeMode::slowest_if_first);
  }

  TEST_CASE("GradientNormChange: more evaluations per epoch than steps is an error") {
    Toy toy(2);
    CHECK_FROST_ERROR(Driver<GradientNormChange>(
                          GradientNormChange(GradientNormChangeOptions().evals_per_epoch(8)),
                          toy.blocks(), /*steps_per_epoch=*/4),
                      "evals_per_epoch is 8 but an epoch has only 4 steps");
  }

  TEST_CASE("GradientNormChange: one active block and ties") {
    Toy toy(3);
    for (auto mode : {FreezeMode::sequential, FreezeMode::any_order, FreezeMode::slowest_if_first}) {
      CAPTURE(frost::criteria::to_string(mode));
      Driver<GradientNormChange> d(gnc(mode), toy.blocks());
      d.preset({1, 1, 0});
      d.run({0, 0, 1.0});
      auto items = d.run({0, 0, 0.5});  // eta 0.5 = its own percentile
      // the percentile rule never freezes the lone block; Algorithm 1 does
      CHECK(freezes(items) == (mode == FreezeMode::slowest_if_first ? S{2} : S{}));
      Driver<GradientNormChange> t(gnc(mode), toy.blocks());
      t.run({1, 1, 1});
      // all etas equal: nothing below; slowest_if_first takes the input-side one
      CHECK(freezes(t.run({0.5, 0.5, 0.5})) == (mode == FreezeMode::slowest_if_first ? S{0} : S{}));
      // a tie exactly at the percentile is not below: etas {0.1, 0.1, 0.3}, p50 = 0.1
      // (slowest_if_first: b0 is frozen by now; of b1, b2 the slower b1 leads)
      CHECK(freezes(t.run({0.55, 0.55, 0.35})) == (mode == FreezeMode::slowest_if_first ? S{1} : S{}));
    }
  }

  TEST_CASE("GradientNormChange: L1 vs L2") {
    // blocks [A, C, B]: A's gradient concentrates (same L1, larger L2)
    Toy toy(3);
    auto set = [&](Driver<GradientNormChange>& d, int step) {
      for (std::size_t b = 0; b < 3; ++b)
        for (auto& p : d.map[b].params) p.mutable_grad() = at::ones_like(p);
      if (step == 1) {
        auto w = at::zeros({4});
        w[0] = 6.0;
        toy.parts[0]->w.mutable_grad() = w;
        toy.parts[0]->v.mutable_grad() = at::zeros({2});
        for (auto& p : d.map[1].params) p.mutable_grad() = at::full_like(p, 0.8);
        for (auto& p : d.map[2].params) p.mutable_grad() = at::full_like(p, 0.5);
      }
      return d.raw();
    };
    Driver<GradientNormChange> l1(gnc(FreezeMode::sequential, GradNorm::l1), toy.blocks());
    set(l1, 0);
    CHECK(l1.crit.norms()[0] == doctest::Approx(6.0));
    CHECK(freezes(set(l1, 1)) == S{0});  // etas {0, 0.2, 0.5}: A < p50 = 0.2
    Driver<GradientNormChange> l2(gnc(FreezeMode::sequential, GradNorm::l2), toy.blocks());
    set(l2, 0);
    CHECK(l2.crit.norms()[0] == doctest::Approx(std::sqrt(6.0)));
    CHECK(freezes(set(l2, 1)).empty());  // etas {1.449, 0.2, 0.5}: A is the fastest
    CHECK(l2.crit.etas()[0] == doctest::Approx(6.0 / std::sqrt(6.0) - 1.0).epsilon(1e-5));
    Driver<GradientNormChange> l2a(gnc(FreezeMode::any_order, GradNorm::l2), toy.blocks());
    set(l2a, 0);
    CHECK(freezes(set(l2a, 1)) == S{1});
  }

  TEST_CASE("GradientNormChange: exact accumulates gradients, cheap accumulates norms") {
    // interval 2; blocks A, B, C, D; interval 1: every step +1;
    // interval 2: A +1 then -0.5 (cancels), B +1 +1, C 0.6 0.6, D 0.7 0.7
    Toy toy(4);
    std::map<Accumulate, std::vector<double>> norms;
    std::map<Accumulate, S> frozen;
    for (auto acc : {Accumulate::exact, Accumulate::cheap}) {
      Driver<GradientNormChange> d(gnc(FreezeMode::sequential, GradNorm::l1, acc, 2), toy.blocks());
      CHECK(d.crit.buffer_bytes() == (acc == Accumulate::exact ? 4 * 6 * 4 : 4 * 4));
      d.run({1, 1, 1, 1});
      d.run({1, 1, 1, 1});
      CHECK(d.crit.norms()[0] == doctest::Approx(6.0));  // per step: 12 / 2 either way
      d.run({1, 1, 0.6, 0.7});
      frozen[acc] = freezes(d.run({-0.5, 1, 0.6, 0.7}));
      norms[acc] = d.crit.norms();
    }
    // exact: ||6 - 3|| / 2 = 1.5 -> eta 0.75; cheap: (6 + 3) / 2 = 4.5 -> eta 0.25 (upper bound)
    CHECK(norms[Accumulate::exact][0] == doctest::Approx(1.5));
    CHECK(norms[Accumulate::cheap][0] == doctest::Approx(4.5));
    CHECK(norms[Accumulate::exact][2] == doctest::Approx(3.6));
    CHECK(norms[Accumulate::cheap][2] == doctest::Approx(3.6));
    // exact etas {0.75, 0, 0.4, 0.3}, p50 0.35: A ends the scan at once;
    // cheap etas {0.25, 0, 0.4, 0.3}, p50 0.275: A and B freeze, C ends the scan
    CHECK(frozen[Accumulate::exact] == S{});
    CHECK(frozen[Accumulate::cheap] == S{0, 1});
  }

  TEST_CASE("GradientNormChange: intervals from steps_per_epoch") {
    Toy toy(2);
    Driver<GradientNormChange> d(GradientNormChange(), toy.blocks(), /*steps_per_epoch=*/10);
    std::vector<std::int64_t> points;
    for (std::int64_t s = 0; s < 20; ++s)
      if (d.crit.decision_point(s)) points.push_back(s);
    CHECK(points == std::vector<std::int64_t>{2, 4, 7, 9, 12, 14, 17, 19});
    Driver<GradientNormChange> e(GradientNormChange(GradientNormChangeOptions().evals_per_epoch(2)),
                                 toy.blocks(), 8);
    points.clear();
    for (std::int64_t s = 0; s < 8; ++s)
      if (e.crit.decision_point(s)) points.push_back(s);
    CHECK(points == std::vector<std::int64_t>{3, 7});
    // evaluations happen only there
    for (int s = 0; s < 3; ++s) d.run({1, 1});
    CHECK(d.crit.evaluations() == 1);
    CHECK_FROST_ERROR(Driver<GradientNormChange>(GradientNormChange(), toy.blocks(), 0),
                      "steps_per_epoch");
    Driver<GradientNormChange> i(gnc(FreezeMode::sequential, GradNorm::l1, Accumulate::exact, 3),
                                 toy.blocks(), 0);
    CHECK(i.crit.decision_point(2));
    CHECK_FALSE(i.crit.decision_point(3));
  }

  TEST_CASE("GradientNormChange: n_prev = 0, NaN, Inf and unused blocks: warned, never frozen") {
    Toy toy(4);
    Driver<GradientNormChange> d(gnc(FreezeMode::any_order), toy.blocks());
    d.run({0, 1, 1, kNone});  // b0's n is 0; b3 got no gradient
    auto items = d.run({1, 0.5, 1, 1});
    // b0: n_prev = 0 -> warned; b3: first evaluation now; b1 eta 0.5, b2 eta 0
    CHECK(warnings(items) == S{0});
    CHECK(freezes(items) == S{2});  // etas {0.5, 0}: p50 0.25
    CHECK(contains(items[0].detail, "previous gradient norm is 0"));

    Driver<GradientNormChange> q(gnc(FreezeMode::sequential), toy.blocks());
    q.run({1, 1, 1, 1});
    // b0 NaN: not below, so it ends the sequential scan although b1 and b2 would be
    items = q.run({kNaN, 1, 1, 0.1});
    CHECK(warnings(items) == S{0});
    CHECK(freezes(items).empty());
    CHECK(std::isnan(q.crit.etas()[0]));
    // next: NaN as n_prev -> warned again; +Inf now -> warned; the rest: b1 0, b2 0.5
    items = q.run({1, 1, 0.5, std::numeric_limits<double>::infinity()});
    CHECK(warnings(items) == S{0, 3});
    CHECK(freezes(items).empty());
    // no gradient during an interval
    items = q.run({1, kNone, 0.5, 1});
    CHECK(warnings(items) == S{1, 3});  // b3: n_prev is +Inf
    CHECK(contains(items[0].detail, "no gradient"));
  }

  TEST_CASE("GradientNormChange: a block frozen mid-interval is dropped") {
    Toy toy(3);
    Driver<GradientNormChange> d(gnc(FreezeMode::any_order, GradNorm::l1, Accumulate::exact, 2),
                                 toy.blocks());
    d.run({1, 1, 1});
    d.run({1, 1, 1});
    d.run({1, 1, 1});
    // frozen by someone else between steps (as the controller does): buffers dropped
    d.freeze(1);
    CHECK(d.crit.buffer_bytes() == 2 * 6 * 4);
    auto items = d.run({1, 5, 0.5});
    CHECK(std::isnan(d.crit.etas()[1]));
    for (const auto& it : items) CHECK(it.block != 1);
  }

  TEST_CASE("invalid options throw frost::Error, options are reflected") {
    CHECK_FROST_ERROR(GradientThreshold(GradientThresholdOptions().threshold(-1)), "threshold");
    CHECK_FROST_ERROR(GradientThreshold(GradientThresholdOptions().threshold(kNaN)), "threshold");
    CHECK_FROST_ERROR(GradientThreshold(GradientThresholdOptions().window(-2)), "window");
    CHECK_FROST_ERROR(GradientThreshold(GradientThresholdOptions().relative(1.0)), "relative");
    CHECK_FROST_ERROR(GradientThreshold(GradientThresholdOptions().relative(-0.1)), "relative");
    CHECK_FROST_ERROR(GradientNormChange(GradientNormChangeOptions().percentile(101)), "percentile");
    CHECK_FROST_ERROR(GradientNormChange(GradientNormChangeOptions().percentile(-1)), "percentile");
    CHECK_FROST_ERROR(GradientNormChange(GradientNormChangeOptions().interval(-1)), "interval");
    CHECK_FROST_ERROR(GradientNormChange(GradientNormChangeOptions().evals_per_epoch(0)),
                      "evals_per_epoch");
    GradientNormChangeOptions o;
    frost::set_option(o, "mode", "any_order");
    frost::set_option(o, "norm", "l2");
    frost::set_option(o, "accumulate", "cheap");
    CHECK(o.mode() == FreezeMode::any_order);
    CHECK(o.norm() == GradNorm::l2);
    CHECK(o.accumulate() == Accumulate::cheap);
    CHECK_FROST_ERROR(frost::set_option(o, "mode", "fastest"), "does not accept");
    auto desc = frost::describe(GradientNormChangeOptions());
    CHECK(desc.size() == 7);
    CHECK(desc[0].first == "percentile");
    CHECK(desc[3].second == "sequential");
    CHECK(desc[4].second == "l1");
    CHECK(desc[5].second == "exact");
    CHECK(desc[6].first == "min_epochs");  // frost's from-scratch guard (docs/from-scratch.md)
    CHECK(desc[6].second == "1");
    CHECK(frost::describe(GradientThresholdOptions())[0].second == "0.001");
  }

  // --- combinators ----------------------------------------------------------
  TEST_CASE("AnyOf: any member's request freezes, every call reaches every member") {
    using A = frost::criteria::AnyOf<Script<1>, Script<2>>;
    CHECK(A::name() == "AnyOf<S1,S2>");
    Toy toy(3);
    Driver<A> d(A(), toy.blocks());
    CHECK(d.crit.get<0>().setups == 1);
    CHECK(d.crit.get<1>().setups == 1);
    d.crit.get<0>().script = {{1, 0, 0.5, true}, {2, 2, 0.0, false}};
    d.crit.get<1>().script = {{1, 0, 0.7, true}, {3, 1, 0.25, true}};
    std::vector<frost::Decisions::Item> all;
    for (int s = 0; s < 4; ++s)
      for (auto& it : d.run({1, 1, 1})) all.push_back(it);
    CHECK(d.frozen_set() == S{0, 1});
    REQUIRE(all.size() == 4);
    CHECK(all[0].detail == "S1: asked");
    CHECK(all[0].statistic == 0.5);
    CHECK(all[1].detail == "S2: asked");
    CHECK(all[2].detail == "S1: careful");
    CHECK(d.crit.get<0>().notified == std::vector<std::int64_t>{0, 1});
    CHECK(d.crit.get<1>().observed == 4);
    d.crit.on_validation(1.0, d.state());
    d.crit.observe_activations(0, at::zeros({1}));
    CHECK(d.crit.get<1>().validations == 1);
    CHECK(d.crit.get<0>().activations == 1);
    // Options: a tuple, reachable by dotted keys
    using G = frost::criteria::AnyOf<GradientThreshold, GradientNormChange>;
    G::Options go;
    frost::set_option(go, "0.threshold", "0.5");
    frost::set_option(go, "1.mode", "any_order");
    CHECK(std::get<0>(go).threshold() == 0.5);
    CHECK(std::get<1>(go).mode() == FreezeMode::any_order);
    CHECK(G::name() == "AnyOf<GradientThreshold,GradientNormChange>");
  }

  // A Script that also reads features (the hook alone is the capability), and
  // one that has the hook but declares it does not need features.
  template <int N, bool Flag>
  struct Featured : Script<N> {
    using Script<N>::Script;
    void observe_features(const frost::StepState&, const at::Tensor& f, const at::Tensor&) {
      features += f.size(0);
    }
    std::int64_t features = 0;
  };
  template <int N>
  struct Featured<N, false> : Featured<N, true> {
    using Featured<N, true>::Featured;
    static constexpr bool uses_features = false;  // has the hook, wants nothing
  };

  TEST_CASE("capabilities: explicit flags, re-exported by AnyOf and AllOf from their members") {
    namespace fc = frost::criteria;
    using frost::concepts::uses_features;
    using frost::concepts::uses_gradients;
    // a criterion: its flag, else whether it has the hook
    static_assert(!uses_features<GradientThreshold>() && uses_gradients<GradientThreshold>());
    static_assert(uses_features<fc::TokenSimilarity>() && !uses_gradients<fc::TokenSimilarity>());
    static_assert(uses_features<Featured<1, true>>());
    static_assert(!uses_features<Featured<1, false>>());
    // combinators: what their members need, not which hooks they forward
    static_assert(!uses_features<fc::AnyOf<GradientThreshold, GradientNormChange>>());
    static_assert(!uses_features<fc::AllOf<GradientThreshold, GradientNormChange>>());
    static_assert(uses_gradients<fc::AllOf<Script<1>, GradientNormChange>>());
    static_assert(!uses_gradients<fc::AnyOf<Script<1>, Script<2>>>());
    static_assert(uses_features<fc::AnyOf<GradientThreshold, fc::TokenSimilarity>>());
    static_assert(uses_features<fc::AllOf<fc::TokenSimilarity, GradientNormChange>>());
    static_assert(!uses_features<fc::AnyOf<Featured<1, false>, Script<2>>>());
    static_assert(uses_features<fc::AnyOf<fc::AllOf<Script<1>, Featured<2, true>>, Script<3>>>());
    // and the forwarded hook still reaches the members that have it, nested too
    using A = fc::AnyOf<fc::AllOf<Script<1>, Featured<2, true>>, Featured<3, true>>;
    Toy toy(3);
    Driver<A> d(A(), toy.blocks());
    d.crit.observe_features(d.state(), at::zeros({5, 4}), at::zeros({5}, at::kLong));
    CHECK(d.crit.get<0>().get<1>().features == 5);
    CHECK(d.crit.get<1>().features == 5);
    CHECK(d.crit.get<0>().get<0>().setups == 1);
  }

  // Every kind of field FROST_STATE stores.
  enum class Mode : std::int64_t { a = 0, b = 7 };
  struct Fields {
    std::int64_t n_ = 0;
    double x_ = 0.0;
    bool flag_ = false;
    std::string text_;
    Mode mode_ = Mode::a;
    std::vector<std::int64_t> ints_;
    std::vector<double> reals_;
    std::vector<char> flags_;
    std::vector<std::string> words_;
    at::Tensor t_;
    FROST_STATE(n, x, flag, text, mode, ints, reals, flags, words, t)
  };

  TEST_CASE("FROST_STATE: one list saves and loads every field kind, missing or mistyped keys named") {
    Fields a;
    a.n_ = -3;
    a.x_ = 2.5;
    a.flag_ = true;
    a.text_ = "hello";
    a.mode_ = Mode::b;
    a.ints_ = {1, -2, 3};
    a.reals_ = {0.5, std::numeric_limits<double>::quiet_NaN()};
    a.flags_ = {1, 0, 1};
    a.words_ = {"x", "yz"};
    a.t_ = at::arange(6, at::kFloat).reshape({2, 3});
    torch::serialize::OutputArchive out;
    frost::save_fields(out, a.state_fields());
    std::stringstream buf;
    out.save_to(buf);
    torch::serialize::InputArchive in;
    in.load_from(buf);
    Fields b;
    frost::load_fields(in, b.state_fields());
    CHECK(b.n_ == -3);
    CHECK(b.x_ == 2.5);
    CHECK(b.flag_);
    CHECK(b.text_ == "hello");
    CHECK(b.mode_ == Mode::b);
    CHECK(b.ints_ == a.ints_);
    REQUIRE(b.reals_.size() == 2);
    CHECK(b.reals_[0] == 0.5);
    CHECK(std::isnan(b.reals_[1]));
    CHECK(b.flags_ == a.flags_);
    CHECK(b.words_ == a.words_);
    CHECK(b.t_.equal(a.t_));
    // the keys are the names without the member suffix, as hand-written code wrote them
    c10::IValue v;
    torch::serialize::InputArchive again;
    buf.seekg(0);
    again.load_from(buf);
    CHECK(again.try_read("ints", v));
    CHECK(v.toIntVector() == std::vector<std::int64_t>{1, -2, 3});
    CHECK(again.try_read("flags", v));
    CHECK(v.isIntList());
    // a missing key and a value of another kind are frost::Errors naming the key
    torch::serialize::OutputArchive partial;
    partial.write("n", c10::IValue(std::int64_t{1}));
    partial.write("x", c10::IValue(std::string("not a number")));
    std::stringstream pbuf;
    partial.save_to(pbuf);
    torch::serialize::InputArchive pin;
    pin.load_from(pbuf);
    Fields c;
    CHECK_THROWS_WITH_AS(frost::load_fields(pin, c.state_fields()), doctest::Contains("'x'"),
                         frost::Error);
    struct OnlyN {
      std::int64_t n_ = 0, missing_ = 0;
      FROST_STATE(n, missing)
    } d;
    CHECK_THROWS_WITH_AS(frost::load_fields(pin, d.state_fields()),
                         doctest::Contains("no 'missing'"), frost::Error);
  }

  TEST_CASE("AllOf: sticky votes, the completing vote's statistic, NaN is not a vote") {
    using A = frost::criteria::AllOf<Script<1>, Script<2>>;
    CHECK(A::name() == "AllOf<S1,S2>");
    Toy toy(3);
    Driver<A> d(A(), toy.blocks());
    d.crit.get<0>().script = {{1, 0, 0.5, true}, {2, 1, 0.1, true}, {2, 2, kNaN, true},
                              {3, 2, 0.0, false}};
    d.crit.get<1>().script = {{4, 0, 0.7, true}, {4, 2, 0.3, true}};
    std::vector<std::vector<frost::Decisions::Item>> at(6);
    for (int s = 0; s < 6; ++s) at[s] = d.run({1, 1, 1});
    CHECK(freezes(at[1]).empty());
    CHECK(d.crit.voted(0, 1));  // S1's vote for b1 (step 2) is still standing
    CHECK_FALSE(d.crit.voted(1, 1));
    CHECK(warnings(at[2]) == S{2});  // the NaN request, passed on as a warning
    CHECK(contains(at[2][0].detail, "not a vote"));
    CHECK(contains(at[3][0].detail, "S1: careful"));
    // b0: S1 at step 1, S2 at step 4 -> frozen at step 4 with S2's statistic
    CHECK(freezes(at[4]) == S{0});
    CHECK(at[4][0].statistic == 0.7);
    CHECK(contains(at[4][0].detail, "last S2"));
    CHECK(d.frozen_set() == S{0});  // b1 only S1, b2 only S2
    CHECK_FALSE(d.crit.voted(0, 0));  // dropped once frozen
    CHECK(d.crit.get<1>().notified == std::vector<std::int64_t>{0});
  }

  // --- through the controller ------------------------------------------------
  TEST_CASE("host reads happen only at decision points (CPU, real training loop)") {
    torch::manual_seed(3);
    auto task = frost_test::make_task(128, at::kCPU);
    auto check_loop = [&](auto tag, auto criterion_options, std::int64_t every) {
      using C = typename decltype(tag)::type;
      using Ctl = frost::FreezeController<C, frost::schedules::Constant, frost::stop::Never>;
      Net net;
      auto blocks = frost::BlockMap::detect(*net);
      torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.05));
      Ctl ctl(net, opt, blocks,
              typename Ctl::Options()
                  .controller(frost::ControllerOptions().steps_per_epoch(every))
                  .criterion(criterion_options));
      int changed = 0;
      for (std::int64_t s = 0; s < 4 * every; ++s) {
        const auto before = frost::host::reads();
        controlled_step(ctl, net, opt, task.x, task.y, /*read_loss=*/false);
        const bool point = (s + 1) % every == 0;
        CAPTURE(s);
        if (point) {
          CHECK(frost::host::reads() == before + 1);  // exactly one read per decision
          ++changed;
        } else {
          CHECK(frost::host::reads() == before);
        }
      }
      CHECK(changed == 4);
    };
    struct T1 { using type = GradientThreshold; };
    struct T2 { using type = GradientNormChange; };
    struct T3 { using type = frost::criteria::AnyOf<GradientThreshold, GradientNormChange>; };
    SUBCASE("GradientThreshold") { check_loop(T1{}, GradientThresholdOptions().threshold(0), 5); }
    SUBCASE("GradientNormChange exact") {
      check_loop(T2{}, GradientNormChangeOptions().evals_per_epoch(1), 5);
    }
    SUBCASE("GradientNormChange cheap L2") {
      check_loop(T2{},
                 GradientNormChangeOptions().interval(5).norm(GradNorm::l2).accumulate(Accumulate::cheap),
                 5);
    }
    SUBCASE("AnyOf: one read per decision point, however many members decide there") {
      // two members with the same clock: their statistics travel as one tensor
      using Ctl = frost::FreezeController<T3::type, frost::schedules::Constant, frost::stop::Never>;
      Net net;
      auto blocks = frost::BlockMap::detect(*net);
      torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.05));
      Ctl::Options o;
      std::get<0>(o.criterion()).threshold(0).window(4);
      std::get<1>(o.criterion()).interval(4).min_epochs(0);
      Ctl ctl(net, opt, blocks, o);
      for (int s = 0; s < 12; ++s) {
        const auto before = frost::host::reads();
        controlled_step(ctl, net, opt, task.x, task.y, false);
        CHECK(frost::host::reads() == before + ((s + 1) % 4 == 0 ? 1 : 0));
      }
    }
  }

  TEST_CASE("after_backward() reads the raw gradients when it comes before clip_grad_norm_") {
    // The papers' statistics are of the raw gradients (AutoFreeze's norms,
    // DyF's mean |g|); the README asks for after_backward() right after
    // backward(), before clipping. These are the numbers either order gives.
    using Both = frost::criteria::AnyOf<GradientThreshold, GradientNormChange>;
    using Ctl = frost::FreezeController<Both, frost::schedules::Constant, frost::stop::Never>;
    for (bool before_clipping : {true, false}) {
      CAPTURE(before_clipping);
      torch::manual_seed(11);
      Net net;
      auto blocks = frost::BlockMap::detect(*net);
      torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.05));
      Ctl::Options o;
      std::get<0>(o.criterion()).threshold(0).window(1);  // statistics every step, no freezing
      std::get<1>(o.criterion()).interval(1).min_epochs(0);
      Ctl ctl(net, opt, blocks, o);
      const ClippedStep g = clipped_step(ctl, net, blocks, opt, before_clipping);
      const auto& norms = ctl.criterion().get<1>().norms();       // AutoFreeze's n_l
      const auto& means = ctl.criterion().get<0>().averages();    // DyF's mean |g|
      const auto& read = before_clipping ? g.raw : g.clipped;
      for (std::size_t b = 0; b < blocks.size(); ++b) {
        CAPTURE(b);
        CHECK(g.clipped[b] < 0.5 * g.raw[b]);  // clipping shrank every block's gradient
        CHECK(norms[b] == doctest::Approx(read[b]).epsilon(1e-5));
        CHECK(means[b] ==
              doctest::Approx(read[b] / static_cast<double>(blocks[b].numel)).epsilon(1e-5));
      }
    }
  }

  TEST_CASE("a NaN gradient is never frozen on and leaves a warning in the timeline") {
    torch::manual_seed(4);
    auto task = frost_test::make_task(64, at::kCPU);
    Net net;
    auto blocks = frost::BlockMap::detect(*net);
    torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.05));
    using Ctl = frost::FreezeController<GradientThreshold, frost::schedules::Constant, frost::stop::Never>;
    // threshold huge: every finite block freezes at the first window
    Ctl ctl(net, opt, blocks, Ctl::Options().criterion(GradientThresholdOptions().threshold(1e9).window(2)));
    for (int s = 0; s < 2; ++s) {
      ctl.before_step();
      opt.zero_grad();
      torch::nn::functional::cross_entropy(net->forward(task.x), task.y).backward();
      blocks[1].params[0].mutable_grad().fill_(kNaN);
      ctl.after_backward();
      ctl.after_step();  // no optimizer step: keep the weights finite
    }
    CHECK(ctl.frozen() == std::vector<bool>{true, false, true, true, true});
    bool warned = false;
    for (const auto& e : ctl.timeline())
      if (e.kind == frost::EventKind::warning && e.block == 1) {
        warned = true;
        CHECK(e.policy == "criterion:GradientThreshold");
        CHECK(std::isnan(e.statistic));
      }
    CHECK(warned);
  }

  TEST_CASE("CUDA: no synchronisation between decision points (sync debug mode = error)") {
    // Every criterion that reads per-step tensors runs a real loop: the gradient
    // criteria (exact and cheap) and their composition read gradients,
    // TokenSimilarity this step's features, AttentionPredictor its weight
    // records. Between decision points none may wait for the device. On CUDA,
    // sync debug mode = error makes any synchronisation throw (.item(), a
    // device-to-host copy, nonzero()); on the CPU, where nothing is waited for,
    // frost's host reads are counted instead, so the same loop and its set-up
    // (options, the shipped predictor) are proven on the CPU machine before a
    // GPU session, with its few minutes, runs them.
    using frost::criteria::AttentionPredictor;
    using frost::criteria::AttentionPredictorOptions;
    using frost::criteria::TokenSimilarity;
    using frost::criteria::TokenSimilarityOptions;
    constexpr std::int64_t every = 4;  // every criterion below decides at steps 3, 7, 11
    for (const auto& dev : frost_test::devices()) {
      CAPTURE(dev);
      auto task = frost_test::make_task(256, dev);
      auto sync_errors = [&](bool on) {
#if FROST_TEST_HAVE_CUDA_HEADERS
        if (dev.is_cuda())
          c10::cuda::warning_state().set_sync_debug_mode(on ? c10::cuda::SyncDebugMode::L_ERROR
                                                            : c10::cuda::SyncDebugMode::L_DISABLED);
#else
        (void)on;
#endif
      };
      auto run = [&](const std::string& what, auto tag, auto copts, bool features) {
        CAPTURE(what);
        using C = typename decltype(tag)::type;
        LoopRig<C> rig(copts, every, dev);
        auto& [net, blocks, opt, ctl] = rig;
        std::int64_t read_at_points = 0;
        for (std::int64_t s = 0; s < 3 * every; ++s) {
          CAPTURE(s);
          const bool point = (s + 1) % every == 0;
          const auto reads = frost::host::reads();
          sync_errors(true);
          try {
            ctl.before_step();
            opt.zero_grad();
            const auto logits = net->forward(task.x);
            if (features) ctl.observe_features(logits, task.y);  // [N, 3]: what the head gives
            torch::nn::functional::cross_entropy(logits, task.y).backward();
            ctl.after_backward();
            opt.step();
            if (point) sync_errors(false);  // a decision point may read, once
            ctl.after_step();
          } catch (const std::exception& e) {
            sync_errors(false);
            FAIL("a synchronisation (or error) between decision points at step " << s << ": "
                                                                                 << e.what());
          }
          sync_errors(false);
          const auto n = frost::host::reads() - reads;
          CHECK(n <= (point ? 1 : 0));
          read_at_points += n;
        }
        CHECK(ctl.step() == 3 * every);
        CHECK(read_at_points >= 1);  // the criterion did decide (not a loop that read nothing)
      };
      struct T1 { using type = GradientThreshold; };
      struct T2 { using type = GradientNormChange; };
      struct T3 { using type = frost::criteria::AnyOf<GradientThreshold, GradientNormChange>; };
      struct T4 { using type = TokenSimilarity; };
      struct T5 { using type = AttentionPredictor; };
      run("GradientThreshold", T1{}, GradientThresholdOptions().window(every), false);
      run("GradientNormChange exact", T2{}, GradientNormChangeOptions().interval(every), false);
      run("GradientNormChange cheap L2", T2{},
          GradientNormChangeOptions().interval(every).accumulate(Accumulate::cheap).norm(GradNorm::l2),
          false);
      T3::type::Options both;
      std::get<0>(both).window(every);
      std::get<1>(both).interval(every);
      run("AnyOf<GradientThreshold, GradientNormChange>", T3{}, both, false);
      run("TokenSimilarity", T4{},
          TokenSimilarityOptions().num_classes(3).record_steps(every).compare_steps(every), true);
      // the shipped predictor (predictor::default_path()), a stage every 4 steps
      run("AttentionPredictor", T5{},
          AttentionPredictorOptions().record_every(1).every(every).min_records(2), false);
    }
#if !FROST_TEST_HAVE_CUDA_HEADERS
    MESSAGE("CUDA part skipped: built without CUDA headers (host reads counted on the CPU)");
#else
    if (!torch::cuda::is_available())
      MESSAGE("CUDA part skipped: no CUDA device (host reads counted on the CPU)");
    else
      MESSAGE("ran on CUDA with sync debug mode = error");
#endif
  }

  TEST_CASE("abort_step after the criterion observed the step: every criterion decides as the run "
            "without that step, bit for bit") {
    // Two steps are attempted twice: the first attempt runs the forward (the
    // features observed, a predictor's record made), the backward with one
    // gradient made infinite, after_backward() (the criterion reads it), and
    // is abandoned as if the optimizer step threw; the retry runs clean. The
    // run must be the one without the failed attempts: the same timeline
    // (statistics bit for bit), the same criterion state (its checkpoint's
    // bytes) and the same parameters.
    using frost::criteria::AttentionPredictor;
    using frost::criteria::AttentionPredictorOptions;
    using frost::criteria::TokenSimilarity;
    using frost::criteria::TokenSimilarityOptions;
    constexpr std::int64_t every = 4;
    const auto task = frost_test::make_task(128, at::kCPU);
    auto run = [&](const std::string& what, auto tag, auto copts, bool features) {
      CAPTURE(what);
      using C = typename decltype(tag)::type;
      struct Out {
        frost::Timeline timeline;
        std::string state;
        std::vector<at::Tensor> params;
      };
      auto session = [&](const std::set<std::int64_t>& fail_at) {
        LoopRig<C> rig(copts, every);
        auto& [net, blocks, opt, ctl] = rig;
        for (std::int64_t s = 0; s < 4 * every; ++s) {
          for (bool fail : {true, false}) {
            if (fail && !fail_at.count(s)) continue;
            torch::manual_seed(1000 + static_cast<std::uint64_t>(s));  // the same dropout on a retry
            ctl.before_step();
            opt.zero_grad();
            const auto logits = net->forward(task.x);
            if (features) ctl.observe_features(fail ? logits * 3.0 : logits, task.y);
            torch::nn::functional::cross_entropy(logits, task.y).backward();
            if (fail) {
              at::NoGradGuard ng;
              for (const auto& p : blocks[1].params) p.grad().view(-1)[0] = INFINITY;
            }
            ctl.after_backward();
            if (fail) {
              ctl.abort_step();  // "the optimizer step threw"
              continue;
            }
            opt.step();
            ctl.after_step();
          }
        }
        Out o;
        o.timeline = ctl.timeline();
        torch::serialize::OutputArchive ar;
        frost::save(ctl, ar);
        std::ostringstream os;
        ar.save_to(os);
        o.state = os.str();
        for (const auto& p : net->parameters()) o.params.push_back(p.detach().clone());
        return o;
      };
      const Out clean = session({}), faulty = session({1, every + 2});
      REQUIRE(faulty.timeline.size() == clean.timeline.size());
      for (std::size_t i = 0; i < clean.timeline.size(); ++i) {
        const auto &a = clean.timeline[i], &b = faulty.timeline[i];
        CAPTURE(i);
        CHECK(a.step == b.step);
        CHECK(a.block == b.block);
        CHECK(a.kind == b.kind);
        CHECK(a.detail == b.detail);
        CHECK(((std::isnan(a.statistic) && std::isnan(b.statistic)) || a.statistic == b.statistic));
      }
      CHECK(clean.state == faulty.state);
      REQUIRE(clean.params.size() == faulty.params.size());
      for (std::size_t i = 0; i < clean.params.size(); ++i)
        CHECK(at::equal(clean.params[i], faulty.params[i]));
      return clean.timeline.size();
    };
    struct T1 { using type = GradientThreshold; };
    struct T2 { using type = GradientNormChange; };
    struct T3 { using type = frost::criteria::AllOf<GradientThreshold, GradientNormChange>; };
    struct T4 { using type = TokenSimilarity; };
    struct T5 { using type = AttentionPredictor; };
    // each decides something for the failed attempts to disturb
    CHECK(run("GradientThreshold", T1{}, GradientThresholdOptions().window(every).relative(0.9),
              false) > 0);
    CHECK(run("GradientNormChange exact", T2{},
              GradientNormChangeOptions().interval(every).min_epochs(0).mode(FreezeMode::any_order),
              false) > 0);
    CHECK(run("GradientNormChange cheap", T2{},
              GradientNormChangeOptions().interval(every).min_epochs(0).mode(FreezeMode::any_order)
                  .accumulate(Accumulate::cheap),
              false) > 0);
    T3::type::Options both;
    std::get<0>(both).window(every).relative(0.9);
    std::get<1>(both).interval(every).min_epochs(0).mode(FreezeMode::any_order);
    run("AllOf<GradientThreshold, GradientNormChange>", T3{}, both, false);
    CHECK(run("TokenSimilarity", T4{},
              TokenSimilarityOptions().num_classes(3).record_steps(every).compare_steps(every),
              true) > 0);
    run("AttentionPredictor", T5{},
        AttentionPredictorOptions().record_every(1).every(every).min_records(2), false);
  }

  TEST_CASE("real training: blocks freeze, loss falls, accuracy well above chance") {
    for (const auto& device : frost_test::devices()) {
      CAPTURE(device);
      // one teacher: the first 512 samples train, the other 512 test
      auto all = frost_test::make_task(1024, device);
      frost_test::Task train{all.x.narrow(0, 0, 512), all.y.narrow(0, 0, 512)};
      frost_test::Task test{all.x.narrow(0, 512, 512), all.y.narrow(0, 512, 512)};
      const std::int64_t batch = 64, spe = 512 / batch, epochs = 25;
      auto run = [&](auto tag, auto copts, const char* label) {
        using C = typename decltype(tag)::type;
        using Ctl = frost::FreezeController<C, frost::schedules::Constant, frost::stop::Never>;
        torch::manual_seed(6);
        Net net;
        net->to(device);
        auto blocks = frost::BlockMap::detect(*net);
        torch::optim::AdamW opt(frost::param_groups(blocks, *net), torch::optim::AdamWOptions(3e-3));
        Ctl ctl(net, opt, blocks,
                typename Ctl::Options()
                    .controller(frost::ControllerOptions().steps_per_epoch(spe))
                    .criterion(copts));
        double first = 0, last = 0;
        for (std::int64_t e = 0; e < epochs; ++e) {
          double sum = 0;
          for (std::int64_t b = 0; b < spe; ++b) {
            auto x = train.x.narrow(0, b * batch, batch), y = train.y.narrow(0, b * batch, batch);
            sum += controlled_step(ctl, net, opt, x, y);
          }
          if (e == 0) first = sum / spe;
          last = sum / spe;
        }
        const double acc = frost_test::accuracy(net, test);
        MESSAGE(std::string(label) << " on " << device << ": loss " << first << " -> " << last << ", test acc "
                      << acc << ", frozen " << ctl.num_frozen() << "/" << blocks.size());
        CHECK(ctl.num_frozen() >= 1);
        CHECK(last < 0.6 * first);
        CHECK(acc > 1.0 / 3.0 + 0.3);  // chance is 1/3
      };
      struct T1 { using type = GradientThreshold; };
      struct T2 { using type = GradientNormChange; };
      run(T1{}, GradientThresholdOptions().relative(0.5), "GradientThreshold(relative 0.5)");
      run(T2{}, GradientNormChangeOptions(), "GradientNormChange(sequential)");
      run(T2{}, GradientNormChangeOptions().accumulate(Accumulate::cheap).mode(FreezeMode::any_order),
          "GradientNormChange(cheap, any_order)");
    }
  }
}
