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
  /// Put the modules of a frozen block in eval mode (dropout off, batch-norm
  /// statistics frozen). Re-applied before every step, so a `model->train()`
  /// in the user's loop does not undo it.
  FROST_ARG(bool, eval_frozen) = false;
  /// Refuse a criterion's request to freeze a block while a block before it
  /// still trains (the request is recorded as a warning; the criterion may ask
  /// again later). Schedule-driven freezing is in order by construction.
  FROST_ARG(bool, in_order) = false;
};

}  // namespace frost

FROST_REFLECT(frost::ControllerOptions, total_steps, warmup_steps, steps_per_epoch, eval_frozen,
              in_order);
