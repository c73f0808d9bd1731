#pragma once
// examples/train/plan.hpp — the run plan: what one frost-train invocation
// runs, decided from the command line before any rank joins or any data is
// read. The settings (those of the run being resumed with --resume; the
// study's and the comparison's defaults), the strategies chosen by name with
// their --set options, and the runs of every seed: the chosen strategies and
// the frontier's shorter full fine-tuning budgets.
// (Plan, in run.hpp, is one run's step budget; RunPlan is the whole
// invocation's.)
#include <algorithm>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "model.hpp"
#include "strategies.hpp"
#include "study.hpp"

namespace frost_train {

/// --set options for one strategy: (key, value) in command-line order.
using StrategySets = std::vector<std::pair<std::string, std::string>>;

/// What one invocation runs (see the file's comment). It holds the strategies
/// its pointers point to, so it moves but does not copy.
struct RunPlan {
  TrainConfig cfg;                        ///< the settings the runs use
  bool resume = false;                    ///< continuing cfg.out_dir (--resume)
  std::vector<Strategy> all;              ///< every strategy compiled in
  std::vector<const Strategy*> chosen;    ///< the user's, in command-line order
  std::vector<StrategySets> sets;         ///< --set, per chosen strategy
  std::vector<Strategy> frontier;         ///< full-<E>ep, one per --frontier budget
  std::vector<const Strategy*> runs;      ///< the runs of every seed
  std::vector<StrategySets> run_sets;     ///< --set, per run

  RunPlan() = default;
  RunPlan(RunPlan&&) = default;
  RunPlan& operator=(RunPlan&&) = default;
  RunPlan(const RunPlan&) = delete;
  RunPlan& operator=(const RunPlan&) = delete;
};

/// --resume DIR: the settings DIR's run was started with (DIR/args.txt), and
/// of `cfg` only what does not change its results.
inline TrainConfig resumed_config(const TrainConfig& cfg) {
  std::ifstream f(join(cfg.resume_dir, "args.txt"));
  if (!f)
    throw UsageError("--resume " + cfg.resume_dir + ": no args.txt there (not a frost-train "
                     "output directory)");
  static const char* const may_repeat[] = {
      "--resume", "--max-steps", "--threads", "--jobs", "--progress", "--no-progress", "--quiet",
      "--rank", "--local-rank", "--world-size", "--master-addr", "--master-port",
      "--dist-timeout"};
  for (const auto& g : cfg.given)
    if (std::find(std::begin(may_repeat), std::end(may_repeat), g) == std::end(may_repeat))
      throw UsageError("--resume " + cfg.resume_dir + " continues the run with the settings it "
                       "was started with (" + join(cfg.resume_dir, "args.txt") + "); " + g +
                       " cannot change them. Start a new run (--out) for other settings");
  std::vector<std::string> args;
  std::string line;
  while (std::getline(f, line)) args.push_back(line);
  TrainConfig again;
  parse_args(args, again);
  again.out_dir = cfg.resume_dir;
  again.max_steps = cfg.max_steps;
  // How the work is spread over the cores may change between sessions: --jobs
  // leaves every result as it was (runner.hpp), and --threads is the user's
  // call for this machine. Given again, they apply (not silently dropped).
  const auto given = [&](const char* o) {
    return std::find(cfg.given.begin(), cfg.given.end(), o) != cfg.given.end();
  };
  if (given("--jobs")) again.jobs = cfg.jobs;
  if (given("--threads")) again.threads = cfg.threads;
  if (cfg.progress != -1) again.progress = cfg.progress;
  return again;
}

/// --study's strategies, seeds and frontier, and the default comparison,
/// where the command line left them out.
inline void apply_defaults(TrainConfig& cfg) {
  const bool default_strategies = cfg.strategies.empty();
  if (cfg.study) {
    if (cfg.strategies.empty()) cfg.strategies = study_comparison();
    auto given = [&](const char* f) {
      return std::find(cfg.given.begin(), cfg.given.end(), f) != cfg.given.end();
    };
    if (!given("--seeds")) cfg.seeds = 5;
    if (!given("--frontier")) cfg.frontier = {3, 4, 6, 8};
  }
  if (cfg.strategies.empty()) {
    cfg.strategies = default_comparison();
    cfg.compare = true;
  }
  // The frontier at each strategy's own cost (--matched-frontier): on for
  // the study and the default comparison, which are read as evidence.
  if (cfg.matched_frontier < 0) cfg.matched_frontier = cfg.study || default_strategies ? 1 : 0;
  if (cfg.strategies.size() > 1) cfg.compare = true;
  // The model family's budget and strategy settings (model.hpp; none for the ViT).
  apply_model_defaults(cfg, default_strategies);
}

/// The strategies named, in order; an unknown name is a UsageError that lists
/// those compiled in.
inline std::vector<const Strategy*> choose_strategies(const std::vector<Strategy>& all,
                                                      const std::vector<std::string>& names) {
  std::vector<const Strategy*> chosen;
  for (const auto& n : names) {
    const Strategy* s = find_strategy(all, n);
    if (!s) {
      std::string list;
      for (const auto& x : all) list += " " + x.name;
      throw UsageError("unknown strategy '" + n + "'; compiled in:" + list);
    }
    chosen.push_back(s);
  }
  return chosen;
}

/// The option keys of `s` (those with a dot: the policies'), for a message.
inline std::string option_keys(const Strategy& s) {
  std::string keys;
  for (const auto& o : s.options())
    if (o.first.find('.') != std::string::npos) keys += " " + o.first;
  return keys;
}

/// --set routing: "name:key=value" for one strategy, "key=value" for those
/// that have the key. A key no chosen strategy has is a UsageError.
inline std::vector<StrategySets> route_sets(const StrategySets& given, const std::vector<Strategy>& all,
                                            const std::vector<const Strategy*>& chosen) {
  std::vector<StrategySets> sets(chosen.size());
  for (const auto& kv : given) {
    std::string key = kv.first, only;
    const auto colon = key.find(':');
    if (colon != std::string::npos) {
      only = key.substr(0, colon);
      key = key.substr(colon + 1);
      if (!find_strategy(all, only)) throw UsageError("--set " + kv.first + ": no strategy '" + only + "'");
    }
    bool used = false;
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      if (!only.empty() && chosen[i]->name != only) continue;
      if (has_option(*chosen[i], key)) {
        sets[i].emplace_back(key, kv.second);
        used = true;
      } else if (!only.empty() || chosen.size() == 1) {
        throw UsageError("--set " + kv.first + ": strategy " + chosen[i]->name +
                         " has no option '" + key + "'; its options:" + option_keys(*chosen[i]));
      }
    }
    if (!used)
      throw UsageError("--set " + kv.first + ": none of the chosen strategies has option '" + key +
                       "' (see --list)");
  }
  return sets;
}

/// The plan from the command line (after --help, --list and --report): the
/// settings, the strategies and their --set options. The frontier's runs come
/// later (add_frontier), once the run has said what it is.
inline RunPlan make_run_plan(TrainConfig cfg) {
  RunPlan p;
  if (!cfg.resume_dir.empty()) {
    cfg = resumed_config(cfg);
    p.resume = true;
  }
  apply_defaults(cfg);
  p.all = all_strategies();
  p.chosen = choose_strategies(p.all, cfg.strategies);
  p.sets = route_sets(cfg.sets, p.all, p.chosen);
  // a strategy's own refusals (SmartFRZ's predictor file) before any data is read
  for (std::size_t i = 0; i < p.chosen.size(); ++i)
    if (p.chosen[i]->check) p.chosen[i]->check(p.sets[i]);
  p.cfg = std::move(cfg);
  p.runs = p.chosen;
  p.run_sets = p.sets;
  return p;
}

/// The frontier's runs: full fine-tuning at each --frontier budget shorter
/// than --epochs (a longer one is left out, with a line in `log`), right after
/// full, so that the last run of a turn stays the user's last.
inline void add_frontier(RunPlan& p, const std::function<void(const std::string&)>& log) {
  for (const double e : p.cfg.frontier) {
    if (e >= p.cfg.epochs) {
      log("frontier: a budget of " + frontier_strategy(e).name.substr(5) + " is not shorter than "
          "the full budget; left out");
      continue;
    }
    p.frontier.push_back(frontier_strategy(e));
  }
  p.runs = p.chosen;
  p.run_sets = p.sets;
  const auto full = std::find_if(p.chosen.begin(), p.chosen.end(),
                                 [](const Strategy* s) { return s->name == "full"; });
  if (full == p.chosen.end()) return;
  const auto at = static_cast<std::ptrdiff_t>(full - p.chosen.begin()) + 1;
  for (std::size_t i = 0; i < p.frontier.size(); ++i) {
    p.runs.insert(p.runs.begin() + at + static_cast<std::ptrdiff_t>(i), &p.frontier[i]);
    p.run_sets.insert(p.run_sets.begin() + at + static_cast<std::ptrdiff_t>(i), StrategySets());
  }
}

/// "full-<N>st": full fine-tuning for `steps` steps, its cosine schedule
/// annealed to its own end: a strategy's matched run (study.hpp,
/// plan_matched), run after the seed's runs by the runner.
inline Strategy matched_strategy(std::int64_t steps, std::int64_t steps_per_epoch) {
  namespace c = frost::criteria;
  namespace sch = frost::schedules;
  namespace st = frost::stop;
  Strategy s = make_strategy<c::Never, sch::Cosine, st::Never>(
      matched_run_name(steps),
      "full fine-tuning for " + std::to_string(steps) + " steps, annealed to its own end: the "
      "frontier at the cost of the strategies matched to it",
      false, nullptr);
  auto start = s.start;
  // The budget in epochs whose steps (make_plan: rounded) are `steps`.
  const double epochs = static_cast<double>(steps) / static_cast<double>(std::max<std::int64_t>(1, steps_per_epoch));
  s.start = [start, epochs](const RunContext& ctx) {
    RunContext c = ctx;
    c.cfg.epochs = epochs;
    return start(c);
  };
  return s;
}

}  // namespace frost_train
