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
// and run_shape(): what the policies are told about the run (RunShape).
#include <algorithm>
#include <cstdint>
#include <string>

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

template <class Criterion, class Schedule, class StopRule, class Reducer>
struct Composition {
  /// The whole configuration: the controller's and each policy's options.
  struct Options {
    FROST_ARG(ControllerOptions, controller) = {};
    FROST_ARG(typename Criterion::Options, criterion) = concepts::default_options<Criterion>();
    FROST_ARG(typename Schedule::Options, schedule) = concepts::default_options<Schedule>();
    FROST_ARG(typename StopRule::Options, stop) = concepts::default_options<StopRule>();
    FROST_ARG(typename Reducer::Options, reducer) = concepts::default_options<Reducer>();
  };

  static std::string name() {
    return "criterion=" + concepts::name_of<Criterion>() +
           ";schedule=" + concepts::name_of<Schedule>() + ";stop=" + concepts::name_of<StopRule>();
  }

  static OptionList describe(const Options& o) {
    OptionList out;
    out.emplace_back("criterion", concepts::name_of<Criterion>());
    out.emplace_back("schedule", concepts::name_of<Schedule>());
    out.emplace_back("stop", concepts::name_of<StopRule>());
    out.emplace_back("reducer", concepts::name_of<Reducer>());
    auto append = [&out](const std::string& prefix, const OptionList& in) {
      for (const auto& kv : in) out.emplace_back(prefix + kv.first, kv.second);
    };
    append("controller.", frost::describe(o.controller()));
    append("criterion.", frost::describe(o.criterion()));
    append("schedule.", frost::describe(o.schedule()));
    append("stop.", frost::describe(o.stop()));
    append("reducer.", frost::describe(o.reducer()));
    return out;
  }

  static void set_option(Options& o, const std::string& key, const std::string& value) {
    const auto dot = key.find('.');
    const std::string part = key.substr(0, dot);
    const std::string rest = dot == std::string::npos ? "" : key.substr(dot + 1);
    if (part == "controller") return frost::set_option(o.controller(), rest, value, "controller.");
    if (part == "criterion") return frost::set_option(o.criterion(), rest, value, "criterion.");
    if (part == "schedule") return frost::set_option(o.schedule(), rest, value, "schedule.");
    if (part == "stop") return frost::set_option(o.stop(), rest, value, "stop.");
    if (part == "reducer") return frost::set_option(o.reducer(), rest, value, "reducer.");
    detail::fail("unknown option '", key,
                 "'; options start with controller., criterion., schedule., stop. or reducer.");
  }
};

}  // namespace frost
