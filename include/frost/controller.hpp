#pragma once
// frost::FreezeController<Criterion, Schedule, StopRule, Extras...>: the piece
// the user's training loop talks to.
//
//   frost::FreezeController<frost::criteria::GradientNormChange,
//                           frost::schedules::Constant,
//                           frost::stop::AllFrozen> ctl(model, optimizer, blocks, options);
//   for (auto& batch : loader) {
//     ctl.before_step();            // this step's learning rates; schedule-driven freezing
//     optimizer.zero_grad();
//     auto loss = loss_fn(model->forward(batch.x), batch.y);
//     loss.backward();
//     ctl.after_backward();         // criteria read the gradients (on the device, no sync)
//     optimizer.step();
//     ctl.after_step();             // decisions, state changes, stop check
//     if (ctl.should_stop()) break;
//   }
//
// Blocks are in one of three states (frost/block_state.hpp): training, trial
// (no gradient, learning rate 0, optimizer state kept) and frozen (for good:
// optimizer state released). Extras (frost/extras.hpp) add policies without
// changing the three-argument compositions: frost::with_reducer<R>.
//
// The controller coordinates: it calls the policies at the protocol's points
// and carries their requests out on its parts (frost/controller/), each saved
// and loaded like a policy (the checkpoint envelope is frost/checkpoint.hpp):
//   StepClock    step_clock.hpp    the step, the call order, the stop flag
//   BlockLedger  block_ledger.hpp  block states, the lifecycle table (lifecycle.hpp),
//                                  the timeline and its warnings (frost/warn.hpp)
//   BlockParams  block_params.hpp  requires_grad, gradients, optimizer state
//   LrBook       lr_book.hpp       each param group's base rate and multiplier;
//                                  the user's own decay between steps
//   ModeGuard    mode_guard.hpp    eval mode and buffers of blocks out of training
//   Composition  composition.hpp   the options, describe(), set_option(), RunShape
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/checkpoint.hpp"
#include "frost/concepts/criterion.hpp"
#include "frost/concepts/reducer.hpp"
#include "frost/concepts/schedule.hpp"
#include "frost/concepts/stop_rule.hpp"
#include "frost/controller/block_ledger.hpp"
#include "frost/controller/block_params.hpp"
#include "frost/controller/composition.hpp"
#include "frost/controller/lr_book.hpp"
#include "frost/controller/mode_guard.hpp"
#include "frost/controller/step_clock.hpp"
#include "frost/controller_options.hpp"
#include "frost/error.hpp"
#include "frost/extras.hpp"
#include "frost/host.hpp"

namespace frost {

template <class Criterion, class Schedule, class StopRule, class... Extras>
class FreezeController {
  static_assert(concepts::check_criterion<Criterion>(), "see the message above");
  static_assert(concepts::check_schedule<Schedule>(), "see the message above");
  static_assert(concepts::check_stop_rule<StopRule>(), "see the message above");
  static_assert(extras::check<Extras...>(), "see the message above");

 public:
  using criterion_type = Criterion;
  using schedule_type = Schedule;
  using stop_type = StopRule;
  using reducer_type =
      typename extras::find<extras::reducer_tag, reducers::Identity, Extras...>::type;
  using composition_type = Composition<Criterion, Schedule, StopRule, reducer_type>;
  /// The whole configuration: the controller's and each policy's options.
  using Options = typename composition_type::Options;

  FreezeController(const torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                   BlockMap blocks, Options options = {})
      : optimizer_(&optimizer),
        blocks_(std::move(blocks)),
        options_(std::move(options)),
        criterion_(options_.criterion()),
        schedule_(options_.schedule()),
        stop_(options_.stop()),
        reducer_(options_.reducer()),
        clock_(options_.controller().steps_per_epoch()),
        ledger_(blocks_),
        mode_(options_.controller().eval_frozen(), blocks_.size()),
        params_(blocks_) {
    validate(options_.controller());
    blocks_.check_parameters_of(model);
    lr_ = LrBook(*optimizer_, blocks_);  // a group's rate follows one block (checked there)
    const RunShape shape = run_shape(blocks_, options_.controller());
    schedule_.setup(shape);
    criterion_.setup(shape);
    concepts::setup_stop(stop_, shape);
    adopt_user_frozen();
    check_coverage(model);
  }

  /// Accepts module holders (`ViT model; FreezeController ctl(model, ...)`).
  template <class M>
  FreezeController(const torch::nn::ModuleHolder<M>& model, torch::optim::Optimizer& optimizer,
                   BlockMap blocks, Options options = {})
      : FreezeController(*model, optimizer, std::move(blocks), std::move(options)) {}

  // --- the per-step calls ---------------------------------------------------

  /// Before the forward pass: the user's learning-rate change since the last
  /// step, clock-driven decisions, the schedule's freezing for this step,
  /// every param group's rate, eval mode. Host arithmetic only.
  void before_step() {
    clock_.check_begin();
    adopt_lr();  // before any transition rewrites a rate
    decisions_.clear();
    concepts::decide_before_step(criterion_, now(), decisions_);
    apply(decisions_, criterion_policy_);
    const std::int64_t step = clock_.step();
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      if (!is_frozen(i) && schedule_.frozen(step, static_cast<std::int64_t>(i)))
        carry_out(i, Request::freeze, schedule_policy_, static_cast<double>(step),
                  "the schedule's learning rate reached zero");
    for (std::size_t g = 0; g < lr_.num_groups(); ++g)
      lr_.apply(g, lr_scale(step, lr_.block_of(g)));  // block_of: a block or kHead
    mode_.before_step(blocks_, ledger_.states());
    clock_.begin();
  }

  /// After `loss.backward()`: the criterion reads this step's gradients.
  void after_backward() {
    clock_.check_backward();
    criterion_.observe(now());
    clock_.backward();
  }

  /// After `optimizer.step()`: at the criterion's decision points its
  /// statistics go through the reducer to the host (one read) and its
  /// decisions are applied; then the clock advances and the stop rule is
  /// consulted.
  void after_step() {
    clock_.check_end(concepts::uses_gradients<Criterion>(), concepts::name_of<Criterion>());
    guard_modes();
    const StepState s = now();
    if (criterion_.decision_point(s)) {
      const std::vector<double> values = read_statistics(s);
      decisions_.clear();
      criterion_.decide(s, HostValues(values), decisions_);
      apply(decisions_, criterion_policy_);
    }
    clock_.advance();
    check_stop();
  }

  /// Abandons the step begun by before_step(), for a catch block (the
  /// forward, backward or optimizer step threw: out of memory, a bad batch)
  /// or to skip a batch (a non-finite loss): no decision is taken, the step
  /// counter does not advance, and the next before_step() begins the same
  /// step again. Gradients the criterion already read in after_backward()
  /// stay in its statistics. A no-op between steps, so it is always safe to
  /// call. In a data-parallel run every rank must abandon the same step.
  void abort_step() {
    if (clock_.idle()) return;
    guard_modes();
    clock_.abandon();
  }

  bool should_stop() const noexcept { return clock_.stopped(); }

  /// A validation loss measured now (through the reducer: the mean over the
  /// ranks in a data-parallel run); forwarded to the criterion and the stop
  /// rule (early stopping with patience listens to it).
  void report_validation(double loss) {
    if constexpr (concepts::is_identity_reducer<reducer_type>())
      validation(loss);
    else
      report_validation(at::full({1}, loss, at::TensorOptions().dtype(at::kDouble)));
  }
  /// The same for a loss still on the device (one host read, after the reducer).
  void report_validation(const at::Tensor& loss) {
    detail::require(
        loss.defined() && loss.numel() == 1,
        "report_validation: give a one-element loss tensor (got ",
        loss.defined() ? std::to_string(loss.numel()) + " elements" : "an undefined tensor", ")");
    const at::Tensor l = loss.detach().reshape({1}).to(at::kDouble);
    validation(host::read_scalar(concepts::reduce(reducer_, l)));
  }

  /// Activations of a block (for criteria that look at them). Ignored by
  /// criteria that do not.
  void observe_activations(std::int64_t block, const at::Tensor& activations) {
    concepts::notify_activations(criterion_, block, activations);
  }
  /// This step's features (e.g. the class token fed to the head, [N, D]) and
  /// labels ([N]); for criteria that compare features (token similarity).
  /// Call it after the forward pass, before ctl.after_step().
  void observe_features(const at::Tensor& features, const at::Tensor& labels) {
    detail::require(!clock_.idle(),
                    "observe_features() called outside a step; call it after the forward pass, "
                    "between ctl.before_step() and ctl.after_step()");
    concepts::notify_features(criterion_, now(), features, labels);
  }

  // --- state changes by hand (recorded with policy "user") -------------------

  /// Freezes a block for good (from training or trial).
  void freeze(std::size_t block, const std::string& reason = "frozen by the user") {
    check_block(block, "freeze");
    adopt_lr();
    carry_out(block, Request::freeze, "user", 0.0, reason);
  }
  void freeze(const std::string& block_name, const std::string& reason = "frozen by the user") {
    freeze(blocks_.index_of(block_name), reason);
  }
  /// Puts a training block in trial: no gradient, optimizer state kept.
  void trial(std::size_t block, const std::string& reason = "trial by the user") {
    check_block(block, "trial");
    adopt_lr();
    const Transition t = ledger_.plan(block, Request::trial);
    detail::require(!t.refused(), "trial(", blocks_[block].name,
                    "): ", t.refused() ? t.refusal : "", "; call ctl.unfreeze() first");
    carry_out(block, Request::trial, "user", 0.0, reason);
  }
  void trial(const std::string& block_name, const std::string& reason = "trial by the user") {
    trial(blocks_.index_of(block_name), reason);
  }
  /// Back to training: a trial block trains on from its optimizer state; a
  /// frozen block trains again with fresh optimizer state (gradual unfreezing).
  void unfreeze(std::size_t block, const std::string& reason = "unfrozen by the user") {
    check_block(block, "unfreeze");
    if (!ledger_.plan(block, Request::unfreeze).moves()) return;
    adopt_lr();
    detail::require(!schedule_.frozen(clock_.step(), static_cast<std::int64_t>(block)), "unfreeze(",
                    blocks_[block].name, "): schedule ", concepts::name_of<Schedule>(),
                    " has annealed this block's learning rate to 0 for good at step ",
                    clock_.step(),
                    ", so it cannot train again; unfreeze works with schedules that keep a rate "
                    "(Constant, Cosine)");
    carry_out(block, Request::unfreeze, "user", 0.0, reason);
  }
  void unfreeze(const std::string& block_name, const std::string& reason = "unfrozen by the user") {
    unfreeze(blocks_.index_of(block_name), reason);
  }

  /// Sets the base learning rate of every param group (or one group): the
  /// rate the schedule's multiplier applies to from the next before_step().
  /// It supersedes a change made to the same groups' rates since the last step.
  void set_base_lr(double lr) { lr_.set_base(lr); }
  void set_base_lr(std::size_t group, double lr) { lr_.set_base(group, lr); }
  /// The base learning rate of a param group (the user's rate, before the schedule).
  double base_lr(std::size_t group) const { return lr_.base(group); }
  /// The learning-rate bookkeeping: groups, blocks, bases, multipliers.
  const LrBook& lr_book() const noexcept { return lr_; }

  // --- queries --------------------------------------------------------------

  BlockState block_state(std::size_t block) const { return ledger_.state(block); }
  BlockState block_state(const std::string& block_name) const {
    return ledger_.state(blocks_.index_of(block_name));
  }
  const std::vector<BlockState>& block_states() const noexcept { return ledger_.states(); }
  /// Frozen for good (a block in trial is not).
  bool is_frozen(std::size_t block) const { return ledger_.state(block) == BlockState::frozen; }
  // Views of the block states (BlockLedger says what each counts).
  std::vector<bool> frozen() const { return ledger_.frozen(); }
  std::int64_t num_frozen() const { return ledger_.count(BlockState::frozen); }
  std::int64_t num_trial() const { return ledger_.count(BlockState::trial); }
  std::int64_t frozen_prefix() const { return ledger_.frozen_prefix(); }
  std::int64_t no_grad_prefix() const { return ledger_.no_grad_prefix(); }
  double frozen_fraction() const { return ledger_.frozen_fraction(); }
  double no_grad_fraction() const { return ledger_.no_grad_fraction(); }
  /// Increases with every state change (data-parallel gradient buckets are
  /// rebuilt when it moves).
  std::uint64_t generation() const noexcept { return generation_; }
  /// The index of the next step (the number of completed steps).
  std::int64_t step() const noexcept { return clock_.step(); }
  const Timeline& timeline() const noexcept { return ledger_.timeline(); }
  const BlockMap& blocks() const noexcept { return blocks_; }
  const Options& options() const noexcept { return options_; }
  Criterion& criterion() noexcept { return criterion_; }
  const Criterion& criterion() const noexcept { return criterion_; }
  const Schedule& schedule() const noexcept { return schedule_; }
  StopRule& stop_rule() noexcept { return stop_; }
  const StopRule& stop_rule() const noexcept { return stop_; }
  reducer_type& reducer() noexcept { return reducer_; }
  const reducer_type& reducer() const noexcept { return reducer_; }
  /// The learning-rate multiplier a block (or kHead) gets at `step`.
  double lr_scale(std::int64_t step, std::int64_t block) const {
    if (block >= 0 && ledger_.state(static_cast<std::size_t>(block)) != BlockState::training)
      return 0.0;
    return schedule_.lr_scale(step, block);
  }

  /// "criterion=...;schedule=...;stop=..." (stored in checkpoints and checked on load).
  static std::string composition() { return composition_type::name(); }
  /// The whole configuration, one `key=value` per option, keys prefixed with
  /// the part they configure ("controller.", "criterion.", "schedule.", "stop.",
  /// "reducer.").
  OptionList describe() const { return describe(options_); }
  /// The same for options not (yet) given to a controller, e.g. to list what
  /// a composition can be configured with.
  static OptionList describe(const Options& o) { return composition_type::describe(o); }
  /// Sets one option of a (not yet constructed) controller's Options by its
  /// dotted key, e.g. set_option(opts, "schedule.t0", "0.5").
  static void set_option(Options& o, const std::string& key, const std::string& value) {
    composition_type::set_option(o, key, value);
  }

  // --- checkpointing (frost/checkpoint.hpp wraps these) -----------------------

  /// Writes the controller's complete state into `ar`: what it was written
  /// for (composition, block names), each part's and each stateful policy's
  /// state, in the checkpoint envelope (frost/checkpoint.hpp). The model and
  /// the optimizer are the user's to save.
  void save(torch::serialize::OutputArchive& ar) const {
    torch::serialize::OutputArchive f;
    detail::write_identity(f, composition(), ledger_.names());
    clock_.save(f);   // "step", "stopped"
    ledger_.save(f);  // "states", "timeline.*"
    mode_.save(f);    // "was_training"
    lr_.save(f);      // "base_lr", "lr_scale"
    concepts::save_state(criterion_, f, "criterion");
    concepts::save_state(schedule_, f, "schedule");
    concepts::save_state(stop_, f, "stop");
    detail::write_envelope(ar, f);
  }

  /// Restores what save() wrote, into a controller built over the same model,
  /// block map (by names) and composition, that has not stepped yet. Every
  /// part and policy is loaded into a fresh copy first: a mismatch or a
  /// corrupt state throws frost::Error naming `source` and leaves the
  /// controller as it was. The reducer is not part of the composition: a
  /// checkpoint of a data-parallel run resumes on one process and back.
  void load(torch::serialize::InputArchive& ar, const std::string& source = "the checkpoint") {
    torch::serialize::InputArchive f;
    detail::open_envelope(ar, f, source);
    detail::check_identity(f, source, composition(), ledger_.names());
    detail::require(clock_.step() == 0 && clock_.idle(), "cannot load ", source,
                    " into a controller that has already stepped (step ", clock_.step(),
                    "); load right after building the controller, before the first before_step()");
    StepClock clock(options_.controller().steps_per_epoch());
    BlockLedger ledger = ledger_;
    ModeGuard mode = mode_;
    LrBook lr = lr_;
    detail::load_part(clock, f, source);
    detail::load_part(ledger, f, source);
    detail::load_part(mode, f, source);
    detail::load_part(lr, f, source, ": ");
    Criterion criterion(options_.criterion());
    Schedule schedule(options_.schedule());
    StopRule stop(options_.stop());
    const RunShape shape = run_shape(blocks_, options_.controller());
    detail::load_policy(schedule, f, "schedule", source, [&] { schedule.setup(shape); });
    detail::load_policy(criterion, f, "criterion", source, [&] { criterion.setup(shape); });
    detail::load_policy(stop, f, "stop", source, [&] { concepts::setup_stop(stop, shape); });
    // Everything fitted: apply. A block that trains now and then is left as
    // the user has it (mode included).
    mode_ = std::move(mode);
    for (std::size_t b = 0; b < blocks_.size(); ++b)
      if (ledger.state(b) != BlockState::training || ledger_.state(b) != BlockState::training)
        set_params(b, ledger.state(b), /*from_training=*/false);
    ledger_ = std::move(ledger);
    lr_ = std::move(lr);
    lr_.reapply();
    mode_.reapply(blocks_, ledger_.states());
    criterion_ = std::move(criterion);
    schedule_ = std::move(schedule);
    stop_ = std::move(stop);
    clock_ = clock;
    ++generation_;
  }

 private:
  void check_block(std::size_t block, const char* what) const {
    detail::require(block < blocks_.size(), what, "(", block, "): there are only ", blocks_.size(),
                    " blocks");
  }

  StepState now() const { return clock_.now(ledger_.states()); }

  /// The stop rule's view: after the last completed step.
  StopState stop_state() const { return ledger_.with_counts(clock_.last_done()); }

  std::vector<double> read_statistics(const StepState& s) {
    at::Tensor t = concepts::statistics_of(criterion_, s);
    if (!t.defined()) return {};
    // The one synchronisation of a decision point.
    return host::read(concepts::reduce(reducer_, t));
  }

  void validation(double loss) {
    concepts::notify_validation(criterion_, loss, now());
    concepts::notify_validation(stop_, loss, stop_state());
    check_stop();
  }

  void check_stop() {
    if (clock_.stopped() || !stop_.should_stop(stop_state())) return;
    clock_.stop();
    ledger_.stop(clock_.step(), stop_policy_);
  }

  static Request request_of(Decisions::Action a) {
    using A = Decisions::Action;
    return a == A::trial    ? Request::trial
           : a == A::revert ? Request::revert
           : a == A::commit ? Request::commit
                            : Request::freeze;
  }

  /// A policy's requests, in block order (in-order mode may accept a prefix
  /// requested in one batch in any order); the ledger's verdict on each: the
  /// lifecycle table and the guards (BlockLedger::review).
  void apply(const Decisions& d, const std::string& policy) {
    if (d.empty()) return;  // the common case: nothing to do, nothing to copy
    std::vector<Decisions::Item> items = d.items();
    std::stable_sort(items.begin(), items.end(),
                     [](const auto& a, const auto& b) { return a.block < b.block; });
    for (const auto& it : items) {
      detail::require(it.block >= 0 && static_cast<std::size_t>(it.block) < blocks_.size(), policy,
                      " named block ", it.block, " but there are ", blocks_.size(), " blocks");
      const auto b = static_cast<std::size_t>(it.block);
      if (it.action == Decisions::Action::warn) {
        ledger_.warn(b, clock_.step(), policy, it.statistic, it.detail);
        continue;
      }
      const Request r = request_of(it.action);
      const Verdict v = ledger_.review(b, r, it.statistic, options_.controller().in_order());
      if (!v.refused()) {
        carry_out(b, r, policy, it.statistic, it.detail);
        continue;
      }
      ledger_.warn(b, clock_.step(), policy, it.statistic,
                   std::string(to_string(it.action)) + " refused: " + v.refusal +
                       (it.detail.empty() ? std::string() : " (" + it.detail + ")"),
                   policy + ":refused");
    }
  }

  /// Carries request `r` out on block b when the lifecycle table says it
  /// moves: parameters, optimizer state, learning rate, mode, then the
  /// ledger's event and the criterion's notification.
  void carry_out(std::size_t b, Request r, const std::string& policy, double stat,
                 std::string detail) {
    const Transition t = ledger_.plan(b, r);
    if (!t.moves()) return;
    const BlockState from = ledger_.state(b);
    set_params(b, t.to, /*from_training=*/from == BlockState::training);
    ledger_.enter(b, t, clock_.step(), policy, stat, std::move(detail));
    ++generation_;
    concepts::notify_state(criterion_, static_cast<std::int64_t>(b), from, t.to);
  }

  /// Block b's parameters, learning rate and mode in state `to`.
  void set_params(std::size_t b, BlockState to, bool from_training) {
    const auto& blk = blocks_[b];
    params_.enter(blk, b, to, *optimizer_);
    if (to == BlockState::training) {
      lr_.apply_block(b, schedule_.lr_scale(clock_.step(), static_cast<std::int64_t>(b)));
      mode_.rejoin(blk, b);
    } else {
      lr_.apply_block(b, 0.0);
      mode_.leave(blk, b, from_training);
    }
  }

  /// Takes the user's change of the optimizer's rates since frost set them
  /// into the bases (LrBook::adopt); a change to only some groups is a
  /// warning (with controller.strict_lr, adopt throws and nothing changes).
  void adopt_lr() {
    const LrChange c = lr_.adopt(options_.controller().strict_lr());
    if (c.kind == LrChange::Kind::partial)
      ledger_.note(lr_.warning(c, clock_.step()), "controller:lr");
  }

  /// Gives a block out of training found in train mode after a step its
  /// buffers and eval mode back (ModeGuard); the first time, a warning.
  void guard_modes() {
    const auto b = mode_.after_step(blocks_, ledger_.states());
    const std::int64_t step = clock_.step();
    if (b)
      ledger_.warn(*b, step, "controller", static_cast<double>(step),
                   ModeGuard::warning(blocks_[*b].name, step));
  }

  /// Parameters the user froze by hand before building the controller: a
  /// block with none trainable is frozen from step 0 (recorded); in a block
  /// with some, those stay fixed whatever the block's state (BlockParams).
  void adopt_user_frozen() {
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      const std::size_t off = params_.num_fixed(b), all = blocks_[b].params.size();
      if (off == all)
        carry_out(b, Request::freeze, "user", 0.0,
                  "every parameter already had requires_grad false when the controller was built");
      else if (off > 0)
        ledger_.warn(b, 0, "user", static_cast<double>(off),
                     std::to_string(off) + " of " + std::to_string(all) +
                         " parameters already had requires_grad false; they stay fixed, the "
                         "rest of the block follows its state");
    }
  }

  void check_coverage(const torch::nn::Module& model) {
    const double share = blocks_.coverage(model);
    if (share >= options_.controller().min_coverage()) return;
    std::int64_t total = 0;
    for (const auto& p : model.parameters(true)) total += p.numel();
    const auto in = static_cast<std::int64_t>(std::llround(share * static_cast<double>(total)));
    Event e;
    e.kind = EventKind::warning;
    e.policy = "controller";
    e.statistic = share;
    e.detail = "the block map holds " + std::to_string(in) + " of the model's " +
               std::to_string(total) + " parameters (" +
               std::to_string(static_cast<int>(std::lround(100.0 * share))) +
               "%); the rest trains like the head and is never frozen. Check what "
               "BlockMap::detect found, or name the blocks (from_prefixes); "
               "controller.min_coverage(0) silences this";
    ledger_.note(std::move(e), "controller:coverage");
  }

  torch::optim::Optimizer* optimizer_;
  BlockMap blocks_;
  Options options_;
  Criterion criterion_;
  Schedule schedule_;
  StopRule stop_;
  reducer_type reducer_;
  StepClock clock_;     // the step counter, the call order, the stop flag
  BlockLedger ledger_;  // block states, the timeline
  ModeGuard mode_;      // eval mode and buffers of blocks out of training
  BlockParams params_;  // requires_grad, gradients, optimizer state; the user's fixed ones
  LrBook lr_;           // per param group: base rate, multiplier, block
  Decisions decisions_;
  // Timeline labels, built once (not on every step).
  std::string criterion_policy_ = "criterion:" + concepts::name_of<Criterion>();
  std::string schedule_policy_ = "schedule:" + concepts::name_of<Schedule>();
  std::string stop_policy_ = "stop:" + concepts::name_of<StopRule>();
  std::uint64_t generation_ = 0;
};

}  // namespace frost
