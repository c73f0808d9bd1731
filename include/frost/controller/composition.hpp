#pragma once
// frost::Composition<Criterion, Schedule, StopRule, Reducer>: what a
// controller is made of, by name and by options. FreezeController takes its
// Options, composition(), describe() and set_option() from here:
//
//   Options        the controller's and each policy's options, one struct
//   name()         "criterion=...;schedule=...;stop=..." (stored in
//                  checkpoints and checked on load; the reducer is not part
//                  of it, so a data-parallel run resumes on one process)
//   describe(o)    one `key=value` per option, keys prefixed with the part
//                  they configure ("controller.", "criterion.", ...)
//   set_option(o, "schedule.t0", "0.5")   one option by its dotted key
//   run_change(was, now, o, step)   what resuming a run planned as `was`
//                  under the plan `now` does to the schedule and the epochs
//   resume_plan(was, now, o, step, source)   whether a checkpoint planned
//                  as `was` may resume under `now`: "" (the same plan), a
//                  frost::Error, or the warning the timeline records
// and run_shape(): what the policies are told about the run (RunShape).
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/concepts/criterion.hpp"
#include "frost/concepts/detect.hpp"
#include "frost/concepts/run_shape.hpp"
#include "frost/concepts/schedule.hpp"
#include "frost/controller_options.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"

namespace frost {

/// What every policy is told about a run over `blocks` with options `c`.
inline RunShape run_shape(const BlockMap& blocks, const ControllerOptions& c) {
  RunShape r;
  r.num_blocks = static_cast<std::int64_t>(blocks.size());
  r.blocks = &blocks;
  r.stages = blocks.stages();
  if (std::all_of(r.stages.begin(), r.stages.end(), [](int s) { return s == 0; })) r.stages.clear();
  r.total_steps = c.total_steps();
  r.warmup_steps = c.warmup_steps();
  r.steps_per_epoch = c.steps_per_epoch();
  return r;
}

namespace detail {

/// The first step of a run of `total` steps at which schedule `s` has frozen
/// block `b`, or -1 when it does not within the run. A schedule freezes for
/// good (concepts/schedule.hpp), so the steps it reports frozen are a
/// suffix of the run: a binary search, not a scan.
template <class S>
std::int64_t first_frozen(const S& s, std::int64_t b, std::int64_t total) {
  if (total <= 0 || !s.frozen(total - 1, b)) return -1;
  std::int64_t lo = 0, hi = total - 1;
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (s.frozen(mid, b))
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

/// Up to three of `items` joined by "; ", and how many more there are.
inline std::string first_three(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < 3; ++i) out += (i ? "; " : "") + items[i];
  if (items.size() > 3) out += "; and " + std::to_string(items.size() - 3) + " more";
  return out;
}

/// What schedule S (options `o`) plans differently under `now` than under
/// `was` (both with the blocks): the blocks it freezes at another step, else
/// the multipliers that differ at `step`; empty when nothing differs.
template <class S>
std::vector<std::string> schedule_change(const RunShape& was, const RunShape& now,
                                         const typename S::Options& o, std::int64_t step) {
  S a(o), b(o);
  try {
    a.setup(was);
    b.setup(now);
  } catch (const Error&) {
    return {"it cannot be set up for the checkpoint's plan any more"};
  }
  std::vector<std::string> out;
  const BlockMap& blocks = *now.blocks;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const auto k = static_cast<std::int64_t>(i);
    const std::int64_t x = first_frozen(a, k, was.total_steps),
                       y = first_frozen(b, k, now.total_steps);
    auto at = [](std::int64_t s) {
      return s < 0 ? std::string("never") : "at step " + std::to_string(s);
    };
    if (x != y)
      out.push_back("block '" + blocks[i].name + "' freezes " + at(y) + " (planned: " + at(x) +
                    ")");
  }
  if (!out.empty()) return out;
  for (std::int64_t k = kHead; k < static_cast<std::int64_t>(blocks.size()); ++k) {
    const double x = a.lr_scale(step, k), y = b.lr_scale(step, k);
    if (x == y) continue;
    const std::string who = k == kHead ? std::string("the head")
                                       : "block '" + blocks[static_cast<std::size_t>(k)].name + "'";
    out.push_back("the learning-rate multiplier of " + who + " at step " + std::to_string(step) +
                  " is " + std::to_string(y) + " (planned: " + std::to_string(x) + ")");
  }
  return out;
}

}  // namespace detail

template <class Criterion, class Schedule, class StopRule, class Reducer>
struct Composition {
  /// The whole configuration: the controller's and each policy's options.
  struct Options {
    FROST_OPTIONS(
        (ControllerOptions, controller, {}),
        (typename Criterion::Options, criterion, concepts::default_options<Criterion>()),
        (typename Schedule::Options, schedule, concepts::default_options<Schedule>()),
        (typename StopRule::Options, stop, concepts::default_options<StopRule>()),
        (typename Reducer::Options, reducer, concepts::default_options<Reducer>()));
  };

  static std::string name() {
    return "criterion=" + concepts::name_of<Criterion>() +
           ";schedule=" + concepts::name_of<Schedule>() + ";stop=" + concepts::name_of<StopRule>();
  }

  /// The policies' names, then every option with its part's prefix
  /// ("controller.total_steps", "criterion.threshold", ...).
  static OptionList describe(const Options& o) {
    OptionList out{{"criterion", concepts::name_of<Criterion>()},
                   {"schedule", concepts::name_of<Schedule>()},
                   {"stop", concepts::name_of<StopRule>()},
                   {"reducer", concepts::name_of<Reducer>()}};
    for (auto& kv : frost::describe(o)) out.push_back(std::move(kv));
    return out;
  }

  /// What resuming at `step` a run planned as `was` (a checkpoint's total,
  /// warm-up and epoch length) under the plan `now` (with the blocks) does,
  /// in words: the schedule's plan is recomputed from the new numbers (which
  /// blocks freeze at another step, or which multipliers change), the step
  /// falls in another epoch, and the criterion and the stop rule count the
  /// new epochs.
  static std::string run_change(RunShape was, const RunShape& now, const Options& o,
                                std::int64_t step) {
    was.num_blocks = now.num_blocks;  // the checkpoint records the numbers only
    was.blocks = now.blocks;
    was.stages = now.stages;
    std::string out = "schedule " + concepts::name_of<Schedule>() + " ";
    const auto changes = detail::schedule_change<Schedule>(was, now, o.schedule(), step);
    out += changes.empty() ? "plans the same" : "is recomputed: " + detail::first_three(changes);
    if (was.steps_per_epoch != now.steps_per_epoch) {
      auto epoch = [step](std::int64_t spe) {
        return spe > 0 ? std::to_string(step / spe) : std::string("unknown");
      };
      out += "; step " + std::to_string(step) + " falls in epoch " + epoch(now.steps_per_epoch) +
             " (planned: " + epoch(was.steps_per_epoch) +
             "), and the criterion and the stop rule count epochs of the new length";
    }
    return out;
  }

  /// A checkpoint (`source`, resumed at `step`) planned as `was` against
  /// this run's plan `now`: the same plan (or a checkpoint that predates run
  /// shapes) gives "". Another one is refused, saying what it would do to
  /// the schedule and the epochs, unless controller.allow_new_run_shape:
  /// then the returned text is the timeline's warning.
  static std::string resume_plan(const std::optional<RunShape>& was, const RunShape& now,
                                 const Options& o, std::int64_t step, const std::string& source) {
    if (!was || same_plan(*was, now)) return {};
    const std::string change = run_change(*was, now, o, step);
    detail::require(o.controller().allow_new_run_shape(), source,
                    " was planned for another run: ", plan_of(*was),
                    "; this controller is set for ", plan_of(now), ". Resuming at step ", step,
                    " would change the plan: ", change,
                    ". Resume with the first run's controller options (the same epochs and batches "
                    "per epoch), or set controller.allow_new_run_shape(true) to accept the new "
                    "plan; nothing was loaded");
    return "resumed " + source + " with a new run shape, " + plan_of(now) + " instead of " +
           plan_of(*was) + ": " + change;
  }

  /// Sets "part.option" (controller., criterion., schedule., stop. or
  /// reducer.), naming the part in its errors.
  static void set_option(Options& o, const std::string& key, const std::string& value) {
    const auto dot = key.find('.');
    const std::string part = key.substr(0, dot);
    const std::string rest = dot == std::string::npos ? "" : key.substr(dot + 1);
    bool found = false;
    std::string parts;
    boost::hana::for_each(boost::hana::accessors<Options>(), [&](auto pair) {
      const std::string name = boost::hana::to<char const*>(boost::hana::first(pair));
      parts += (parts.empty() ? "" : ", ") + name + ".";
      if (name != part) return;
      frost::set_option(boost::hana::second(pair)(o), rest, value, name + ".");
      found = true;
    });
    if (!found) detail::fail("unknown option '", key, "'; options start with ", parts);
  }
};

}  // namespace frost
