// Schedules: exact multipliers and freezing steps against the thesis' formulas
// (§3.2 eq. 5-6, §3.5 eq. 7 and LR-LR), computed independently here; what a
// schedule and a stop rule do to a training loop's own learning rates and
// length (the README's quick start); batches_per_epoch against a torch::data
// loader.
#include <torch/data/dataloader.h>
#include <torch/data/datasets/map.h>
#include <torch/data/datasets/tensor.h>
#include <torch/data/samplers/sequential.h>
#include <torch/data/transforms/stack.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/concepts/schedule.hpp"
#include "frost/controller.hpp"
#include "frost/controller_options.hpp"
#include "frost/criteria.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"
#include "frost/param_groups.hpp"
#include "frost/schedules.hpp"
#include "frost/stop.hpp"
#include "support.hpp"
// last: after every LibTorch header (see doctest_torch.hpp)
#include "doctest_torch.hpp"
#include "frost_checks.hpp"

namespace fs = frost::schedules;
using frost::kHead;
using frost::ScheduleSetup;

namespace {

constexpr double kPi = 3.14159265358979323846;

ScheduleSetup make_setup(std::int64_t blocks, std::int64_t total, std::int64_t warmup,
                         std::vector<int> stages = {}) {
  ScheduleSetup ss;
  ss.num_blocks = blocks;
  ss.total_steps = total;
  ss.warmup_steps = warmup;
  ss.stages = std::move(stages);
  return ss;
}

// The reference rule, written out from the brief/thesis independently of the
// library: t_i, s_i, and m_i(step).
struct Ref {
  double t0;
  bool cubic;
  double power;  // s_i = t_i^(-power): 1 = Scaled, 0 = Unscaled
  std::int64_t B, N, W;

  double t(std::int64_t i) const {
    if (i == kHead) return 1.0;
    const double u = t0 + (1.0 - t0) * double(i) / double(B);
    return cubic ? u * u * u : u;
  }
  double s(std::int64_t i) const { return std::pow(t(i), -power); }
  double m(std::int64_t step, std::int64_t i) const {
    if (step < W) return s(i) * double(step) / double(W);
    const double T = double(N - W), j = double(step - W);
    if (j > t(i) * T) return 0.0;
    return 0.5 * s(i) * (1.0 + std::cos(kPi * j / (t(i) * T)));
  }
  bool frozen(std::int64_t step, std::int64_t i) const {
    if (i == kHead || step < W) return false;
    return double(step - W) > t(i) * double(N - W);
  }
};

template <class S>
void check_against(const S& sched, const Ref& ref) {
  for (std::int64_t step = 0; step < ref.N; ++step) {
    for (std::int64_t b = -1; b < ref.B; ++b) {
      const std::int64_t blk = b < 0 ? kHead : b;
      CAPTURE(step);
      CAPTURE(blk);
      // Near the freezing boundary the frozen decision can differ by one ulp
      // between u^3 and pow(u, 3); skip steps within 1e-9 of t_i*T.
      const double edge = ref.t(blk) * double(ref.N - ref.W);
      if (step >= ref.W && std::abs(double(step - ref.W) - edge) < 1e-9) continue;
      CHECK(sched.lr_scale(step, blk) == doctest::Approx(ref.m(step, blk)).epsilon(1e-12));
      CHECK(sched.frozen(step, blk) == ref.frozen(step, blk));
    }
  }
}

/// Every param group's learning rate at each step of a run (read after
/// before_step(), as the optimizer uses them), which blocks were frozen
/// then, and how many steps ran: the quick start's loop on tests/support.hpp's
/// Net (stem, blocks.0-3, the head's group last) under AdamW at `lr`.
struct RateTrace {
  std::vector<std::vector<double>> lr;
  std::vector<std::vector<bool>> frozen;
  std::int64_t steps = 0;
};
template <class Ctl>
RateTrace trace_rates(const typename Ctl::Options& options, std::int64_t steps, double lr) {
  torch::manual_seed(0);
  frost_test::Net net;
  auto blocks = frost::BlockMap::detect(*net);
  torch::optim::AdamW opt(frost::param_groups(blocks, *net), torch::optim::AdamWOptions(lr));
  Ctl ctl(net, opt, blocks, options);
  const auto task = frost_test::make_task(64, at::kCPU);
  RateTrace t;
  for (std::int64_t step = 0; step < steps && !ctl.should_stop(); ++step) {
    ctl.before_step();
    t.lr.emplace_back();
    for (auto& g : opt.param_groups()) t.lr.back().push_back(g.options().get_lr());
    t.frozen.push_back(ctl.frozen());
    opt.zero_grad();
    torch::nn::functional::cross_entropy(net->forward(task.x), task.y).backward();
    ctl.after_backward();
    opt.step();
    ctl.after_step();
    ++t.steps;
  }
  return t;
}

}  // namespace

TEST_CASE("the quick start's composition anneals every rate and ends the run, Constant + Never "
          "keep the program's own") {
  const double lr = 2e-3;
  const std::int64_t steps = 60;
  namespace fc = frost::criteria;
  SUBCASE("GradientNormChange + Constant + Never: the program's rate, every step, to the end") {
    using Ctl = frost::FreezeController<fc::GradientNormChange, fs::Constant, frost::stop::Never>;
    const auto t = trace_rates<Ctl>(
        Ctl::Options()
            .controller(frost::ControllerOptions().total_steps(steps))
            .criterion(fc::GradientNormChangeOptions().interval(5).min_epochs(0).mode(
                fc::FreezeMode::any_order)),
        steps, lr);
    CHECK(t.steps == steps);  // never stopped
    CHECK(t.frozen.back() != std::vector<bool>(5, false));  // and blocks did freeze
    for (std::int64_t step = 0; step < steps; ++step) {
      CAPTURE(step);
      const auto& rates = t.lr[static_cast<std::size_t>(step)];
      const auto& frozen = t.frozen[static_cast<std::size_t>(step)];
      REQUIRE(rates.size() == 6);
      CHECK(rates.back() == lr);  // the head
      for (std::size_t b = 0; b < 5; ++b) CHECK(rates[b] == (frozen[b] ? 0.0 : lr));
    }
  }
  SUBCASE("the quick start's: FreezeOut's rates, the head annealed, stopped before the end") {
    using Ctl = frost::FreezeController<fc::GradientNormChange,
                                        fs::FreezeOut<frost::Cubic, frost::Scaled>,
                                        frost::stop::AllFrozen>;
    const std::int64_t warmup = 10;
    const auto t = trace_rates<Ctl>(
        Ctl::Options()
            .controller(frost::ControllerOptions().total_steps(steps).warmup_steps(warmup))
            .criterion(fc::GradientNormChangeOptions().interval(5).min_epochs(0))
            .schedule(fs::FreezeOutOptions().t0(0.5)),
        steps, lr);
    // the last block's t = (0.5 + 0.5 * 4/5)^3 = 0.729 of the 50 steps after warm-up
    CHECK(t.steps < steps);
    CHECK(t.steps <= warmup + 38);
    CHECK(t.lr[0].back() == 0.0);  // warm-up ramps from 0
    CHECK(t.lr[warmup][0] == doctest::Approx(8.0 * lr));  // block 0: lr / 0.5^3 at j = 0
    const double T = double(steps - warmup);
    for (std::int64_t step = warmup + 1; step < t.steps; ++step) {
      CAPTURE(step);
      const double head = t.lr[static_cast<std::size_t>(step)].back();
      CHECK(head < lr);
      CHECK(head == doctest::Approx(lr * 0.5 * (1.0 + std::cos(kPi * double(step - warmup) / T))));
    }
  }
}

TEST_CASE("batches_per_epoch: the batches a torch::data loader yields in an epoch") {
  auto data = torch::data::datasets::TensorDataset(at::arange(10).view({10, 1}))
                  .map(torch::data::transforms::Stack<torch::data::TensorExample>());
  for (bool drop_last : {false, true})
    for (std::int64_t batch : {1, 3, 4, 10}) {
      CAPTURE(drop_last);
      CAPTURE(batch);
      auto loader = torch::data::make_data_loader<torch::data::samplers::SequentialSampler>(
          data, torch::data::DataLoaderOptions(static_cast<std::size_t>(batch)).drop_last(drop_last));
      std::int64_t yielded = 0;
      for (auto& b : *loader) yielded += b.data.size(0) > 0 ? 1 : 0;
      CHECK(frost::batches_per_epoch(10, batch, drop_last) == yielded);
    }
  const auto o = frost::ControllerOptions().epochs(3, frost::batches_per_epoch(10, 4));
  CHECK(o.total_steps() == 9);
  CHECK(o.steps_per_epoch() == 3);
  CHECK_FROST_ERROR(frost::batches_per_epoch(0, 4), "a dataset of 1 or more examples");
  CHECK_FROST_ERROR(frost::batches_per_epoch(10, 0), "a batch size of 1 or more");
  CHECK_FROST_ERROR(frost::batches_per_epoch(3, 4, true), "yields no batch");
}

TEST_CASE("schedules satisfy the Schedule concept") {
  static_assert(frost::concepts::check_schedule<fs::FreezeOut<frost::Cubic, frost::Scaled>>());
  static_assert(frost::concepts::check_schedule<fs::FreezeOut<frost::Linear, frost::Unscaled>>());
  static_assert(frost::concepts::check_schedule<fs::LayerWise<frost::Cubic>>());
  static_assert(frost::concepts::check_schedule<fs::StageWise<fs::FreezeOut<frost::Cubic, frost::Scaled>>>());
  static_assert(frost::concepts::check_schedule<fs::StageWise<fs::LayerWise<frost::Linear>>>());
  static_assert(frost::concepts::check_schedule<fs::Constant>());
  static_assert(frost::concepts::check_schedule<fs::Cosine>());
  static_assert(!frost::is_spacing_v<int> && !frost::is_scaling_v<frost::Cubic>);
  CHECK(frost::concepts::name_of<fs::FreezeOut<frost::Cubic, frost::Scaled>>() ==
        "FreezeOut<Cubic,Scaled>");
  CHECK(frost::concepts::name_of<fs::FreezeOut<frost::Linear, frost::Unscaled>>() ==
        "FreezeOut<Linear,Unscaled>");
  CHECK(frost::concepts::name_of<fs::LayerWise<frost::Cubic>>() == "LayerWise<Cubic>");
  CHECK(frost::concepts::name_of<fs::StageWise<fs::FreezeOut<frost::Cubic, frost::Scaled>>>() ==
        "StageWise<FreezeOut<Cubic,Scaled>>");
  CHECK(frost::concepts::name_of<fs::Constant>() == "Constant");
  CHECK(frost::concepts::name_of<fs::Cosine>() == "Cosine");
}

TEST_CASE("FreezeOut: t_i and s_i, hand-computed") {
  fs::FreezeOut<frost::Cubic, frost::Scaled> c;  // default t0 = 0.8
  c.setup(make_setup(4, 1000, 0));
  CHECK(c.options().t0() == 0.8);
  CHECK(c.t(0) == doctest::Approx(0.512));          // 0.8^3
  CHECK(c.t(1) == doctest::Approx(0.85 * 0.85 * 0.85));  // u_1 = 0.8 + 0.2 * 1/4
  CHECK(c.t(3) == doctest::Approx(0.95 * 0.95 * 0.95));  // last block u < 1
  CHECK(c.t(kHead) == 1.0);
  CHECK(c.scale(0) == doctest::Approx(1.0 / 0.512));
  CHECK(c.scale(kHead) == 1.0);
  CHECK(c.lr_scale(0, 0) == doctest::Approx(1.0 / 0.512));  // starts at s_0 without warm-up
  // Half way through block 0's annealing: 0.5 * s * (1 + cos(pi/2)) = s / 2.
  CHECK(c.lr_scale(256, 0) == doctest::Approx(0.5 / 0.512));
  CHECK_FALSE(c.frozen(512, 0));  // j = 512 is (up to rounding) t_0 * T: not yet past it
  CHECK(c.frozen(513, 0));
  CHECK(c.lr_scale(513, 0) == 0.0);

  fs::FreezeOut<frost::Linear, frost::Unscaled> l(fs::FreezeOutOptions().t0(0.8));
  l.setup(make_setup(4, 1000, 0));
  CHECK(l.t(0) == doctest::Approx(0.8));
  CHECK(l.t(2) == doctest::Approx(0.9));
  CHECK(l.scale(0) == 1.0);
  CHECK(l.lr_scale(400, 0) == doctest::Approx(0.5));  // j = t_0*T/2
  CHECK_FALSE(l.frozen(800, 0));
  CHECK(l.frozen(801, 0));
}

TEST_CASE("FreezeOut: all four variants follow eq. 5/6 at every step") {
  for (std::int64_t W : {0, 7}) {
    for (double t0 : {0.8, 0.5, 1.0}) {
      CAPTURE(W);
      CAPTURE(t0);
      const auto ss = make_setup(5, 60, W);
      fs::FreezeOutOptions o;
      o.t0(t0);
      {
        fs::FreezeOut<frost::Linear, frost::Scaled> s(o);
        s.setup(ss);
        check_against(s, Ref{t0, false, 1.0, 5, 60, W});
      }
      {
        fs::FreezeOut<frost::Linear, frost::Unscaled> s(o);
        s.setup(ss);
        check_against(s, Ref{t0, false, 0.0, 5, 60, W});
      }
      {
        fs::FreezeOut<frost::Cubic, frost::Scaled> s(o);
        s.setup(ss);
        check_against(s, Ref{t0, true, 1.0, 5, 60, W});
      }
      {
        fs::FreezeOut<frost::Cubic, frost::Unscaled> s(o);
        s.setup(ss);
        check_against(s, Ref{t0, true, 0.0, 5, 60, W});
      }
    }
  }
}

TEST_CASE("FreezeOut: warm-up is a linear ramp to s_i that meets the cosine") {
  const std::int64_t N = 200, W = 20, B = 3;
  fs::FreezeOut<frost::Cubic, frost::Scaled> s;
  s.setup(make_setup(B, N, W));
  for (std::int64_t b = -1; b < B; ++b) {
    const std::int64_t blk = b < 0 ? kHead : b;
    CHECK(s.lr_scale(0, blk) == 0.0);
    CHECK(s.lr_scale(W / 2, blk) == doctest::Approx(0.5 * s.scale(blk)));
    CHECK(s.lr_scale(W - 1, blk) == doctest::Approx(s.scale(blk) * (W - 1) / double(W)));
    CHECK(s.lr_scale(W, blk) == doctest::Approx(s.scale(blk)));  // cosine at j = 0
    // Continuity: the step into the cosine is no bigger than one warm-up step.
    CHECK(std::abs(s.lr_scale(W, blk) - s.lr_scale(W - 1, blk)) <=
          s.scale(blk) / double(W) + 1e-12);
    for (std::int64_t w = 0; w < W; ++w) CHECK_FALSE(s.frozen(w, blk));
  }
}

TEST_CASE("FreezeOut: blocks freeze once j > t_i*T, in input order, and never thaw") {
  const std::int64_t N = 1000, W = 100, B = 13;  // ViT-B: patch embedding + 12 blocks
  fs::FreezeOut<frost::Cubic, frost::Scaled> s;
  s.setup(make_setup(B, N, W));
  const double T = double(N - W);
  std::int64_t previous_freeze = -1;
  for (std::int64_t b = 0; b < B; ++b) {
    CAPTURE(b);
    std::int64_t first = -1;
    for (std::int64_t step = 0; step < N + 50; ++step) {
      const bool f = s.frozen(step, b);
      if (f && first < 0) first = step;
      if (first >= 0) {
        CHECK(f);  // stays frozen
        CHECK(s.lr_scale(step, b) == 0.0);
      } else {
        CHECK(s.lr_scale(step, b) >= 0.0);
      }
    }
    REQUIRE(first >= 0);
    CHECK(double(first - W) > s.t(b) * T);
    CHECK(double(first - 1 - W) <= s.t(b) * T);
    CHECK(first >= previous_freeze);
    previous_freeze = first;
  }
  // Block 0 (t = 0.512): j = 460.8 is the last trained... j > 460.8 from j = 461.
  CHECK(s.frozen(W + 461, 0));
  CHECK_FALSE(s.frozen(W + 460, 0));
  // The head: t = 1, never frozen, anneals to 0 at j = T and stays 0 past the end.
  for (std::int64_t step = 0; step < N + 50; ++step) CHECK_FALSE(s.frozen(step, kHead));
  CHECK(s.lr_scale(W, kHead) == doctest::Approx(1.0));
  CHECK(s.lr_scale(W + 450, kHead) == doctest::Approx(0.5));
  CHECK(s.lr_scale(N - 1, kHead) == doctest::Approx(0.5 * (1 + std::cos(kPi * 899.0 / 900.0))));
  CHECK(s.lr_scale(N, kHead) == doctest::Approx(0.0));
  CHECK(s.lr_scale(N + 10, kHead) == 0.0);
}

TEST_CASE("FreezeOut with t0 = 1 anneals every block over the whole run") {
  fs::FreezeOut<frost::Linear, frost::Scaled> s(fs::FreezeOutOptions{}.t0(1.0));
  s.setup(make_setup(4, 100, 0));
  for (std::int64_t b = 0; b < 4; ++b) {
    CHECK(s.t(b) == 1.0);
    for (std::int64_t step = 0; step < 100; ++step) CHECK_FALSE(s.frozen(step, b));
  }
}

TEST_CASE("LayerWise (LR-LR): s_i = t_i^-p, p = 1 is Scaled, p = 0 is Unscaled") {
  const auto ss = make_setup(6, 90, 9);
  fs::FreezeOut<frost::Cubic, frost::Scaled> scaled;
  fs::FreezeOut<frost::Cubic, frost::Unscaled> unscaled;
  fs::LayerWise<frost::Cubic> p1(fs::LayerWiseOptions{}.p(1.0));
  fs::LayerWise<frost::Cubic> p0(fs::LayerWiseOptions{}.p(0.0));
  scaled.setup(ss);
  unscaled.setup(ss);
  p1.setup(ss);
  p0.setup(ss);
  for (std::int64_t step = 0; step < 100; ++step) {
    for (std::int64_t b = -1; b < 6; ++b) {
      const std::int64_t blk = b < 0 ? kHead : b;
      CHECK(p1.lr_scale(step, blk) == doctest::Approx(scaled.lr_scale(step, blk)).epsilon(1e-14));
      CHECK(p0.lr_scale(step, blk) == doctest::Approx(unscaled.lr_scale(step, blk)).epsilon(1e-14));
      CHECK(p1.frozen(step, blk) == scaled.frozen(step, blk));
      CHECK(p0.frozen(step, blk) == unscaled.frozen(step, blk));
    }
  }
  // Default p (0.7, the thesis' best in Table 15) against the reference.
  fs::LayerWise<frost::Cubic> d;
  CHECK(d.options().p() == 0.7);
  d.setup(ss);
  CHECK(d.scale(0) == doctest::Approx(std::pow(0.512, -0.7)));
  CHECK(d.scale(kHead) == 1.0);
  check_against(d, Ref{0.8, true, 0.7, 6, 90, 9});
  fs::LayerWise<frost::Linear> l(fs::LayerWiseOptions{}.p(0.4).t0(0.6));
  l.setup(ss);
  check_against(l, Ref{0.6, false, 0.4, 6, 90, 9});
}

TEST_CASE("StageWise (SR-LR): eq. 7 stage factor on top of FreezeOut") {
  // 13 blocks in 4 stages (LocalMIM-style), input side first.
  const std::vector<int> stages = {1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4};
  const std::int64_t N = 120, W = 12, B = 13;
  const auto ss = make_setup(B, N, W, stages);
  fs::StageWise<fs::FreezeOut<frost::Cubic, frost::Scaled>> sr;  // default p = 0.8
  CHECK(sr.options().p() == 0.8);
  CHECK(sr.options().inner().t0() == 0.8);
  sr.setup(ss);
  CHECK(sr.num_stages() == 4);
  // Hand-computed factors: (1/4)^0.8, (1/3)^0.8, (1/2)^0.8, 1.
  CHECK(sr.stage_factor(0) == doctest::Approx(std::pow(0.25, 0.8)));
  CHECK(sr.stage_factor(0) == doctest::Approx(0.3298769776932235));
  CHECK(sr.stage_factor(4) == doctest::Approx(std::pow(1.0 / 3.0, 0.8)));
  CHECK(sr.stage_factor(7) == doctest::Approx(std::pow(0.5, 0.8)));
  CHECK(sr.stage_factor(12) == 1.0);
  CHECK(sr.stage_factor(kHead) == 1.0);
  CHECK(sr.scale(0) == doctest::Approx(std::pow(0.25, 0.8) / 0.512));
  const Ref ref{0.8, true, 1.0, B, N, W};
  for (std::int64_t step = 0; step < N; ++step) {
    for (std::int64_t b = -1; b < B; ++b) {
      const std::int64_t blk = b < 0 ? kHead : b;
      const double f =
          blk == kHead ? 1.0 : std::pow(1.0 / double(4 - stages[std::size_t(blk)] + 1), 0.8);
      const double edge = ref.t(blk) * double(N - W);
      if (step >= W && std::abs(double(step - W) - edge) < 1e-9) continue;
      CHECK(sr.lr_scale(step, blk) == doctest::Approx(f * ref.m(step, blk)).epsilon(1e-12));
      CHECK(sr.frozen(step, blk) == ref.frozen(step, blk));  // freezing times unchanged
    }
  }
  // p = 0 is plain FreezeOut.
  fs::StageWiseOptions o0;
  o0.p(0.0).inner().t0(0.5);
  fs::StageWise<fs::FreezeOut<frost::Linear, frost::Unscaled>> sr0(o0);
  sr0.setup(ss);
  check_against(sr0, Ref{0.5, false, 0.0, B, N, W});
  // Combined with LR-LR (thesis Table 16).
  fs::StageWiseLayerWiseOptions o2;
  o2.p(0.8).inner().p(0.4);
  fs::StageWise<fs::LayerWise<frost::Cubic>> both(o2);
  both.setup(ss);
  CHECK(both.scale(0) == doctest::Approx(std::pow(0.25, 0.8) * std::pow(0.512, -0.4)));
  // Reflected keys of the nested options.
  auto opts = frost::describe(o2);
  REQUIRE(opts.size() == 3);
  CHECK(opts[0].first == "p");
  CHECK(opts[1].first == "inner.t0");
  CHECK(opts[2].first == "inner.p");
  fs::StageWiseOptions o3;
  frost::set_option(o3, "inner.t0", "0.6");
  CHECK(o3.inner().t0() == 0.6);
}

TEST_CASE("Constant and Cosine") {
  fs::Constant c;
  c.setup(make_setup(3, 0, 0));  // total_steps unknown is fine
  for (std::int64_t step : {0, 1, 1000000}) {
    CHECK(c.lr_scale(step, 0) == 1.0);
    CHECK(c.lr_scale(step, kHead) == 1.0);
    CHECK_FALSE(c.frozen(step, 2));
  }
  fs::Constant cw;
  cw.setup(make_setup(3, 0, 10));
  CHECK(cw.lr_scale(0, 1) == 0.0);
  CHECK(cw.lr_scale(4, 1) == doctest::Approx(0.4));
  CHECK(cw.lr_scale(10, 1) == 1.0);

  const std::int64_t N = 110, W = 10;
  fs::Cosine k;
  k.setup(make_setup(3, N, W));
  for (std::int64_t step = 0; step < N; ++step) {
    const double want =
        step < W ? double(step) / W : 0.5 * (1.0 + std::cos(kPi * double(step - W) / 100.0));
    for (std::int64_t b : {std::int64_t{0}, std::int64_t{2}, kHead}) {
      CHECK(k.lr_scale(step, b) == doctest::Approx(want).epsilon(1e-12));
      CHECK_FALSE(k.frozen(step, b));
    }
  }
  CHECK(k.lr_scale(W + 50, 0) == doctest::Approx(0.5));
  CHECK(k.lr_scale(N + 5, 0) == 0.0);
  fs::Cosine kf(fs::CosineOptions{}.min_scale(0.1));
  kf.setup(make_setup(3, N, 0));
  CHECK(kf.lr_scale(0, 0) == doctest::Approx(1.0));
  CHECK(kf.lr_scale(55, 0) == doctest::Approx(0.1 + 0.9 * 0.5));
  CHECK(kf.lr_scale(N + 5, 0) == doctest::Approx(0.1));
}

TEST_CASE("FreezeOut's t0 defaults by spacing: 0.5 linear, 0.8 cubic") {
  // The schedules' own defaults.
  CHECK(fs::FreezeOut<frost::Linear, frost::Scaled>().options().t0() == 0.5);
  CHECK(fs::FreezeOut<frost::Cubic, frost::Scaled>().options().t0() == 0.8);
  CHECK(fs::LayerWise<frost::Linear>().options().t0() == 0.5);
  CHECK(fs::LayerWise<frost::Cubic>().options().t0() == 0.8);
  CHECK(fs::StageWise<fs::FreezeOut<frost::Linear, frost::Unscaled>>().options().inner().t0() == 0.5);
  // An options struct built by hand leaves t0 at 0: the spacing's default at setup.
  fs::FreezeOut<frost::Linear, frost::Unscaled> l(fs::FreezeOutOptions{});
  l.setup(make_setup(4, 1000, 0));
  CHECK(l.t(0) == doctest::Approx(0.5));
  CHECK(l.t(2) == doctest::Approx(0.5 + 0.5 * 2.0 / 4.0));
  fs::FreezeOut<frost::Cubic, frost::Unscaled> c(fs::FreezeOutOptions{});
  c.setup(make_setup(4, 1000, 0));
  CHECK(c.t(0) == doctest::Approx(0.512));
}

TEST_CASE("invalid schedule options throw frost::Error") {
  using CS = fs::FreezeOut<frost::Cubic, frost::Scaled>;
  auto freezeout = [](double t0, std::int64_t B, std::int64_t N, std::int64_t W) {
    CS s(fs::FreezeOutOptions{}.t0(t0));
    s.setup(make_setup(B, N, W));
  };
  CHECK_NOTHROW(freezeout(0.8, 4, 100, 10));
  CHECK_NOTHROW(freezeout(1.0, 4, 100, 0));
  CHECK_NOTHROW(freezeout(0.0, 4, 100, 0));  // 0: the spacing's default
  CHECK_FROST_ERROR(freezeout(-0.1, 4, 100, 0), "t0");
  CHECK_FROST_ERROR(freezeout(1.5, 4, 100, 0), "t0");
  CHECK_FROST_ERROR(freezeout(std::nan(""), 4, 100, 0), "t0");
  CHECK_FROST_ERROR(freezeout(0.8, 4, 0, 0), "total_steps");
  CHECK_FROST_ERROR(freezeout(0.8, 4, -5, 0), "total_steps");
  CHECK_FROST_ERROR(freezeout(0.8, 4, 100, 100), "warmup_steps");
  CHECK_FROST_ERROR(freezeout(0.8, 4, 100, 150), "warmup_steps");
  CHECK_FROST_ERROR(freezeout(0.8, 4, 100, -1), "warmup_steps");
  CHECK_FROST_ERROR(freezeout(0.8, 0, 100, 0), "block");
  CHECK_FROST_ERROR(freezeout(0.8, -2, 100, 0), "block");
  CHECK_THROWS_WITH_AS(freezeout(0.8, 4, 0, 0), doctest::Contains("controller.total_steps"),
                       frost::Error);
  CHECK_THROWS_WITH_AS(freezeout(1.5, 4, 100, 0), doctest::Contains("t0"), frost::Error);

  // Used before setup / unknown block.
  CS fresh;
  CHECK_FROST_ERROR(fresh.lr_scale(0, 0), "before setup");
  CS ok;
  ok.setup(make_setup(4, 100, 0));
  CHECK_FROST_ERROR(ok.lr_scale(0, 4), "block 4");
  CHECK_FROST_ERROR(ok.frozen(0, -2), "block -2");

  fs::LayerWise<frost::Cubic> lw(fs::LayerWiseOptions{}.p(std::nan("")));
  CHECK_FROST_ERROR(lw.setup(make_setup(4, 100, 0)), " p");
  fs::LayerWise<frost::Cubic> lw0(fs::LayerWiseOptions{}.t0(-0.5));
  CHECK_FROST_ERROR(lw0.setup(make_setup(4, 100, 0)), "t0");

  fs::StageWise<CS> sw;
  CHECK_THROWS_WITH_AS(sw.setup(make_setup(4, 100, 0)),
                       doctest::Contains("StageWise needs block stages"), frost::Error);
  CHECK_THROWS_AS(sw.lr_scale(0, 0), frost::Error);  // setup did not succeed
  CHECK_THROWS_AS(sw.setup(make_setup(4, 100, 0, {1, 1, 2})), frost::Error);     // wrong count
  CHECK_THROWS_AS(sw.setup(make_setup(4, 100, 0, {0, 1, 2, 2})), frost::Error);  // stage 0
  CHECK_THROWS_AS(sw.setup(make_setup(4, 0, 0, {1, 1, 2, 2})), frost::Error);    // inner's check
  fs::StageWiseOptions bad_inner;
  bad_inner.inner().t0(2.0);
  fs::StageWise<CS> sw2(bad_inner);
  CHECK_FROST_ERROR(sw2.setup(make_setup(4, 100, 0, {1, 1, 2, 2})), "t0");
  CHECK_NOTHROW(sw.setup(make_setup(4, 100, 0, {1, 1, 2, 2})));

  fs::Constant c;
  CHECK_FROST_ERROR(c.setup(make_setup(4, -1, 0)), "total_steps");
  CHECK_FROST_ERROR(c.setup(make_setup(4, 10, 10)), "warmup_steps");
  CHECK_FROST_ERROR(c.setup(make_setup(4, 0, -3)), "warmup_steps");
  fs::Cosine k;
  CHECK_THROWS_WITH_AS(k.setup(make_setup(4, 0, 0)), doctest::Contains("total_steps"),
                       frost::Error);
  CHECK_FROST_ERROR(k.setup(make_setup(4, 10, 10)), "warmup_steps");
  fs::Cosine kb(fs::CosineOptions{}.min_scale(1.5));
  CHECK_FROST_ERROR(kb.setup(make_setup(4, 10, 0)), "min_scale");
}
