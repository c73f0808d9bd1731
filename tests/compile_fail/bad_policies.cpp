// Must NOT compile: a ctest case builds it and passes only if the compiler
// prints frost's own messages naming what each broken policy lacks. This
// proves the concept checks speak to the user, not just that they exist.
#include "frost/concepts/criterion.hpp"
#include "frost/concepts/schedule.hpp"
#include "frost/concepts/stop_rule.hpp"
#include "frost/options.hpp"

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

struct CriterionWithWrongHook {  // on_validation without the StepState: never called
  using Options = EmptyOptions;
  static constexpr const char* name = "CriterionWithWrongHook";
  static constexpr bool stateless = true;
  explicit CriterionWithWrongHook(const Options&) {}
  void setup(const frost::CriterionSetup&) {}
  void observe(const frost::StepState&) {}
  bool decision_point(const frost::StepState&) const { return false; }
  void decide(const frost::StepState&, frost::HostValues, frost::Decisions&) {}
  void on_validation(double) {}
};

struct StopWithHiddenState {  // counts, but neither saves nor says it is stateless
  using Options = EmptyOptions;
  static constexpr const char* name = "StopWithHiddenState";
  explicit StopWithHiddenState(const Options&) {}
  bool should_stop(const frost::StopState&) { return ++calls > 10; }
  int calls = 0;
};

struct CriterionWithOnFrozen {  // the milestone-1 hook
  using Options = EmptyOptions;
  static constexpr const char* name = "CriterionWithOnFrozen";
  static constexpr bool stateless = true;
  explicit CriterionWithOnFrozen(const Options&) {}
  void setup(const frost::CriterionSetup&) {}
  void observe(const frost::StepState&) {}
  bool decision_point(const frost::StepState&) const { return false; }
  void decide(const frost::StepState&, frost::HostValues, frost::Decisions&) {}
  void on_frozen(std::int64_t) {}
};

static_assert(frost::concepts::check_criterion<CriterionWithoutObserve>(), "");
static_assert(frost::concepts::check_schedule<ScheduleWithoutLrScale>(), "");
static_assert(frost::concepts::check_stop_rule<StopWithoutOptions>(), "");
static_assert(frost::concepts::check_criterion<CriterionWithWrongHook>(), "");
static_assert(frost::concepts::check_stop_rule<StopWithHiddenState>(), "");
static_assert(frost::concepts::check_criterion<CriterionWithOnFrozen>(), "");

// An option declared but left out of FROST_REFLECT (describe(), set_option()
// and --set would never see it), and one list out of declaration order.
struct ForgottenOptionOptions {
  FROST_ARG(double, threshold) = 1e-3;
  FROST_ARG(std::int64_t, window) = 20;
};
FROST_REFLECT(ForgottenOptionOptions, threshold);
struct ReorderedOptions {
  FROST_ARG(bool, on) = true;
  FROST_ARG(double, rate) = 0.5;
  FROST_ARG(bool, off) = false;
};
FROST_REFLECT(ReorderedOptions, rate, on, off);

int main() {}
