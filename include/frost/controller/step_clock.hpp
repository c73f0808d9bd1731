#pragma once
// frost::StepClock: the one clock of a run. It counts completed steps, knows
// where the user's loop is inside a step (the call order before_step ->
// after_backward -> after_step, refused with the fix when broken) and whether
// the stop rule has ended the run. The two views the policies get are read
// off it:
//
//   now()        the step being run (StepState: criteria, between
//                before_step() and after_step());
//   last_done()  the last completed step (StopState: stop rules, after
//                after_step() has advanced the clock).
//
// Saved and loaded with the same contract as the policies (keys "step" and
// "stopped"; where the loop is inside a step is not state: a checkpoint is
// written between steps).
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstdint>
#include <string>
#include <vector>

#include "frost/block_state.hpp"
#include "frost/concepts/criterion.hpp"
#include "frost/concepts/stop_rule.hpp"
#include "frost/error.hpp"

namespace frost {

class StepClock {
 public:
  StepClock() = default;
  explicit StepClock(std::int64_t steps_per_epoch) : steps_per_epoch_(steps_per_epoch) {}

  /// The index of the step being run (= the number of completed steps).
  std::int64_t step() const noexcept { return step_; }
  bool stopped() const noexcept { return stopped_; }
  void stop() noexcept { stopped_ = true; }
  /// Between steps (no before_step() without its after_step()).
  bool idle() const noexcept { return phase_ == Phase::idle; }

  // --- the call order inside a step ----------------------------------------
  // Each call is checked before it does anything and marked once it is done,
  // so a call that throws half-way can be made again.
  /// before_step() may begin a step: the last one ended.
  void check_begin() const {
    if (phase_ != Phase::idle)
      detail::fail(
          "before_step() called twice in one step; call ctl.after_step() after "
          "optimizer.step()");
  }
  void begin() noexcept { phase_ = Phase::stepping; }
  /// after_backward() may read the step's gradients: the step began, once.
  void check_backward() const {
    if (phase_ != Phase::stepping)
      detail::fail("after_backward() called ",
                   phase_ == Phase::idle ? "without before_step(); call ctl.before_step() before "
                                           "the forward pass of every step"
                                         : "twice in one step");
  }
  void backward() noexcept { phase_ = Phase::backward_done; }
  /// after_step(), before anything is decided: refuses a step that did not
  /// begin, or (when `criterion` reads gradients) one without after_backward().
  void check_end(bool reads_gradients, const std::string& criterion) const {
    if (phase_ == Phase::idle)
      detail::fail(
          "after_step() called without before_step(); call ctl.before_step() before the "
          "forward pass of every step");
    if (reads_gradients && phase_ != Phase::backward_done)
      detail::fail("after_step() called without after_backward() in step ", step_, ": criterion ",
                   criterion,
                   " reads the gradients; call ctl.after_backward() between loss.backward() and "
                   "optimizer.step() in every step");
  }
  /// after_step(), once decided: the step is complete.
  void advance() noexcept {
    ++step_;
    phase_ = Phase::idle;
  }
  /// abort_step(): the step is abandoned; the next before_step() runs it again.
  void abandon() noexcept { phase_ = Phase::idle; }

  // --- the policies' views --------------------------------------------------
  /// The step being run.
  StepState now(const std::vector<BlockState>& states) const {
    StepState s;
    s.step = step_;
    s.epoch = steps_per_epoch_ > 0 ? step_ / steps_per_epoch_ : 0;
    s.epoch_end = steps_per_epoch_ > 0 && (step_ + 1) % steps_per_epoch_ == 0;
    s.states = &states;
    return s;
  }

  /// The last completed step (the block counts are the caller's to fill).
  StopState last_done() const {
    StopState st;
    st.steps_done = step_;
    st.step = step_ - 1;
    st.epoch = steps_per_epoch_ > 0 && st.step >= 0 ? st.step / steps_per_epoch_ : 0;
    st.epoch_end = steps_per_epoch_ > 0 && step_ > 0 && step_ % steps_per_epoch_ == 0;
    st.steps_per_epoch = steps_per_epoch_;
    return st;
  }

  // --- checkpoint: keys "step" and "stopped" -------------------------------
  /// A checkpoint (`source`) may be loaded: the run has not begun.
  void check_unstarted(const std::string& source) const {
    detail::require(step_ == 0 && phase_ == Phase::idle, "cannot load ", source,
                    " into a controller that has already stepped (step ", step_,
                    "); load right after building the controller, before the first before_step()");
  }
  void save(torch::serialize::OutputArchive& ar) const {
    ar.write("step", c10::IValue(step_));
    ar.write("stopped", c10::IValue(stopped_));
  }
  /// Reads into this clock (the loop between steps); a frost::Error whose
  /// message continues the checkpoint's name on a corrupt value.
  void load(torch::serialize::InputArchive& ar) {
    c10::IValue step, stopped;
    detail::require(ar.try_read("step", step) && step.isInt(),
                    "is corrupt: its frost state has no valid 'step'");
    detail::require(step.toInt() >= 0, "is corrupt: step ", step.toInt());
    detail::require(ar.try_read("stopped", stopped) && stopped.isBool(),
                    "is corrupt: its frost state has no valid 'stopped'");
    step_ = step.toInt();
    stopped_ = stopped.toBool();
    phase_ = Phase::idle;
  }

 private:
  enum class Phase { idle, stepping, backward_done };

  std::int64_t steps_per_epoch_ = 0;
  std::int64_t step_ = 0;
  bool stopped_ = false;
  Phase phase_ = Phase::idle;
};

}  // namespace frost
