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
// Blocks are training, in trial or frozen (frost/block_state.hpp). Extras
// (frost/extras.hpp) add policies to a composition: frost::with_reducer<R>.
// The controller coordinates: it calls the policies at the protocol's points
// and carries their requests out on its parts (frost/controller/), each saved
// and loaded like a policy (the checkpoint envelope is frost/checkpoint.hpp):
//   Policies     policies.hpp      the four policies: setup, save/load, host reads
//   StepClock    step_clock.hpp    the step, the call order, the stop flag
//   BlockLedger  block_ledger.hpp  block states, the lifecycle table (lifecycle.hpp),
//                                  the timeline and its warnings (frost/warn.hpp)
//   BlockParams  block_params.hpp  requires_grad, gradients, optimizer state
//   LrBook       lr_book.hpp       each param group's base rate and multiplier
//   ModeGuard    mode_guard.hpp    eval mode and buffers of blocks out of training
//   Composition  composition.hpp   the options, describe(), set_option(), RunShape
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/checkpoint.hpp"
#include "frost/controller/block_ledger.hpp"
#include "frost/controller/block_params.hpp"
#include "frost/controller/composition.hpp"
#include "frost/controller/lr_book.hpp"
#include "frost/controller/mode_guard.hpp"
#include "frost/controller/policies.hpp"
#include "frost/controller/step_clock.hpp"
#include "frost/controller_options.hpp"
#include "frost/error.hpp"
#include "frost/extras.hpp"

namespace frost {

template <class Criterion, class Schedule, class StopRule, class... Extras>
class FreezeController
    : private Composition<Criterion, Schedule, StopRule, extras::reducer_t<Extras...>> {
  static_assert(concepts::check_criterion<Criterion>(), "see the message above");
  static_assert(concepts::check_schedule<Schedule>(), "see the message above");
  static_assert(concepts::check_stop_rule<StopRule>(), "see the message above");
  static_assert(extras::check<Extras...>(), "see the message above");

 public:
  using criterion_type = Criterion;
  using schedule_type = Schedule;
  using stop_type = StopRule;
  using reducer_type = extras::reducer_t<Extras...>;
  using composition_type = Composition<Criterion, Schedule, StopRule, reducer_type>;
  /// The whole configuration: the controller's and each policy's options.
  using Options = typename composition_type::Options;

  FreezeController(const torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                   BlockMap blocks, Options options = {})
      : optimizer_(&optimizer),
        blocks_(std::move(blocks)),
        options_(std::move(options)),
        policies_(options_),
        clock_(options_.controller().steps_per_epoch()),
        ledger_(blocks_),
        mode_(options_.controller().eval_frozen(), blocks_.size()),
        params_(blocks_) {
    validate(options_.controller());
    blocks_.check_parameters_of(model);
    shape_ = detail::model_shape(model, blocks_, optimizer);  // what a checkpoint must match
    lr_ = LrBook(*optimizer_, blocks_);  // a group's rate follows one block (checked there)
    policies_.setup(run_shape(blocks_, options_.controller()));
    adopt_user_frozen();
    ledger_.check_coverage(blocks_.coverage_of(model), options_.controller().min_coverage());
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
    detail::require(finished_.empty(), "before_step(): ", finished_);
    clock_.check_begin();
    adopt_lr();  // before any transition rewrites a rate
    decisions_.clear();
    concepts::decide_before_step(policies_.criterion, now(), decisions_);
    apply(decisions_, policies_.criterion_label);
    const std::int64_t step = clock_.step();
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      if (!is_frozen(i) && policies_.schedule.frozen(step, static_cast<std::int64_t>(i)))
        carry_out(i, gate(i, Request::freeze, static_cast<double>(step), Source::schedule),
                  policies_.schedule_label, static_cast<double>(step),
                  "the schedule's learning rate reached zero");
    for (std::size_t g = 0; g < lr_.num_groups(); ++g)
      lr_.apply(g, lr_scale(step, lr_.block_of(g)));  // block_of: a block or kHead
    mode_.before_step(blocks_, ledger_.states());
    clock_.begin();
  }

  /// After `loss.backward()`: the criterion reads this step's gradients.
  void after_backward() {
    clock_.check_backward();
    policies_.criterion.observe(now());
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
    concepts::commit_step(policies_.criterion, s);  // the step's observations join its statistics
    if (policies_.criterion.decision_point(s)) {
      const std::vector<double> values = policies_.statistics(s);
      decisions_.clear();
      policies_.criterion.decide(s, HostValues(values), decisions_);
      apply(decisions_, policies_.criterion_label);
    }
    clock_.advance();
    check_stop();
  }

  /// Abandons the step begun by before_step(), for a catch block (the
  /// forward, backward or optimizer step threw: out of memory, a bad batch)
  /// or to skip a batch (a non-finite loss): no decision is taken, the step
  /// counter does not advance, and the next before_step() begins the same
  /// step again. What the criterion observed in this step (the gradients
  /// it read in after_backward(), the features, a predictor's record) is
  /// dropped: the run decides as one without the step, bit for bit. A no-op
  /// between steps, so it is always safe to call. In a data-parallel run
  /// every rank must abandon the same step.
  void abort_step() {
    if (clock_.idle()) return;
    guard_modes();
    concepts::abort_step(policies_.criterion, now());
    clock_.abandon();
  }

  bool should_stop() const noexcept { return clock_.stopped(); }

  /// A validation loss measured now (through the reducer: the mean over the
  /// ranks in a data-parallel run); forwarded to the criterion and the stop
  /// rule (early stopping with patience listens to it).
  void report_validation(double loss) { validation(policies_.validation_loss(loss)); }
  /// The same for a loss still on the device (one host read, after the reducer).
  void report_validation(const at::Tensor& loss) { validation(policies_.validation_loss(loss)); }

  /// Activations of a block, for criteria that look at them (else ignored).
  void observe_activations(std::int64_t block, const at::Tensor& activations) {
    concepts::notify_activations(policies_.criterion, block, activations);
  }
  /// This step's features (e.g. the class token fed to the head, [N, D]) and
  /// labels ([N]); for criteria that compare features (token similarity).
  /// Call it after the forward pass, before ctl.after_step().
  void observe_features(const at::Tensor& features, const at::Tensor& labels) {
    detail::require(!clock_.idle(),
                    "observe_features() called outside a step; call it after the forward pass, "
                    "between ctl.before_step() and ctl.after_step()");
    concepts::notify_features(policies_.criterion, now(), features, labels);
  }

  // --- state changes by hand (recorded with policy "user") -------------------

  /// Freezes a block (its index or its name) for good, from training or trial.
  void freeze(const BlockRef& block, const std::string& reason = "frozen by the user") {
    by_hand(block, Request::freeze, reason);
  }
  /// Puts a training block in trial: no gradient, optimizer state kept.
  void trial(const BlockRef& block, const std::string& reason = "trial by the user") {
    by_hand(block, Request::trial, reason);
  }
  /// Back to training: a trial block trains on from its optimizer state; a
  /// frozen block trains again with fresh optimizer state (gradual unfreezing).
  void unfreeze(const BlockRef& block, const std::string& reason = "unfrozen by the user") {
    by_hand(block, Request::unfreeze, reason);
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

  BlockState block_state(const BlockRef& block) const {
    return ledger_.state(blocks_.index_of(block, "block_state"));
  }
  const std::vector<BlockState>& block_states() const noexcept { return ledger_.states(); }
  /// Frozen for good (a block in trial is not).
  bool is_frozen(std::size_t block) const { return meaning(ledger_.state(block)).frozen_for_good; }
  // Views of the block states (BlockLedger says what each counts).
  std::vector<bool> frozen() const { return ledger_.frozen(); }
  std::int64_t num_frozen() const { return ledger_.count_frozen(); }
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
  Criterion& criterion() noexcept { return policies_.criterion; }
  const Criterion& criterion() const noexcept { return policies_.criterion; }
  const Schedule& schedule() const noexcept { return policies_.schedule; }
  StopRule& stop_rule() noexcept { return policies_.stop; }
  const StopRule& stop_rule() const noexcept { return policies_.stop; }
  reducer_type& reducer() noexcept { return policies_.reducer; }
  const reducer_type& reducer() const noexcept { return policies_.reducer; }
  /// The learning-rate multiplier a block (or kHead) gets at `step`.
  double lr_scale(std::int64_t step, std::int64_t block) const {
    if (block >= 0 && !meaning(ledger_.state(static_cast<std::size_t>(block))).trains) return 0.0;
    return policies_.schedule.lr_scale(step, block);
  }

  /// "criterion=...;schedule=...;stop=..." (stored in checkpoints and checked on load).
  static std::string composition() { return composition_type::name(); }
  /// The whole configuration, one `key=value` per option (Composition::describe);
  /// describe(options) and set_option(options, "schedule.t0", "0.5") do the
  /// same for options not (yet) given to a controller.
  OptionList describe() const { return describe(options_); }
  using composition_type::describe;
  using composition_type::set_option;

  // --- checkpointing (frost/checkpoint.hpp wraps these) -----------------------

  /// Writes the controller's complete state into `ar` in the checkpoint
  /// envelope: what it was written for (composition, block names, every
  /// trained parameter's name and shape, the run shape), each part's and
  /// policy's state. The model and optimizer are the user's to save.
  void save(torch::serialize::OutputArchive& ar) const {
    torch::serialize::OutputArchive f;
    detail::write_identity(f, composition(), ledger_.names());
    // "model.*" and "run.*": what a resume is checked against (checkpoint.hpp)
    detail::write_model_shape(f, shape_);
    detail::write_run_shape(f, run_shape(blocks_, options_.controller()));
    clock_.save(f);     // "step", "stopped"
    ledger_.save(f);    // "states", "timeline.*"
    mode_.save(f);      // "was_training", "mode_warned" once warned
    lr_.save(f);        // "base_lr", "lr_scale", "lr_set", "lr_now"
    policies_.save(f);  // "criterion", "schedule", "stop"
    detail::write_envelope(ar, f);
  }

  /// Restores what save() wrote, into a controller built over the same model
  /// (block names, parameter names and shapes, the head's too), composition
  /// and run shape (controller.allow_new_run_shape accepts another one), that
  /// has not stepped yet. Every part and policy is loaded into a fresh copy
  /// first: a mismatch or a corrupt state throws frost::Error naming `source`
  /// and leaves the controller as it was. A checkpoint of a run its stop rule
  /// had ended loads as finished: should_stop() is true and before_step()
  /// refuses to train on. The reducer is not part of the composition: a
  /// checkpoint of a data-parallel run resumes on one process and back.
  void load(torch::serialize::InputArchive& ar, const std::string& source = "the checkpoint") {
    torch::serialize::InputArchive f;
    detail::open_checked(ar, f, source, composition(), shape_, ledger_.names());
    clock_.check_unstarted(source);
    const StepClock clock = detail::loaded(clock_, f, source, "step clock");
    const RunShape shape = run_shape(blocks_, options_.controller());
    const std::string new_plan = composition_type::resume_plan(detail::read_run_shape(f, source),
                                                               shape, options_, clock.step(), source);
    BlockLedger ledger = detail::loaded(ledger_, f, source, "block ledger");
    ModeGuard mode = detail::loaded(mode_, f, source, "mode guard");
    LrBook lr = detail::loaded(lr_, f, source, "learning-rate book");
    // The policies load last: they swap themselves in when they fitted.
    policies_.load(f, options_, shape, source);
    // Everything fitted: apply. A block training before and after is left as it is.
    if (!new_plan.empty())
      ledger.note(Event{clock.step(), -1, "", EventKind::warning, "controller",
                        static_cast<double>(options_.controller().total_steps()), new_plan},
                  "controller:run_shape");
    mode_ = std::move(mode);
    for (std::size_t b = 0; b < blocks_.size(); ++b)
      if (!meaning(ledger.state(b)).trains || !meaning(ledger_.state(b)).trains)
        set_params(b, ledger.state(b), /*from_training=*/false);
    ledger_ = std::move(ledger);
    lr_ = std::move(lr);
    lr_.reapply();
    mode_.reapply(blocks_, ledger_.states());
    clock_ = clock;
    finished_ = clock_.finished(ledger_.timeline(), concepts::name_of<StopRule>(), source);
    ++generation_;
  }

 private:
  /// The user's request `r` on a block (policy "user"): a block that exists,
  /// then the gate, which throws where it refuses.
  void by_hand(const BlockRef& ref, Request r, const std::string& reason) {
    const std::size_t block = blocks_.index_of(ref, to_string(r));
    const Verdict v = gate(block, r, 0.0, Source::user);  // throws where it refuses
    if (!v.cell.moves()) return;
    adopt_lr();
    carry_out(block, v, "user", 0.0, reason);
  }

  /// The one gate every request passes, before anything changes:
  /// BlockLedger::review (the lifecycle table's cell, then the guards of who
  /// asks), and for the user's move back into training the schedule's
  /// check that it has not annealed the block to 0 for good. carry_out()
  /// executes the verdict's cell as it is (the table is not consulted twice).
  Verdict gate(std::size_t b, Request r, double statistic, Source who) const {
    Verdict v = ledger_.review(b, r, statistic, who, options_.controller().in_order());
    if (who == Source::user && v.cell.moves() && meaning(v.cell.to).trains)
      policies_.check_can_train(clock_.step(), b, blocks_[b].name);
    return v;
  }

  StepState now() const { return clock_.now(ledger_.states()); }

  /// The stop rule's view: after the last completed step.
  StopState stop_state() const { return ledger_.with_counts(clock_.last_done()); }

  void validation(double loss) {
    concepts::notify_validation(policies_.criterion, loss, now());
    concepts::notify_validation(policies_.stop, loss, stop_state());
    check_stop();
  }

  void check_stop() {
    if (clock_.stopped() || !policies_.stop.should_stop(stop_state())) return;
    clock_.stop();
    ledger_.stop(clock_.step(), policies_.stop_label);
  }

  /// A policy's requests, in block order, each through the gate.
  void apply(const Decisions& d, const std::string& policy) {
    if (d.empty()) return;  // the common case: nothing to do, nothing to copy
    for (const auto& it : d.in_block_order()) {
      detail::require(it.block >= 0 && static_cast<std::size_t>(it.block) < blocks_.size(), policy,
                      " named block ", it.block, " but there are ", blocks_.size(), " blocks");
      const auto b = static_cast<std::size_t>(it.block);
      if (it.is_warning()) {
        ledger_.warn(b, clock_.step(), policy, it.statistic, it.detail);
        continue;
      }
      const Verdict v = gate(b, *it.request, it.statistic, Source::criterion);
      if (v.refused())
        ledger_.refused(b, clock_.step(), policy, it, v);
      else
        carry_out(b, v, policy, it.statistic, it.detail);
    }
  }

  /// Carries the gate's verdict out on block b when its cell moves (a
  /// refused one never gets here): parameters, optimizer state, learning
  /// rate, mode, then the ledger's event and the criterion's notification.
  void carry_out(std::size_t b, const Verdict& v, const std::string& policy, double stat,
                 std::string detail) {
    const Transition& t = v.cell;
    if (!t.moves() || v.refused()) return;
    const BlockState from = ledger_.state(b);
    set_params(b, t.to, /*from_training=*/meaning(from).trains);
    ledger_.enter(b, t, clock_.step(), policy, stat, std::move(detail));
    ++generation_;
    concepts::notify_state(policies_.criterion, static_cast<std::int64_t>(b), from, t.to);
  }

  /// Block b's parameters, learning rate and mode in state `to`, each as
  /// the state's row of kStateMeanings says (block_state.hpp).
  void set_params(std::size_t b, BlockState to, bool from_training) {
    const auto& blk = blocks_[b];
    const StateMeaning& m = meaning(to);
    params_.enter(blk, b, to, *optimizer_);
    lr_.apply_block(b, m.trains ? policies_.schedule.lr_scale(clock_.step(), static_cast<std::int64_t>(b))
                                : 0.0);
    if (m.eval_mode)
      mode_.leave(blk, b, from_training);
    else
      mode_.rejoin(blk, b);
  }

  /// Takes the user's change of the optimizer's rates since frost set them
  /// into the bases (LrBook::adopt); a change to only some groups is a
  /// warning (with controller.strict_lr, adopt throws and nothing changes).
  void adopt_lr() {
    const LrChange c =
        lr_.adopt(options_.controller().strict_lr(), options_.controller().lr_changes());
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
    for (std::size_t b = 0; b < blocks_.size(); ++b)
      if (params_.all_fixed(b))
        carry_out(b, gate(b, Request::freeze, 0.0, Source::user), "user", 0.0,
                  "every parameter already had requires_grad false when the controller was built");
      else if (params_.num_fixed(b) > 0)
        ledger_.warn(b, 0, "user", static_cast<double>(params_.num_fixed(b)),
                     params_.fixed_note(b));
  }

  torch::optim::Optimizer* optimizer_;
  BlockMap blocks_;
  Options options_;
  Policies<Criterion, Schedule, StopRule, reducer_type> policies_;  // the four, set up
  StepClock clock_;     // the step counter, the call order, the stop flag
  BlockLedger ledger_;  // block states, the timeline
  ModeGuard mode_;      // eval mode and buffers of blocks out of training
  BlockParams params_;  // requires_grad, gradients, optimizer state; the user's fixed ones
  LrBook lr_;           // per param group: base rate, multiplier, block
  Decisions decisions_;
  std::uint64_t generation_ = 0;
  detail::ModelShape shape_;  // every trained parameter's name and shape (checkpoints)
  std::string finished_;      // why a loaded run is over; before_step() refuses then
};

}  // namespace frost
