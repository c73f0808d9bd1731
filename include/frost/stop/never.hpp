#pragma once
// stop::Never — the user's loop decides when to end.
#include "frost/concepts/stop_rule.hpp"
#include "frost/options.hpp"

namespace frost::stop {

struct NeverOptions {};

class Never {
 public:
  using Options = NeverOptions;
  static constexpr const char* name = "Never";
  static constexpr bool stateless = true;
  explicit Never(const Options& = {}) {}
  bool should_stop(const StopState&) const { return false; }
};

}  // namespace frost::stop

FROST_REFLECT_NONE(frost::stop::NeverOptions);
