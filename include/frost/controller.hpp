#pragma once
// frost::FreezeController<Criterion, Schedule, StopRule>: the piece the user's
// training loop talks to.
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
//     ctl.after_step();             // decisions, freezing, stop check
//     if (ctl.should_stop()) break;
//   }
//
// Freezing a block: requires_grad_(false) on its parameters, their gradients
// released, their optimizer state (Adam moments, momentum) dropped, the
// block's learning rate set to 0, and optionally its modules put in eval mode.
// A frozen input-side prefix then records no autograd graph and costs no
// backward work, without any change to the user's forward.
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/optim/optimizer.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/concepts/criterion.hpp"
#include "frost/concepts/schedule.hpp"
#include "frost/concepts/stop_rule.hpp"
#include "frost/controller_options.hpp"
#include "frost/detail/optimizer_access.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"
#include "frost/timeline.hpp"

namespace frost {

template <class Criterion, class Schedule, class StopRule>
class FreezeController {
  static_assert(concepts::check_criterion<Criterion>(), "see the message above");
  static_assert(concepts::check_schedule<Schedule>(), "see the message above");
  static_assert(concepts::check_stop_rule<StopRule>(), "see the message above");

 public:
  using criterion_type = Criterion;
  using schedule_type = Schedule;
  using stop_type = StopRule;

  /// The whole configuration: the controller's and each policy's options.
  struct Options {
    FROST_ARG(ControllerOptions, controller) = {};
    FROST_ARG(typename Criterion::Options, criterion) = {};
    FROST_ARG(typename Schedule::Options, schedule) = {};
    FROST_ARG(typename StopRule::Options, stop) = {};
  };

  FreezeController(const torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                   BlockMap blocks, Options options = {})
      : optimizer_(&optimizer),
        blocks_(std::move(blocks)),
        options_(std::move(options)),
        criterion_(options_.criterion()),
        schedule_(options_.schedule()),
        stop_(options_.stop()) {
    validate_options();
    validate_blocks(model);
    map_groups();
    frozen_.assign(blocks_.size(), 0);

    ScheduleSetup ss;
    ss.num_blocks = static_cast<std::int64_t>(blocks_.size());
    ss.stages = blocks_.stages();
    if (std::all_of(ss.stages.begin(), ss.stages.end(), [](int s) { return s == 0; }))
      ss.stages.clear();
    ss.total_steps = options_.controller().total_steps();
    ss.warmup_steps = options_.controller().warmup_steps();
    schedule_.setup(ss);

    CriterionSetup cs;
    cs.blocks = &blocks_;
    cs.steps_per_epoch = options_.controller().steps_per_epoch();
    cs.total_steps = options_.controller().total_steps();
    criterion_.setup(cs);
  }

  /// Accepts module holders (`ViT model; FreezeController ctl(model, ...)`).
  template <class M>
  FreezeController(const torch::nn::ModuleHolder<M>& model, torch::optim::Optimizer& optimizer,
                   BlockMap blocks, Options options = {})
      : FreezeController(*model, optimizer, std::move(blocks), std::move(options)) {}

  // --- the per-step calls ---------------------------------------------------

  /// Before the forward pass: applies the schedule's freezing for this step
  /// and sets every param group's learning rate. Host arithmetic only.
  void before_step() {
    if (phase_ != Phase::idle)
      detail::fail("before_step() called twice in one step; call ctl.after_step() after "
                   "optimizer.step()");
    decisions_.clear();
    concepts::decide_before_step(criterion_, state(), decisions_);
    apply(decisions_, criterion_policy_);
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      if (!frozen_[i] && schedule_.frozen(step_, static_cast<std::int64_t>(i)))
        freeze_block(i, schedule_policy_,
                     static_cast<double>(step_), "the schedule's learning rate reached zero");
    }
    for (std::size_t g = 0; g < group_block_.size(); ++g) {
      const std::int64_t b = group_block_[g];
      const double scale = b >= 0 && frozen_[static_cast<std::size_t>(b)]
                               ? 0.0
                               : schedule_.lr_scale(step_, b >= 0 ? b : kHead);
      optimizer_->param_groups()[g].options().set_lr(base_lr_[g] * scale);
    }
    if (options_.controller().eval_frozen()) apply_eval_mode();
    phase_ = Phase::stepping;
  }

  /// After `loss.backward()`: the criterion reads this step's gradients.
  void after_backward() {
    if (phase_ != Phase::stepping)
      detail::fail("after_backward() called ",
                   phase_ == Phase::idle ? "without before_step(); call ctl.before_step() before "
                                           "the forward pass of every step"
                                         : "twice in one step");
    const StepState s = state();
    criterion_.observe(s);
    phase_ = Phase::backward_done;
  }

  /// After `optimizer.step()`: the criterion decides, blocks freeze, the stop
  /// rule is consulted, and the step counter advances.
  void after_step() {
    if (phase_ == Phase::idle)
      detail::fail("after_step() called without before_step(); call ctl.before_step() before the "
                   "forward pass of every step");
    const StepState s = state();
    decisions_.clear();
    criterion_.decide(s, decisions_);
    apply(decisions_, criterion_policy_);
    check_stop(s);
    ++step_;
    phase_ = Phase::idle;
  }

  bool should_stop() const noexcept { return stopped_; }

  /// A validation loss measured now; forwarded to the criterion and the stop
  /// rule (early stopping with patience listens to it).
  void report_validation(double loss) {
    const StepState s = state();
    concepts::notify_validation(criterion_, loss, s);
    concepts::notify_validation(stop_, loss, stop_state(s));
    check_stop(s);
  }

  /// Activations of a block (for criteria that look at them, such as class-token
  /// similarity). Ignored by criteria that do not.
  void observe_activations(std::int64_t block, const at::Tensor& activations) {
    concepts::notify_activations(criterion_, block, activations);
  }

  /// Freezes a block by hand (recorded in the timeline as policy "user").
  void freeze(std::size_t block, const std::string& reason = "frozen by the user") {
    detail::require(block < blocks_.size(), "freeze(", block, "): there are only ", blocks_.size(),
                    " blocks");
    if (!frozen_[block]) freeze_block(block, "user", 0.0, reason);
  }
  void freeze(const std::string& block_name, const std::string& reason = "frozen by the user") {
    freeze(blocks_.index_of(block_name), reason);
  }

  // --- queries --------------------------------------------------------------

  bool is_frozen(std::size_t block) const { return frozen_.at(block) != 0; }
  std::vector<bool> frozen() const { return std::vector<bool>(frozen_.begin(), frozen_.end()); }
  std::int64_t num_frozen() const {
    return static_cast<std::int64_t>(std::count(frozen_.begin(), frozen_.end(), 1));
  }
  /// Number of leading frozen blocks from the input side: the part of the
  /// network that costs no backward work.
  std::int64_t frozen_prefix() const {
    std::int64_t n = 0;
    while (static_cast<std::size_t>(n) < frozen_.size() && frozen_[static_cast<std::size_t>(n)]) ++n;
    return n;
  }
  /// Parameters in frozen blocks / parameters in all blocks.
  double frozen_fraction() const {
    std::int64_t f = 0;
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      if (frozen_[i]) f += blocks_[i].numel;
    return blocks_.numel() ? static_cast<double>(f) / static_cast<double>(blocks_.numel()) : 0.0;
  }
  /// The index of the next step (the number of completed steps).
  std::int64_t step() const noexcept { return step_; }
  const Timeline& timeline() const noexcept { return timeline_; }
  const BlockMap& blocks() const noexcept { return blocks_; }
  const Options& options() const noexcept { return options_; }
  Criterion& criterion() noexcept { return criterion_; }
  const Schedule& schedule() const noexcept { return schedule_; }
  StopRule& stop_rule() noexcept { return stop_; }
  /// The learning-rate multiplier a block (or kHead) gets at `step`.
  double lr_scale(std::int64_t step, std::int64_t block) const {
    if (block >= 0 && frozen_.at(static_cast<std::size_t>(block))) return 0.0;
    return schedule_.lr_scale(step, block);
  }

  /// The whole configuration, one `key=value` per option, keys prefixed with
  /// the part they configure ("controller.", "criterion.", "schedule.", "stop.").
  OptionList describe() const { return describe(options_); }

  /// The same for options not (yet) given to a controller, e.g. to list what
  /// a composition can be configured with.
  static OptionList describe(const Options& o) {
    OptionList out;
    out.emplace_back("criterion", concepts::name_of<Criterion>());
    out.emplace_back("schedule", concepts::name_of<Schedule>());
    out.emplace_back("stop", concepts::name_of<StopRule>());
    append(out, "controller.", frost::describe(o.controller()));
    append(out, "criterion.", frost::describe(o.criterion()));
    append(out, "schedule.", frost::describe(o.schedule()));
    append(out, "stop.", frost::describe(o.stop()));
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
    detail::fail("unknown option '", key,
                 "'; options start with controller., criterion., schedule. or stop.");
  }

  // --- checkpointing ----------------------------------------------------------

  /// The controller's own resumable state (the criterion's and stop rule's
  /// internals are theirs to save; see frost/checkpoint.hpp).
  struct State {
    std::int64_t step = 0;
    std::vector<char> frozen;
    bool stopped = false;
    Timeline timeline;
  };
  State state_snapshot() const { return State{step_, frozen_, stopped_, timeline_}; }
  /// Restores a snapshot taken from a controller over the same blocks: blocks
  /// frozen then are frozen again now (parameters, gradients, optimizer state).
  void restore(const State& s) {
    detail::require(s.frozen.size() == blocks_.size(), "restore: the snapshot has ", s.frozen.size(),
                    " blocks, this controller ", blocks_.size(),
                    "; resume with the same model and block map");
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      if (s.frozen[i] && !frozen_[i]) freeze_params(i);
    step_ = s.step;
    stopped_ = s.stopped;
    timeline_ = s.timeline;
    phase_ = Phase::idle;
  }

 private:
  enum class Phase { idle, stepping, backward_done };

  static void append(OptionList& out, const std::string& prefix, const OptionList& in) {
    for (const auto& kv : in) out.emplace_back(prefix + kv.first, kv.second);
  }

  StepState state() const {
    StepState s;
    s.step = step_;
    const auto spe = options_.controller().steps_per_epoch();
    s.epoch = spe > 0 ? step_ / spe : 0;
    s.epoch_end = spe > 0 && (step_ + 1) % spe == 0;
    s.frozen = &frozen_;
    return s;
  }

  StopState stop_state(const StepState& s) const {
    StopState st;
    st.step = s.step;
    st.epoch = s.epoch;
    st.epoch_end = s.epoch_end;
    st.num_blocks = static_cast<std::int64_t>(blocks_.size());
    st.num_frozen = num_frozen();
    st.frozen_prefix = frozen_prefix();
    return st;
  }

  void check_stop(const StepState& s) {
    if (stopped_) return;
    if (stop_.should_stop(stop_state(s))) {
      stopped_ = true;
      Event e;
      e.step = s.step;
      e.kind = EventKind::stop;
      e.policy = stop_policy_;
      e.statistic = static_cast<double>(num_frozen());
      e.detail = std::to_string(num_frozen()) + " of " + std::to_string(blocks_.size()) +
                 " blocks frozen";
      timeline_.push_back(std::move(e));
    }
  }

  void apply(const Decisions& d, const std::string& policy) {
    if (d.items().empty()) return;  // the common case: nothing to do, nothing to copy
    std::vector<Decisions::Item> items = d.items();
    // In-order mode may accept a prefix requested in one batch in any order.
    std::stable_sort(items.begin(), items.end(),
                     [](const auto& a, const auto& b) { return a.block < b.block; });
    for (const auto& it : items) {
      detail::require(it.block >= 0 && static_cast<std::size_t>(it.block) < blocks_.size(),
                      "criterion ", policy, " named block ", it.block, " but there are ",
                      blocks_.size(), " blocks");
      const auto b = static_cast<std::size_t>(it.block);
      if (!it.freeze) {
        record(EventKind::warning, b, policy, it.statistic, it.detail);
        continue;
      }
      if (frozen_[b]) continue;
      // Never freeze on a non-finite statistic: a policy that asks anyway is
      // overruled and the request recorded.
      if (!std::isfinite(it.statistic)) {
        record(EventKind::warning, b, policy, it.statistic,
               "freeze refused: the statistic is not finite" +
                   (it.detail.empty() ? std::string() : " (" + it.detail + ")"));
        continue;
      }
      if (options_.controller().in_order() && static_cast<std::int64_t>(b) > frozen_prefix()) {
        record(EventKind::warning, b, policy, it.statistic,
               "freeze refused (in_order): block " + std::to_string(frozen_prefix()) +
                   " before it still trains");
        continue;
      }
      freeze_block(b, policy, it.statistic, it.detail);
    }
  }

  void record(EventKind kind, std::size_t b, const std::string& policy, double stat,
              std::string detail) {
    Event e;
    e.step = step_;
    e.block = static_cast<std::int64_t>(b);
    e.block_name = blocks_[b].name;
    e.kind = kind;
    e.policy = policy;
    e.statistic = stat;
    e.detail = std::move(detail);
    timeline_.push_back(std::move(e));
  }

  void freeze_block(std::size_t b, const std::string& policy, double stat, std::string detail) {
    freeze_params(b);
    record(EventKind::freeze, b, policy, stat, std::move(detail));
    concepts::notify_frozen(criterion_, static_cast<std::int64_t>(b));
  }

  void freeze_params(std::size_t b) {
    for (auto& p : blocks_[b].params) {
      p.requires_grad_(false);
      if (p.grad().defined()) p.mutable_grad() = at::Tensor();
      detail::drop_state(*optimizer_, p);
    }
    optimizer_->param_groups()[block_group_[b]].options().set_lr(0.0);
    if (options_.controller().eval_frozen())
      for (auto& m : blocks_[b].modules) m->eval();
    frozen_[b] = 1;
  }

  void apply_eval_mode() {
    for (std::size_t b = 0; b < blocks_.size(); ++b)
      if (frozen_[b])
        for (auto& m : blocks_[b].modules) m->eval();
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
  }

  void validate_blocks(const torch::nn::Module& model) const {
    detail::require(!blocks_.empty(),
                    "the block map is empty; build it with frost::BlockMap::detect(model) or "
                    "from_prefixes/from_children");
    std::unordered_map<const void*, std::string> names;
    for (const auto& item : model.named_parameters(true))
      names[item.value().unsafeGetTensorImpl()] = item.key();
    for (const auto& b : blocks_)
      for (std::size_t i = 0; i < b.params.size(); ++i)
        detail::require(names.count(b.params[i].unsafeGetTensorImpl()) != 0, "parameter '",
                        b.param_names[i], "' of block '", b.name,
                        "' is not a parameter of the model given to the controller; build the "
                        "block map from the same model");
  }

  void map_groups() {
    auto& groups = optimizer_->param_groups();
    std::unordered_map<const void*, std::size_t> group_of;
    for (std::size_t g = 0; g < groups.size(); ++g)
      for (const auto& p : groups[g].params()) group_of[p.unsafeGetTensorImpl()] = g;
    group_block_.assign(groups.size(), kHead);
    block_group_.assign(blocks_.size(), 0);
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      const auto& blk = blocks_[b];
      std::size_t group = 0;
      for (std::size_t i = 0; i < blk.params.size(); ++i) {
        auto it = group_of.find(blk.params[i].unsafeGetTensorImpl());
        detail::require(it != group_of.end(), "parameter '", blk.param_names[i], "' of block '",
                        blk.name,
                        "' is not in the optimizer; build the optimizer with "
                        "frost::param_groups(blocks, model) so every block has its own group");
        if (i == 0) group = it->second;
        detail::require(it->second == group, "block '", blk.name,
                        "' is spread over several optimizer param groups (parameter '",
                        blk.param_names[i], "'); give each block exactly one group, e.g. with "
                        "frost::param_groups(blocks, model)");
      }
      detail::require(groups[group].params().size() == blk.params.size(), "optimizer param group ",
                      group, " holds block '", blk.name, "' and ",
                      groups[group].params().size() - blk.params.size(),
                      " other parameters; each block needs a group of its own so its learning "
                      "rate can change alone: build the optimizer with frost::param_groups(blocks, "
                      "model)");
      group_block_[group] = static_cast<std::int64_t>(b);
      block_group_[b] = group;
    }
    base_lr_.resize(groups.size());
    for (std::size_t g = 0; g < groups.size(); ++g) {
      // A group added without options uses the optimizer's defaults.
      base_lr_[g] = groups[g].has_options() ? groups[g].options().get_lr()
                                            : optimizer_->defaults().get_lr();
    }
  }

  torch::optim::Optimizer* optimizer_;
  BlockMap blocks_;
  Options options_;
  Criterion criterion_;
  Schedule schedule_;
  StopRule stop_;
  std::vector<char> frozen_;
  std::vector<std::int64_t> group_block_;  // per param group: its block, or kHead
  std::vector<std::size_t> block_group_;   // per block: its param group
  std::vector<double> base_lr_;            // per param group, as the user configured it
  Decisions decisions_;
  // Timeline labels, built once (not on every step).
  std::string criterion_policy_ = "criterion:" + concepts::name_of<Criterion>();
  std::string schedule_policy_ = "schedule:" + concepts::name_of<Schedule>();
  std::string stop_policy_ = "stop:" + concepts::name_of<StopRule>();
  Timeline timeline_;
  std::int64_t step_ = 0;
  bool stopped_ = false;
  Phase phase_ = Phase::idle;
};

}  // namespace frost
