#pragma once
// criteria::AtSteps — the static-freezing baseline: block `blocks[k]` is frozen
// from step `steps[k]` on (step 0: frozen before training starts, the classic
// "freeze the first k blocks and fine-tune the rest").
//
//   AtStepsOptions().blocks({0, 1, 2}).steps({0, 0, 0})   // freeze blocks 0-2 from the start
//   AtStepsOptions::prefix(3, 0)                           // the same
#include <cstdint>
#include <string>
#include <vector>

#include "frost/concepts/criterion.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"

namespace frost::criteria {

struct AtStepsOptions {
  FROST_OPTIONS(
      (std::vector<std::int64_t>, blocks, {}),  ///< block indices (input side = 0)
      (std::vector<std::int64_t>, steps, {}));  ///< the step each one is frozen from

 public:

  /// The first `k` blocks, frozen from `step` on.
  static AtStepsOptions prefix(std::int64_t k, std::int64_t step = 0) {
    AtStepsOptions o;
    for (std::int64_t i = 0; i < k; ++i) {
      o.blocks_.push_back(i);
      o.steps_.push_back(step);
    }
    return o;
  }
};

class AtSteps {
 public:
  using Options = AtStepsOptions;
  static constexpr const char* name = "AtSteps";
  static constexpr bool stateless = true;
  explicit AtSteps(const Options& o = {}) : o_(o) {}

  void setup(const CriterionSetup& s) {
    const auto n = static_cast<std::int64_t>(s.blocks->size());
    detail::require(o_.blocks().size() == o_.steps().size(), "criterion.blocks has ",
                    o_.blocks().size(), " entries and criterion.steps ", o_.steps().size(),
                    "; give one step per block");
    for (std::size_t k = 0; k < o_.blocks().size(); ++k) {
      detail::require(o_.blocks()[k] >= 0 && o_.blocks()[k] < n, "criterion.blocks names block ",
                      o_.blocks()[k], " but the block map has ", n, " blocks (0..", n - 1, ")");
      detail::require(o_.steps()[k] >= 0, "criterion.steps[", k, "] is ", o_.steps()[k],
                      "; steps count from 0");
    }
  }
  void observe(const StepState&) {}
  bool decision_point(const StepState&) const { return false; }
  void decide(const StepState&, HostValues, Decisions&) {}
  /// Decided before the step, so that a block due at step s is frozen for the
  /// whole of step s (and step 0 means "never trained"). Each freeze is asked
  /// once, at its step: a block the user unfreezes later (gradual unfreezing)
  /// stays unfrozen, and the controller's step after a resume is never before
  /// a freeze it already applied, so no state is needed.
  void before_step(const StepState& s, Decisions& out) {
    for (std::size_t k = 0; k < o_.blocks().size(); ++k)
      if (s.step == o_.steps()[k] && !s.is_frozen(o_.blocks()[k]))
        out.freeze(o_.blocks()[k], static_cast<double>(o_.steps()[k]),
                   "scheduled at step " + std::to_string(o_.steps()[k]));
  }

 private:
  Options o_;
};

}  // namespace frost::criteria
