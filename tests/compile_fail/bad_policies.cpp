// Must NOT compile: a ctest case builds it and passes only if the compiler
// prints frost's own messages naming what each broken policy lacks. This
// proves the concept checks speak to the user, not just that they exist.
#include "frost/concepts/criterion.hpp"
#include "frost/concepts/schedule.hpp"
#include "frost/concepts/stop_rule.hpp"

struct EmptyOptions {};

struct CriterionWithoutObserve {  // forgot observe()
  using Options = EmptyOptions;
  static constexpr const char* name = "CriterionWithoutObserve";
  explicit CriterionWithoutObserve(const Options&) {}
  void setup(const frost::CriterionSetup&) {}
  void decide(const frost::StepState&, frost::Decisions&) {}
};

struct ScheduleWithoutLrScale {  // forgot lr_scale()
  using Options = EmptyOptions;
  static constexpr const char* name = "ScheduleWithoutLrScale";
  explicit ScheduleWithoutLrScale(const Options&) {}
  void setup(const frost::ScheduleSetup&) {}
  bool frozen(std::int64_t, std::int64_t) const { return false; }
};

struct StopWithoutOptions {  // forgot Options
  static constexpr const char* name = "StopWithoutOptions";
  bool should_stop(const frost::StopState&) { return false; }
};

static_assert(frost::concepts::check_criterion<CriterionWithoutObserve>(), "");
static_assert(frost::concepts::check_schedule<ScheduleWithoutLrScale>(), "");
static_assert(frost::concepts::check_stop_rule<StopWithoutOptions>(), "");

int main() {}
