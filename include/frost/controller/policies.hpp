#pragma once
// frost::Policies<Criterion, Schedule, StopRule, Reducer>: the four policies a
// controller is composed of, as one part. It builds them from their options,
// tells them the run's shape (RunShape), saves and loads them (loading builds
// fresh policies, loads each and swaps them in only when all three fitted),
// and takes numbers to the host through the reducer: a decision point's
// statistics and a validation loss. The controller decides when; the policies
// never see the controller, nor each other.
#include <ATen/ATen.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "frost/checkpoint.hpp"
#include "frost/concepts/criterion.hpp"
#include "frost/concepts/reducer.hpp"
#include "frost/concepts/run_shape.hpp"
#include "frost/concepts/schedule.hpp"
#include "frost/concepts/state_io.hpp"
#include "frost/concepts/stop_rule.hpp"
#include "frost/error.hpp"
#include "frost/host.hpp"

namespace frost {

template <class Criterion, class Schedule, class StopRule, class Reducer>
struct Policies {
  Criterion criterion;
  Schedule schedule;
  StopRule stop;
  Reducer reducer;
  // Timeline labels, built once (not on every step).
  std::string criterion_label = "criterion:" + concepts::name_of<Criterion>();
  std::string schedule_label = "schedule:" + concepts::name_of<Schedule>();
  std::string stop_label = "stop:" + concepts::name_of<StopRule>();

  /// Each policy from its options in `o` (a Composition's Options).
  template <class Options>
  explicit Policies(const Options& o)
      : criterion(o.criterion()), schedule(o.schedule()), stop(o.stop()), reducer(o.reducer()) {}

  /// Tells the schedule, the criterion and the stop rule what the run is.
  void setup(const RunShape& shape) {
    schedule.setup(shape);
    criterion.setup(shape);
    concepts::setup_stop(stop, shape);
  }

  void save(torch::serialize::OutputArchive& f) const {
    concepts::save_state(criterion, f, "criterion");
    concepts::save_state(schedule, f, "schedule");
    concepts::save_state(stop, f, "stop");
  }

  /// Loads what save() wrote into fresh policies built from `o` and set up for
  /// `shape`; they replace these only when all three loaded (a failure is a
  /// frost::Error naming `source` and the policy; nothing changes). The
  /// reducer has no state to load: it stays (a checkpoint of a data-parallel
  /// run resumes on one process and back).
  template <class Options>
  void load(torch::serialize::InputArchive& f, const Options& o, const RunShape& shape,
            const std::string& source) {
    Criterion c(o.criterion());
    Schedule s(o.schedule());
    StopRule st(o.stop());
    detail::load_policy(s, f, "schedule", source, [&] { s.setup(shape); });
    detail::load_policy(c, f, "criterion", source, [&] { c.setup(shape); });
    detail::load_policy(st, f, "stop", source, [&] { concepts::setup_stop(st, shape); });
    criterion = std::move(c);
    schedule = std::move(s);
    stop = std::move(st);
  }

  /// The criterion's statistics at decision point `s`, through the reducer,
  /// on the host (empty when it has none): the one synchronisation of a
  /// decision point.
  std::vector<double> statistics(const StepState& s) {
    at::Tensor t = concepts::statistics_of(criterion, s);
    if (!t.defined()) return {};
    return host::read(concepts::reduce(reducer, t));
  }

  /// A validation loss through the reducer (the mean over the ranks in a
  /// data-parallel run), on the host; as it is with the identity reducer.
  double validation_loss(double loss) {
    if constexpr (concepts::is_identity_reducer<Reducer>())
      return loss;
    else
      return validation_loss(at::full({1}, loss, at::TensorOptions().dtype(at::kDouble)));
  }
  /// The same for a one-element loss still on the device (one host read).
  double validation_loss(const at::Tensor& loss) {
    detail::require(
        loss.defined() && loss.numel() == 1,
        "report_validation: give a one-element loss tensor (got ",
        loss.defined() ? std::to_string(loss.numel()) + " elements" : "an undefined tensor", ")");
    const at::Tensor l = loss.detach().reshape({1}).to(at::kDouble);
    return host::read_scalar(concepts::reduce(reducer, l));
  }

  /// Refuses to train block `b` (`name`) again once the schedule has annealed
  /// its learning rate to 0 for good.
  void check_can_train(std::int64_t step, std::size_t b, const std::string& name) const {
    detail::require(!schedule.frozen(step, static_cast<std::int64_t>(b)), "unfreeze(", name,
                    "): schedule ", concepts::name_of<Schedule>(),
                    " has annealed this block's learning rate to 0 for good at step ", step,
                    ", so it cannot train again; unfreeze works with schedules that keep a rate "
                    "(Constant, Cosine)");
  }
};

}  // namespace frost
