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
    std::vector<double> acc, dfull, dfront, sp, spe, t, wps, snr, wa;
    for (const auto& rs : seeds) {
      const RunResult* r = find_strategy(rs, s.strategy);
      if (!r || !r->completed) continue;
      ++s.seeds;
      acc.push_back(r->test_accuracy);
      t.push_back(run_time_s(*r));
      wps.push_back(r->work_avoided_per_step);
      snr.push_back(r->steps_not_run);
      wa.push_back(r->work_avoided);
      if (const RunResult* full = baseline(rs)) {
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
    out.push_back(s);
  }
  return out;
}

/// "above", "below" or "on" the frontier (the interval holds 0), or why
/// there is no comparison. One seed has no interval, so no side either: its
/// difference (0.00 as much as +0.40) says nothing about the next seed.
inline std::string frontier_verdict(const StrategySummary& s) {
  if (s.on_frontier) return "is the frontier";
  const Interval& d = s.vs_frontier;
  if (d.n == 0)
    return s.below_frontier_range > 0 ? "faster than the shortest frontier budget" : "n/a";
  if (d.n < 2) return "n/a (one seed, no interval)";
  if (d.lo > 0) return "above";
  if (d.hi < 0) return "below";
  return "on it (interval holds 0)";
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

/// The table over the seeds (the README's).
inline std::string format_study_table(const std::vector<StrategySummary>& ss) {
  using detail::fmt;
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"strategy", "seeds", "test acc %", "vs full [95% CI]", "speed-up (min-max)",
                  "estimate", "work avoided/step", "steps not run", "vs frontier [95% CI]",
                  "frontier"});
  for (const auto& s : ss) {
    rows.push_back({s.strategy, std::to_string(s.seeds), fmt("%.2f", s.accuracy.mean),
                    detail::fmt_interval(s.vs_full, s.seeds),
                    fmt("%.2fx", s.speedup) + " (" + fmt("%.2f", s.speedup_min) + "-" +
                        fmt("%.2f", s.speedup_max) + ")",
                    fmt("%.2fx", s.speedup_estimate), fmt("%.0f%%", 100 * s.work_avoided_per_step),
                    fmt("%.0f%%", 100 * s.steps_not_run),
                    s.on_frontier ? "-" : detail::fmt_interval(s.vs_frontier, s.seeds),
                    frontier_verdict(s)});
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
     << " points vs full; vs the frontier " << detail::fmt_interval(best->vs_frontier, best->seeds) << ": "
     << frontier_verdict(*best) << "\n";
  const bool fast = best->speedup >= target_speedup;
  const bool above = frontier_verdict(*best) == "above";
  os << "  target (" << target_speedup << "x, at most " << max_loss
     << " points lost, above the frontier): " << (fast && above ? "met" : "NOT met")
     << (fast ? "" : "; speed-up short of the target") << (above ? "" : "; not shown above the frontier")
     << "\n";
  return os.str();
}

/// The table as CSV (the study's summary.csv). vs_full_seeds and
/// vs_frontier_seeds: the seeds each interval stands on; at the end, so that
/// the columns before them keep their places for older readers.
inline std::string format_study_csv(const std::vector<StrategySummary>& ss) {
  auto c = [](double v) { return std::isfinite(v) ? csv_number(v) : std::string(""); };
  std::ostringstream os;
  os << "strategy,seeds,test_accuracy_mean,test_accuracy_min,test_accuracy_max,vs_full_mean,"
        "vs_full_lo,vs_full_hi,speedup_mean,speedup_min,speedup_max,speedup_estimate_mean,"
        "measured_s_mean,measured_s_min,measured_s_max,work_avoided_per_step,steps_not_run,"
        "work_avoided,vs_frontier_mean,vs_frontier_lo,vs_frontier_hi,frontier,vs_full_seeds,"
        "vs_frontier_seeds\n";
  for (const auto& s : ss)
    os << s.strategy << ',' << s.seeds << ',' << c(s.accuracy.mean) << ',' << c(s.acc_min) << ','
       << c(s.acc_max) << ',' << c(s.vs_full.mean) << ',' << c(s.vs_full.lo) << ','
       << c(s.vs_full.hi) << ',' << c(s.speedup) << ',' << c(s.speedup_min) << ','
       << c(s.speedup_max) << ',' << c(s.speedup_estimate) << ',' << c(s.time_s) << ','
       << c(s.time_min_s) << ',' << c(s.time_max_s) << ',' << c(s.work_avoided_per_step) << ','
       << c(s.steps_not_run) << ',' << c(s.work_avoided) << ',' << c(s.vs_frontier.mean) << ','
       << c(s.vs_frontier.lo) << ',' << c(s.vs_frontier.hi) << ",\"" << frontier_verdict(s)
       << "\"," << s.vs_full.n << ',' << s.vs_frontier.n << "\n";
  return os.str();
}

}  // namespace frost_train
