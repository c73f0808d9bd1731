#pragma once
// Options of the controller itself (the policies have their own).
#include <cstdint>

#include "frost/options.hpp"

namespace frost {

struct ControllerOptions {
  /// N: training steps in the whole run, warm-up included. Annealing schedules
  /// (FreezeOut, Cosine) need it; adaptive criteria with a Constant schedule do not.
  FROST_ARG(std::int64_t, total_steps) = 0;
  /// W: linear warm-up steps at the start of the run.
  FROST_ARG(std::int64_t, warmup_steps) = 0;
  /// Steps per epoch; criteria that evaluate "per epoch" need it (0 = unknown).
  FROST_ARG(std::int64_t, steps_per_epoch) = 0;
  /// Put the modules of a frozen (or trial) block in eval mode: dropout off,
  /// batch-norm running statistics no longer updated, as both original
  /// FreezeOut codebases do with frozen layers. Re-applied before every step,
  /// so a `model->train()` in the user's loop does not undo it; a revert or an
  /// unfreeze gives the block back the mode it had when it left training.
  FROST_ARG(bool, eval_frozen) = true;
  /// Refuse a criterion's request to take a block out of training (trial or
  /// freeze) while a block before it is not frozen for good (the request is
  /// recorded as a warning; the criterion may ask again later).
  /// Schedule-driven freezing is in order by construction.
  FROST_ARG(bool, in_order) = false;
  /// Below this share of the model's parameters in the block map, the
  /// controller records a warning in the timeline at step 0 (most of the model
  /// would then train like the head). 0 silences it.
  FROST_ARG(double, min_coverage) = 0.5;
};

}  // namespace frost

FROST_REFLECT(frost::ControllerOptions, total_steps, warmup_steps, steps_per_epoch, eval_frozen,
              in_order, min_coverage);
