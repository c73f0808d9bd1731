#pragma once
// Options of the controller itself (the policies have their own).
#include <cmath>
#include <cstdint>
#include <string>

#include "frost/error.hpp"
#include "frost/options.hpp"

namespace frost {

/// How a change of every param group's rate is read when it fits both a
/// rescale and a new rate (frost/controller/lr_book.hpp): every group had the
/// same rate before and has the same rate after, while the schedule's
/// multiplier is one value other than 1 (warm-up, Cosine mid-run).
///   detect: refuse it (a frost::Error naming both readings); every other
///           change is read the one way it fits.
///   factor: a rescale, as a torch::optim scheduler does: every base x factor.
///   rate:   a new rate: every base = the rate set.
enum class LrChanges { detect, factor, rate };
inline const char* to_string(LrChanges c) {
  switch (c) {
    case LrChanges::detect: return "detect";
    case LrChanges::factor: return "factor";
    case LrChanges::rate: return "rate";
  }
  return "?";
}
inline bool from_string(const std::string& s, LrChanges& c) {
  if (s == "detect") return (c = LrChanges::detect), true;
  if (s == "factor") return (c = LrChanges::factor), true;
  if (s == "rate") return (c = LrChanges::rate), true;
  return false;
}

struct ControllerOptions {
  FROST_OPTIONS(
      /// N: training steps in the whole run, warm-up included. Annealing schedules
      /// (FreezeOut, Cosine) need it; adaptive criteria with a Constant schedule do not.
      (std::int64_t, total_steps, 0),
      /// W: linear warm-up steps at the start of the run.
      (std::int64_t, warmup_steps, 0),
      /// Steps per epoch; criteria that evaluate "per epoch" need it (0 = unknown).
      (std::int64_t, steps_per_epoch, 0),
      /// Put the modules of a frozen (or trial) block in eval mode: dropout off,
      /// batch-norm running statistics no longer updated, as both original
      /// FreezeOut codebases do with frozen layers. Re-applied before every step,
      /// so a `model->train()` in the user's loop does not undo it; a revert or an
      /// unfreeze gives the block back the mode it had when it left training.
      (bool, eval_frozen, true),
      /// Refuse a criterion's request to take a block out of training (trial or
      /// freeze) while a block before it is not frozen for good (the request is
      /// recorded as a warning; the criterion may ask again later).
      /// Schedule-driven freezing is in order by construction.
      (bool, in_order, false),
      /// Below this share of the model's parameters in the block map, the
      /// controller records a warning in the timeline at step 0 (most of the model
      /// would then train like the head). 0 silences it.
      (double, min_coverage, 0.5),
      /// A change of the learning rate of only some param groups between steps
      /// (e.g. `optimizer.param_groups().front()` with frost's one group per
      /// block) is a frost::Error instead of a warning (frost/controller/lr_book.hpp).
      (bool, strict_lr, false),
      /// Resume a checkpoint planned for another run shape (total_steps,
      /// steps_per_epoch, warmup_steps: another data set size, more epochs).
      /// By default that is a frost::Error naming both plans, since the
      /// schedule's timetable and the epochs change; with true it is accepted and
      /// the timeline records a warning saying what changed (frost/checkpoint.hpp).
      (bool, allow_new_run_shape, false),
      /// How to read a change of every group's rate that fits both a rescale and
      /// a new rate (see LrChanges): by default such a change is refused, so the
      /// same code never means two things.
      (LrChanges, lr_changes, LrChanges::detect));

 public:
  /// An epoch loop: `epochs` epochs of `batches_per_epoch` optimizer steps
  /// each (total_steps = epochs x batches_per_epoch, steps_per_epoch =
  /// batches_per_epoch); e.g. `.epochs(10, frost::batches_per_epoch(
  /// dataset.size().value(), batch_size))` for a torch::data loader.
  ControllerOptions& epochs(std::int64_t epochs, std::int64_t batches_per_epoch) {
    detail::require(epochs >= 1 && batches_per_epoch >= 1, "ControllerOptions::epochs(", epochs,
                    ", ", batches_per_epoch,
                    "): give 1 or more epochs of 1 or more batches (optimizer steps)");
    total_steps(epochs * batches_per_epoch);
    return steps_per_epoch(batches_per_epoch);
  }
};

/// The batches a torch::data loader yields per epoch over `dataset_size`
/// examples (`dataset.size().value()`): ceil(size / batch), or floor with
/// DataLoaderOptions().drop_last(true), which drops the short last batch. It
/// is the steps per epoch of a loop with one optimizer step per batch (with
/// gradient accumulation over k batches, the optimizer steps are fewer).
inline std::int64_t batches_per_epoch(std::int64_t dataset_size, std::int64_t batch_size,
                                      bool drop_last = false) {
  detail::require(dataset_size >= 1 && batch_size >= 1, "batches_per_epoch(", dataset_size, ", ",
                  batch_size, "): give a dataset of 1 or more examples and a batch size of 1 "
                  "or more");
  detail::require(!drop_last || dataset_size >= batch_size, "batches_per_epoch(", dataset_size,
                  ", ", batch_size, ", drop_last): fewer examples than one batch, so the loader "
                  "yields no batch; use a smaller batch or drop_last = false");
  return drop_last ? dataset_size / batch_size : (dataset_size + batch_size - 1) / batch_size;
}

/// Refuses options that cannot describe a run, naming the option and the fix
/// (the controller calls it before anything else).
inline void validate(const ControllerOptions& c) {
  detail::require(c.total_steps() >= 0, "controller.total_steps is ", c.total_steps(),
                  "; give the number of training steps (or 0 when unknown)");
  detail::require(c.warmup_steps() >= 0, "controller.warmup_steps is ", c.warmup_steps(),
                  "; it must be 0 or more");
  detail::require(c.total_steps() == 0 || c.warmup_steps() < c.total_steps(),
                  "controller.warmup_steps (", c.warmup_steps(),
                  ") must be smaller than total_steps (", c.total_steps(), ")");
  detail::require(c.steps_per_epoch() >= 0, "controller.steps_per_epoch is ", c.steps_per_epoch(),
                  "; it must be 0 (unknown) or more");
  detail::require(std::isfinite(c.min_coverage()) && c.min_coverage() >= 0.0 &&
                      c.min_coverage() <= 1.0,
                  "controller.min_coverage is ", c.min_coverage(), "; give a share in [0, 1]");
}

/// The epoch of the controller's next step, from ctl.step() and
/// controller.steps_per_epoch: where a resumed epoch loop starts. (With
/// checkpoints written at the end of an epoch, no step of it is done yet:
/// ctl.step() % steps_per_epoch == 0.)
template <class Controller>
std::int64_t next_epoch(const Controller& ctl) {
  const std::int64_t spe = ctl.options().controller().steps_per_epoch();
  detail::require(spe > 0, "next_epoch: controller.steps_per_epoch is 0 (unknown); set it, e.g. "
                  "with ControllerOptions().epochs(epochs, batches_per_epoch)");
  return ctl.step() / spe;
}

}  // namespace frost
