#pragma once
// examples/train/study.hpp — what several seeds say: per strategy the mean
// test accuracy, the mean paired difference to full fine-tuning of the same
// seed with its 95 % confidence interval, the measured speed-up with its
// spread, and the strategy's place against the full fine-tuning frontier
// (full fine-tuning at shorter budgets: the accuracy a user gets without
// frost in the same wall time, interpolated). One seed is an anecdote: the
// verdict uses the intervals.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "files.hpp"
#include "report.hpp"
#include "run.hpp"

namespace frost_train {

/// A mean with its two-sided 95 % confidence interval (Student's t); lo and
/// hi are NaN with fewer than two values.
struct Interval {
  double mean = std::numeric_limits<double>::quiet_NaN();
  double lo = std::numeric_limits<double>::quiet_NaN();
  double hi = std::numeric_limits<double>::quiet_NaN();
  int n = 0;
};

/// The 97.5 % quantile of Student's t with `df` degrees of freedom: the
/// textbook table for whole df 1-30 (three decimals, as printed everywhere), and
/// above it the Cornish-Fisher expansion in 1/df around the normal quantile
/// (Abramowitz & Stegun 26.7.5, four terms), which agrees with the exact
/// quantile to 1e-5 from df 30 on (31: 2.0395, 40: 2.0211, 59: 2.0010,
/// 120: 1.9799; infinite df: 1.9600). A coarse step (2.000 for 31-59) would
/// make a 40-seed interval 1 % too narrow.
inline double t_quantile_975(double df) {
  static const double t[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                             2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                             2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  // the expansion is only good from about 30 on; below it, whole df only
  if (!(df >= 1) || (df < 30 && df != std::floor(df))) return std::numeric_limits<double>::quiet_NaN();
  if (df <= 30) return t[static_cast<int>(df) - 1];
  const double z = 1.959963984540054;  // the normal's 97.5 % quantile
  if (std::isinf(df)) return z;
  const double z2 = z * z, v = df;
  const double g1 = (z2 + 1) * z / 4;
  const double g2 = ((5 * z2 + 16) * z2 + 3) * z / 96;
  const double g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384;
  const double g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160;
  return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v);
}

/// Mean and t-interval of the finite values of `xs`.
inline Interval mean_ci(const std::vector<double>& xs) {
  std::vector<double> v;
  for (double x : xs)
    if (std::isfinite(x)) v.push_back(x);
  Interval r;
  r.n = static_cast<int>(v.size());
  if (v.empty()) return r;
  double s = 0;
  for (double x : v) s += x;
  r.mean = s / static_cast<double>(v.size());
  if (v.size() < 2) return r;
  double ss = 0;
  for (double x : v) ss += (x - r.mean) * (x - r.mean);
  const double se = std::sqrt(ss / static_cast<double>(v.size() - 1)) / std::sqrt(static_cast<double>(v.size()));
  const double h = t_quantile_975(r.n - 1) * se;
  r.lo = r.mean - h;
  r.hi = r.mean + h;
  return r;
}

/// One budget of full fine-tuning: its measured time and test accuracy.
struct FrontierPoint {
  double time_s = 0;
  double accuracy = 0;
};

/// The accuracy full fine-tuning reaches in `time_s`: the points sorted by
/// time, each raised to the best accuracy of any shorter budget (a user
/// would take that one), joined by straight lines; flat after the longest
/// budget. NaN below the shortest budget's time (nothing to compare with).
inline double frontier_accuracy(std::vector<FrontierPoint> pts, double time_s) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  pts.erase(std::remove_if(pts.begin(), pts.end(),
                           [](const FrontierPoint& p) {
                             return !std::isfinite(p.time_s) || !std::isfinite(p.accuracy);
                           }),
            pts.end());
  if (pts.empty() || !std::isfinite(time_s)) return nan;
  std::sort(pts.begin(), pts.end(),
            [](const FrontierPoint& a, const FrontierPoint& b) { return a.time_s < b.time_s; });
  for (std::size_t i = 1; i < pts.size(); ++i)
    pts[i].accuracy = std::max(pts[i].accuracy, pts[i - 1].accuracy);
  if (time_s < pts.front().time_s) return nan;
  for (std::size_t i = 1; i < pts.size(); ++i)
    if (time_s <= pts[i].time_s) {
      const auto& a = pts[i - 1];
      const auto& b = pts[i];
      const double f = b.time_s > a.time_s ? (time_s - a.time_s) / (b.time_s - a.time_s) : 1.0;
      return a.accuracy + f * (b.accuracy - a.accuracy);
    }
  return pts.back().accuracy;
}

/// The frontier of one seed's results: "full" and every run marked on_frontier.
inline std::vector<FrontierPoint> frontier_of(const std::vector<RunResult>& rs) {
  std::vector<FrontierPoint> pts;
  for (const auto& r : rs)
    if (r.on_frontier && std::isfinite(r.test_accuracy))
      pts.push_back({run_time_s(r), r.test_accuracy});
  return pts;
}

// --- the frontier at each strategy's own cost ------------------------------
//
// Interpolating between the frontier's budgets (frontier_accuracy) draws a
// straight line between points far apart (3, 4, 6, 8 and 12 epochs), and the
// frontier is curved. So every strategy of a seed gets its own point: full
// fine-tuning with its cosine schedule annealed to the steps that cost what
// the strategy cost, at the step time full measured in the same seed, run
// after the seed's runs (runner.hpp), and the paired difference to it.

/// Full's measured time per step in one seed's results; NaN without full.
inline double full_step_s(const std::vector<RunResult>& rs) {
  const RunResult* full = baseline(rs);
  if (!full || full->steps <= 0 || !(run_time_s(*full) > 0)) return std::numeric_limits<double>::quiet_NaN();
  return run_time_s(*full) / static_cast<double>(full->steps);
}

/// The steps of full fine-tuning that cost `strategy_s` at `step_s` a step:
/// rounded, at least 1 and at most full's budget `full_steps` (a strategy
/// that cost more than full is compared with full: nothing is run beyond
/// the budgets measured). 0 when a time is missing.
inline std::int64_t matched_steps(double strategy_s, double step_s, std::int64_t full_steps) {
  if (!(strategy_s > 0) || !(step_s > 0) || !std::isfinite(strategy_s / step_s)) return 0;
  const auto n = static_cast<std::int64_t>(std::llround(strategy_s / step_s));
  return std::max<std::int64_t>(1, std::min(n, full_steps));
}

/// The name of a matched run of `steps` steps.
inline std::string matched_run_name(std::int64_t steps) { return "full-" + std::to_string(steps) + "st"; }

/// One strategy's matched run: which run it is and whether it must be run.
struct MatchedBudget {
  std::string strategy;    ///< the strategy it is matched to
  std::int64_t steps = 0;  ///< full fine-tuning's steps at its cost
  std::string run;         ///< full, a frontier run with these steps, or full-<N>st
  bool capped = false;     ///< the strategy cost more than full's whole budget
  bool to_run = false;     ///< the first budget that needs full-<N>st (later ones share it)
};

/// Whether a strategy gets a matched run: a completed run that is not full
/// fine-tuning at some budget, not a matched run and not the timing control
/// (full's work again, matched to itself by construction).
inline bool gets_matched_run(const RunResult& r) {
  return r.completed && !r.on_frontier && !r.matched_only && !r.timing_control;
}

/// Every strategy's matched run in one seed's results, in their order: the
/// steps from its measured time and full's step time (matched_steps), and the
/// run that gives them: full when the strategy cost as much or more, a
/// frontier run of exactly those steps, else "full-<N>st", one per distinct
/// N. Empty without a completed full.
inline std::vector<MatchedBudget> plan_matched(const std::vector<RunResult>& rs) {
  std::vector<MatchedBudget> plan;
  const RunResult* full = baseline(rs);
  const double step_s = full_step_s(rs);
  if (!full || !full->completed || !std::isfinite(step_s)) return plan;
  std::vector<std::string> new_runs;
  for (const auto& r : rs) {
    if (!gets_matched_run(r)) continue;
    MatchedBudget m;
    m.strategy = r.strategy;
    m.steps = matched_steps(run_time_s(r), step_s, full->steps);
    if (m.steps == 0) continue;
    m.capped = run_time_s(r) / step_s >= static_cast<double>(full->steps) + 0.5;
    if (m.steps == full->steps) m.run = full->strategy;
    for (const auto& f : rs)
      if (m.run.empty() && f.on_frontier && f.completed && f.steps == m.steps && f.planned_steps == m.steps)
        m.run = f.strategy;
    if (m.run.empty()) {
      m.run = matched_run_name(m.steps);
      m.to_run = std::find(new_runs.begin(), new_runs.end(), m.run) == new_runs.end();
      if (m.to_run) new_runs.push_back(m.run);
    }
    plan.push_back(m);
  }
  return plan;
}

/// The steps of the runs `plan` needs, once each, in order.
inline std::vector<std::int64_t> matched_runs_to_start(const std::vector<MatchedBudget>& plan) {
  std::vector<std::int64_t> steps;
  for (const auto& m : plan)
    if (m.to_run) steps.push_back(m.steps);
  return steps;
}

/// Each strategy's matched_* fields from its matched run in `rs`.
inline void attach_matched(std::vector<RunResult>& rs, const std::vector<MatchedBudget>& plan) {
  for (const auto& m : plan) {
    const RunResult* run = find_strategy(rs, m.run);
    auto it = std::find_if(rs.begin(), rs.end(), [&](const RunResult& r) { return r.strategy == m.strategy; });
    if (!run || it == rs.end()) continue;
    it->matched_run = run->strategy;
    it->matched_steps = run->steps;
    it->matched_s = run_time_s(*run);
    it->matched_accuracy = run->completed ? run->test_accuracy : std::numeric_limits<double>::quiet_NaN();
    it->matched_capped = m.capped;
  }
}

/// How far a matched run's measured time may be from its strategy's.
constexpr double kMatchedTolerance = 0.05;

/// One line per strategy whose matched run did not cost what it cost within
/// kMatchedTolerance (a step's rounding, the machine's noise, or a strategy
/// dearer than full: compared with full), "" when all did.
inline std::string format_matched_check(const std::vector<RunResult>& rs) {
  std::ostringstream os;
  for (const auto& r : rs) {
    const double q = matched_time_ratio(r);
    if (!std::isfinite(q) || std::abs(q - 1.0) <= kMatchedTolerance) continue;
    char b[96];
    std::snprintf(b, sizeof b, "%.3f", q);
    os << "matched frontier: " << r.strategy << "'s matched run " << r.matched_run << " ("
       << r.matched_steps << " steps) took " << b << "x its measured time, outside 1.00x +- "
       << static_cast<int>(kMatchedTolerance * 100) << " %"
       << (r.matched_capped ? " (it cost more than full: compared with full, the longest budget measured)"
                            : "; its difference is at a different cost")
       << "\n";
  }
  return os.str();
}

/// One strategy over the seeds.
struct StrategySummary {
  std::string strategy;
  bool on_frontier = false;      ///< full fine-tuning at some budget
  bool timing_control = false;   ///< full's work again (Strategy::timing_control): no contender
  int seeds = 0;                 ///< seeds that completed it; an interval's n may be fewer
  Interval accuracy;             ///< test accuracy, %
  Interval vs_full;              ///< paired: accuracy - full's of the same seed, points
  Interval vs_frontier;          ///< paired: accuracy - the frontier's at the same measured time
  int below_frontier_range = 0;  ///< seeds faster than the shortest frontier budget (no comparison)
  double speedup = std::numeric_limits<double>::quiet_NaN();  ///< mean of full's time / this one's (measured)
  double speedup_min = std::numeric_limits<double>::quiet_NaN();
  double speedup_max = std::numeric_limits<double>::quiet_NaN();
  double speedup_estimate = std::numeric_limits<double>::quiet_NaN();  ///< mean, from the estimate
  double time_s = std::numeric_limits<double>::quiet_NaN();  ///< mean measured time
  double time_min_s = std::numeric_limits<double>::quiet_NaN(), time_max_s = time_min_s;
  double acc_min = std::numeric_limits<double>::quiet_NaN(), acc_max = acc_min;
  double work_avoided_per_step = 0;  ///< mean
  double steps_not_run = 0;          ///< mean
  double work_avoided = 0;           ///< mean, over the whole budget
  // The frontier at its own cost (plan_matched), paired by seed.
  Interval vs_matched;               ///< accuracy - its matched run's, points
  double matched_s = std::numeric_limits<double>::quiet_NaN();         ///< mean measured time of the matched runs
  double matched_accuracy = std::numeric_limits<double>::quiet_NaN();  ///< their mean test accuracy
  double matched_ratio = std::numeric_limits<double>::quiet_NaN();     ///< mean matched time / own time
  double matched_ratio_min = std::numeric_limits<double>::quiet_NaN(), matched_ratio_max = matched_ratio_min;
  int matched_outside = 0;           ///< seeds whose matched run's time was outside +-kMatchedTolerance
  // Peak memory (RunResult::peak_mem_mib), mean over the seeds, and paired
  // with full's of the same seed: this one's / full's.
  double peak_mem_mib = std::numeric_limits<double>::quiet_NaN();
  double peak_mem_vs_full = std::numeric_limits<double>::quiet_NaN();
};

namespace detail {
inline double mean_of(const std::vector<double>& v) {
  double s = 0;
  int n = 0;
  for (double x : v)
    if (std::isfinite(x)) {
      s += x;
      ++n;
    }
  return n ? s / n : std::numeric_limits<double>::quiet_NaN();
}
inline std::pair<double, double> min_max(const std::vector<double>& v) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double x : v)
    if (std::isfinite(x)) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
  if (lo > hi) return {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
  return {lo, hi};
}
}  // namespace detail

/// Per strategy (in the first seed's order), over the seeds' results.
inline std::vector<StrategySummary> summarize(const std::vector<std::vector<RunResult>>& seeds) {
  std::vector<StrategySummary> out;
  if (seeds.empty()) return out;
  for (const auto& first : seeds.front()) {
    StrategySummary s;
    s.strategy = first.strategy;
    s.on_frontier = first.on_frontier;
    s.timing_control = first.timing_control;
    if (first.matched_only) continue;  // some strategy's matched run: in that strategy's row
    std::vector<double> acc, dfull, dfront, sp, spe, t, wps, snr, wa, dm, mt, ma, mq, mem, memq;
    for (const auto& rs : seeds) {
      const RunResult* r = find_strategy(rs, s.strategy);
      if (!r || !r->completed) continue;
      dm.push_back(vs_matched(*r));
      mq.push_back(matched_time_ratio(*r));
      if (!r->matched_run.empty()) {
        mt.push_back(r->matched_s);
        ma.push_back(r->matched_accuracy);
        if (std::isfinite(mq.back()) && std::abs(mq.back() - 1.0) > kMatchedTolerance) ++s.matched_outside;
      }
      mem.push_back(r->peak_mem_mib);
      ++s.seeds;
      acc.push_back(r->test_accuracy);
      t.push_back(run_time_s(*r));
      wps.push_back(r->work_avoided_per_step);
      snr.push_back(r->steps_not_run);
      wa.push_back(r->work_avoided);
      if (const RunResult* full = baseline(rs)) {
        memq.push_back(full->peak_mem_mib > 0 ? r->peak_mem_mib / full->peak_mem_mib
                                              : std::numeric_limits<double>::quiet_NaN());
        dfull.push_back(r->test_accuracy - full->test_accuracy);
        sp.push_back(speedup_over(*full, *r));
        const double est_a = full->time_est_s, est_b = r->time_est_s;
        spe.push_back(est_a > 0 && est_b > 0 ? est_a / est_b : std::numeric_limits<double>::quiet_NaN());
      }
      const double f = frontier_accuracy(frontier_of(rs), run_time_s(*r));
      if (std::isfinite(f)) dfront.push_back(r->test_accuracy - f);
      else ++s.below_frontier_range;
    }
    s.accuracy = mean_ci(acc);
    s.vs_full = mean_ci(dfull);
    s.vs_frontier = mean_ci(dfront);
    s.speedup = detail::mean_of(sp);
    std::tie(s.speedup_min, s.speedup_max) = detail::min_max(sp);
    s.speedup_estimate = detail::mean_of(spe);
    s.time_s = detail::mean_of(t);
    std::tie(s.time_min_s, s.time_max_s) = detail::min_max(t);
    std::tie(s.acc_min, s.acc_max) = detail::min_max(acc);
    s.work_avoided_per_step = detail::mean_of(wps);
    s.steps_not_run = detail::mean_of(snr);
    s.work_avoided = detail::mean_of(wa);
    s.vs_matched = mean_ci(dm);
    s.matched_s = detail::mean_of(mt);
    s.matched_accuracy = detail::mean_of(ma);
    s.matched_ratio = detail::mean_of(mq);
    std::tie(s.matched_ratio_min, s.matched_ratio_max) = detail::min_max(mq);
    s.peak_mem_mib = detail::mean_of(mem);
    s.peak_mem_vs_full = detail::mean_of(memq);
    out.push_back(s);
  }
  return out;
}

namespace detail {
/// "above", "below" or "on it" by a paired interval; one seed has no interval,
/// so no side either: its difference (0.00 as much as +0.40) says nothing
/// about the next seed.
inline std::string side_of(const Interval& d) {
  if (d.n < 2) return "n/a (one seed, no interval)";
  if (d.lo > 0) return "above";
  if (d.hi < 0) return "below";
  return "on it (interval holds 0)";
}
}  // namespace detail

/// The side of the frontier read off the line between the frontier's budgets
/// (frontier_accuracy: interpolated), or why there is no comparison.
inline std::string interpolated_verdict(const StrategySummary& s) {
  if (s.on_frontier) return "is the frontier";
  const Interval& d = s.vs_frontier;
  if (d.n == 0)
    return s.below_frontier_range > 0 ? "faster than the shortest frontier budget" : "n/a";
  return detail::side_of(d);
}

/// The side of the frontier measured at the strategy's own cost (its
/// matched runs, paired by seed), or why there is none.
inline std::string matched_verdict(const StrategySummary& s) {
  if (s.on_frontier) return "is the frontier";
  if (s.vs_matched.n == 0) return s.timing_control ? "the timing control" : "n/a";
  return detail::side_of(s.vs_matched);
}

/// "above", "below" or "on" the frontier (the interval holds 0), or why
/// there is no comparison: against the matched runs where the strategy has
/// them (the headline), else against the interpolated line.
inline std::string frontier_verdict(const StrategySummary& s) {
  return s.vs_matched.n > 0 ? matched_verdict(s) : interpolated_verdict(s);
}

/// Whether any strategy of the summary has matched runs (the table then
/// compares with them, not with the interpolated line).
inline bool has_matched(const std::vector<StrategySummary>& ss) {
  return std::any_of(ss.begin(), ss.end(), [](const StrategySummary& s) { return s.vs_matched.n > 0; });
}

namespace detail {
inline std::string fmt(const char* f, double v) {
  if (!std::isfinite(v)) return "n/a";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}
/// "+0.12 [-0.10, +0.34]" (the interval only with two or more values), and
/// "(3 of 5 seeds)" when the interval stands on fewer seeds than `seeds`,
/// the ones the strategy completed (a seed without full, or faster than the
/// frontier's shortest budget, has no paired difference): the table's seeds
/// column must not speak for an interval that used fewer.
inline std::string fmt_interval(const Interval& i, int seeds) {
  if (i.n == 0) return "n/a";
  std::string s = fmt("%+.2f", i.mean);
  if (i.n >= 2) s += " [" + fmt("%+.2f", i.lo) + ", " + fmt("%+.2f", i.hi) + "]";
  if (i.n < seeds) s += " (" + std::to_string(i.n) + " of " + std::to_string(seeds) + " seeds)";
  return s;
}
}  // namespace detail

/// "123.4 MiB (0.48x)": a peak and its ratio to full's; "n/a" unmeasured.
inline std::string fmt_memory(const StrategySummary& s) {
  using detail::fmt;
  if (!std::isfinite(s.peak_mem_mib)) return "n/a";
  return fmt("%.1f", s.peak_mem_mib) + (std::isfinite(s.peak_mem_vs_full) ? " (" + fmt("%.2fx", s.peak_mem_vs_full) + ")" : "");
}

/// The table over the seeds (the README's). With matched runs the frontier
/// columns are the paired difference to them and the matched run's time
/// over the strategy's (mean, min-max); without, the interpolated line's.
inline std::string format_study_table(const std::vector<StrategySummary>& ss) {
  using detail::fmt;
  const bool matched = has_matched(ss);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head{"strategy", "seeds", "test acc %", "vs full [95% CI]", "speed-up (min-max)",
                                "estimate", "work avoided/step", "steps not run"};
  if (matched) {
    head.insert(head.end(), {"vs matched [95% CI]", "matched time (min-max)"});
  } else {
    head.push_back("vs frontier [95% CI]");
  }
  head.insert(head.end(), {"peak MiB (vs full)", "frontier"});
  rows.push_back(head);
  for (const auto& s : ss) {
    std::vector<std::string> row{s.strategy, std::to_string(s.seeds), fmt("%.2f", s.accuracy.mean),
                                 detail::fmt_interval(s.vs_full, s.seeds),
                                 fmt("%.2fx", s.speedup) + " (" + fmt("%.2f", s.speedup_min) + "-" +
                                     fmt("%.2f", s.speedup_max) + ")",
                                 fmt("%.2fx", s.speedup_estimate), fmt("%.0f%%", 100 * s.work_avoided_per_step),
                                 fmt("%.0f%%", 100 * s.steps_not_run)};
    if (matched) {
      row.push_back(s.on_frontier || s.vs_matched.n == 0 ? "-" : detail::fmt_interval(s.vs_matched, s.seeds));
      row.push_back(!std::isfinite(s.matched_ratio)
                        ? "-"
                        : fmt("%.2fx", s.matched_ratio) + " (" + fmt("%.2f", s.matched_ratio_min) + "-" +
                              fmt("%.2f", s.matched_ratio_max) + ")" +
                              (s.matched_outside ? " " + std::to_string(s.matched_outside) + " out" : ""));
    } else {
      row.push_back(s.on_frontier ? "-" : detail::fmt_interval(s.vs_frontier, s.seeds));
    }
    row.push_back(fmt_memory(s));
    row.push_back(matched ? matched_verdict(s) : interpolated_verdict(s));
    rows.push_back(row);
  }
  const std::size_t last = rows[0].size() - 1;
  return format_columns(rows, [last](std::size_t i) { return i == 0 || i == last; });
}

/// The verdict: the fastest strategy whose accuracy is not below full's by
/// more than `max_loss` points (mean paired difference), against the target
/// speed-up and the frontier; one line per adaptive strategy's standing.
inline std::string format_verdict(const std::vector<StrategySummary>& ss, int n_seeds,
                                  double target_speedup = 2.0, double max_loss = 0.3) {
  std::ostringstream os;
  const StrategySummary* best = nullptr;
  for (const auto& s : ss) {
    if (s.on_frontier || s.timing_control || s.vs_full.n == 0) continue;
    if (!(s.vs_full.mean >= -max_loss)) continue;
    if (!best || s.speedup > best->speedup) best = &s;
  }
  os << "verdict (" << n_seeds << (n_seeds == 1 ? " seed: differences under about half a point "
                                                   "are noise here; run --study for intervals)"
                                                 : " seeds, paired by seed, 95 % intervals)")
     << ":\n";
  if (!best) {
    os << "  no strategy stays within " << max_loss << " points of full fine-tuning on average\n";
    return os.str();
  }
  os << "  fastest within " << max_loss << " points of full: " << best->strategy << ", "
     << detail::fmt("%.2f", best->speedup) << "x measured (" << detail::fmt("%.2f", best->speedup_min)
     << "-" << detail::fmt("%.2f", best->speedup_max) << "), " << detail::fmt_interval(best->vs_full, best->seeds)
     << " points vs full; vs the frontier "
     << (best->vs_matched.n > 0 ? "at its own cost (matched runs) " + detail::fmt_interval(best->vs_matched, best->seeds)
                                : "(interpolated) " + detail::fmt_interval(best->vs_frontier, best->seeds))
     << ": " << frontier_verdict(*best) << "\n";
  const bool fast = best->speedup >= target_speedup;
  const bool above = frontier_verdict(*best) == "above";
  os << "  target (" << target_speedup << "x, at most " << max_loss
     << " points lost, above the frontier): " << (fast && above ? "met" : "NOT met")
     << (fast ? "" : "; speed-up short of the target") << (above ? "" : "; not shown above the frontier")
     << "\n";
  if (std::isfinite(best->peak_mem_vs_full))
    os << "  memory (its peak at most half of full's): " << (best->peak_mem_vs_full <= 0.5 ? "met" : "NOT met")
       << ", " << detail::fmt("%.1f", best->peak_mem_mib) << " MiB, " << detail::fmt("%.2f", best->peak_mem_vs_full)
       << "x full's\n";
  return os.str();
}

/// The table as CSV (the study's summary.csv). vs_full_seeds and
/// vs_frontier_seeds: the seeds each interval stands on; at the end, so that
/// the columns before them keep their places for older readers. vs_frontier_*
/// and frontier: against the line between the frontier's budgets
/// (interpolated); vs_matched_* and matched_frontier: against the matched
/// runs at each strategy's own cost (the headline, docs/main-job.md), with
/// matched_s_mean, matched_accuracy_mean, matched_time_ratio_* (the matched
/// run's measured time / the strategy's) and matched_outside_5pct (seeds
/// whose ratio was outside 1 +- 0.05); peak_mem_mib_mean and
/// peak_mem_vs_full_mean (this one's peak / full's of the same seed).
inline std::string format_study_csv(const std::vector<StrategySummary>& ss) {
  auto c = [](double v) { return std::isfinite(v) ? csv_number(v) : std::string(""); };
  std::ostringstream os;
  os << "strategy,seeds,test_accuracy_mean,test_accuracy_min,test_accuracy_max,vs_full_mean,"
        "vs_full_lo,vs_full_hi,speedup_mean,speedup_min,speedup_max,speedup_estimate_mean,"
        "measured_s_mean,measured_s_min,measured_s_max,work_avoided_per_step,steps_not_run,"
        "work_avoided,vs_frontier_mean,vs_frontier_lo,vs_frontier_hi,frontier,vs_full_seeds,"
        "vs_frontier_seeds,vs_matched_mean,vs_matched_lo,vs_matched_hi,vs_matched_seeds,"
        "matched_frontier,matched_s_mean,matched_accuracy_mean,matched_time_ratio_mean,"
        "matched_time_ratio_min,matched_time_ratio_max,matched_outside_5pct,peak_mem_mib_mean,"
        "peak_mem_vs_full_mean\n";
  for (const auto& s : ss)
    os << s.strategy << ',' << s.seeds << ',' << c(s.accuracy.mean) << ',' << c(s.acc_min) << ','
       << c(s.acc_max) << ',' << c(s.vs_full.mean) << ',' << c(s.vs_full.lo) << ','
       << c(s.vs_full.hi) << ',' << c(s.speedup) << ',' << c(s.speedup_min) << ','
       << c(s.speedup_max) << ',' << c(s.speedup_estimate) << ',' << c(s.time_s) << ','
       << c(s.time_min_s) << ',' << c(s.time_max_s) << ',' << c(s.work_avoided_per_step) << ','
       << c(s.steps_not_run) << ',' << c(s.work_avoided) << ',' << c(s.vs_frontier.mean) << ','
       << c(s.vs_frontier.lo) << ',' << c(s.vs_frontier.hi) << ",\"" << interpolated_verdict(s)
       << "\"," << s.vs_full.n << ',' << s.vs_frontier.n << ',' << c(s.vs_matched.mean) << ','
       << c(s.vs_matched.lo) << ',' << c(s.vs_matched.hi) << ',' << s.vs_matched.n << ",\""
       << matched_verdict(s) << "\"," << c(s.matched_s) << ',' << c(s.matched_accuracy) << ','
       << c(s.matched_ratio) << ',' << c(s.matched_ratio_min) << ',' << c(s.matched_ratio_max) << ','
       << s.matched_outside << ',' << c(s.peak_mem_mib) << ',' << c(s.peak_mem_vs_full) << "\n";
  return os.str();
}

}  // namespace frost_train
