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
// Saved and loaded with the same contract as the policies, its state listed
// once (FROST_STATE: keys "step" and "stopped"; where the loop is inside a
// step is not state: a checkpoint is written between steps).
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstdint>
#include <string>
#include <vector>

#include "frost/block_state.hpp"
#include "frost/concepts/criterion.hpp"
#include "frost/concepts/stop_rule.hpp"
#include "frost/error.hpp"
#include "frost/state_fields.hpp"
#include "frost/timeline.hpp"

namespace frost {

class StepClock {
  FROST_STATE(step, stopped)  // the checkpoint's keys "step" and "stopped" (before save/load)

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

  /// Why a loaded run is over ("" when it is not): its stop rule (named
  /// `stop_rule`) had ended it, and the checkpoint `source` was written at an
  /// epoch's end (or in a run without epochs), where the first run's loop
  /// stopped too. One written after the stop inside an epoch trains on to the
  /// epoch's end, as the first run did (the README's epoch loop honours the
  /// stop there). `timeline` holds the stop event (the last step run).
  std::string finished(const Timeline& timeline, const std::string& stop_rule,
                       const std::string& source) const {
    if (!stopped_ || (steps_per_epoch_ > 0 && step_ % steps_per_epoch_ != 0)) return {};
    std::int64_t ended = step_;
    for (const auto& e : timeline)
      if (e.kind == EventKind::stop) ended = e.step + 1;
    return source + " is the checkpoint of a finished run: stop rule " + stop_rule +
           " ended it after " + std::to_string(ended) + " steps" +
           (ended == step_ ? std::string()
                           : " (saved at step " + std::to_string(step_) + ", the end of that epoch)") +
           ", so a step now would train past its end. Check ctl.should_stop() after loading (it "
           "is true) and leave the training loop out, as the README's resume does; to train "
           "further, start a new run from the model's weights";
  }

  // --- checkpoint: keys "step" and "stopped" -------------------------------
  /// A checkpoint (`source`) may be loaded: the run has not begun.
  void check_unstarted(const std::string& source) const {
    detail::require(step_ == 0 && phase_ == Phase::idle, "cannot load ", source,
                    " into a controller that has already stepped (step ", step_,
                    "); load right after building the controller, before the first before_step()");
  }
  void save(torch::serialize::OutputArchive& ar) const { save_fields(ar, state_fields()); }
  /// Reads into this clock (the loop between steps); on a missing or
  /// impossible value a frost::Error saying which, and the clock unchanged.
  void load(torch::serialize::InputArchive& ar) {
    StepClock c = *this;
    load_fields(ar, c.state_fields());
    detail::require(c.step_ >= 0, "step ", c.step_, " is negative");
    c.phase_ = Phase::idle;
    *this = c;
  }

 private:
  enum class Phase { idle, stepping, backward_done };

  std::int64_t steps_per_epoch_ = 0;
  std::int64_t step_ = 0;
  bool stopped_ = false;
  Phase phase_ = Phase::idle;
};

}  // namespace frost
