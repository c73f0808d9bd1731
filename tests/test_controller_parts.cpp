// The controller's parts, each on its own (frost/controller/): the lifecycle
// table without an optimizer (every cell), the block ledger (verdicts, views,
// save/load), the mode guard (eval mode, buffers, train mode given back), the
// step clock (call order, the two views, save/load), the parameter side of a
// state, the four policies as one part (set up, saved and loaded together, the
// host reads), and the checkpoint envelope's refusals (frost/checkpoint.hpp). The
// controller that coordinates them is tested in test_controller.cpp and
// test_protocol.cpp.
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adam.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "frost/checkpoint.hpp"
#include "frost/controller/block_ledger.hpp"
#include "frost/controller/block_params.hpp"
#include "frost/controller/composition.hpp"
#include "frost/controller/lifecycle.hpp"
#include "frost/controller/mode_guard.hpp"
#include "frost/controller/policies.hpp"
#include "frost/controller/step_clock.hpp"
#include "frost/criteria/gradient_norm_change.hpp"
#include "frost/criteria/gradient_threshold.hpp"
#include "frost/reducers/identity.hpp"
#include "frost/schedules/freezeout.hpp"
#include "frost/stop/patience.hpp"
// last: after every LibTorch header (see doctest_torch.hpp)
#include "doctest_torch.hpp"
#include "frost_checks.hpp"

using frost::BlockState;
using frost::EventKind;
using frost::Request;
using frost::Transition;

namespace {

std::string bytes_of(torch::serialize::OutputArchive& ar) {
  std::ostringstream os;
  ar.save_to(os);
  return os.str();
}
void read_bytes(torch::serialize::InputArchive& in, const std::string& bytes) {
  std::istringstream is(bytes);
  in.load_from(is);
}
/// `part` saved and read back into `into` (through bytes, as in a file).
template <class Part>
void round_trip(const Part& part, Part& into) {
  torch::serialize::OutputArchive out;
  part.save(out);
  torch::serialize::InputArchive in;
  read_bytes(in, bytes_of(out));
  into.load(in);
}

/// Three blocks: Linear, BatchNorm1d, Linear (the batch norm has buffers).
struct Model {
  torch::nn::Sequential net{torch::nn::Linear(4, 4), torch::nn::BatchNorm1d(4),
                            torch::nn::Linear(4, 2)};
  frost::BlockMap blocks = frost::BlockMap::from_prefixes(*net, {"0", "1", "2"});
};

}  // namespace

TEST_SUITE("controller parts") {
  TEST_CASE("lifecycle: every (state, request) cell of the table") {
    using S = BlockState;
    using R = Request;
    struct Cell {
      S from;
      R request;
      Transition::Outcome outcome;
      S to;
      EventKind event;
      const char* refusal;
    };
    const auto moves = Transition::Outcome::moves, stays = Transition::Outcome::stays,
               refused = Transition::Outcome::refused;
    const auto W = EventKind::warning;  // no event (nothing moves)
    const Cell table[] = {
        {S::training, R::freeze, moves, S::frozen, EventKind::freeze, nullptr},
        {S::training, R::trial, moves, S::trial, EventKind::trial, nullptr},
        {S::training, R::revert, stays, S::training, W, nullptr},
        {S::training, R::commit, refused, S::training, W, "the block is not in trial"},
        {S::training, R::unfreeze, stays, S::training, W, nullptr},
        {S::trial, R::freeze, moves, S::frozen, EventKind::commit, nullptr},
        {S::trial, R::trial, stays, S::trial, W, nullptr},
        {S::trial, R::revert, moves, S::training, EventKind::revert, nullptr},
        {S::trial, R::commit, moves, S::frozen, EventKind::commit, nullptr},
        {S::trial, R::unfreeze, moves, S::training, EventKind::revert, nullptr},
        {S::frozen, R::freeze, stays, S::frozen, W, nullptr},
        {S::frozen, R::trial, refused, S::frozen, W, "the block is frozen for good"},
        {S::frozen, R::revert, refused, S::frozen, W,
         "the block is frozen for good (only ctl.unfreeze() trains it again)"},
        {S::frozen, R::commit, stays, S::frozen, W, nullptr},
        {S::frozen, R::unfreeze, moves, S::training, EventKind::unfreeze, nullptr},
    };
    CHECK(std::size(table) == 15);  // 3 states x 5 requests
    for (const Cell& c : table) {
      INFO(frost::to_string(c.from) << " x " << frost::to_string(c.request));
      const Transition t = frost::lifecycle(c.from, c.request);
      CHECK(t.outcome == c.outcome);
      CHECK(t.to == c.to);
      CHECK(t.moves() == (c.outcome == moves));
      CHECK(t.refused() == (c.outcome == refused));
      if (t.moves()) CHECK(t.event == c.event);
      if (c.refusal) {
        REQUIRE(t.refusal != nullptr);
        CHECK(std::string(t.refusal) == c.refusal);
      } else {
        CHECK(t.refusal == nullptr);
      }
      // The guards on statistics and in_order apply to moves that end out of training.
      CHECK(frost::ends_out_of_training(t) == (t.moves() && c.to != S::training));
    }
    // The table is usable at compile time.
    static_assert(frost::lifecycle(BlockState::trial, Request::commit).to == BlockState::frozen);
    static_assert(frost::lifecycle(BlockState::frozen, Request::trial).refused());
  }

  TEST_CASE("block ledger: verdicts, events, views of the states") {
    Model m;
    frost::BlockLedger ledger(m.blocks);
    REQUIRE(ledger.size() == 3);
    CHECK(ledger.names() == std::vector<std::string>{"0", "1", "2"});
    CHECK(ledger.count(BlockState::training) == 3);

    // A verdict is the table's cell, plus the guards on moves out of training.
    constexpr auto C = frost::Source::criterion;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK_FALSE(ledger.review(0, Request::freeze, 0.5, C, false).refused());
    CHECK(ledger.review(0, Request::freeze, nan, C, false).refusal == "the statistic is not finite");
    CHECK(ledger.review(0, Request::revert, nan, C, false).refusal.empty());  // stays: no guard
    CHECK(ledger.review(1, Request::trial, 0.5, C, /*in_order=*/true).refusal ==
          "in_order: block 0 (0) before it is not frozen for good");
    CHECK_FALSE(ledger.review(0, Request::trial, 0.5, C, /*in_order=*/true).refused());
    CHECK(ledger.review(0, Request::commit, 0.5, C, false).refusal == "the block is not in trial");
    // The same gate for the schedule (the table alone) and the user (a refusal throws).
    CHECK_FALSE(ledger.review(1, Request::freeze, nan, frost::Source::schedule, true).refused());
    CHECK_FROST_ERROR(ledger.review(0, Request::commit, 0.0, frost::Source::user, false),
                      "commit(");

    // enter() records the table's event for the move; the states follow.
    ledger.enter(0, frost::lifecycle(BlockState::training, Request::freeze), 3, "criterion:X", 0.1,
                 "why");
    ledger.enter(1, frost::lifecycle(BlockState::training, Request::trial), 4, "criterion:X", 0.2,
                 "");
    ledger.warn(2, 5, "criterion:X", nan, "a warning", "criterion:X:refused");
    REQUIRE(ledger.timeline().size() == 3);
    const auto& e0 = ledger.timeline()[0];
    CHECK(e0.step == 3);
    CHECK(e0.block == 0);
    CHECK(e0.block_name == "0");
    CHECK(e0.kind == EventKind::freeze);
    CHECK(e0.policy == "criterion:X");
    CHECK(e0.detail == "why");
    CHECK(ledger.timeline()[1].kind == EventKind::trial);
    CHECK(ledger.timeline()[2].kind == EventKind::warning);
    CHECK(std::isnan(ledger.timeline()[2].statistic));

    CHECK(ledger.frozen() == std::vector<bool>{true, false, false});
    CHECK(ledger.count(BlockState::frozen) == 1);
    CHECK(ledger.count(BlockState::trial) == 1);
    CHECK(ledger.frozen_prefix() == 1);   // a trial does not count
    CHECK(ledger.no_grad_prefix() == 2);  // it gets no gradient
    const double n0 = static_cast<double>(m.blocks[0].numel), n1 = m.blocks[1].numel,
                 all = static_cast<double>(m.blocks.numel());
    CHECK(ledger.frozen_fraction() == doctest::Approx(n0 / all));
    CHECK(ledger.no_grad_fraction() == doctest::Approx((n0 + n1) / all));

    frost::StopState st;
    st.steps_done = 6;
    st = ledger.with_counts(st);
    CHECK(st.num_blocks == 3);
    CHECK(st.num_frozen == 1);
    CHECK(st.num_trial == 1);
    CHECK(st.frozen_prefix == 1);
    CHECK(st.steps_done == 6);

    ledger.stop(6, "stop:AllFrozen");
    const auto& stop = ledger.timeline().back();
    CHECK(stop.kind == EventKind::stop);
    CHECK(stop.step == 5);  // the last step run
    CHECK(stop.block == -1);
    CHECK(stop.detail == "after 6 steps; 1 of 3 blocks frozen");
  }

  TEST_CASE("block ledger: save/load gives back states and timeline, corrupt ones change nothing") {
    Model m;
    frost::BlockLedger ledger(m.blocks);
    ledger.enter(2, frost::lifecycle(BlockState::training, Request::trial), 7, "user", 0.0,
                 "trial by the user");
    ledger.enter(2, frost::lifecycle(BlockState::trial, Request::commit), 9, "criterion:Y",
                 std::numeric_limits<double>::infinity(), "détail ünicode");
    ledger.warn(0, 9, "criterion:Y", std::numeric_limits<double>::quiet_NaN(), "nan");
    ledger.stop(10, "stop:MaxSteps");

    frost::BlockLedger back(m.blocks);
    round_trip(ledger, back);
    CHECK((back.states() == ledger.states()));
    REQUIRE(back.timeline().size() == ledger.timeline().size());
    for (std::size_t i = 0; i < ledger.timeline().size(); ++i) {
      const auto &a = ledger.timeline()[i], &b = back.timeline()[i];
      CHECK(a.step == b.step);
      CHECK(a.block == b.block);
      CHECK(a.block_name == b.block_name);
      CHECK(a.kind == b.kind);
      CHECK(a.policy == b.policy);
      CHECK(a.detail == b.detail);
      CHECK((a.statistic == b.statistic || (std::isnan(a.statistic) && std::isnan(b.statistic))));
    }

    // A ledger over two blocks refuses the file, and keeps what it had.
    torch::nn::Sequential two{torch::nn::Linear(2, 2), torch::nn::Linear(2, 2)};
    frost::BlockLedger small(frost::BlockMap::from_prefixes(*two, {"0", "1"}));
    small.enter(0, frost::lifecycle(BlockState::training, Request::freeze), 1, "user", 0, "");
    CHECK_FROST_ERROR(round_trip(ledger, small), "block states for 3 blocks, 2 expected");
    CHECK(small.state(0) == BlockState::frozen);
    CHECK(small.timeline().size() == 1);

    // A state out of range, a timeline whose columns differ in length.
    torch::serialize::OutputArchive bad;
    bad.write("states", c10::IValue(std::vector<std::int64_t>{0, 7, 0}));
    torch::serialize::InputArchive in;
    read_bytes(in, bytes_of(bad));
    frost::BlockLedger fresh(m.blocks);
    CHECK_FROST_ERROR(fresh.load(in), "block '1' has state 7");
    torch::serialize::OutputArchive ragged;
    ledger.save(ragged);
    ragged.write("timeline.step", c10::IValue(std::vector<std::int64_t>{1}));
    torch::serialize::InputArchive in2;
    read_bytes(in2, bytes_of(ragged));
    CHECK_FROST_ERROR(fresh.load(in2), "the timeline's columns differ in length");
    CHECK(fresh.count(BlockState::training) == 3);
    CHECK(fresh.timeline().empty());
  }

  TEST_CASE("mode guard: eval mode out of training, buffers restored, the mode given back") {
    Model m;
    auto bn = m.net[1];
    const std::vector<BlockState> training(3, BlockState::training);
    std::vector<BlockState> states = training;
    m.net->train();

    frost::ModeGuard guard(/*eval_frozen=*/true, 3);
    CHECK(guard.eval_frozen());
    guard.leave(m.blocks[1], 1, /*from_training=*/true);
    states[1] = BlockState::frozen;
    CHECK_FALSE(bn->is_training());
    CHECK(m.net[0]->is_training());  // other blocks are not touched
    guard.before_step(m.blocks, states);  // copies block 1's buffers (due since it left)
    const at::Tensor mean = m.blocks[1].modules.front()->named_buffers()["running_mean"];
    const at::Tensor before = mean.clone();

    // The user's model->train() after before_step(): a forward moves the
    // running statistics; after_step() gives them back and eval mode again.
    m.net->train();
    m.net->forward(torch::randn({8, 4}) * 3 + 1);
    CHECK_FALSE(at::equal(mean, before));
    const auto first = guard.after_step(m.blocks, states);
    REQUIRE(first.has_value());
    CHECK(*first == 1);
    CHECK(at::equal(mean, before));
    CHECK_FALSE(bn->is_training());
    // Reported once; restored every time.
    m.net->train();
    m.net->forward(torch::randn({8, 4}) * 3 + 1);
    CHECK_FALSE(guard.after_step(m.blocks, states).has_value());
    CHECK(at::equal(mean, before));

    // A model->train() between steps is undone by before_step().
    m.net->train();
    guard.before_step(m.blocks, states);
    CHECK_FALSE(bn->is_training());

    // Training again: the mode it had when it left (train), snapshots dropped.
    guard.rejoin(m.blocks[1], 1);
    CHECK(bn->is_training());
    // A block that left in eval mode comes back in eval mode.
    bn->eval();
    guard.leave(m.blocks[1], 1, /*from_training=*/true);
    guard.rejoin(m.blocks[1], 1);
    CHECK_FALSE(bn->is_training());

    // "was_training" round trip.
    frost::ModeGuard back(true, 3);
    round_trip(guard, back);
    bn->train();
    back.leave(m.blocks[1], 1, /*from_training=*/false);  // keeps the loaded mode
    back.rejoin(m.blocks[1], 1);
    CHECK_FALSE(bn->is_training());
    // "mode_warned" too: a resumed run does not warn again what was reported once.
    m.net->train();
    CHECK_FALSE(back.after_step(m.blocks, states).has_value());
    frost::ModeGuard fresh(true, 3);
    m.net->train();
    CHECK(fresh.after_step(m.blocks, states) == std::optional<std::size_t>(1));
    frost::ModeGuard four(true, 4);
    CHECK_FROST_ERROR(round_trip(guard, four), "block modes for 3 blocks, 4 expected");

    // Without eval_frozen the guard leaves modes and buffers alone.
    frost::ModeGuard off(/*eval_frozen=*/false, 3);
    m.net->train();
    off.leave(m.blocks[1], 1, true);
    off.before_step(m.blocks, states);
    CHECK(bn->is_training());
    CHECK_FALSE(off.after_step(m.blocks, states).has_value());
  }

  TEST_CASE("step clock: the call order, the step and the stop rule's views, save/load") {
    frost::StepClock clock(/*steps_per_epoch=*/4);
    const std::vector<BlockState> states(2, BlockState::training);
    CHECK(clock.idle());
    CHECK_FROST_ERROR(clock.check_backward(), "without before_step()");
    CHECK_FROST_ERROR(clock.check_end(false, "C"), "without before_step()");
    for (int s = 0; s < 6; ++s) {
      clock.check_begin();
      clock.begin();
      CHECK_FROST_ERROR(clock.check_begin(), "before_step() called twice");
      CHECK_FROST_ERROR(clock.check_end(/*reads_gradients=*/true, "GradientNormChange"),
                        "criterion GradientNormChange reads the gradients");
      clock.check_end(/*reads_gradients=*/false, "AtSteps");  // needs no after_backward()
      clock.check_backward();
      clock.backward();
      CHECK_FROST_ERROR(clock.check_backward(), "twice in one step");
      clock.check_end(true, "GradientNormChange");
      const frost::StepState now = clock.now(states);
      CHECK(now.step == s);
      CHECK(now.epoch == s / 4);
      CHECK(now.epoch_end == (s == 3));
      CHECK(now.states == &states);
      clock.advance();
      CHECK(clock.idle());
      const frost::StopState done = clock.last_done();
      CHECK(done.steps_done == s + 1);
      CHECK(done.step == s);
      CHECK(done.epoch == s / 4);
      CHECK(done.epoch_end == (s == 3));
      CHECK(done.steps_per_epoch == 4);
    }
    // An abandoned step runs again.
    clock.begin();
    clock.abandon();
    CHECK(clock.idle());
    CHECK(clock.step() == 6);
    CHECK(clock.last_done().step == 5);  // before the first step: -1
    CHECK(frost::StepClock(4).last_done().step == -1);

    clock.stop();
    frost::StepClock back(4);
    round_trip(clock, back);
    CHECK(back.step() == 6);
    CHECK(back.stopped());
    CHECK(back.idle());
    torch::serialize::OutputArchive bad;
    bad.write("step", c10::IValue(std::int64_t{-2}));
    bad.write("stopped", c10::IValue(false));
    torch::serialize::InputArchive in;
    read_bytes(in, bytes_of(bad));
    frost::StepClock fresh(4);
    CHECK_FROST_ERROR(fresh.load(in), "step -2 is negative");
    CHECK(fresh.step() == 0);
  }

  TEST_CASE("block params: no gradient out of training, optimizer state released when frozen") {
    Model m;
    m.net[2]->as<torch::nn::Linear>()->bias.requires_grad_(false);  // the user's own
    frost::BlockParams params(m.blocks);
    CHECK(params.num_fixed(0) == 0);
    CHECK(params.num_fixed(2) == 1);
    torch::optim::Adam opt(m.net->parameters(), torch::optim::AdamOptions(1e-2));
    opt.zero_grad();
    m.net->forward(torch::randn({8, 4})).sum().backward();
    opt.step();
    const auto& w0 = m.blocks[0].params.front();
    CHECK(frost::detail::has_state(opt, w0));

    params.enter(m.blocks[0], 0, BlockState::trial, opt);  // optimizer state kept
    CHECK_FALSE(w0.requires_grad());
    CHECK_FALSE(w0.grad().defined());
    CHECK(frost::detail::has_state(opt, w0));
    params.enter(m.blocks[0], 0, BlockState::frozen, opt);  // released
    CHECK_FALSE(frost::detail::has_state(opt, w0));
    params.enter(m.blocks[0], 0, BlockState::training, opt);
    CHECK(w0.requires_grad());

    params.enter(m.blocks[2], 2, BlockState::frozen, opt);
    params.enter(m.blocks[2], 2, BlockState::training, opt);
    CHECK(m.net[2]->as<torch::nn::Linear>()->weight.requires_grad());
    CHECK_FALSE(m.net[2]->as<torch::nn::Linear>()->bias.requires_grad());  // stays fixed
  }

  TEST_CASE("policies: built from the options, set up, saved and loaded as one, a failed load changes none") {
    using frost::criteria::GradientThreshold;
    using FreezeOut = frost::schedules::FreezeOut<frost::Linear, frost::Unscaled>;
    using frost::stop::Patience;
    using Comp = frost::Composition<GradientThreshold, FreezeOut, Patience, frost::reducers::Identity>;
    using P = frost::Policies<GradientThreshold, FreezeOut, Patience, frost::reducers::Identity>;
    Model m;
    Comp::Options o;
    o.schedule().t0(0.5);
    o.stop().patience(2);
    const frost::RunShape shape =
        frost::run_shape(m.blocks, frost::ControllerOptions().total_steps(100).steps_per_epoch(10));
    P p(o);
    CHECK(p.criterion_label == "criterion:GradientThreshold");
    CHECK(p.schedule_label == "schedule:FreezeOut<Linear,Unscaled>");
    CHECK(p.stop_label == "stop:Patience");
    p.setup(shape);
    // FreezeOut with linear spacing, t0 = 0.5: block 0 freezes once j > t_0 T = 50.
    CHECK_FALSE(p.schedule.frozen(50, 0));
    CHECK(p.schedule.frozen(51, 0));
    CHECK_FROST_ERROR(p.check_can_train(51, 0, "0"),
                      "unfreeze(0): schedule FreezeOut<Linear,Unscaled> has annealed this block's "
                      "learning rate to 0 for good at step 51");
    p.check_can_train(50, 0, "0");  // still annealing: may train

    // The host reads: the identity reducer hands a double through; a tensor must be one element.
    CHECK(p.validation_loss(0.25) == 0.25);
    CHECK(p.validation_loss(at::full({1, 1}, 0.5)) == doctest::Approx(0.5));
    CHECK_FROST_ERROR(p.validation_loss(at::ones({2})),
                      "report_validation: give a one-element loss tensor (got 2 elements)");
    // A decision point's statistics on the host: the criterion's per-block sums (none
    // observed yet), nothing when no block trains.
    frost::StepState s;
    CHECK(p.statistics(s) == std::vector<double>(3, 0.0));
    const std::vector<BlockState> frozen(3, BlockState::frozen);
    s.states = &frozen;
    CHECK(p.statistics(s).empty());

    // Saved and loaded as one part.
    p.stop.on_validation(1.0, {});
    p.stop.on_validation(1.5, {});  // one report without improvement
    torch::serialize::OutputArchive out;
    p.save(out);
    const std::string bytes = bytes_of(out);
    P q(o);
    q.setup(shape);
    torch::serialize::InputArchive in;
    read_bytes(in, bytes);
    q.load(in, o, shape, "run.frost");
    CHECK(q.stop.best() == 1.0);
    CHECK(q.stop.reports_without_improvement() == 1);
    CHECK(q.schedule.frozen(51, 0));  // set up for the run's shape

    // A checkpoint without the stop rule's state: nothing is swapped in, not even the criterion.
    torch::serialize::OutputArchive partial;
    frost::concepts::save_state(p.criterion, partial, "criterion");
    frost::concepts::save_state(p.schedule, partial, "schedule");
    P r(o);
    r.setup(shape);
    r.stop.on_validation(3.0, {});
    torch::serialize::InputArchive in2;
    read_bytes(in2, bytes_of(partial));
    CHECK_FROST_ERROR(r.load(in2, o, shape, "run.frost"),
                      "run.frost has no state for the stop (Patience)");
    CHECK(r.stop.best() == 3.0);
    CHECK(r.stop.reports_without_improvement() == 0);
  }

  TEST_CASE("the parts' small helpers: a decision's request, a refusal's warning, block order") {
    frost::Decisions d;
    d.freeze(2, 0.1, "a");
    d.trial(0, 0.2, "b");
    d.warn(2, 0.3, "c");
    d.commit(1, 0.4, "d");
    const auto sorted = d.in_block_order();
    REQUIRE(sorted.size() == 4);
    CHECK(sorted[0].block == 0);
    CHECK(sorted[1].block == 1);
    CHECK(sorted[2].detail == "a");  // stable within a block
    CHECK(sorted[3].detail == "c");
    CHECK(d.items()[0].detail == "a");  // the decisions themselves unchanged
    // One enum for what is asked: a decision carries a Request, a warning none.
    CHECK(d.items()[0].request == Request::freeze);
    CHECK(d.items()[1].request == Request::trial);
    CHECK(d.items()[2].is_warning());
    CHECK(std::string(d.items()[2].what()) == "warn");
    CHECK(std::string(d.items()[3].what()) == "commit");
    d.ask(Request::revert, 1, 0.5, "e");
    CHECK(d.items().back().request == Request::revert);

    Model m;
    frost::BlockLedger ledger(m.blocks);
    const frost::Verdict v = ledger.review(0, Request::commit, 0.5, frost::Source::criterion, false);
    REQUIRE(v.refused());
    ledger.refused(0, 7, "criterion:X", frost::Decisions::Item{0, 0.5, "why", Request::commit}, v);
    const auto& e = ledger.timeline().back();
    CHECK(e.kind == EventKind::warning);
    CHECK(e.step == 7);
    CHECK(e.policy == "criterion:X");
    CHECK(e.detail == "commit refused: the block is not in trial (why)");

    // A wrong block name: the closest block names, not their dotted ancestors.
    torch::nn::ModuleList nested{
        torch::nn::Sequential(torch::nn::Linear(2, 2), torch::nn::Linear(2, 2)),
        torch::nn::Linear(2, 2)};
    const frost::BlockMap inner = frost::BlockMap::from_prefixes(*nested, {"0.0", "0.1", "1"});
    CHECK_FROST_ERROR(inner.index_of("0.5"), "no block named '0.5'; closest: '0.0', '0.1', '1'");

    // Coverage of a model whose map leaves the last Linear (4*2 + 2 = 10) out.
    const frost::BlockMap two = frost::BlockMap::from_prefixes(*m.net, {"0", "1"});
    const frost::BlockMap::Coverage c = two.coverage_of(*m.net);
    CHECK(c.owned == 20 + 8);  // Linear(4, 4) and BatchNorm1d(4)'s weight and bias
    CHECK(c.total == 38);
    CHECK(c.share() == doctest::Approx(28.0 / 38.0));
    CHECK(two.coverage(*m.net) == c.share());
    CHECK(c.describe() == "the block map holds 28 of the model's 38 parameters (74%)");
    CHECK(frost::BlockMap::Coverage{}.share() == 0.0);

    // The user's fixed parameters, told as they are.
    m.net[2]->as<torch::nn::Linear>()->bias.requires_grad_(false);
    for (auto& p : m.net[1]->parameters()) p.requires_grad_(false);
    const frost::BlockParams params(m.blocks);
    CHECK(params.all_fixed(1));
    CHECK_FALSE(params.all_fixed(2));
    CHECK(params.fixed_note(2) ==
          "1 of 2 parameters already had requires_grad false; they stay fixed, the rest of the "
          "block follows its state");

    // A checkpoint loads only into a clock that has not begun.
    frost::StepClock clock(4);
    clock.check_unstarted("run.frost");
    clock.begin();
    CHECK_FROST_ERROR(clock.check_unstarted("run.frost"), "already stepped (step 0)");
    clock.advance();
    CHECK_FROST_ERROR(clock.check_unstarted("run.frost"),
                      "cannot load run.frost into a controller that has already stepped (step 1); "
                      "load right after building the controller, before the first before_step()");
  }

  TEST_CASE("checkpoint envelope: format, checksum and identity are checked, naming the file") {
    torch::serialize::OutputArchive state;
    frost::detail::write_identity(state, "criterion=A;schedule=B;stop=C", {"stem", "b0"});
    state.write("payload", c10::IValue(std::int64_t{42}));
    torch::serialize::OutputArchive outer;
    frost::detail::write_envelope(outer, state);
    const std::string good = bytes_of(outer);

    {  // what was written comes back
      torch::serialize::InputArchive in, f;
      read_bytes(in, good);
      frost::detail::open_envelope(in, f, "run.frost");
      frost::detail::check_identity(f, "run.frost", "criterion=A;schedule=B;stop=C",
                                    {"stem", "b0"});
      c10::IValue v;
      REQUIRE(f.try_read("payload", v));
      CHECK(v.toInt() == 42);
    }
    {  // another composition, another block map
      torch::serialize::InputArchive in, f;
      read_bytes(in, good);
      frost::detail::open_envelope(in, f, "run.frost");
      CHECK_FROST_ERROR(frost::detail::check_identity(f, "run.frost", "criterion=X;schedule=B;stop=C",
                                                      {"stem", "b0"}),
                        "run.frost was written by another strategy");
      CHECK_FROST_ERROR(frost::detail::check_identity(f, "run.frost", "criterion=A;schedule=B;stop=C",
                                                      {"stem", "b1"}),
                        "run.frost was written for another block map: it has 2 blocks (stem, b0)");
    }
    {  // a flipped byte fails the checksum
      torch::serialize::InputArchive in;
      read_bytes(in, good);
      at::Tensor bytes;
      c10::IValue crc;
      in.read("frost.state", bytes, /*is_buffer=*/true);
      in.read("frost.crc32", crc);
      bytes = bytes.clone();
      bytes[bytes.numel() / 2] = bytes[bytes.numel() / 2].item<int>() ^ 0x10;
      torch::serialize::OutputArchive tampered;
      tampered.write("frost.format", c10::IValue(frost::kCheckpointFormat));
      tampered.write("frost.state", bytes, /*is_buffer=*/true);
      tampered.write("frost.crc32", crc);
      torch::serialize::InputArchive in2, f;
      read_bytes(in2, bytes_of(tampered));
      CHECK_FROST_ERROR(frost::detail::open_envelope(in2, f, "run.frost"),
                        "run.frost is corrupt: the checksum of its frost state does not match");
    }
    {  // another format, no format, a malformed state
      torch::serialize::OutputArchive future;
      future.write("frost.format", c10::IValue(frost::kCheckpointFormat + 1));
      torch::serialize::InputArchive in, f;
      read_bytes(in, bytes_of(future));
      CHECK_FROST_ERROR(frost::detail::open_envelope(in, f, "new.frost"),
                        "new.frost is in frost checkpoint format " +
                            std::to_string(frost::kCheckpointFormat + 1));
      torch::serialize::OutputArchive foreign;
      foreign.write("weights", at::ones({2}));
      torch::serialize::InputArchive in2, f2;
      read_bytes(in2, bytes_of(foreign));
      CHECK_FROST_ERROR(frost::detail::open_envelope(in2, f2, "w.pt"), "w.pt holds no frost state");
      torch::serialize::OutputArchive empty;
      empty.write("frost.format", c10::IValue(frost::kCheckpointFormat));
      torch::serialize::InputArchive in3, f3;
      read_bytes(in3, bytes_of(empty));
      CHECK_FROST_ERROR(frost::detail::open_envelope(in3, f3, "e.frost"),
                        "e.frost is corrupt: its frost state ('frost.state', 'frost.crc32') is "
                        "missing or malformed");
    }
    {  // a whole-run archive (model, optimizer, frost) given where frost's part was expected
      torch::serialize::OutputArchive whole;
      whole.write("model", state);
      whole.write("frost", outer);
      torch::serialize::InputArchive in, f;
      read_bytes(in, bytes_of(whole));
      CHECK_FROST_ERROR(frost::detail::open_envelope(in, f, "run.pt"),
                        "run.pt is a whole-run archive with frost's part under the key 'frost'; "
                        "read that part and load it");
    }
    {  // a part's error names the file
      Model m;
      frost::BlockLedger ledger(m.blocks);
      torch::serialize::InputArchive f;
      read_bytes(f, bytes_of(state));  // no "states"
      CHECK_FROST_ERROR(frost::detail::load_part(ledger, f, "run.frost", "block ledger"),
                        "run.frost: the block ledger does not load: 'states' is missing or of "
                        "another kind");
    }
  }

  TEST_CASE("composition: set_option names the whole key, the accepted values and the kind") {
    using Comp = frost::Composition<frost::criteria::GradientThreshold,
                                    frost::schedules::FreezeOut<frost::Linear, frost::Unscaled>,
                                    frost::stop::Patience, frost::reducers::Identity>;
    Comp::Options o;
    Comp::set_option(o, "criterion.window", "7");
    CHECK(o.criterion().window() == 7);
    CHECK_FROST_ERROR(Comp::set_option(o, "criterion.windw", "7"),
                      "unknown option 'criterion.windw'; known options: threshold, window");
    CHECK_FROST_ERROR(Comp::set_option(o, "criterion.windw", "7"), "(each after 'criterion.')");
    CHECK_FROST_ERROR(Comp::set_option(o, "criterion.window", "2.5"),
                      "option 'criterion.window' expects a number (an integer), got '2.5'");
    CHECK_FROST_ERROR(Comp::set_option(o, "schedule.t0", "half"),
                      "option 'schedule.t0' expects a number, got 'half'");
    CHECK_FROST_ERROR(Comp::set_option(o, "criterion.reference", "middle"),
                      "option 'criterion.reference' does not accept 'middle'; it takes first or "
                      "peak");
    CHECK(o.criterion().window() == 7);  // a refused value changes nothing
    CHECK(frost::detail::enum_names<frost::criteria::FreezeMode>() ==
          "sequential, prefix_to_slowest, slowest_if_first or any_order");
  }

  TEST_CASE("run shape: one setup struct for every policy") {
    Model m;
    const frost::RunShape r = frost::run_shape(
        m.blocks, frost::ControllerOptions().total_steps(100).warmup_steps(10).steps_per_epoch(20));
    CHECK(r.num_blocks == 3);
    CHECK(r.blocks == &m.blocks);
    CHECK(r.stages.empty());  // no stages set: empty, not zeros
    CHECK(r.total_steps == 100);
    CHECK(r.warmup_steps == 10);
    CHECK(r.steps_per_epoch == 20);
    // The three names the concepts use are that one struct.
    static_assert(std::is_same_v<frost::CriterionSetup, frost::RunShape>);
    static_assert(std::is_same_v<frost::ScheduleSetup, frost::RunShape>);
    static_assert(std::is_same_v<frost::StopSetup, frost::RunShape>);
  }
}
