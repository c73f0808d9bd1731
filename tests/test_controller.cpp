// The foundation: block maps, the controller's freezing mechanics on a real
// small model trained for real steps, option validation, stop rules.
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>
#include <torch/optim/schedulers/step_lr.h>
#include <torch/optim/sgd.h>
#include <torch/version.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <set>
#include <string>
#include <type_traits>
#include <unordered_set>

#include "frost/frost.hpp"
#include "support.hpp"
// last: after every LibTorch header (see doctest_torch.hpp)
#include "doctest_torch.hpp"
#include "frost_checks.hpp"

using frost_test::contains;

using frost_test::Net;

namespace {

// A test-only schedule whose values are trivially known, so that the tests
// below check the controller's wiring (which group gets which rate) and not
// a schedule's formula (tests/test_schedules.cpp does that).
struct ProbeScheduleOptions {
  FROST_OPTIONS(
      (double, head, 0.5),
      (std::int64_t, freeze3_at, 6));  ///< -1: block 3 is never frozen by the schedule
};
}  // namespace
namespace {
struct ProbeSchedule {
  using Options = ProbeScheduleOptions;
  static constexpr const char* name = "Probe";
  static constexpr bool stateless = true;
  explicit ProbeSchedule(const Options& o) : o_(o) {}
  void setup(const frost::ScheduleSetup& s) { setup_ = s; }
  // block b at step t: 1 / (1 + b + t); the head: o.head
  double lr_scale(std::int64_t step, std::int64_t block) const {
    return block == frost::kHead ? o_.head() : 1.0 / double(1 + block + step);
  }
  // block 3 is frozen by the schedule from step o.freeze3_at on
  bool frozen(std::int64_t step, std::int64_t block) const {
    return block == 3 && o_.freeze3_at() >= 0 && step >= o_.freeze3_at();
  }
  Options o_;
  frost::ScheduleSetup setup_;
};

// A criterion that asks for what the test tells it to (including NaN statistics).
struct ScriptedOptions {};
}  // namespace
FROST_REFLECT_NONE(ScriptedOptions);
namespace {
struct Scripted {
  using Options = ScriptedOptions;
  static constexpr const char* name = "Scripted";
  static constexpr bool stateless = true;  // the script is the test's, not the run's
  explicit Scripted(const Options&) {}
  void setup(const frost::CriterionSetup&) {}
  void observe(const frost::StepState&) { ++observed; }
  bool decision_point(const frost::StepState&) const { return true; }
  void decide(const frost::StepState& s, frost::HostValues, frost::Decisions& d) {
    for (auto& [step, block, stat] : script)
      if (step == s.step) d.freeze(block, stat, "scripted");
  }
  void on_state_change(std::int64_t b, frost::BlockState, frost::BlockState) {
    notified.push_back(b);
  }
  std::vector<std::tuple<std::int64_t, std::int64_t, double>> script;
  std::vector<std::int64_t> notified;
  int observed = 0;
};

at::Tensor train_step(Net& net, torch::optim::Optimizer& opt, const frost_test::Task& t) {
  opt.zero_grad();
  auto loss = torch::nn::functional::cross_entropy(net->forward(t.x), t.y);
  loss.backward();
  return loss;
}

template <class Ctl>
at::Tensor controlled_step(Ctl& ctl, Net& net, torch::optim::Optimizer& opt,
                           const frost_test::Task& t) {
  ctl.before_step();
  auto loss = train_step(net, opt, t);
  ctl.after_backward();
  opt.step();
  ctl.after_step();
  return loss.detach();
}

using frost_test::KeepWarnings;  // the c10 warning handler of tests/support.hpp
using frost_test::WarningGuard;

/// A FreezeOut controller over frost_test::Net (5 blocks and the head, one
/// group each) whose blocks have different multipliers, 3 steps in, block 2
/// frozen by hand (its group at rate 0).
using FoCtl = frost::FreezeController<frost::criteria::Never,
                                      frost::schedules::FreezeOut<frost::Linear, frost::Scaled>,
                                      frost::stop::Never>;
struct DecayRig {
  explicit DecayRig(frost::ControllerOptions c = {}, bool warm = true)
      : blocks(frost::BlockMap::detect(*net)),
        opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.1)),
        ctl(net, opt, blocks, FoCtl::Options().controller(c.total_steps(40))) {
    if (!warm) return;
    for (int i = 0; i < 3; ++i) controlled_step(ctl, net, opt, task);
    ctl.freeze(2);
  }
  std::vector<double> bases() const {
    std::vector<double> b;
    for (std::size_t g = 0; g < opt.param_groups().size(); ++g) b.push_back(ctl.base_lr(g));
    return b;
  }
  /// Every group's base is `base` and its rate base x this step's multiplier.
  void check_all(double base) {
    const std::int64_t step = ctl.step();
    for (std::size_t g = 0; g < opt.param_groups().size(); ++g) {
      CAPTURE(g);
      const std::int64_t b = ctl.lr_book().block_of(g);
      CHECK(ctl.base_lr(g) == doctest::Approx(base).epsilon(1e-12));
      CHECK(opt.param_groups()[g].options().get_lr() ==
            doctest::Approx(base * ctl.lr_scale(step, b)).epsilon(1e-12));
    }
  }
  Net net;
  frost::BlockMap blocks;
  torch::optim::SGD opt;
  FoCtl ctl;
  frost_test::Task task = frost_test::make_task(64, at::kCPU);
};


}  // namespace

TEST_SUITE("blocks") {
  TEST_CASE("from_prefixes, from_children and detect find the same blocks in input order") {
    Net net;
    auto by_prefix = frost::BlockMap::from_prefixes(*net, {"embed", "blocks.0", "blocks.1",
                                                           "blocks.2", "blocks.3"});
    auto by_children = frost::BlockMap::from_prefixes(*net, {"embed"})
                           .append(frost::BlockMap::from_children(*net, "blocks"));
    auto detected = frost::BlockMap::detect(*net);
    REQUIRE(by_prefix.size() == 5);
    REQUIRE(by_children.size() == 5);
    REQUIRE(detected.size() == 5);
    CHECK(detected[0].name == "stem");
    CHECK(detected[1].name == "blocks.0");
    for (std::size_t i = 0; i < 5; ++i) {
      CHECK(by_prefix[i].param_names == by_children[i].param_names);
      CHECK(by_prefix[i].param_names == detected[i].param_names);
      CHECK(by_prefix[i].numel == detected[i].numel);
    }
    const std::vector<std::string> block0{"blocks.0.norm.weight", "blocks.0.norm.bias",
                                          "blocks.0.fc.weight", "blocks.0.fc.bias"};
    CHECK(by_prefix[1].param_names == block0);
    CHECK(by_prefix[0].numel == 8 * 32 + 32);
    CHECK(by_prefix.numel() == (8 * 32 + 32) + 4 * (32 * 32 + 32 + 2 * 32));
    // The head is in no block.
    for (const auto& b : detected)
      for (const auto& n : b.param_names) CHECK(n.rfind("head", 0) != 0);
    // A block built from a module prefix knows its module (for eval mode).
    REQUIRE(by_prefix[1].modules.size() == 1);
    CHECK(by_prefix[1].modules[0].get() == net->blocks[0].get());
  }

  TEST_CASE("bad block maps are refused with actionable errors") {
    Net net;
    CHECK_FROST_ERROR(frost::BlockMap::from_prefixes(*net, {"embed", "blocks.9"}),
                      "'blocks.9' matches no parameter");
    CHECK_FROST_ERROR(frost::BlockMap::from_prefixes(*net, {"blokcs.1"}), "'blocks.1'");
    CHECK_FROST_ERROR(frost::BlockMap::from_prefixes(*net, {"blocks", "blocks.1"}), "overlap");
    CHECK_FROST_ERROR(frost::BlockMap::from_prefixes(*net, {"blocks.1"})
                          .append(frost::BlockMap::from_children(*net, "blocks")),
                      "overlap");
    CHECK_FROST_ERROR(frost::BlockMap::from_prefixes(*net, {}), "empty");
    CHECK_FROST_ERROR(frost::BlockMap::from_children(*net, "layers"), "no submodule named");
    // a prefix matches whole name components only: "blocks.1" is not "blocks.10"
    CHECK_FROST_ERROR(frost::BlockMap::from_prefixes(*net, {"blocks.0.f"}), "matches no parameter");
    auto map = frost::BlockMap::detect(*net);
    CHECK_FROST_ERROR(map.stages({1, 1, 2}), "one per block");
    CHECK_FROST_ERROR(map.stages({1, 2, 1, 2, 2}), "must not decrease");
    CHECK_FROST_ERROR(map.stages({0, 1, 1, 2, 2}), "numbered from 1");
    map.stages({1, 1, 2, 2, 3});
    const std::vector<int> stages{1, 1, 2, 2, 3};
    CHECK(map.stages() == stages);
    CHECK_FROST_ERROR(map.index_of("block.2"), "'blocks.2'");
  }

  TEST_CASE("param_groups gives each block its own group and the rest one more") {
    Net net;
    auto blocks = frost::BlockMap::detect(*net);
    auto groups = frost::param_groups(blocks, *net);
    REQUIRE(groups.size() == blocks.size() + 1);
    CHECK(groups.back().params().size() == 2);  // head weight and bias
    for (std::size_t i = 0; i < blocks.size(); ++i)
      CHECK(groups[i].params().size() == blocks[i].params.size());
  }
}

using ProbeCtl = frost::FreezeController<Scripted, ProbeSchedule, frost::stop::Never>;

TEST_SUITE("controller") {
  TEST_CASE("learning rates: each group gets base lr x the schedule's multiplier") {
    Net net;
    auto blocks = frost::BlockMap::detect(*net);
    torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.2));
    opt.param_groups()[2].options().set_lr(0.4);  // a user's own per-group base rate is kept
    ProbeCtl ctl(net, opt, blocks, ProbeCtl::Options().schedule(ProbeScheduleOptions().head(0.25)));
    auto task = frost_test::make_task(64, at::kCPU);
    for (std::int64_t step = 0; step < 8; ++step) {
      ctl.before_step();
      for (std::int64_t b = 0; b < 5; ++b) {
        const double base = b == 2 ? 0.4 : 0.2;
        const double want = (b == 3 && step >= 6) ? 0.0 : base / double(1 + b + step);
        CHECK(opt.param_groups()[b].options().get_lr() == doctest::Approx(want).epsilon(1e-15));
      }
      CHECK(opt.param_groups()[5].options().get_lr() == doctest::Approx(0.2 * 0.25));
      train_step(net, opt, task);
      ctl.after_backward();
      opt.step();
      ctl.after_step();
    }
    // block 3 was frozen by the schedule at step 6 and the timeline says so
    REQUIRE(ctl.timeline().size() == 1);
    CHECK(ctl.timeline()[0].step == 6);
    CHECK(ctl.timeline()[0].block == 3);
    CHECK(ctl.timeline()[0].policy == "schedule:Probe");
    CHECK(ctl.is_frozen(3));
    CHECK(ctl.frozen_prefix() == 0);
    const std::vector<std::int64_t> notified{3};
    CHECK(ctl.criterion().notified == notified);
    CHECK(ctl.criterion().observed == 8);
  }

  TEST_CASE("learning-rate decay patterns under FreezeOut's per-block multipliers") {
    SUBCASE("the multipliers differ per block, so the patterns are distinguishable") {
      DecayRig r;
      r.ctl.before_step();
      CHECK(r.ctl.lr_scale(3, 0) != doctest::Approx(r.ctl.lr_scale(3, 4)));
      CHECK(r.opt.param_groups()[2].options().get_lr() == 0.0);  // frozen by hand
    }
    SUBCASE("a torch::optim scheduler (StepLR) scales every base, the frozen group's too") {
      DecayRig r;
      torch::optim::StepLR sched(r.opt, /*step_size=*/1, /*gamma=*/0.5);
      sched.step();  // LibTorch's first step() sets the current rates
      sched.step();  // the decay
      r.ctl.before_step();
      r.check_all(0.05);
      CHECK(r.ctl.timeline().size() == 1);  // the freeze only: no warning
    }
    SUBCASE("multiplying every group's rate by one factor scales every base") {
      DecayRig r;
      for (auto& g : r.opt.param_groups()) g.options().set_lr(g.options().get_lr() / 3.0);
      r.ctl.before_step();
      r.check_all(0.1 / 3.0);
    }
    SUBCASE("one absolute rate on every group becomes every base") {
      DecayRig r;
      for (auto& g : r.opt.param_groups()) g.options().set_lr(0.02);
      r.ctl.before_step();
      r.check_all(0.02);
      CHECK(r.opt.param_groups()[2].options().get_lr() == 0.0);  // still frozen
      CHECK(r.ctl.timeline().size() == 1);
    }
    SUBCASE("ctl.set_base_lr sets every base, over a change made since") {
      DecayRig r;
      r.opt.param_groups()[0].options().set_lr(0.5);
      r.ctl.set_base_lr(0.03);
      r.ctl.before_step();
      r.check_all(0.03);
      CHECK(r.ctl.timeline().size() == 1);
    }
    SUBCASE("a decay before a transition by hand is taken first") {
      DecayRig r;
      for (auto& g : r.opt.param_groups()) g.options().set_lr(g.options().get_lr() * 0.5);
      r.ctl.freeze(4);  // rewrites block 4's rate to 0
      r.ctl.before_step();
      r.check_all(0.05);
    }
    SUBCASE("changing only the first group is a warning at that step, with the fix") {
      DecayRig r;
      KeepWarnings keep;
      WarningGuard guard(&keep);
      const double scale0 = r.ctl.lr_book().scale(0);
      const std::vector<double> before = r.bases();
      r.opt.param_groups().front().options().set_lr(0.01);  // the tutorial's decay
      r.ctl.before_step();
      REQUIRE(r.ctl.timeline().size() == 2);
      const frost::Event& e = r.ctl.timeline().back();
      CHECK(e.kind == frost::EventKind::warning);
      CHECK(e.step == 3);
      CHECK(e.block == 0);
      CHECK(contains(e.detail, "1 of 6 param groups"));
      CHECK(contains(e.detail, "ctl.set_base_lr(lr)"));
      CHECK(r.ctl.base_lr(0) == doctest::Approx(0.01 / scale0));  // that group follows
      for (std::size_t g = 1; g < before.size(); ++g) CHECK(r.ctl.base_lr(g) == before[g]);
      REQUIRE(keep.messages.size() == 1);
      CHECK(contains(keep.messages[0], "frost: step 3, block 0"));
    }
    SUBCASE("with strict_lr it is an error at that step, and nothing changes") {
      DecayRig r(frost::ControllerOptions().strict_lr(true));
      const std::vector<double> before = r.bases();
      r.opt.param_groups().front().options().set_lr(0.01);
      CHECK_FROST_ERROR(r.ctl.before_step(), "ctl.set_base_lr(group, lr)");
      CHECK(r.bases() == before);
      CHECK(r.ctl.step() == 3);
      r.ctl.set_base_lr(0.01);  // what was meant; the step goes ahead
      r.ctl.before_step();
      r.check_all(0.01);
    }
    SUBCASE("a rate that is not finite is refused") {
      DecayRig r;
      for (auto& g : r.opt.param_groups())
        g.options().set_lr(std::numeric_limits<double>::quiet_NaN());
      CHECK_FROST_ERROR(r.ctl.before_step(), "finite rate");
    }
    SUBCASE("bases and multipliers survive a checkpoint") {
      DecayRig r;
      for (auto& g : r.opt.param_groups()) g.options().set_lr(0.02);
      r.ctl.before_step();
      torch::serialize::OutputArchive out;
      frost::save(r.ctl, out);
      std::ostringstream bytes;
      out.save_to(bytes);
      DecayRig fresh({}, /*warm=*/false);
      torch::serialize::InputArchive in;
      std::istringstream is(bytes.str());
      in.load_from(is);
      frost::load(fresh.ctl, in);
      for (std::size_t g = 0; g < r.opt.param_groups().size(); ++g) {
        CHECK(fresh.ctl.base_lr(g) == r.ctl.base_lr(g));
        CHECK(fresh.opt.param_groups()[g].options().get_lr() ==
              r.opt.param_groups()[g].options().get_lr());
      }
    }
  }

  TEST_CASE("min_epochs holds the gradient criteria's decisions back for the first epochs") {
    // The first freeze's step, or -1: 3 epochs of 8 steps.
    auto first_freeze = [](auto* tag, const auto& criterion_options) {
      using Ctl = std::remove_pointer_t<decltype(tag)>;
      torch::manual_seed(3);
      Net net;
      auto blocks = frost::BlockMap::detect(*net);
      torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.05));
      Ctl ctl(net, opt, blocks,
              typename Ctl::Options()
                  .controller(frost::ControllerOptions().epochs(3, 8))
                  .criterion(criterion_options));
      auto task = frost_test::make_task(64, at::kCPU);
      for (int i = 0; i < 24; ++i) controlled_step(ctl, net, opt, task);
      for (const auto& e : ctl.timeline())
        if (e.kind == frost::EventKind::freeze) return e.step;
      return std::int64_t{-1};
    };
    using Afz = frost::FreezeController<frost::criteria::GradientNormChange,
                                        frost::schedules::Constant, frost::stop::Never>;
    using Dyf = frost::FreezeController<frost::criteria::GradientThreshold,
                                        frost::schedules::Constant, frost::stop::Never>;
    using GO = frost::criteria::GradientNormChangeOptions;
    using TO = frost::criteria::GradientThresholdOptions;
    // AutoFreeze: 4 evaluations per epoch (every 2 steps); percentile 100 makes
    // the leading blocks freeze as soon as an eta is below the largest.
    const auto afz0 = first_freeze(static_cast<Afz*>(nullptr), GO().percentile(100).min_epochs(0));
    CHECK(afz0 >= 3);  // the second evaluation is the first that compares
    CHECK(afz0 < 7);   // ... and, unguarded, it freezes in the first epoch
    const auto afz1 = first_freeze(static_cast<Afz*>(nullptr), GO().percentile(100).min_epochs(1));
    CHECK(afz1 >= 7);  // not before the first epoch's last step
    const auto afz2 = first_freeze(static_cast<Afz*>(nullptr), GO().percentile(100).min_epochs(2));
    CHECK(afz2 >= 15);
    // DyF with a threshold every block is below: a window of 2 steps.
    CHECK(first_freeze(static_cast<Dyf*>(nullptr), TO().threshold(1e9).window(2).min_epochs(0)) == 1);
    CHECK(first_freeze(static_cast<Dyf*>(nullptr), TO().threshold(1e9).window(2).min_epochs(1)) == 7);
    CHECK(first_freeze(static_cast<Dyf*>(nullptr), TO().threshold(1e9).window(2).min_epochs(1.5)) == 11);
    CHECK_FROST_ERROR(frost::criteria::GradientNormChange(GO().min_epochs(-1)), "min_epochs");
    CHECK_FROST_ERROR(frost::criteria::GradientThreshold(TO().min_epochs(std::numeric_limits<double>::quiet_NaN())), "min_epochs");
    CHECK_FROST_ERROR(frost::ControllerOptions().epochs(0, 8), "epochs(0, 8)");
  }

  TEST_CASE("frost's warnings reach the c10 warning handler, once per kind and block") {
    KeepWarnings keep;
    WarningGuard guard(&keep);
    Net net;
    auto blocks = frost::BlockMap::from_prefixes(*net, {"blocks.0.norm"});  // little coverage
    torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.1));
    using Ctl = frost::FreezeController<frost::criteria::Never, frost::schedules::Constant,
                                        frost::stop::Never>;
    Ctl ctl(net, opt, blocks);
    REQUIRE(keep.messages.size() == 1);
    CHECK(contains(keep.messages[0], "frost: step 0, controller: the block map holds"));
    auto task = frost_test::make_task(64, at::kCPU);
    // Two partial changes of the same group: two timeline events, one message.
    for (int i = 0; i < 2; ++i) {
      opt.param_groups()[0].options().set_lr(0.05 / (i + 1));
      controlled_step(ctl, net, opt, task);
    }
    std::size_t lr_events = 0;
    for (const auto& e : ctl.timeline()) lr_events += contains(e.detail, "param groups changed");
    CHECK(lr_events == 2);
    REQUIRE(keep.messages.size() == 2);
    CHECK(contains(keep.messages[1], "param groups changed"));
    // The train-mode warning of a frozen block with batch norm.
    ctl.freeze(0);
    ctl.before_step();
    net->train();
    train_step(net, opt, task);
    ctl.after_backward();
    opt.step();
    ctl.after_step();
    REQUIRE(keep.messages.size() == 3);
    CHECK(contains(keep.messages[2], "model->train()"));
  }

  TEST_CASE("freezing a prefix: no grads, no updates, no optimizer state, no graph, head trains") {
    for (const auto& device : frost_test::devices()) {
      CAPTURE(device);
      torch::manual_seed(1);
      Net net;
      net->to(device);
      auto task = frost_test::make_task(256, device);
      auto blocks = frost::BlockMap::detect(*net);
      torch::optim::AdamW opt(frost::param_groups(blocks, *net),
                              torch::optim::AdamWOptions(3e-3).weight_decay(0.1));
      using Ctl = frost::FreezeController<frost::criteria::AtSteps, ProbeSchedule,
                                          frost::stop::AllFrozen>;
      Ctl ctl(net, opt, blocks,
              Ctl::Options()
                  .criterion(frost::criteria::AtStepsOptions().blocks({0, 1, 2}).steps({10, 10, 20}))
                  .schedule(ProbeScheduleOptions().head(1.0).freeze3_at(-1)));
      const double first_loss = controlled_step(ctl, net, opt, task).item<double>();
      for (int i = 1; i < 10; ++i) controlled_step(ctl, net, opt, task);
      // All trained so far: every parameter has Adam state.
      for (const auto& b : blocks)
        for (const auto& p : b.params) CHECK(frost::has_optimizer_state(opt, p));

      // Step 10 freezes blocks 0 and 1 before its forward pass.
      ctl.before_step();
      CHECK(ctl.is_frozen(0));
      CHECK(ctl.is_frozen(1));
      CHECK_FALSE(ctl.is_frozen(2));
      CHECK(ctl.frozen_prefix() == 2);
      std::vector<at::Tensor> before;
      for (std::size_t b = 0; b < 2; ++b)
        for (const auto& p : blocks[b].params) {
          CHECK_FALSE(p.requires_grad());
          CHECK_FALSE(p.grad().defined());
          CHECK_FALSE(frost::has_optimizer_state(opt, p));  // Adam moments freed
          before.push_back(p.detach().clone());
        }
      CHECK(opt.param_groups()[0].options().get_lr() == 0.0);
      // The frozen prefix records no autograd graph: block 1's output needs no grad.
      std::vector<at::Tensor> outs;
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward_collect(task.x, &outs), task.y);
      CHECK_FALSE(outs[1].requires_grad());
      CHECK_FALSE(outs[1].grad_fn());
      CHECK(outs[2].requires_grad());  // block 1 = detected index 1 is blocks.0; blocks.1 trains
      CHECK(outs[3].requires_grad());
      loss.backward();
      ctl.after_backward();
      opt.step();
      ctl.after_step();
      at::Tensor head_before = net->head->weight.detach().clone();
      for (int i = 11; i < 40; ++i) controlled_step(ctl, net, opt, task);
      // Frozen parameters never changed (AdamW's weight decay included), got no grads.
      std::size_t k = 0;
      for (std::size_t b = 0; b < 2; ++b)
        for (const auto& p : blocks[b].params) {
          CHECK(at::equal(p.detach(), before[k++]));
          CHECK_FALSE(p.grad().defined());
        }
      CHECK(ctl.is_frozen(2));
      CHECK(ctl.frozen_prefix() == 3);
      CHECK_FALSE(at::equal(net->head->weight.detach(), head_before));  // the head still trains
      for (const auto& p : blocks[3].params) CHECK(frost::has_optimizer_state(opt, p));
      const double last_loss = controlled_step(ctl, net, opt, task).item<double>();
      CHECK(last_loss < first_loss * 0.8);
      CHECK_FALSE(ctl.should_stop());  // blocks 3 and 4 still train
      CHECK(ctl.timeline().size() == 3);
      CHECK(ctl.timeline()[2].policy == "criterion:AtSteps");
      CHECK(ctl.frozen_fraction() > 0.0);
    }
  }

  TEST_CASE("AllFrozen stops once every block is frozen, timeline records the stop") {
    Net net;
    auto task = frost_test::make_task(32, at::kCPU);
    auto blocks = frost::BlockMap::detect(*net);
    torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.1));
    using Ctl = frost::FreezeController<frost::criteria::AtSteps, ProbeSchedule, frost::stop::AllFrozen>;
    Ctl ctl(net, opt, blocks,
            Ctl::Options().criterion(frost::criteria::AtStepsOptions().blocks({0, 1, 2, 4}).steps({0, 1, 2, 3})));
    int steps = 0;
    while (!ctl.should_stop() && steps < 50) {
      controlled_step(ctl, net, opt, task);
      ++steps;
    }
    // block 3 frozen by ProbeSchedule at step 6 -> the stop comes after step 6
    CHECK(steps == 7);
    CHECK(ctl.timeline().back().kind == frost::EventKind::stop);
    CHECK(ctl.timeline().back().step == 6);
  }

  TEST_CASE("never freeze on a non-finite statistic, in_order refuses out-of-order requests") {
    Net net;
    auto task = frost_test::make_task(32, at::kCPU);
    auto blocks = frost::BlockMap::detect(*net);
    torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.1));
    ProbeCtl ctl(net, opt, blocks,
                 ProbeCtl::Options().controller(frost::ControllerOptions().in_order(true)));
    const double nan = std::numeric_limits<double>::quiet_NaN();
    ctl.criterion().script = {{0, 0, nan}, {1, 2, 0.5}, {2, 1, 0.1}, {2, 0, 0.2}, {3, 2, 0.3}};
    for (int i = 0; i < 4; ++i) controlled_step(ctl, net, opt, task);
    const std::vector<bool> want{true, true, true, false, false};
    CHECK(ctl.frozen() == want);
    const auto& tl = ctl.timeline();
    REQUIRE(tl.size() == 5);
    CHECK(tl[0].kind == frost::EventKind::warning);  // NaN: skipped
    CHECK(std::isnan(tl[0].statistic));
    CHECK(tl[1].kind == frost::EventKind::warning);  // block 2 before blocks 0, 1
    CHECK(contains(tl[1].detail, "in_order"));
    CHECK((tl[2].block == 0 && tl[3].block == 1));   // one batch, applied input side first
    CHECK((tl[4].block == 2 && tl[4].kind == frost::EventKind::freeze));
  }

  TEST_CASE("every block state behaves as its row of kStateMeanings says") {
    // The table is what the parts read (block_state.hpp): walk a block
    // through every state by hand and check each column against what the
    // controller did: requires_grad and the learning rate (trains), the
    // optimizer's state (keeps_optimizer_state), num_frozen() and the stop
    // view (frozen_for_good), the module's mode (eval_mode, eval_frozen on).
    Net net;
    auto task = frost_test::make_task(32, at::kCPU);
    auto blocks = frost::BlockMap::from_children(*net, "blocks");
    torch::optim::AdamW opt(frost::param_groups(blocks, *net), torch::optim::AdamWOptions(0.01));
    using Ctl = frost::FreezeController<frost::criteria::Never, frost::schedules::Constant,
                                        frost::stop::Never>;
    Ctl ctl(net, opt, blocks, Ctl::Options().controller(frost::ControllerOptions().eval_frozen(true)));
    controlled_step(ctl, net, opt, task);  // every block has optimizer state now
    const std::size_t b = 1;
    std::set<frost::BlockState> seen;
    auto check = [&](frost::BlockState want) {
      const frost::StateMeaning& m = frost::meaning(want);
      CAPTURE(m.name);
      REQUIRE(ctl.block_state(b) == want);
      seen.insert(want);
      for (const auto& p : blocks[b].params) {
        CHECK(p.requires_grad() == m.trains);
        CHECK(frost::has_optimizer_state(opt, p) == m.keeps_optimizer_state);
      }
      for (const std::size_t g : ctl.lr_book().groups_of(b))
        CHECK((opt.param_groups()[g].options().get_lr() > 0.0) == m.trains);
      CHECK(ctl.is_frozen(b) == m.frozen_for_good);
      CHECK(ctl.num_frozen() == (m.frozen_for_good ? 1 : 0));
      net->train();  // the user's loop; the controller puts blocks out of training back
      ctl.before_step();
      CHECK(net->blocks[b]->is_training() == !m.eval_mode);
      ctl.abort_step();
      CHECK(std::string(frost::to_string(want)) == m.name);
      frost::BlockState back{};
      CHECK((frost::from_string(m.name, back) && back == want));
    };
    check(frost::BlockState::training);
    ctl.trial(b);
    check(frost::BlockState::trial);
    ctl.unfreeze(b);  // a revert: trains on from its optimizer state
    check(frost::BlockState::training);
    ctl.freeze(b);
    check(frost::BlockState::frozen);
    ctl.unfreeze(b);  // fresh optimizer state: none until its next step
    CHECK(ctl.block_state(b) == frost::BlockState::training);
    controlled_step(ctl, net, opt, task);
    check(frost::BlockState::training);
    CHECK(seen.size() == frost::kNumBlockStates);  // every row was walked
    CHECK_FALSE(frost::is_block_state(static_cast<std::int64_t>(frost::kNumBlockStates)));
  }

  TEST_CASE("eval_frozen keeps a frozen block's dropout off even after model->train()") {
    Net net;
    auto task = frost_test::make_task(32, at::kCPU);
    auto blocks = frost::BlockMap::from_children(*net, "blocks");
    torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.1));
    using Ctl = frost::FreezeController<frost::criteria::AtSteps, ProbeSchedule, frost::stop::Never>;
    Ctl ctl(net, opt, blocks,
            Ctl::Options()
                .controller(frost::ControllerOptions().eval_frozen(true))
                .criterion(frost::criteria::AtStepsOptions::prefix(1, 0)));
    net->train();
    controlled_step(ctl, net, opt, task);
    net->train();  // the user's loop
    ctl.before_step();
    CHECK_FALSE(net->blocks[0]->is_training());
    CHECK_FALSE(net->blocks[0]->as<frost_test::MlpBlock>()->drop->is_training());
    CHECK(net->blocks[1]->is_training());
  }

  TEST_CASE("eval_frozen: model->train() after before_step() cannot move a frozen block's batch norm") {
    // blocks of Linear + BatchNorm1d: train mode updates the running statistics.
    torch::manual_seed(3);
    auto seq = torch::nn::ModuleList();
    for (int i = 0; i < 3; ++i)
      seq->push_back(torch::nn::Sequential(torch::nn::Linear(8, 8), torch::nn::BatchNorm1d(8)));
    auto forward = [&](at::Tensor x) {
      for (const auto& m : *seq) x = m->as<torch::nn::Sequential>()->forward(x);
      return x;
    };
    auto model = std::make_shared<torch::nn::Module>();
    model->register_module("blocks", seq);
    auto head = model->register_module("head", torch::nn::Linear(8, 3));
    auto blocks = frost::BlockMap::from_children(*model, "blocks");
    torch::optim::SGD opt(frost::param_groups(blocks, *model), torch::optim::SGDOptions(0.1));
    using Ctl = frost::FreezeController<frost::criteria::AtSteps, frost::schedules::Constant,
                                        frost::stop::Never>;
    Ctl ctl(*model, opt, blocks, Ctl::Options().criterion(frost::criteria::AtStepsOptions::prefix(1, 1)));
    auto bn0 = seq[0]->as<torch::nn::Sequential>()->ptr(1)->as<torch::nn::BatchNorm1d>();
    auto bn1 = seq[1]->as<torch::nn::Sequential>()->ptr(1)->as<torch::nn::BatchNorm1d>();
    const auto task = frost_test::make_task(32, at::kCPU);
    auto step = [&](bool train_late) {
      ctl.before_step();
      if (train_late) model->train();  // the user's helper, after frost's eval mode
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(head->forward(forward(task.x)), task.y);
      loss.backward();
      ctl.after_backward();
      opt.step();
      ctl.after_step();
    };
    step(false);  // block 0 still trains: its statistics move
    const at::Tensor mean0 = bn0->running_mean.clone(), var0 = bn0->running_var.clone();
    const at::Tensor mean1 = bn1->running_mean.clone();
    step(false);  // block 0 frozen from this step's before_step
    CHECK(bn0->running_mean.equal(mean0));
    for (int i = 0; i < 3; ++i) step(true);
    CHECK(bn0->running_mean.equal(mean0));  // restored after each step
    CHECK(bn0->running_var.equal(var0));
    CHECK_FALSE(bn0->is_training());
    CHECK_FALSE(bn1->running_mean.equal(mean1));  // a training block's statistics move
    int warnings = 0;
    for (const auto& e : ctl.timeline())
      if (e.kind == frost::EventKind::warning) {
        ++warnings;
        CHECK(e.block == 0);
        CHECK(contains(e.detail, "model->train() before ctl.before_step()"));
      }
    CHECK(warnings == 1);  // reported once
    // Back in training: the block's statistics move again, nothing restores them.
    ctl.unfreeze(0);
    step(true);
    CHECK_FALSE(bn0->running_mean.equal(mean0));
  }

  TEST_CASE("abort_step abandons a step: no decision, no count, the same step begins again") {
    Net net;
    auto task = frost_test::make_task(32, at::kCPU);
    auto blocks = frost::BlockMap::detect(*net);
    torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.1));
    ProbeCtl ctl(net, opt, blocks);
    ctl.criterion().script = {{1, 0, 0.5}};
    controlled_step(ctl, net, opt, task);
    ctl.abort_step();  // between steps: nothing to abandon
    // step 1: the forward "throws" after before_step; the user catches it.
    ctl.before_step();
    ctl.abort_step();
    CHECK(ctl.step() == 1);
    // after backward, a bad loss: skipped.
    ctl.before_step();
    train_step(net, opt, task);
    ctl.after_backward();
    ctl.abort_step();
    CHECK(ctl.step() == 1);
    CHECK(ctl.num_frozen() == 0);  // step 1's decision not taken yet
    controlled_step(ctl, net, opt, task);  // step 1 again, completed
    CHECK(ctl.step() == 2);
    CHECK(ctl.is_frozen(0));
    CHECK_FROST_ERROR(ctl.after_step(), "without before_step()");
  }

  TEST_CASE("a block may span several param groups (weight decay split), a group may not span blocks") {
    Net net;
    auto blocks = frost::BlockMap::detect(*net);
    auto make_groups = [&] {  // the README's example: decayed weights, then biases, per block
      std::vector<torch::optim::OptimizerParamGroup> groups;
      std::unordered_set<const void*> in_blocks;
      for (const auto& b : blocks) {
        std::vector<at::Tensor> decay, no_decay;
        for (const auto& p : b.params) {
          (p.dim() >= 2 ? decay : no_decay).push_back(p);
          in_blocks.insert(p.unsafeGetTensorImpl());
        }
        for (auto* part : {&decay, &no_decay})
          if (!part->empty())
            groups.emplace_back(*part, std::make_unique<torch::optim::AdamWOptions>(
                                           torch::optim::AdamWOptions(part == &decay ? 1e-2 : 2e-2)
                                               .weight_decay(part == &decay ? 0.05 : 0.0)));
      }
      std::vector<at::Tensor> rest;
      for (const auto& p : net->parameters())
        if (!in_blocks.count(p.unsafeGetTensorImpl())) rest.push_back(p);
      groups.emplace_back(rest);
      return groups;
    };
    torch::optim::AdamW opt(make_groups(), torch::optim::AdamWOptions(1e-3));
    REQUIRE(opt.param_groups().size() > blocks.size() + 1);
    ProbeCtl ctl(net, opt, blocks);
    ctl.criterion().script = {{1, 1, 0.5}};
    const auto task = frost_test::make_task(32, at::kCPU);
    for (int i = 0; i < 3; ++i) controlled_step(ctl, net, opt, task);
    REQUIRE(ctl.is_frozen(1));
    std::size_t frozen_groups = 0;
    for (auto& g : opt.param_groups()) {
      bool of_block1 = false;
      for (const auto& p : g.params())
        for (const auto& q : blocks[1].params) of_block1 = of_block1 || p.is_same(q);
      if (!of_block1) continue;
      ++frozen_groups;
      CHECK(g.options().get_lr() == 0.0);  // every group of the frozen block
      for (const auto& p : g.params()) CHECK_FALSE(frost::has_optimizer_state(opt, p));
    }
    CHECK(frozen_groups == 2);
    // block 0's two groups keep their own base rates x the schedule's multiplier
    // (ProbeSchedule: 1 / (1 + block + step) before step 3's before_step: step 2)
    CHECK(opt.param_groups()[0].options().get_lr() == doctest::Approx(1e-2 / 3.0));
    CHECK(opt.param_groups()[1].options().get_lr() == doctest::Approx(2e-2 / 3.0));

    // a group holding two blocks' parameters: refused, naming both
    std::vector<at::Tensor> two(blocks[0].params);
    two.insert(two.end(), blocks[1].params.begin(), blocks[1].params.end());
    std::vector<torch::optim::OptimizerParamGroup> bad;
    bad.emplace_back(two);
    for (std::size_t b = 2; b < blocks.size(); ++b) bad.emplace_back(blocks[b].params);
    bad.emplace_back(net->head->parameters());
    torch::optim::SGD sgd(std::move(bad), torch::optim::SGDOptions(0.1));
    CHECK_FROST_ERROR(ProbeCtl(net, sgd, blocks), "of block '" + blocks[1].name + "'");
  }

  TEST_CASE("the controller refuses optimizers and options it cannot work with") {
    Net net;
    auto blocks = frost::BlockMap::detect(*net);
    {
      torch::optim::SGD opt(net->head->parameters(), torch::optim::SGDOptions(0.1));
      CHECK_FROST_ERROR(ProbeCtl(net, opt, blocks), "is not in the optimizer");
    }
    {
      torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.1));
      CHECK_FROST_ERROR(ProbeCtl(net, opt, blocks), "frost::param_groups");
    }
    torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.1));
    CHECK_FROST_ERROR(
        ProbeCtl(net, opt, blocks, ProbeCtl::Options().controller(frost::ControllerOptions().total_steps(-5))),
        "total_steps");
    CHECK_FROST_ERROR(ProbeCtl(net, opt, blocks,
                               ProbeCtl::Options().controller(
                                   frost::ControllerOptions().total_steps(10).warmup_steps(10))),
                      "warmup_steps");
    Net other;
    CHECK_FROST_ERROR(ProbeCtl(other, opt, blocks), "not a parameter of the model");
    CHECK_FROST_ERROR(ProbeCtl(net, opt, frost::BlockMap()), "empty");
    using AtCtl = frost::FreezeController<frost::criteria::AtSteps, ProbeSchedule, frost::stop::Never>;
    CHECK_FROST_ERROR(
        AtCtl(net, opt, blocks, AtCtl::Options().criterion(frost::criteria::AtStepsOptions().blocks({7}).steps({0}))),
        "5 blocks");
    // call order
    ProbeCtl ctl(net, opt, blocks);
    CHECK_FROST_ERROR(ctl.after_step(), "before_step()");
    CHECK_FROST_ERROR(ctl.after_backward(), "before_step()");
    ctl.before_step();
    CHECK_FROST_ERROR(ctl.before_step(), "twice");
  }

  TEST_CASE("describe() prints the whole configuration, set_option sets it by key") {
    using Ctl = frost::FreezeController<frost::criteria::AtSteps, ProbeSchedule,
                                        frost::stop::AnyOf<frost::stop::Patience, frost::stop::MaxSteps>>;
    Ctl::Options o;
    Ctl::set_option(o, "schedule.head", "0.125");
    Ctl::set_option(o, "controller.total_steps", "100");
    Ctl::set_option(o, "stop.0.patience", "5");
    Ctl::set_option(o, "stop.1.steps", "80");
    Ctl::set_option(o, "criterion.blocks", "0,1");
    Ctl::set_option(o, "criterion.steps", "3,4");
    CHECK_FROST_ERROR(Ctl::set_option(o, "schedule.nope", "1"), "known options: head");
    CHECK_FROST_ERROR(Ctl::set_option(o, "controller.total_steps", "ten"), "expects a number");
    Net net;
    auto blocks = frost::BlockMap::detect(*net);
    torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.1));
    Ctl ctl(net, opt, blocks, o);
    auto d = ctl.describe();
    auto value = [&](const std::string& k) {
      for (auto& kv : d)
        if (kv.first == k) return kv.second;
      return std::string("<missing>");
    };
    CHECK(value("schedule") == "Probe");
    CHECK(value("stop") == "AnyOf<Patience,MaxSteps>");
    CHECK(value("schedule.head") == "0.125");
    CHECK(value("controller.total_steps") == "100");
    CHECK(value("controller.in_order") == "false");
    CHECK(value("stop.0.patience") == "5");
    CHECK(value("stop.1.steps") == "80");
    CHECK(value("criterion.steps") == "3,4");
  }

  TEST_CASE("a checkpoint re-freezes the same blocks in a fresh controller") {
    Net net;
    auto task = frost_test::make_task(32, at::kCPU);
    auto blocks = frost::BlockMap::detect(*net);
    torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.1));
    ProbeCtl ctl(net, opt, blocks);
    ctl.criterion().script = {{1, 0, 0.5}, {2, 1, 0.25}};
    for (int i = 0; i < 4; ++i) controlled_step(ctl, net, opt, task);
    torch::serialize::OutputArchive out;
    frost::save(ctl, out);
    std::ostringstream bytes;
    out.save_to(bytes);

    Net net2;
    auto blocks2 = frost::BlockMap::detect(*net2);
    torch::optim::SGD opt2(frost::param_groups(blocks2, *net2), torch::optim::SGDOptions(0.1));
    ProbeCtl ctl2(net2, opt2, blocks2);
    torch::serialize::InputArchive in;
    std::istringstream is(bytes.str());
    in.load_from(is);
    frost::load(ctl2, in);
    CHECK(ctl2.frozen() == ctl.frozen());
    CHECK(ctl2.step() == 4);
    CHECK(ctl2.timeline().size() == ctl.timeline().size());
    for (const auto& p : blocks2[1].params) CHECK_FALSE(p.requires_grad());
    CHECK(opt2.param_groups()[1].options().get_lr() == 0.0);
  }
}

TEST_SUITE("stop") {
  TEST_CASE("Patience counts reports without improvement, NaN never improves") {
    frost::stop::Patience p(frost::stop::PatienceOptions().patience(3).min_delta(0.01));
    frost::StopState s;
    for (double loss : {1.0, 0.9, 0.895, 0.92}) p.on_validation(loss, s);
    CHECK(p.best() == 0.9);
    CHECK(p.reports_without_improvement() == 2);
    CHECK_FALSE(p.should_stop(s));
    p.on_validation(std::nan(""), s);
    CHECK(p.should_stop(s));
    p.on_validation(0.5, s);
    CHECK_FALSE(p.should_stop(s));
    CHECK_FROST_ERROR(frost::stop::Patience(frost::stop::PatienceOptions().patience(0)), "patience");
  }

  TEST_CASE("MaxSteps, AllFrozen, Never and AnyOf") {
    frost::StopState s;
    s.num_blocks = 4;
    frost::stop::MaxSteps m(frost::stop::MaxStepsOptions().steps(10));
    s.steps_done = 9;
    CHECK_FALSE(m.should_stop(s));
    s.steps_done = 10;
    CHECK(m.should_stop(s));
    CHECK_FROST_ERROR(frost::stop::MaxSteps(), "positive step budget");
    frost::stop::AllFrozen a;
    s.num_frozen = 3;
    CHECK_FALSE(a.should_stop(s));
    s.num_frozen = 4;
    CHECK(a.should_stop(s));
    frost::stop::AllFrozen at_epoch(frost::stop::AllFrozenOptions().at_epoch_end(true));
    CHECK_FALSE(at_epoch.should_stop(s));
    s.epoch_end = true;
    CHECK(at_epoch.should_stop(s));
    CHECK_FALSE(frost::stop::Never().should_stop(s));

    using Any = frost::stop::AnyOf<frost::stop::AllFrozen, frost::stop::Patience>;
    Any::Options opts;
    std::get<1>(opts).patience(1);
    Any any(opts);
    s.num_frozen = 1;
    CHECK_FALSE(any.should_stop(s));
    any.on_validation(1.0, s);
    CHECK_FALSE(any.should_stop(s));
    any.on_validation(1.5, s);  // no improvement, patience 1
    CHECK(any.should_stop(s));
    CHECK(Any::name() == "AnyOf<AllFrozen,Patience>");

    // Epoch counts without an epoch length fail when the controller is built,
    // not once every block has frozen; also inside AnyOf.
    Net net;
    auto blocks = frost::BlockMap::detect(*net);
    torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.1));
    using Ctl = frost::FreezeController<frost::criteria::Never, frost::schedules::Constant,
                                        frost::stop::AllFrozen>;
    CHECK_FROST_ERROR(Ctl(net, opt, blocks,
                          Ctl::Options().stop(frost::stop::AllFrozenOptions().extra_epochs(1))),
                      "steps_per_epoch is 0");
    CHECK_FROST_ERROR(Ctl(net, opt, blocks,
                          Ctl::Options().stop(frost::stop::AllFrozenOptions().at_epoch_end(true))),
                      "at_epoch_end (true) counts epochs");
    Ctl fine(net, opt, blocks,
             Ctl::Options()
                 .controller(frost::ControllerOptions().steps_per_epoch(10))
                 .stop(frost::stop::AllFrozenOptions().extra_epochs(1)));
    using AnyCtl = frost::FreezeController<frost::criteria::Never, frost::schedules::Constant,
                                           frost::stop::AnyOf<frost::stop::Patience, frost::stop::AllFrozen>>;
    AnyCtl::Options ao;
    std::get<1>(ao.stop()).extra_epochs(2);
    CHECK_FROST_ERROR(AnyCtl(net, opt, blocks, ao), "extra_epochs (2)");
  }
}

// --- resuming: the checkpoint must be of this model, this run, a live run --
namespace {

/// A model (built by the caller: another hidden size, another head), its
/// detected block map, SGD at 0.1 and a controller: what a resumed run builds.
template <class Ctl>
struct Resumed {
  Resumed(Net n, const typename Ctl::Options& o)
      : net(std::move(n)),
        blocks(frost::BlockMap::detect(*net)),
        opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.1)),
        ctl(net, opt, blocks, o) {}
  /// Nothing of the controller, the model or the optimizer changed since it
  /// was built (`weights`: its parameters then).
  void check_untouched(const std::vector<at::Tensor>& weights) {
    CHECK(ctl.step() == 0);
    CHECK(ctl.num_frozen() == 0);
    CHECK(ctl.timeline().empty());
    CHECK_FALSE(ctl.should_stop());
    const auto params = net->parameters();
    REQUIRE(params.size() == weights.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      CHECK(params[i].requires_grad());
      CHECK(at::equal(params[i], weights[i]));
    }
    for (const auto& g : opt.param_groups()) CHECK(g.options().get_lr() == 0.1);
  }
  std::vector<at::Tensor> weights() const {
    std::vector<at::Tensor> w;
    for (const auto& p : net->parameters()) w.push_back(p.detach().clone());
    return w;
  }
  Net net;
  frost::BlockMap blocks;
  torch::optim::SGD opt;
  Ctl ctl;
};

std::string saved(const torch::serialize::OutputArchive& ar) {
  std::ostringstream os;
  const_cast<torch::serialize::OutputArchive&>(ar).save_to(os);
  return os.str();
}
template <class Ctl>
std::string saved(const Ctl& ctl) {
  torch::serialize::OutputArchive ar;
  frost::save(ctl, ar);
  return saved(ar);
}
template <class Ctl>
void load_saved(Ctl& ctl, const std::string& bytes) {
  torch::serialize::InputArchive in;
  std::istringstream is(bytes);
  in.load_from(is);
  frost::load(ctl, in, "run.ckpt");
}

}  // namespace

TEST_SUITE("resume") {
  TEST_CASE("resume: a checkpoint of another model is refused, naming block, parameter and shapes") {
    using Ctl = frost::FreezeController<frost::criteria::AtSteps, frost::schedules::Constant,
                                        frost::stop::Never>;
    const auto o = Ctl::Options().criterion(frost::criteria::AtStepsOptions().blocks({0}).steps({1}));
    const auto task = frost_test::make_task(32, at::kCPU);
    Resumed<Ctl> first(Net(8, 8), o);
    for (int i = 0; i < 3; ++i) controlled_step(first.ctl, first.net, first.opt, task);
    REQUIRE(first.ctl.num_frozen() == 1);
    const std::string bytes = saved(first.ctl);

    SUBCASE("the hidden size changed, 8 -> 4: the blocks' shapes") {
      Resumed<Ctl> other(Net(8, 4), o);
      const auto w = other.weights();
      CHECK_FROST_ERROR(load_saved(other.ctl, bytes),
                        "run.ckpt was written for another model: block 'stem': parameter "
                        "'embed.weight' has shape [8, 8] in the checkpoint and [4, 8] now");
      CHECK_FROST_ERROR(load_saved(other.ctl, bytes),
                        "block 'blocks.0': parameter 'blocks.0.norm.weight' has shape [8] in the "
                        "checkpoint and [4] now");
      CHECK_FROST_ERROR(load_saved(other.ctl, bytes), "more. Resume with the model");
      other.check_untouched(w);
    }
    SUBCASE("another number of classes (another vocabulary): the head's shapes") {
      Resumed<Ctl> other(Net(8, 8, 4, 5), o);
      const auto w = other.weights();
      CHECK_FROST_ERROR(load_saved(other.ctl, bytes),
                        "the head (parameters the optimizer trains outside the block map): "
                        "parameter 'head.weight' has shape [3, 8] in the checkpoint and [5, 8] now");
      other.check_untouched(w);
    }
    SUBCASE("the same model resumes") {
      Resumed<Ctl> same(Net(8, 8), o);
      load_saved(same.ctl, bytes);
      CHECK(same.ctl.step() == 3);
      CHECK(same.ctl.frozen() == first.ctl.frozen());
    }
  }

  TEST_CASE("resume: another run shape is refused, allow_new_run_shape accepts it and says so") {
    using Ctl = frost::FreezeController<frost::criteria::Never,
                                        frost::schedules::FreezeOut<frost::Linear, frost::Scaled>,
                                        frost::stop::Never>;
    // 5 epochs of 69 batches; then the corpus shrinks to 63 batches per epoch.
    auto options = [](std::int64_t batches, bool allow) {
      return Ctl::Options().controller(
          frost::ControllerOptions().epochs(5, batches).allow_new_run_shape(allow));
    };
    const auto task = frost_test::make_task(32, at::kCPU);
    Resumed<Ctl> first(Net(), options(69, false));
    for (int i = 0; i < 3; ++i) controlled_step(first.ctl, first.net, first.opt, task);
    const std::string bytes = saved(first.ctl);

    Resumed<Ctl> refused(Net(), options(63, false));
    const auto w = refused.weights();
    const std::string both =
        "run.ckpt was planned for another run: total_steps 345 (steps_per_epoch 69, "
        "warmup_steps 0); this controller is set for total_steps 315 (steps_per_epoch 63, "
        "warmup_steps 0). Resuming at step 3 would change the plan: schedule FreezeOut";
    CHECK_FROST_ERROR(load_saved(refused.ctl, bytes), both);
    // what it does to the schedule: FreezeOut's t_i x N, from the new N
    CHECK_FROST_ERROR(load_saved(refused.ctl, bytes), "is recomputed: block 'stem' freezes at step");
    CHECK_FROST_ERROR(load_saved(refused.ctl, bytes), "set controller.allow_new_run_shape(true)");
    refused.check_untouched(w);

    Resumed<Ctl> accepted(Net(), options(63, true));
    load_saved(accepted.ctl, bytes);
    CHECK(accepted.ctl.step() == 3);
    REQUIRE_FALSE(accepted.ctl.timeline().empty());
    const frost::Event& e = accepted.ctl.timeline().back();
    CHECK(e.kind == frost::EventKind::warning);
    CHECK(e.policy == "controller");
    CHECK(e.step == 3);
    CHECK(contains(e.detail, "resumed run.ckpt with a new run shape, total_steps 315"));
    CHECK(contains(e.detail, "instead of total_steps 345"));
    CHECK(contains(e.detail, "freezes at step"));
    // and the plan is the new one: as a fresh run of 315 steps plans it
    Resumed<Ctl> fresh(Net(), options(63, false));
    for (std::int64_t b = 0; b < 5; ++b) CHECK(accepted.ctl.lr_scale(3, b) == fresh.ctl.lr_scale(3, b));
    CHECK(accepted.ctl.lr_scale(3, 0) != first.ctl.lr_scale(3, 0));
  }

  TEST_CASE("resume: a checkpoint from before shapes were recorded loads, saved again, it has them") {
    // tests/data/checkpoints (format 2, frost at 0b90791): no 'model.*', no
    // 'run.*', so nothing to compare; written again, the next resume is checked.
    namespace c = frost::criteria;
    using Ctl = frost::FreezeController<c::AnyOf<c::GradientNormChange, c::GradientThreshold>,
                                        frost::schedules::Constant, frost::stop::Patience>;
    Ctl::Options o;
    std::get<0>(o.criterion()).interval(5).min_epochs(0).mode(c::FreezeMode::any_order);
    std::get<1>(o.criterion()).window(10).relative(0.9);
    o.stop().patience(30).min_delta(0.02);
    Resumed<Ctl> old(Net(), o);
    frost::load_checkpoint(
        old.ctl, std::string(FROST_TEST_DATA_DIR) + "/checkpoints/anyof-gnc-gt-constant-patience.frost");
    CHECK(old.ctl.step() == 17);
    CHECK(old.ctl.num_frozen() + old.ctl.num_trial() > 0);

    const std::string bytes = saved(old.ctl);
    torch::serialize::InputArchive in, f;
    std::istringstream is(bytes);
    in.load_from(is);
    frost::detail::open_envelope(in, f, "again");
    c10::IValue v;
    CHECK(f.try_read("model.param", v));
    CHECK(f.try_read("run.total_steps", v));
    o.controller().total_steps(100);
    Resumed<Ctl> longer(Net(), o);
    CHECK_FROST_ERROR(load_saved(longer.ctl, bytes), "was planned for another run");
  }

  TEST_CASE("resume: a finished run (AllFrozen) loads finished, no step trains past its end") {
    using Ctl = frost::FreezeController<frost::criteria::AtSteps, ProbeSchedule,
                                        frost::stop::AllFrozen>;
    // blocks 0, 1, 2, 4 frozen at steps 0-3, block 3 by the schedule at step 6: the stop after 7
    auto options = [](std::int64_t steps_per_epoch) {
      return Ctl::Options()
          .controller(frost::ControllerOptions().steps_per_epoch(steps_per_epoch))
          .criterion(frost::criteria::AtStepsOptions().blocks({0, 1, 2, 4}).steps({0, 1, 2, 3}));
    };
    const auto task = frost_test::make_task(32, at::kCPU);
    SUBCASE("a loop without epochs stops at once: a resume has nothing to train") {
      Resumed<Ctl> first(Net(), options(0));
      while (!first.ctl.should_stop()) controlled_step(first.ctl, first.net, first.opt, task);
      REQUIRE(first.ctl.step() == 7);
      const std::string bytes = saved(first.ctl);

      Resumed<Ctl> again(Net(), options(0));
      load_saved(again.ctl, bytes);
      CHECK(again.ctl.should_stop());  // the README's loops do not begin
      const auto w = again.weights();
      CHECK_FROST_ERROR(controlled_step(again.ctl, again.net, again.opt, task),
                        "before_step(): run.ckpt is the checkpoint of a finished run: stop rule "
                        "AllFrozen ended it after 7 steps");
      CHECK_FROST_ERROR(again.ctl.before_step(), "Check ctl.should_stop() after loading");
      CHECK(again.ctl.step() == 7);
      const auto params = again.net->parameters();
      for (std::size_t i = 0; i < params.size(); ++i) CHECK(at::equal(params[i], w[i]));
    }
    SUBCASE("an epoch loop trains to the stop's epoch end, as the first run did, and no further") {
      Resumed<Ctl> first(Net(), options(5));
      while (!first.ctl.should_stop()) controlled_step(first.ctl, first.net, first.opt, task);
      REQUIRE(first.ctl.step() == 7);  // inside epoch 1 (steps 5-9)
      const std::string mid_epoch = saved(first.ctl);

      Resumed<Ctl> again(Net(), options(5));
      load_saved(again.ctl, mid_epoch);
      CHECK(again.ctl.should_stop());
      for (int i = 0; i < 3; ++i) CHECK_NOTHROW(controlled_step(again.ctl, again.net, again.opt, task));
      CHECK(again.ctl.step() == 10);
      const std::string epoch_end = saved(again.ctl);

      Resumed<Ctl> rerun(Net(), options(5));
      load_saved(rerun.ctl, epoch_end);
      CHECK(rerun.ctl.should_stop());
      CHECK(frost::next_epoch(rerun.ctl) == 2);
      CHECK_FROST_ERROR(rerun.ctl.before_step(), "finished run: stop rule AllFrozen ended it after 7 steps (saved at step 10");
    }
  }
}
