#pragma once
// criteria::Never — full training: no block is ever frozen by a criterion
// (a schedule such as FreezeOut may still freeze blocks on its own clock).
#include "frost/concepts/criterion.hpp"
#include "frost/options.hpp"

namespace frost::criteria {

struct NeverOptions {};

class Never {
 public:
  using Options = NeverOptions;
  static constexpr const char* name = "Never";
  static constexpr bool stateless = true;
  explicit Never(const Options& = {}) {}
  void setup(const CriterionSetup&) {}
  void observe(const StepState&) {}
  bool decision_point(const StepState&) const { return false; }
  void decide(const StepState&, HostValues, Decisions&) {}
};

}  // namespace frost::criteria

FROST_REFLECT_NONE(frost::criteria::NeverOptions);
