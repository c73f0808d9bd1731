#pragma once
// stop::MaxSteps — a step budget: stop after `steps` completed steps.
#include <cstdint>

#include "frost/concepts/stop_rule.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"

namespace frost::stop {

struct MaxStepsOptions {
  FROST_OPTIONS(
      (std::int64_t, steps, 0));  ///< required: the number of steps to run
};

class MaxSteps {
 public:
  using Options = MaxStepsOptions;
  static constexpr const char* name = "MaxSteps";
  static constexpr bool stateless = true;
  explicit MaxSteps(const Options& o = {}) : o_(o) {
    detail::require(o_.steps() > 0, "stop.steps is ", o_.steps(),
                    "; MaxSteps needs a positive step budget");
  }
  /// True once `steps` steps have completed (whether asked after a step or
  /// after a validation report).
  bool should_stop(const StopState& s) const { return s.steps_done >= o_.steps(); }

 private:
  Options o_;
};

}  // namespace frost::stop
