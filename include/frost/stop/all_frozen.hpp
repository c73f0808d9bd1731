#pragma once
// stop::AllFrozen — DyF's stopping rule: training ends once every block is
// frozen for good (DyF, Algorithm 1: "until all the blocks are frozen"; blocks
// in trial do not count).
//
// DyF's own run then trains one more epoch with only the head (its Table 2):
// extra_epochs(1). With extra_epochs = E > 0, training stops at the E-th epoch
// end after the step at which the last block froze (the epoch in which it
// froze counts when the freeze came before its end, so a freeze at an epoch's
// end is followed by E full epochs); it needs controller.steps_per_epoch.
// A block unfrozen in the meantime cancels the count.
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstdint>
#include <string>

#include "frost/concepts/stop_rule.hpp"
#include "frost/detail/archive.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"
#include "frost/state_fields.hpp"

namespace frost::stop {

struct AllFrozenOptions {
  FROST_OPTIONS(
      /// Stop only at the end of an epoch (DyF evaluates per epoch), rather than at
      /// the step the last block froze.
      (bool, at_epoch_end, false),
      /// Epochs to train on (the head only) once every block is frozen (DyF: 1).
      (std::int64_t, extra_epochs, 0));
};

class AllFrozen {
 public:
  using Options = AllFrozenOptions;
  static constexpr const char* name = "AllFrozen";
  explicit AllFrozen(const Options& o = {}) : o_(o) {
    detail::require(o_.extra_epochs() >= 0, "stop.extra_epochs is ", o_.extra_epochs(),
                    "; give 0 or more epochs to train once every block is frozen (DyF: 1)");
  }

  /// Epoch counts need the epoch length: refused when the controller is
  /// built, not when every block has frozen.
  void setup(const StopSetup& s) const { require_epoch_length(s.steps_per_epoch); }

  bool should_stop(const StopState& s) {
    const bool all = s.num_blocks > 0 && s.num_frozen == s.num_blocks;
    if (!all) {
      frozen_at_ = -1;
      return false;
    }
    if (frozen_at_ < 0) frozen_at_ = s.steps_done;
    if (o_.extra_epochs() == 0) return !o_.at_epoch_end() || s.epoch_end;
    const std::int64_t spe = s.steps_per_epoch;
    require_epoch_length(spe);  // setup() checked it when a controller drives this rule
    const std::int64_t first_end = (frozen_at_ / spe + 1) * spe;
    return s.steps_done >= first_end + (o_.extra_epochs() - 1) * spe;
  }

 private:
  // The state, listed once for save() and load() (frost/state_fields.hpp);
  // before them: their deduced return type must be known where they are used.
  FROST_STATE(frozen_at)

 public:
  void save(torch::serialize::OutputArchive& ar) const { frost::save_fields(ar, state_fields()); }
  void load(torch::serialize::InputArchive& ar) {  // on a fresh copy
    frost::load_fields(ar, state_fields());
    detail::require(frozen_at_ >= -1, "frozen_at is ", frozen_at_);
  }

  /// Completed steps when every block was first seen frozen (-1: not yet).
  std::int64_t frozen_at() const noexcept { return frozen_at_; }

 private:
  void require_epoch_length(std::int64_t steps_per_epoch) const {
    detail::require(steps_per_epoch > 0 || (o_.extra_epochs() == 0 && !o_.at_epoch_end()),
                    "stop.", o_.extra_epochs() > 0 ? "extra_epochs (" : "at_epoch_end (",
                    o_.extra_epochs() > 0 ? std::to_string(o_.extra_epochs()) : "true",
                    ") counts epochs but controller.steps_per_epoch is 0 (unknown); set "
                    "ControllerOptions().steps_per_epoch(...)");
  }

  Options o_;
  std::int64_t frozen_at_ = -1;
};

}  // namespace frost::stop
