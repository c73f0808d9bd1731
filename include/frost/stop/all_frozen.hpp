#pragma once
// stop::AllFrozen — DyF's stopping rule: training ends once every block is
// frozen (DyF, Algorithm 1: "until all the blocks are frozen").
#include "frost/concepts/stop_rule.hpp"
#include "frost/options.hpp"

namespace frost::stop {

struct AllFrozenOptions {
  /// Stop only at the end of an epoch (DyF evaluates per epoch), rather than at
  /// the step the last block froze.
  FROST_ARG(bool, at_epoch_end) = false;
};

class AllFrozen {
 public:
  using Options = AllFrozenOptions;
  static constexpr const char* name = "AllFrozen";
  explicit AllFrozen(const Options& o = {}) : o_(o) {}
  bool should_stop(const StopState& s) const {
    return s.num_blocks > 0 && s.num_frozen == s.num_blocks && (!o_.at_epoch_end() || s.epoch_end);
  }

 private:
  Options o_;
};

}  // namespace frost::stop

FROST_REFLECT(frost::stop::AllFrozenOptions, at_epoch_end);
