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
// optimizer state released). A frozen or trial input-side prefix records no
// autograd graph and costs no backward work, without any change to the user's
// forward. Extras (frost/extras.hpp) add policies without changing the
// three-argument compositions: frost::with_reducer<R>.
//
// Learning rates: each param group's rate is the user's base rate times the
// schedule's multiplier (0 for blocks out of training), kept by frost::LrBook
// (frost/controller/lr_book.hpp). A change the user makes to the rates
// between steps is recognised at the next before_step(): a torch::optim
// scheduler or one factor on every group scales every base; one rate set on
// every group becomes every base; ctl.set_base_lr() sets them directly; a
// change to only some groups is a warning (an error with
// controller.strict_lr) that says how to do what was probably meant.
// Warnings (frost/warn.hpp) go to the timeline and to c10's warning handler.
#include <ATen/ATen.h>
#include <boost/crc.hpp>
#include <c10/util/Exception.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/block_state.hpp"
#include "frost/concepts/criterion.hpp"
#include "frost/concepts/reducer.hpp"
#include "frost/concepts/schedule.hpp"
#include "frost/concepts/state_io.hpp"
#include "frost/concepts/stop_rule.hpp"
#include "frost/controller/lr_book.hpp"
#include "frost/controller_options.hpp"
#include "frost/detail/archive.hpp"
#include "frost/detail/optimizer_access.hpp"
#include "frost/error.hpp"
#include "frost/extras.hpp"
#include "frost/host.hpp"
#include "frost/options.hpp"
#include "frost/timeline.hpp"
#include "frost/warn.hpp"

namespace frost {

/// The version of the checkpoint layout written by FreezeController::save.
inline constexpr std::int64_t kCheckpointFormat = 2;

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
  using reducer_type = typename extras::find<extras::reducer_tag, reducers::Identity, Extras...>::type;

  /// The whole configuration: the controller's and each policy's options.
  struct Options {
    FROST_ARG(ControllerOptions, controller) = {};
    FROST_ARG(typename Criterion::Options, criterion) = concepts::default_options<Criterion>();
    FROST_ARG(typename Schedule::Options, schedule) = concepts::default_options<Schedule>();
    FROST_ARG(typename StopRule::Options, stop) = concepts::default_options<StopRule>();
    FROST_ARG(typename reducer_type::Options, reducer) = concepts::default_options<reducer_type>();
  };

  FreezeController(const torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                   BlockMap blocks, Options options = {})
      : optimizer_(&optimizer),
        blocks_(std::move(blocks)),
        options_(std::move(options)),
        criterion_(options_.criterion()),
        schedule_(options_.schedule()),
        stop_(options_.stop()),
        reducer_(options_.reducer()) {
    validate_options();
    validate_blocks(model);
    map_groups();
    state_.assign(blocks_.size(), BlockState::training);
    was_training_.assign(blocks_.size(), 1);
    snapshot_due_.assign(blocks_.size(), 0);
    live_buffers_.assign(blocks_.size(), {});
    saved_buffers_.assign(blocks_.size(), {});
    schedule_.setup(schedule_setup());
    criterion_.setup(criterion_setup());
    concepts::setup_stop(stop_, stop_setup());
    adopt_user_frozen();
    check_coverage(model);
  }

  /// Accepts module holders (`ViT model; FreezeController ctl(model, ...)`).
  template <class M>
  FreezeController(const torch::nn::ModuleHolder<M>& model, torch::optim::Optimizer& optimizer,
                   BlockMap blocks, Options options = {})
      : FreezeController(*model, optimizer, std::move(blocks), std::move(options)) {}

  // --- the per-step calls ---------------------------------------------------

  /// Before the forward pass: clock-driven decisions, the schedule's freezing
  /// for this step, and every param group's learning rate. Host arithmetic only.
  void before_step() {
    if (phase_ != Phase::idle)
      detail::fail("before_step() called twice in one step; call ctl.after_step() after "
                   "optimizer.step()");
    adopt_lr();  // the user's change since the last step, before any transition rewrites a rate
    decisions_.clear();
    concepts::decide_before_step(criterion_, state(), decisions_);
    apply(decisions_, criterion_policy_);
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      if (state_[i] != BlockState::frozen && schedule_.frozen(step_, static_cast<std::int64_t>(i)))
        transition(i, BlockState::frozen, schedule_policy_, static_cast<double>(step_),
                   "the schedule's learning rate reached zero");
    }
    for (std::size_t g = 0; g < lr_.num_groups(); ++g)
      lr_.apply(g, lr_scale(step_, lr_.block_of(g)));  // block_of: a block or kHead
    if (options_.controller().eval_frozen()) {
      apply_eval_mode();
      take_due_snapshots();
    }
    phase_ = Phase::stepping;
  }

  /// After `loss.backward()`: the criterion reads this step's gradients.
  void after_backward() {
    if (phase_ != Phase::stepping)
      detail::fail("after_backward() called ",
                   phase_ == Phase::idle ? "without before_step(); call ctl.before_step() before "
                                           "the forward pass of every step"
                                         : "twice in one step");
    criterion_.observe(state());
    phase_ = Phase::backward_done;
  }

  /// After `optimizer.step()`: at the criterion's decision points its
  /// statistics go through the reducer to the host (one read) and its
  /// decisions are applied; then the step counter advances and the stop rule
  /// is consulted.
  void after_step() {
    if (phase_ == Phase::idle)
      detail::fail("after_step() called without before_step(); call ctl.before_step() before the "
                   "forward pass of every step");
    if (concepts::uses_gradients<Criterion>() && phase_ != Phase::backward_done)
      detail::fail("after_step() called without after_backward() in step ", step_, ": criterion ",
                   concepts::name_of<Criterion>(),
                   " reads the gradients; call ctl.after_backward() between loss.backward() and "
                   "optimizer.step() in every step");
    if (options_.controller().eval_frozen()) guard_modes();
    const StepState s = state();
    if (criterion_.decision_point(s)) {
      const std::vector<double> values = read_statistics(s);
      decisions_.clear();
      criterion_.decide(s, HostValues(values), decisions_);
      apply(decisions_, criterion_policy_);
    }
    ++step_;
    phase_ = Phase::idle;
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
    if (phase_ == Phase::idle) return;
    if (options_.controller().eval_frozen()) guard_modes();
    phase_ = Phase::idle;
  }

  bool should_stop() const noexcept { return stopped_; }

  /// A validation loss measured now (through the reducer: the mean over the
  /// ranks in a data-parallel run); forwarded to the criterion and the stop
  /// rule (early stopping with patience listens to it).
  void report_validation(double loss) {
    if constexpr (!concepts::is_identity_reducer<reducer_type>()) {
      at::Tensor t = reduce(at::full({1}, loss, at::TensorOptions().dtype(at::kDouble)));
      loss = host::read_scalar(t);
    }
    validation(loss);
  }
  /// The same for a loss still on the device (one host read, after the reducer).
  void report_validation(const at::Tensor& loss) {
    detail::require(loss.defined() && loss.numel() == 1,
                    "report_validation: give a one-element loss tensor (got ",
                    loss.defined() ? std::to_string(loss.numel()) + " elements" : "an undefined tensor",
                    ")");
    validation(host::read_scalar(reduce(loss.detach().reshape({1}).to(at::kDouble))));
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
    detail::require(phase_ != Phase::idle,
                    "observe_features() called outside a step; call it after the forward pass, "
                    "between ctl.before_step() and ctl.after_step()");
    concepts::notify_features(criterion_, state(), features, labels);
  }

  // --- state changes by hand (recorded with policy "user") -------------------

  /// Freezes a block for good (from training or trial).
  void freeze(std::size_t block, const std::string& reason = "frozen by the user") {
    check_block(block, "freeze");
    adopt_lr();
    if (state_[block] != BlockState::frozen)
      transition(block, BlockState::frozen, "user", 0.0, reason);
  }
  void freeze(const std::string& block_name, const std::string& reason = "frozen by the user") {
    freeze(blocks_.index_of(block_name), reason);
  }
  /// Puts a training block in trial: no gradient, optimizer state kept.
  void trial(std::size_t block, const std::string& reason = "trial by the user") {
    check_block(block, "trial");
    adopt_lr();
    detail::require(state_[block] != BlockState::frozen, "trial(", blocks_[block].name,
                    "): the block is frozen for good; call ctl.unfreeze() first");
    if (state_[block] == BlockState::training)
      transition(block, BlockState::trial, "user", 0.0, reason);
  }
  void trial(const std::string& block_name, const std::string& reason = "trial by the user") {
    trial(blocks_.index_of(block_name), reason);
  }
  /// Back to training: a trial block trains on from its optimizer state; a
  /// frozen block trains again with fresh optimizer state (gradual unfreezing).
  void unfreeze(std::size_t block, const std::string& reason = "unfrozen by the user") {
    check_block(block, "unfreeze");
    if (state_[block] == BlockState::training) return;
    adopt_lr();
    detail::require(!schedule_.frozen(step_, static_cast<std::int64_t>(block)), "unfreeze(",
                    blocks_[block].name, "): schedule ", concepts::name_of<Schedule>(),
                    " has annealed this block's learning rate to 0 for good at step ", step_,
                    ", so it cannot train again; unfreeze works with schedules that keep a rate "
                    "(Constant, Cosine)");
    transition(block, BlockState::training, "user", 0.0, reason);
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

  BlockState block_state(std::size_t block) const { return state_.at(block); }
  BlockState block_state(const std::string& block_name) const {
    return state_.at(blocks_.index_of(block_name));
  }
  const std::vector<BlockState>& block_states() const noexcept { return state_; }
  /// Frozen for good (a block in trial is not).
  bool is_frozen(std::size_t block) const { return state_.at(block) == BlockState::frozen; }
  std::vector<bool> frozen() const {
    std::vector<bool> out;
    for (auto st : state_) out.push_back(st == BlockState::frozen);
    return out;
  }
  std::int64_t num_frozen() const { return count(BlockState::frozen); }
  std::int64_t num_trial() const { return count(BlockState::trial); }
  /// Number of leading blocks frozen for good, from the input side: the part
  /// of the network whose outputs no longer change (what an activation cache
  /// may keep). Trials do not count.
  std::int64_t frozen_prefix() const {
    return leading([](BlockState st) { return st == BlockState::frozen; });
  }
  /// Number of leading blocks that get no gradient (trial or frozen): the part
  /// of the network that costs no backward work this step.
  std::int64_t no_grad_prefix() const {
    return leading([](BlockState st) { return st != BlockState::training; });
  }
  /// Parameters in blocks frozen for good / parameters in all blocks.
  double frozen_fraction() const {
    return fraction([](BlockState st) { return st == BlockState::frozen; });
  }
  /// Parameters in blocks that get no gradient (trial or frozen) / parameters
  /// in all blocks: the share of the blocks' backward and update work avoided.
  double no_grad_fraction() const {
    return fraction([](BlockState st) { return st != BlockState::training; });
  }
  /// Increases with every state change (data-parallel gradient buckets are
  /// rebuilt when it moves).
  std::uint64_t generation() const noexcept { return generation_; }
  /// The index of the next step (the number of completed steps).
  std::int64_t step() const noexcept { return step_; }
  const Timeline& timeline() const noexcept { return timeline_; }
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
    if (block >= 0 && state_.at(static_cast<std::size_t>(block)) != BlockState::training) return 0.0;
    return schedule_.lr_scale(step, block);
  }

  /// "criterion=...;schedule=...;stop=..." (stored in checkpoints and checked on load).
  static std::string composition() {
    return "criterion=" + concepts::name_of<Criterion>() + ";schedule=" +
           concepts::name_of<Schedule>() + ";stop=" + concepts::name_of<StopRule>();
  }

  /// The whole configuration, one `key=value` per option, keys prefixed with
  /// the part they configure ("controller.", "criterion.", "schedule.", "stop.",
  /// "reducer.").
  OptionList describe() const { return describe(options_); }

  /// The same for options not (yet) given to a controller, e.g. to list what
  /// a composition can be configured with.
  static OptionList describe(const Options& o) {
    OptionList out;
    out.emplace_back("criterion", concepts::name_of<Criterion>());
    out.emplace_back("schedule", concepts::name_of<Schedule>());
    out.emplace_back("stop", concepts::name_of<StopRule>());
    out.emplace_back("reducer", concepts::name_of<reducer_type>());
    append(out, "controller.", frost::describe(o.controller()));
    append(out, "criterion.", frost::describe(o.criterion()));
    append(out, "schedule.", frost::describe(o.schedule()));
    append(out, "stop.", frost::describe(o.stop()));
    append(out, "reducer.", frost::describe(o.reducer()));
    return out;
  }

  /// Sets one option of a (not yet constructed) controller's Options by its
  /// dotted key, e.g. set_option(opts, "schedule.t0", "0.5").
  static void set_option(Options& o, const std::string& key, const std::string& value) {
    const auto dot = key.find('.');
    const std::string part = key.substr(0, dot), rest = dot == std::string::npos ? "" : key.substr(dot + 1);
    if (part == "controller") return frost::set_option(o.controller(), rest, value);
    if (part == "criterion") return frost::set_option(o.criterion(), rest, value);
    if (part == "schedule") return frost::set_option(o.schedule(), rest, value);
    if (part == "stop") return frost::set_option(o.stop(), rest, value);
    if (part == "reducer") return frost::set_option(o.reducer(), rest, value);
    detail::fail("unknown option '", key,
                 "'; options start with controller., criterion., schedule., stop. or reducer.");
  }

  // --- checkpointing (frost/checkpoint.hpp wraps these) -----------------------

  /// Writes the controller's complete state into `ar`: the format version,
  /// the composition, the block names, step, block states, learning-rate
  /// bookkeeping, the timeline and every stateful policy's state, as one
  /// nested archive protected by a CRC-32 (keys "frost.format", "frost.state",
  /// "frost.crc32"). The model and the optimizer are the user's to save.
  void save(torch::serialize::OutputArchive& ar) const {
    torch::serialize::OutputArchive f;
    f.write("composition", c10::IValue(composition()));
    std::vector<std::string> names;
    for (const auto& b : blocks_) names.push_back(b.name);
    f.write("blocks", c10::IValue(c10::List<std::string>(names)));
    f.write("step", c10::IValue(step_));
    f.write("stopped", c10::IValue(stopped_));
    std::vector<std::int64_t> st, wt;
    for (std::size_t b = 0; b < state_.size(); ++b) {
      st.push_back(static_cast<std::int64_t>(state_[b]));
      wt.push_back(was_training_[b]);
    }
    f.write("states", c10::IValue(st));
    f.write("was_training", c10::IValue(wt));
    lr_.save(f);  // "base_lr", "lr_scale"
    write_timeline(f, timeline_);
    concepts::save_state(criterion_, f, "criterion");
    concepts::save_state(schedule_, f, "schedule");
    concepts::save_state(stop_, f, "stop");
    std::string bytes;
    f.save_to([&](const void* data, std::size_t n) {
      bytes.append(static_cast<const char*>(data), n);
      return n;
    });
    at::Tensor t = at::empty({static_cast<std::int64_t>(bytes.size())}, at::kByte);
    if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
    ar.write("frost.format", c10::IValue(kCheckpointFormat));
    ar.write("frost.state", t, /*is_buffer=*/true);
    ar.write("frost.crc32", c10::IValue(static_cast<std::int64_t>(crc32(bytes.data(), bytes.size()))));
  }

  /// Restores what save() wrote, into a controller built over the same model,
  /// block map (by names) and composition, that has not stepped yet. Every
  /// part is read and checked before anything changes: a mismatch or a
  /// corrupt state throws frost::Error naming `source` and leaves the
  /// controller as it was. The reducer is not part of the composition: a
  /// checkpoint of a data-parallel run resumes on one process and back.
  void load(torch::serialize::InputArchive& ar, const std::string& source = "the checkpoint") {
    c10::IValue v;
    if (!ar.try_read("frost.format", v))
      detail::fail(source, " holds no frost state ('frost.format' is missing): it was not written "
                   "by frost::save, or by a frost before checkpoint format ", kCheckpointFormat,
                   " (which did not save the policies' state and cannot resume exactly); start "
                   "the run afresh");
    detail::require(v.isInt() && v.toInt() == kCheckpointFormat, source,
                    " is in frost checkpoint format ", v.isInt() ? std::to_string(v.toInt()) : "?",
                    "; this frost reads format ", kCheckpointFormat);
    at::Tensor bytes;
    c10::IValue crc;
    detail::require(ar.try_read("frost.state", bytes, /*is_buffer=*/true) &&
                        ar.try_read("frost.crc32", crc) && crc.isInt() && bytes.defined() &&
                        bytes.scalar_type() == at::kByte && bytes.dim() == 1,
                    source, " is corrupt: its frost state ('frost.state', 'frost.crc32') is "
                    "missing or malformed");
    bytes = bytes.contiguous();
    const auto* data = static_cast<const char*>(bytes.data_ptr());
    const auto n = static_cast<std::size_t>(bytes.numel());
    const std::uint32_t computed = crc32(data, n);
    detail::require(static_cast<std::int64_t>(computed) == crc.toInt(), source,
                    " is corrupt: the checksum of its frost state does not match (stored ",
                    crc.toInt(), ", computed ", computed,
                    "); the file was damaged after it was written; use an earlier checkpoint");
    torch::serialize::InputArchive f;
    try {
      f.load_from(data, n);
    } catch (const c10::Error& e) {
      detail::fail(source, " is corrupt: its frost state does not parse (",
                   e.what_without_backtrace(), ")");
    }
    Loaded L = read_checkpoint(f, source);
    // Fresh policies: set up as at construction, then loaded. Only if all of
    // them load is anything swapped in.
    Criterion criterion(options_.criterion());
    Schedule schedule(options_.schedule());
    StopRule stop(options_.stop());
    load_policy(schedule, f, "schedule", source, [&] { schedule.setup(schedule_setup()); });
    load_policy(criterion, f, "criterion", source, [&] { criterion.setup(criterion_setup()); });
    load_policy(stop, f, "stop", source, [&] { concepts::setup_stop(stop, stop_setup()); });
    // Everything fitted: apply.
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      was_training_[b] = L.was_training[b];
      // A block that trains now and then is left as the user has it (mode included).
      if (L.states[b] != BlockState::training || state_[b] != BlockState::training)
        set_params(b, L.states[b]);
      state_[b] = L.states[b];
    }
    lr_ = std::move(L.lr);
    lr_.reapply();
    if (options_.controller().eval_frozen()) apply_eval_mode();
    criterion_ = std::move(criterion);
    schedule_ = std::move(schedule);
    stop_ = std::move(stop);
    step_ = L.step;
    stopped_ = L.stopped;
    timeline_ = std::move(L.timeline);
    phase_ = Phase::idle;
    ++generation_;
  }

 private:
  enum class Phase { idle, stepping, backward_done };

  struct Loaded {
    std::int64_t step = 0;
    bool stopped = false;
    std::vector<BlockState> states;
    std::vector<char> was_training;
    LrBook lr;
    Timeline timeline;
  };

  static std::uint32_t crc32(const char* data, std::size_t n) {
    boost::crc_32_type c;
    c.process_bytes(data, n);
    return c.checksum();
  }

  static void append(OptionList& out, const std::string& prefix, const OptionList& in) {
    for (const auto& kv : in) out.emplace_back(prefix + kv.first, kv.second);
  }

  static void write_timeline(torch::serialize::OutputArchive& f, const Timeline& tl) {
    std::vector<std::int64_t> steps, blocks, kinds;
    std::vector<double> stats;
    std::vector<std::string> names, policies, details;
    for (const auto& e : tl) {
      steps.push_back(e.step);
      blocks.push_back(e.block);
      kinds.push_back(static_cast<std::int64_t>(e.kind));
      stats.push_back(e.statistic);
      names.push_back(e.block_name);
      policies.push_back(e.policy);
      details.push_back(e.detail);
    }
    f.write("timeline.step", c10::IValue(steps));
    f.write("timeline.block", c10::IValue(blocks));
    f.write("timeline.kind", c10::IValue(kinds));
    f.write("timeline.statistic", c10::IValue(stats));
    f.write("timeline.block_name", c10::IValue(c10::List<std::string>(names)));
    f.write("timeline.policy", c10::IValue(c10::List<std::string>(policies)));
    f.write("timeline.detail", c10::IValue(c10::List<std::string>(details)));
  }

  /// Reads and checks the controller's own part of a checkpoint; throws
  /// frost::Error naming `source` on any mismatch. Changes nothing.
  Loaded read_checkpoint(torch::serialize::InputArchive& f, const std::string& source) const {
    auto value = [&](const char* key, auto is_type) {
      c10::IValue v;
      detail::require(f.try_read(key, v) && is_type(v), source, " is corrupt: its frost state "
                      "has no valid '", key, "'");
      return v;
    };
    const std::string comp =
        value("composition", [](const c10::IValue& v) { return v.isString(); }).toStringRef();
    detail::require(comp == composition(), source, " was written by another strategy: it holds ",
                    comp, ", this controller is ", composition(),
                    "; resume with the composition that wrote it");
    const auto names_v = value("blocks", [](const c10::IValue& v) { return v.isList(); }).toList();
    std::vector<std::string> names;
    for (std::size_t i = 0; i < names_v.size(); ++i) {
      const c10::IValue e = names_v.get(i);
      detail::require(e.isString(), source, " is corrupt: a block name is not a string");
      names.push_back(e.toStringRef());
    }
    std::vector<std::string> mine;
    for (const auto& b : blocks_) mine.push_back(b.name);
    if (names != mine) {
      auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
        return s;
      };
      detail::fail(source, " was written for another block map: it has ", names.size(),
                   " blocks (", join(names), "), this controller ", mine.size(), " (", join(mine),
                   "); resume with the model and block map that wrote it");
    }
    detail::require(step_ == 0 && phase_ == Phase::idle, "cannot load ", source,
                    " into a controller that has already stepped (step ", step_,
                    "); load right after building the controller, before the first before_step()");
    auto ints = [](const c10::IValue& v) { return v.isIntList(); };
    auto doubles = [](const c10::IValue& v) { return v.isDoubleList(); };
    Loaded L;
    L.step = value("step", [](const c10::IValue& v) { return v.isInt(); }).toInt();
    detail::require(L.step >= 0, source, " is corrupt: step ", L.step);
    L.stopped = value("stopped", [](const c10::IValue& v) { return v.isBool(); }).toBool();
    const auto st = value("states", ints).toIntVector();
    const auto wt = value("was_training", ints).toIntVector();
    detail::require(st.size() == blocks_.size() && wt.size() == blocks_.size(), source,
                    " is corrupt: block states for ", st.size(), " blocks, ", blocks_.size(),
                    " expected");
    for (std::size_t b = 0; b < st.size(); ++b) {
      detail::require(st[b] >= 0 && st[b] <= 2, source, " is corrupt: block '", blocks_[b].name,
                      "' has state ", st[b]);
      L.states.push_back(static_cast<BlockState>(st[b]));
      L.was_training.push_back(static_cast<char>(wt[b] != 0));
    }
    L.lr = lr_;  // a copy: only swapped in once everything fitted
    try {
      L.lr.load(f);
    } catch (const Error& e) {
      detail::fail(source, ": ", std::string(e.what()).substr(7));  // drop "frost: "
    }
    const auto steps = value("timeline.step", ints).toIntVector();
    const auto blocks = value("timeline.block", ints).toIntVector();
    const auto kinds = value("timeline.kind", ints).toIntVector();
    const auto stats = value("timeline.statistic", doubles).toDoubleVector();
    auto strings = [](const c10::IValue& v) { return v.isList(); };
    const auto bnames = value("timeline.block_name", strings).toList();
    const auto policies = value("timeline.policy", strings).toList();
    const auto details = value("timeline.detail", strings).toList();
    const std::size_t n = steps.size();
    detail::require(blocks.size() == n && kinds.size() == n && stats.size() == n &&
                        bnames.size() == n && policies.size() == n && details.size() == n,
                    source, " is corrupt: the timeline's columns differ in length");
    for (std::size_t i = 0; i < n; ++i) {
      detail::require(kinds[i] >= 0 && kinds[i] <= kLastEventKind && blocks[i] >= -1 &&
                          blocks[i] < static_cast<std::int64_t>(blocks_.size()) &&
                          bnames.get(i).isString() && policies.get(i).isString() &&
                          details.get(i).isString(),
                      source, " is corrupt: timeline event ", i);
      Event e;
      e.step = steps[i];
      e.block = blocks[i];
      e.kind = static_cast<EventKind>(kinds[i]);
      e.statistic = stats[i];
      e.block_name = bnames.get(i).toStringRef();
      e.policy = policies.get(i).toStringRef();
      e.detail = details.get(i).toStringRef();
      L.timeline.push_back(std::move(e));
    }
    return L;
  }

  /// Sets `p` up and loads its state from `f[key]`; any failure becomes a
  /// frost::Error naming the source and the policy.
  template <class P, class Setup>
  static void load_policy(P& p, torch::serialize::InputArchive& f, const char* key,
                          const std::string& source, Setup&& setup) {
    setup();
    if constexpr (!concepts::is_stateless<P>()) {
      bool found = false;
      try {
        found = concepts::load_state(p, f, key);
      } catch (const Error& e) {
        detail::fail(source, ": the ", key, " (", concepts::name_of<P>(),
                     ") does not load: ", std::string(e.what()).substr(7));  // drop "frost: "
      } catch (const c10::Error& e) {
        detail::fail(source, ": the ", key, " (", concepts::name_of<P>(),
                     ") does not load: ", e.what_without_backtrace());
      }
      detail::require(found, source, " has no state for the ", key, " (", concepts::name_of<P>(),
                      ")");
    }
  }

  ScheduleSetup schedule_setup() const {
    ScheduleSetup ss;
    ss.num_blocks = static_cast<std::int64_t>(blocks_.size());
    ss.stages = blocks_.stages();
    if (std::all_of(ss.stages.begin(), ss.stages.end(), [](int s) { return s == 0; }))
      ss.stages.clear();
    ss.total_steps = options_.controller().total_steps();
    ss.warmup_steps = options_.controller().warmup_steps();
    return ss;
  }
  CriterionSetup criterion_setup() const {
    CriterionSetup cs;
    cs.blocks = &blocks_;
    cs.steps_per_epoch = options_.controller().steps_per_epoch();
    cs.total_steps = options_.controller().total_steps();
    return cs;
  }

  std::int64_t count(BlockState st) const {
    return static_cast<std::int64_t>(std::count(state_.begin(), state_.end(), st));
  }
  /// Parameters in blocks whose state satisfies `pred` / parameters in all blocks.
  template <class Pred>
  double fraction(Pred pred) const {
    std::int64_t f = 0;
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      if (pred(state_[i])) f += blocks_[i].numel;
    return blocks_.numel() ? static_cast<double>(f) / static_cast<double>(blocks_.numel()) : 0.0;
  }
  /// Number of leading blocks (input side first) whose state satisfies `pred`.
  template <class Pred>
  std::int64_t leading(Pred pred) const {
    const auto it = std::find_if_not(state_.begin(), state_.end(), pred);
    return static_cast<std::int64_t>(it - state_.begin());
  }

  void check_block(std::size_t block, const char* what) const {
    detail::require(block < blocks_.size(), what, "(", block, "): there are only ", blocks_.size(),
                    " blocks");
  }

  StepState state() const {
    StepState s;
    s.step = step_;
    const auto spe = options_.controller().steps_per_epoch();
    s.epoch = spe > 0 ? step_ / spe : 0;
    s.epoch_end = spe > 0 && (step_ + 1) % spe == 0;
    s.states = &state_;
    return s;
  }

  /// What the stop rule may check once (StopRule::setup).
  StopSetup stop_setup() const {
    StopSetup st;
    st.total_steps = options_.controller().total_steps();
    st.steps_per_epoch = options_.controller().steps_per_epoch();
    st.num_blocks = static_cast<std::int64_t>(blocks_.size());
    return st;
  }

  /// The stop rule's view: after the last completed step.
  StopState stop_state() const {
    StopState st;
    const auto spe = options_.controller().steps_per_epoch();
    st.steps_done = step_;
    st.step = step_ - 1;
    st.epoch = spe > 0 && st.step >= 0 ? st.step / spe : 0;
    st.epoch_end = spe > 0 && step_ > 0 && step_ % spe == 0;
    st.steps_per_epoch = spe;
    st.num_blocks = static_cast<std::int64_t>(blocks_.size());
    st.num_frozen = num_frozen();
    st.num_trial = num_trial();
    st.frozen_prefix = frozen_prefix();
    return st;
  }

  at::Tensor reduce(const at::Tensor& t) {
    at::Tensor r = reducer_.reduce(t);
    detail::require(r.defined() && r.sizes() == t.sizes(), "reducer ",
                    concepts::name_of<reducer_type>(), " returned a tensor of another shape (",
                    r.defined() ? r.sizes() : at::IntArrayRef{}, " for ", t.sizes(), ")");
    return r;
  }

  std::vector<double> read_statistics(const StepState& s) {
    at::Tensor t = concepts::statistics_of(criterion_, s);
    if (!t.defined()) return {};
    return host::read(reduce(t));  // the one synchronisation of a decision point
  }

  void validation(double loss) {
    const StepState s = state();
    concepts::notify_validation(criterion_, loss, s);
    concepts::notify_validation(stop_, loss, stop_state());
    check_stop();
  }

  void check_stop() {
    if (stopped_) return;
    const StopState st = stop_state();
    if (stop_.should_stop(st)) {
      stopped_ = true;
      Event e;
      e.step = std::max<std::int64_t>(st.step, 0);
      e.kind = EventKind::stop;
      e.policy = stop_policy_;
      e.statistic = static_cast<double>(num_frozen());
      e.detail = "after " + std::to_string(step_) + " steps; " + std::to_string(num_frozen()) +
                 " of " + std::to_string(blocks_.size()) + " blocks frozen";
      timeline_.push_back(std::move(e));
    }
  }

  void refuse(std::size_t b, const std::string& policy, const Decisions::Item& it,
              const std::string& why) {
    record(EventKind::warning, b, policy, it.statistic,
           std::string(to_string(it.action)) + " refused: " + why +
               (it.detail.empty() ? std::string() : " (" + it.detail + ")"),
           policy + ":refused");
  }

  void apply(const Decisions& d, const std::string& policy) {
    if (d.empty()) return;  // the common case: nothing to do, nothing to copy
    std::vector<Decisions::Item> items = d.items();
    // In-order mode may accept a prefix requested in one batch in any order.
    std::stable_sort(items.begin(), items.end(),
                     [](const auto& a, const auto& b) { return a.block < b.block; });
    using A = Decisions::Action;
    for (const auto& it : items) {
      detail::require(it.block >= 0 && static_cast<std::size_t>(it.block) < blocks_.size(),
                      policy, " named block ", it.block, " but there are ", blocks_.size(),
                      " blocks");
      const auto b = static_cast<std::size_t>(it.block);
      const BlockState from = state_[b];
      if (it.action == A::warn) {
        record(EventKind::warning, b, policy, it.statistic, it.detail);
        continue;
      }
      BlockState to = BlockState::frozen;
      if (it.action == A::trial) to = BlockState::trial;
      if (it.action == A::revert) to = BlockState::training;
      if (from == to) continue;  // already done
      if (it.action == A::revert && from == BlockState::frozen) {
        refuse(b, policy, it, "the block is frozen for good (only ctl.unfreeze() trains it again)");
        continue;
      }
      if (it.action == A::trial && from == BlockState::frozen) {
        refuse(b, policy, it, "the block is frozen for good");
        continue;
      }
      if (it.action == A::commit && from != BlockState::trial) {
        refuse(b, policy, it, "the block is not in trial");
        continue;
      }
      if (to != BlockState::training) {
        // Never take a block out of training on a non-finite statistic.
        if (!std::isfinite(it.statistic)) {
          refuse(b, policy, it, "the statistic is not finite");
          continue;
        }
        if (options_.controller().in_order() && static_cast<std::int64_t>(b) > frozen_prefix()) {
          refuse(b, policy, it,
                 "in_order: block " + std::to_string(frozen_prefix()) + " (" +
                     blocks_[static_cast<std::size_t>(frozen_prefix())].name +
                     ") before it is not frozen for good");
          continue;
        }
      }
      transition(b, to, policy, it.statistic, it.detail);
    }
  }

  /// An event about block b; a warning is also emitted (push_event) under
  /// `topic` (default: the policy).
  void record(EventKind kind, std::size_t b, const std::string& policy, double stat,
              std::string detail, const std::string& topic = {}) {
    Event e;
    e.block = static_cast<std::int64_t>(b);
    e.block_name = blocks_[b].name;
    e.kind = kind;
    e.policy = policy;
    e.statistic = stat;
    e.detail = std::move(detail);
    push_event(std::move(e), topic.empty() ? policy : topic);
  }

  /// The one place events enter the timeline (at this step). Warnings also go
  /// to c10's warning handler, once per topic and block (frost/warn.hpp).
  void push_event(Event e, const std::string& topic) {
    e.step = step_;
    if (e.kind == EventKind::warning) warnings_.emit(e, topic);
    timeline_.push_back(std::move(e));
  }

  static EventKind kind_of(BlockState from, BlockState to) {
    if (to == BlockState::trial) return EventKind::trial;
    if (to == BlockState::frozen) return from == BlockState::trial ? EventKind::commit : EventKind::freeze;
    return from == BlockState::trial ? EventKind::revert : EventKind::unfreeze;
  }

  /// Moves block b to `to`: parameters, optimizer state, learning rate, mode,
  /// the timeline, and the criterion's notification.
  void transition(std::size_t b, BlockState to, const std::string& policy, double stat,
                  std::string detail) {
    const BlockState from = state_[b];
    if (from == to) return;
    if (from == BlockState::training) {
      const auto& mods = blocks_[b].modules;
      was_training_[b] = mods.empty() ? 1 : static_cast<char>(mods.front()->is_training());
    }
    set_params(b, to);
    state_[b] = to;
    ++generation_;
    record(kind_of(from, to), b, policy, stat, std::move(detail));
    concepts::notify_state(criterion_, static_cast<std::int64_t>(b), from, to);
  }

  /// The parameter side of a state: requires_grad, gradients, optimizer
  /// state, learning rate, module mode.
  void set_params(std::size_t b, BlockState to) {
    const auto& blk = blocks_[b];
    if (to == BlockState::training) {
      for (std::size_t i = 0; i < blk.params.size(); ++i)
        if (!fixed_[b][i]) blk.params[i].requires_grad_(true);
      lr_.apply_block(b, schedule_.lr_scale(step_, static_cast<std::int64_t>(b)));
      if (options_.controller().eval_frozen())
        for (const auto& m : blk.modules) m->train(was_training_[b] != 0);
      snapshot_due_[b] = 0;
      live_buffers_[b].clear();
      saved_buffers_[b].clear();
      return;
    }
    for (auto p : blk.params) {
      p.requires_grad_(false);
      if (p.grad().defined()) p.mutable_grad() = at::Tensor();
      if (to == BlockState::frozen) detail::drop_state(*optimizer_, p);
    }
    lr_.apply_block(b, 0.0);
    if (options_.controller().eval_frozen()) {
      for (const auto& m : blk.modules) m->eval();
      if (saved_buffers_[b].empty()) snapshot_due_[b] = 1;  // trial -> frozen keeps its snapshot
    }
  }

  /// Takes the user's change of the optimizer's rates since frost set them
  /// into the bases (LrBook::adopt); a change to only some groups is a
  /// warning (with controller.strict_lr, adopt throws and nothing changes).
  void adopt_lr() {
    const LrChange c = lr_.adopt(options_.controller().strict_lr());
    if (c.kind != LrChange::Kind::partial) return;
    Event e;
    e.block = lr_.block_of(c.groups.front());
    if (e.block >= 0) e.block_name = blocks_[static_cast<std::size_t>(e.block)].name;
    e.kind = EventKind::warning;
    e.policy = "controller";
    e.statistic = static_cast<double>(c.groups.size());
    e.detail = c.message;
    push_event(std::move(e), "controller:lr");
  }

  void apply_eval_mode() {
    for (std::size_t b = 0; b < blocks_.size(); ++b)
      if (state_[b] != BlockState::training)
        for (auto& m : blocks_[b].modules) m->eval();
  }

  // Eval mode is re-applied in before_step(), so a model->train() between
  // steps does not undo it; one called after before_step() would let the
  // step's forward update the running statistics of a block out of training
  // (its output would drift, and an activation cache would serve stale
  // entries). So the buffers of a block leaving training are copied once (at
  // the next before_step(), after any model load: small for batch norm,
  // nothing for layer norm), and after each step a block found in train mode
  // gets them back, is put in eval mode again, and the first time a warning
  // event says what happened. A host check of the modules' flags per step.
  void take_due_snapshots() {
    at::NoGradGuard ng;
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      if (!snapshot_due_[b]) continue;
      snapshot_due_[b] = 0;
      live_buffers_[b].clear();
      saved_buffers_[b].clear();
      std::vector<const void*> seen;
      for (const auto& m : blocks_[b].modules)
        for (const auto& t : m->buffers(/*recurse=*/true)) {
          if (!t.defined() ||
              std::find(seen.begin(), seen.end(), t.unsafeGetTensorImpl()) != seen.end())
            continue;
          seen.push_back(t.unsafeGetTensorImpl());
          live_buffers_[b].push_back(t);
          saved_buffers_[b].push_back(t.clone());
        }
    }
  }

  void guard_modes() {
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      if (state_[b] == BlockState::training) continue;
      const auto& mods = blocks_[b].modules;
      if (std::none_of(mods.begin(), mods.end(), [](const auto& m) { return m->is_training(); }))
        continue;
      for (const auto& m : mods) m->eval();
      {
        at::NoGradGuard ng;
        for (std::size_t i = 0; i < live_buffers_[b].size(); ++i)
          live_buffers_[b][i].copy_(saved_buffers_[b][i]);
      }
      if (mode_warned_) continue;
      mode_warned_ = true;
      record(EventKind::warning, b, "controller", static_cast<double>(step_),
             "block '" + blocks_[b].name + "' is out of training but was in train mode during "
             "step " + std::to_string(step_) + " (model->train() after ctl.before_step()?): its "
             "buffers (batch-norm statistics) were restored and it is in eval mode again; call "
             "model->train() before ctl.before_step(). Reported once");
    }
  }

  /// Parameters the user froze by hand before building the controller: a
  /// block with none trainable is frozen from step 0 (recorded); in a block
  /// with some, those stay fixed whatever the block's state.
  void adopt_user_frozen() {
    fixed_.assign(blocks_.size(), {});
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      const auto& params = blocks_[b].params;
      std::size_t off = 0;
      for (const auto& p : params) off += p.requires_grad() ? 0 : 1;
      fixed_[b].assign(params.size(), 0);
      if (off == params.size()) {
        transition(b, BlockState::frozen, "user", 0.0,
                   "every parameter already had requires_grad false when the controller was built");
      } else if (off > 0) {
        for (std::size_t i = 0; i < params.size(); ++i) fixed_[b][i] = !params[i].requires_grad();
        record(EventKind::warning, b, "user", static_cast<double>(off),
               std::to_string(off) + " of " + std::to_string(params.size()) +
                   " parameters already had requires_grad false; they stay fixed, the rest of "
                   "the block follows its state");
      }
    }
  }

  void check_coverage(const torch::nn::Module& model) {
    std::int64_t total = 0;
    for (const auto& p : model.parameters(true)) total += p.numel();
    const double share = blocks_.coverage(model);
    const std::int64_t in = static_cast<std::int64_t>(std::llround(share * static_cast<double>(total)));
    if (share >= options_.controller().min_coverage()) return;
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
    push_event(std::move(e), "controller:coverage");
  }

  void validate_options() const {
    const auto& c = options_.controller();
    detail::require(c.total_steps() >= 0, "controller.total_steps is ", c.total_steps(),
                    "; give the number of training steps (or 0 when unknown)");
    detail::require(c.warmup_steps() >= 0, "controller.warmup_steps is ", c.warmup_steps(),
                    "; it must be 0 or more");
    detail::require(c.total_steps() == 0 || c.warmup_steps() < c.total_steps(),
                    "controller.warmup_steps (", c.warmup_steps(),
                    ") must be smaller than total_steps (", c.total_steps(), ")");
    detail::require(c.steps_per_epoch() >= 0, "controller.steps_per_epoch is ",
                    c.steps_per_epoch(), "; it must be 0 (unknown) or more");
    detail::require(std::isfinite(c.min_coverage()) && c.min_coverage() >= 0.0 &&
                        c.min_coverage() <= 1.0,
                    "controller.min_coverage is ", c.min_coverage(), "; give a share in [0, 1]");
  }

  void validate_blocks(const torch::nn::Module& model) const {
    detail::require(!blocks_.empty(),
                    "the block map is empty; build it with frost::BlockMap::detect(model) or "
                    "from_prefixes/from_children");
    std::unordered_map<const void*, std::string> names;
    for (const auto& item : model.named_parameters(true))
      names[item.value().unsafeGetTensorImpl()] = item.key();
    for (const auto& b : blocks_) {
      detail::require(!b.params.empty(), "block '", b.name,
                      "' has no parameters; give every block at least one");
      for (std::size_t i = 0; i < b.params.size(); ++i)
        detail::require(names.count(b.params[i].unsafeGetTensorImpl()) != 0, "parameter '",
                        b.param_names[i], "' of block '", b.name,
                        "' is not a parameter of the model given to the controller; build the "
                        "block map from the same model");
    }
  }

  // A block may span several param groups, but a group must not mix blocks
  // (LrBook checks it): its learning rate follows one block.
  void map_groups() { lr_ = LrBook(*optimizer_, blocks_); }

  torch::optim::Optimizer* optimizer_;
  BlockMap blocks_;
  Options options_;
  Criterion criterion_;
  Schedule schedule_;
  StopRule stop_;
  reducer_type reducer_;
  std::vector<BlockState> state_;
  std::vector<char> was_training_;         // per block: its mode when it left training
  std::vector<char> snapshot_due_;         // per block: copy its buffers at the next before_step
  std::vector<std::vector<at::Tensor>> live_buffers_;   // per block out of training: its buffers
  std::vector<std::vector<at::Tensor>> saved_buffers_;  // ... and their values when it left
  bool mode_warned_ = false;               // the train-mode warning was recorded
  std::vector<std::vector<char>> fixed_;   // per block parameter: the user froze it before us
  LrBook lr_;                              // per param group: base rate, multiplier, block
  WarningLog warnings_;                    // warnings passed to c10's handler (once per topic, block)
  Decisions decisions_;
  // Timeline labels, built once (not on every step).
  std::string criterion_policy_ = "criterion:" + concepts::name_of<Criterion>();
  std::string schedule_policy_ = "schedule:" + concepts::name_of<Schedule>();
  std::string stop_policy_ = "stop:" + concepts::name_of<StopRule>();
  Timeline timeline_;
  std::int64_t step_ = 0;
  std::uint64_t generation_ = 0;
  bool stopped_ = false;
  Phase phase_ = Phase::idle;
};

}  // namespace frost
