#pragma once
// The Criterion concept: decides *when* a block changes state.
//
//   struct MyCriterion {
//     using Options = MyCriterionOptions;                 // FROST_OPTIONS
//     static constexpr const char* name = "MyCriterion";
//     explicit MyCriterion(const Options&);
//     void setup(const frost::CriterionSetup&);          // validate, allocate device buffers
//     void observe(const frost::StepState&);             // after backward: read .grad() on device
//     bool decision_point(const frost::StepState&) const; // host arithmetic: decide this step?
//     void decide(const frost::StepState&, frost::HostValues, frost::Decisions&);
//     // state: both of
//     void save(torch::serialize::OutputArchive&) const;
//     void load(torch::serialize::InputArchive&);
//     // or: static constexpr bool stateless = true;
//     // optional:
//     at::Tensor statistics(const frost::StepState&);    // at a decision point: one device tensor
//     static constexpr bool uses_gradients = true;       // after_backward() is required each step
//     static constexpr bool uses_features = true;        // capability: wants observe_features()
//                                                        // (default: whether it has the hook)
//     void on_state_change(std::int64_t block, frost::BlockState from, frost::BlockState to);
//     void on_validation(double loss, const frost::StepState&);
//     void observe_activations(std::int64_t block, const at::Tensor&);
//     void observe_features(const frost::StepState&, const at::Tensor& features,
//                           const at::Tensor& labels);  // e.g. the class token fed to the head
//     void before_step(const frost::StepState&, frost::Decisions&);  // decisions on a clock,
//                                                        // applied before the step's forward
//     void commit_step(const frost::StepState&);  // the step completed (after optimizer.step(),
//                                                 // before decision_point): take in what this
//                                                 // step's observe*() and before_step() staged
//     void abort_step(const frost::StepState&);   // ctl.abort_step(): drop (or undo) it
//   };
//
// A step can be abandoned at any point after before_step() (an exception from
// the forward, the backward or the optimizer step; a non-finite loss or
// gradient). A criterion that stages each step's observations until
// commit_step() and drops them in abort_step() decides as a run without that
// step would, bit for bit (every criterion of frost does); one without the
// hooks keeps what it observed. commit_step() without abort_step() is refused
// at compile time: an abandoned step's observations would be committed with
// the next step's.
//
// The decision protocol (the controller owns it, so no criterion reads the
// host itself): after optimizer.step(), when decision_point(s) is true, the
// controller calls statistics(s) (device tensor, any shape, no host read; an
// undefined tensor when there is nothing to read), hands it to the reducer
// (identity by default; an all-reduce across ranks in data-parallel runs),
// reads it to the host once through frost::host::read, and calls
// decide(s, values, out) with the flattened values (empty when the criterion
// has no statistics() or returned an undefined tensor). observe() runs every
// step and must not synchronise with the device: keep statistics in device
// tensors, fused with _foreach_* ops.
//
// Optional hooks are found by name: a member with one of these names but
// another signature is a compile error (not silently never called).
//
// Capabilities (uses_gradients, uses_features) are what the caller must do
// for the criterion: call after_backward() every step, compute the features
// for observe_features(). Each is an explicit flag when the criterion declares
// it, else derived from the hooks. The combinators (AnyOf, AllOf) forward every
// hook through one base (criteria/members.hpp) and declare the capabilities of
// their members, so AnyOf<GradientThreshold, GradientNormChange> asks for no
// features. A new optional hook: its detector and caller here, its forwarding
// in criteria::Forwarding; no combinator changes.
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/block_state.hpp"
#include "frost/concepts/detect.hpp"
#include "frost/concepts/run_shape.hpp"
#include "frost/concepts/state.hpp"

namespace frost {

/// The state of the run at a per-step call.
struct StepState {
  std::int64_t step = 0;     ///< 0-based index of the current step
  std::int64_t epoch = 0;    ///< step / steps_per_epoch (0 if unknown)
  bool epoch_end = false;    ///< this step is the last of an epoch
  const std::vector<BlockState>* states = nullptr;  ///< per block, input side first

  BlockState state(std::int64_t block) const {
    return states == nullptr ? BlockState::training : (*states)[static_cast<std::size_t>(block)];
  }
  /// Frozen for good.
  bool is_frozen(std::int64_t block) const { return meaning(state(block)).frozen_for_good; }
  bool in_trial(std::int64_t block) const { return state(block) == BlockState::trial; }
  /// Training (neither in trial nor frozen): the blocks that get gradients.
  bool trains(std::int64_t block) const { return meaning(state(block)).trains; }
};

/// The host values a criterion decides on (what its statistics() returned,
/// reduced across ranks, flattened, as doubles).
using HostValues = c10::ArrayRef<double>;

/// Where a criterion writes its requests. The controller applies them after
/// decide() (or before_step()) returns, in block order, records each in the
/// timeline, and ignores requests that are already satisfied (freezing a frozen
/// block). A request with a non-finite statistic that would take a block out of
/// training is refused and recorded as a warning: a NaN never freezes a block.
class Decisions {
 public:
  /// One request (or, without one, a warning) about a block.
  struct Item {
    std::int64_t block;
    double statistic;
    std::string detail;
    std::optional<Request> request;  ///< what is asked of the block; none: a warning only

    bool is_warning() const noexcept { return !request; }
    /// "freeze", "trial", ..., or "warn".
    const char* what() const noexcept { return request ? to_string(*request) : "warn"; }
  };

  /// Asks `r` of `block` (frost/block_state.hpp's Request; what it does in
  /// each state is controller/lifecycle.hpp's table); `statistic` is the
  /// value that triggered it.
  void ask(Request r, std::int64_t block, double statistic, std::string detail = {}) {
    items_.push_back({block, statistic, std::move(detail), r});
  }
  /// Freeze `block` for good; `statistic` is the value that triggered it.
  void freeze(std::int64_t block, double statistic, std::string detail = {}) {
    ask(Request::freeze, block, statistic, std::move(detail));
  }
  /// Put a training block in trial (no gradient, optimizer state kept).
  void trial(std::int64_t block, double statistic, std::string detail = {}) {
    ask(Request::trial, block, statistic, std::move(detail));
  }
  /// Take a block in trial back to training (its optimizer state intact).
  void revert(std::int64_t block, double statistic, std::string detail = {}) {
    ask(Request::revert, block, statistic, std::move(detail));
  }
  /// Freeze a block in trial for good (its optimizer state released).
  void commit(std::int64_t block, double statistic, std::string detail = {}) {
    ask(Request::commit, block, statistic, std::move(detail));
  }
  /// Record a warning (for example a non-finite statistic that was skipped).
  void warn(std::int64_t block, double statistic, std::string detail) {
    items_.push_back({block, statistic, std::move(detail), std::nullopt});
  }

  const std::vector<Item>& items() const noexcept { return items_; }
  /// The items sorted by block, in their order within a block: the order the
  /// controller applies them in (in_order mode then accepts a prefix that
  /// was requested in one batch in any order).
  std::vector<Item> in_block_order() const {
    std::vector<Item> out = items_;
    std::stable_sort(out.begin(), out.end(),
                     [](const Item& a, const Item& b) { return a.block < b.block; });
    return out;
  }
  bool empty() const noexcept { return items_.empty(); }
  void clear() noexcept { items_.clear(); }
  /// Prefixes the detail of the items from `first` on (used by combinators).
  void tag(std::size_t first, const std::string& who) {
    for (std::size_t i = first; i < items_.size(); ++i) items_[i].detail = who + ": " + items_[i].detail;
  }

 private:
  std::vector<Item> items_;
};

namespace concepts {
namespace ops {
template <class C>
using criterion_observe = decltype(std::declval<C&>().observe(std::declval<const StepState&>()));
template <class C>
using criterion_decision_point =
    decltype(bool{std::declval<const C&>().decision_point(std::declval<const StepState&>())});
template <class C>
using criterion_decide = decltype(std::declval<C&>().decide(
    std::declval<const StepState&>(), std::declval<HostValues>(), std::declval<Decisions&>()));
template <class C>
using criterion_decide_v1 = decltype(std::declval<C&>().decide(std::declval<const StepState&>(),
                                                               std::declval<Decisions&>()));
template <class C>
using criterion_setup = decltype(std::declval<C&>().setup(std::declval<const CriterionSetup&>()));
template <class C>
using criterion_statistics =
    decltype(at::Tensor{std::declval<C&>().statistics(std::declval<const StepState&>())});
template <class C>
using criterion_statistics_name = decltype(&C::statistics);
template <class C>
using on_state_change = decltype(std::declval<C&>().on_state_change(
    std::int64_t{}, std::declval<BlockState>(), std::declval<BlockState>()));
template <class C>
using on_state_change_name = decltype(&C::on_state_change);
template <class C>
using on_frozen_name = decltype(&C::on_frozen);
template <class C>
using on_validation = decltype(std::declval<C&>().on_validation(double{}, std::declval<const StepState&>()));
template <class C>
using on_validation_name = decltype(&C::on_validation);
template <class C>
using observe_activations = decltype(std::declval<C&>().observe_activations(
    std::int64_t{}, std::declval<const at::Tensor&>()));
template <class C>
using observe_activations_name = decltype(&C::observe_activations);
template <class C>
using observe_features = decltype(std::declval<C&>().observe_features(
    std::declval<const StepState&>(), std::declval<const at::Tensor&>(),
    std::declval<const at::Tensor&>()));
template <class C>
using observe_features_name = decltype(&C::observe_features);
template <class C>
using criterion_before_step = decltype(std::declval<C&>().before_step(
    std::declval<const StepState&>(), std::declval<Decisions&>()));
template <class C>
using criterion_before_step_name = decltype(&C::before_step);
template <class C>
using commit_step = decltype(std::declval<C&>().commit_step(std::declval<const StepState&>()));
template <class C>
using commit_step_name = decltype(&C::commit_step);
template <class C>
using abort_step = decltype(std::declval<C&>().abort_step(std::declval<const StepState&>()));
template <class C>
using abort_step_name = decltype(&C::abort_step);
template <class C>
using uses_gradients = decltype(bool{C::uses_gradients});
template <class C>
using uses_features_flag = decltype(bool{C::uses_features});
template <class C>
using policy_options = typename C::Options;
template <class C>
using policy_name = decltype(C::name);
template <class C>
using policy_ctor = decltype(C(std::declval<const typename C::Options&>()));
}  // namespace ops

/// An optional hook is either absent, or callable as documented. A member of
/// that name that cannot be called so is the user's mistake, not an absence.
template <template <class...> class Name, template <class...> class Call, class C>
constexpr bool hook_ok() {
  return !is_detected<Name, C> || is_detected<Call, C>;
}

template <class C>
constexpr bool check_criterion() {
  static_assert(is_detected<ops::policy_options, C>,
                "frost: a Criterion needs a nested `using Options = ...;` (its reflected options)");
  static_assert(is_detected<ops::policy_name, C>,
                "frost: a Criterion needs `static constexpr const char* name = \"...\";`");
  if constexpr (is_detected<ops::policy_options, C>)
    static_assert(is_detected<ops::policy_ctor, C>,
                  "frost: a Criterion needs a constructor `explicit C(const Options&)`");
  static_assert(is_detected<ops::criterion_setup, C>,
                "frost: a Criterion needs `void setup(const frost::CriterionSetup&)`");
  static_assert(is_detected<ops::criterion_observe, C>,
                "frost: a Criterion needs `void observe(const frost::StepState&)` (called after "
                "backward; must not synchronise)");
  static_assert(!is_detected<ops::criterion_decide_v1, C> || is_detected<ops::criterion_decide, C>,
                "frost: a Criterion's decide() now receives the host statistics: write `void "
                "decide(const frost::StepState&, frost::HostValues, frost::Decisions&)` and return "
                "the device statistics from `at::Tensor statistics(const frost::StepState&)`; the "
                "controller reads them (one host read) instead of the criterion");
  static_assert(is_detected<ops::criterion_decide, C>,
                "frost: a Criterion needs `void decide(const frost::StepState&, frost::HostValues, "
                "frost::Decisions&)` (called after optimizer.step() at its decision points)");
  static_assert(is_detected<ops::criterion_decision_point, C>,
                "frost: a Criterion needs `bool decision_point(const frost::StepState&) const` "
                "(host arithmetic: whether this step ends an evaluation window)");
  static_assert(hook_ok<ops::criterion_statistics_name, ops::criterion_statistics, C>(),
                "frost: a Criterion's statistics() must be `at::Tensor statistics(const "
                "frost::StepState&)`");
  static_assert(!is_detected<ops::on_frozen_name, C>,
                "frost: on_frozen(block) was replaced by `void on_state_change(std::int64_t block, "
                "frost::BlockState from, frost::BlockState to)`, called on every state change");
  static_assert(hook_ok<ops::on_state_change_name, ops::on_state_change, C>(),
                "frost: a Criterion's on_state_change must be `void on_state_change(std::int64_t "
                "block, frost::BlockState from, frost::BlockState to)`");
  static_assert(hook_ok<ops::on_validation_name, ops::on_validation, C>(),
                "frost: a Criterion's on_validation must be `void on_validation(double loss, const "
                "frost::StepState&)`");
  static_assert(hook_ok<ops::observe_activations_name, ops::observe_activations, C>(),
                "frost: a Criterion's observe_activations must be `void "
                "observe_activations(std::int64_t block, const at::Tensor&)`");
  static_assert(hook_ok<ops::observe_features_name, ops::observe_features, C>(),
                "frost: a Criterion's observe_features must be `void observe_features(const "
                "frost::StepState&, const at::Tensor& features, const at::Tensor& labels)`");
  static_assert(hook_ok<ops::criterion_before_step_name, ops::criterion_before_step, C>(),
                "frost: a Criterion's before_step must be `void before_step(const frost::StepState&, "
                "frost::Decisions&)`");
  static_assert(hook_ok<ops::commit_step_name, ops::commit_step, C>(),
                "frost: a Criterion's commit_step must be `void commit_step(const frost::StepState&)`");
  static_assert(hook_ok<ops::abort_step_name, ops::abort_step, C>(),
                "frost: a Criterion's abort_step must be `void abort_step(const frost::StepState&)`");
  static_assert(!is_detected<ops::commit_step, C> || is_detected<ops::abort_step, C>,
                "frost: a Criterion with commit_step() needs `void abort_step(const "
                "frost::StepState&)` too, dropping what the step staged: else an abandoned step's "
                "observations are committed with the next step's");
  static_assert(check_state<C>(), "see the message above");
  return true;
}

/// Whether the controller must see after_backward() every step.
template <class C>
constexpr bool uses_gradients() {
  if constexpr (is_detected<ops::uses_gradients, C>)
    return C::uses_gradients;
  else
    return false;
}

/// The criterion's statistics at a decision point (undefined when it has none).
template <class C>
at::Tensor statistics_of(C& c, const StepState& s) {
  if constexpr (is_detected<ops::criterion_statistics, C>)
    return c.statistics(s);
  else
    return at::Tensor();
}
/// Calls `c.on_state_change(block, from, to)` when the policy has it.
template <class C>
void notify_state(C& c, std::int64_t block, BlockState from, BlockState to) {
  if constexpr (is_detected<ops::on_state_change, C>) c.on_state_change(block, from, to);
}
template <class C>
void notify_validation(C& c, double loss, const StepState& s) {
  if constexpr (is_detected<ops::on_validation, C>) c.on_validation(loss, s);
}
/// Calls `c.before_step(state, out)` when the policy has it.
template <class C>
void decide_before_step(C& c, const StepState& s, Decisions& out) {
  if constexpr (is_detected<ops::criterion_before_step, C>) c.before_step(s, out);
}
/// The step completed: `c.commit_step(state)` when the policy has it.
template <class C>
void commit_step(C& c, const StepState& s) {
  if constexpr (is_detected<ops::commit_step, C>) c.commit_step(s);
}
/// The step was abandoned: `c.abort_step(state)` when the policy has it.
template <class C>
void abort_step(C& c, const StepState& s) {
  if constexpr (is_detected<ops::abort_step, C>) c.abort_step(s);
}
template <class C>
void notify_activations(C& c, std::int64_t block, const at::Tensor& t) {
  if constexpr (is_detected<ops::observe_activations, C>) c.observe_activations(block, t);
}
/// Whether the caller should compute features for observe_features(): the
/// criterion's `uses_features` flag, else whether it has the hook.
template <class C>
constexpr bool uses_features() {
  if constexpr (is_detected<ops::uses_features_flag, C>)
    return C::uses_features;
  else
    return is_detected<ops::observe_features, C>;
}
template <class C>
void notify_features(C& c, const StepState& s, const at::Tensor& features,
                     const at::Tensor& labels) {
  if constexpr (is_detected<ops::observe_features, C>) c.observe_features(s, features, labels);
}
}  // namespace concepts
}  // namespace frost
