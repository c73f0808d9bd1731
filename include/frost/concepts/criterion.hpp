#pragma once
// The Criterion concept: decides *when* a block freezes.
//
//   struct MyCriterion {
//     using Options = MyCriterionOptions;                // FROST_REFLECT'ed
//     static constexpr const char* name = "MyCriterion";
//     explicit MyCriterion(const Options&);
//     void setup(const frost::CriterionSetup&);         // validate, allocate device buffers
//     void observe(const frost::StepState&);            // after backward: read .grad() on device
//     void decide(const frost::StepState&, frost::Decisions&);  // after optimizer.step()
//     // optional:
//     void on_frozen(std::int64_t block);               // any block froze (drop its buffers)
//     void on_validation(double loss, const frost::StepState&);
//     void observe_activations(std::int64_t block, const at::Tensor&);  // e.g. class tokens
//     void before_step(const frost::StepState&, frost::Decisions&);  // decisions on a clock,
//   };                                                   // applied before the step's forward
//
// observe() runs every step and must not synchronise with the device: keep
// statistics in device tensors, fused with _foreach_* ops. decide() may read
// the host (through frost::host::read, which counts) only at the criterion's
// own decision points (end of an evaluation window), and should otherwise
// return at once.
#include <ATen/core/Tensor.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/concepts/detect.hpp"

namespace frost {

/// What a criterion is told before the first step.
struct CriterionSetup {
  const BlockMap* blocks = nullptr;  ///< parameters per block (input side first)
  std::int64_t steps_per_epoch = 0;  ///< 0 when the user did not say
  std::int64_t total_steps = 0;      ///< 0 when unknown
};

/// The state of the run at a per-step call.
struct StepState {
  std::int64_t step = 0;                     ///< 0-based index of the current step
  std::int64_t epoch = 0;                    ///< step / steps_per_epoch (0 if unknown)
  bool epoch_end = false;                    ///< this step is the last of an epoch
  const std::vector<char>* frozen = nullptr; ///< per block: 1 once frozen
  bool is_frozen(std::int64_t block) const { return (*frozen)[static_cast<std::size_t>(block)] != 0; }
};

/// Where a criterion writes its decisions. The controller applies them after
/// decide() returns, records each in the timeline, and ignores requests for
/// blocks that are already frozen.
class Decisions {
 public:
  struct Item {
    std::int64_t block;
    double statistic;
    std::string detail;
    bool freeze;  ///< false: a warning only
  };

  /// Freeze `block`; `statistic` is the value that triggered it.
  void freeze(std::int64_t block, double statistic, std::string detail = {}) {
    items_.push_back({block, statistic, std::move(detail), true});
  }
  /// Record a warning (for example a non-finite statistic that was skipped).
  void warn(std::int64_t block, double statistic, std::string detail) {
    items_.push_back({block, statistic, std::move(detail), false});
  }

  const std::vector<Item>& items() const noexcept { return items_; }
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
using criterion_decide = decltype(std::declval<C&>().decide(std::declval<const StepState&>(),
                                                            std::declval<Decisions&>()));
template <class C>
using criterion_setup = decltype(std::declval<C&>().setup(std::declval<const CriterionSetup&>()));
template <class C>
using on_frozen = decltype(std::declval<C&>().on_frozen(std::int64_t{}));
template <class C>
using on_validation = decltype(std::declval<C&>().on_validation(double{}, std::declval<const StepState&>()));
template <class C>
using observe_activations = decltype(std::declval<C&>().observe_activations(
    std::int64_t{}, std::declval<const at::Tensor&>()));
template <class C>
using criterion_before_step = decltype(std::declval<C&>().before_step(
    std::declval<const StepState&>(), std::declval<Decisions&>()));
template <class C>
using policy_options = typename C::Options;
template <class C>
using policy_name = decltype(C::name);
template <class C>
using policy_ctor = decltype(C(std::declval<const typename C::Options&>()));
}  // namespace ops

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
  static_assert(is_detected<ops::criterion_decide, C>,
                "frost: a Criterion needs `void decide(const frost::StepState&, frost::Decisions&)` "
                "(called after optimizer.step())");
  return true;
}

/// Calls `c.on_frozen(block)` when the policy has it.
template <class C>
void notify_frozen(C& c, std::int64_t block) {
  if constexpr (is_detected<ops::on_frozen, C>) c.on_frozen(block);
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
template <class C>
void notify_activations(C& c, std::int64_t block, const at::Tensor& t) {
  if constexpr (is_detected<ops::observe_activations, C>) c.observe_activations(block, t);
}
}  // namespace concepts
}  // namespace frost
