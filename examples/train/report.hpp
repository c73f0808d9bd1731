#pragma once
// examples/train/report.hpp — the comparison table (terminal and CSV) and the
// validation points behind the time-to-accuracy picture (CSV).
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <iomanip>
#include <string>
#include <utility>
#include <vector>

#include "files.hpp"
#include "run.hpp"

namespace frost_train {

/// "when each block froze": per block its freeze step, '-' when it never froze.
inline std::string freeze_steps_text(const RunResult& r) {
  std::string s;
  for (std::size_t b = 0; b < r.freeze_step.size(); ++b)
    s += (b ? " " : "") + (r.freeze_step[b] < 0 ? std::string("-") : std::to_string(r.freeze_step[b]));
  return s;
}

inline const RunResult* find_strategy(const std::vector<RunResult>& rs, const std::string& name) {
  for (const auto& r : rs)
    if (r.strategy == name) return &r;
  return nullptr;
}

/// The reference for speed-up and accuracy deltas: the "full" run if present.
inline const RunResult* baseline(const std::vector<RunResult>& rs) { return find_strategy(rs, "full"); }

/// The second reference: full fine-tuning stopped early ("full-early-stop") if present.
inline const RunResult* early_stop_baseline(const std::vector<RunResult>& rs) {
  return find_strategy(rs, "full-early-stop");
}

/// The time speed-ups are computed from: the measured wall-clock time of
/// everything the strategy caused (accounting.hpp), the steps' sum when a
/// result has no measured total (constructed results).
inline double run_time_s(const RunResult& r) { return r.measured_s > 0 ? r.measured_s : r.wall_s; }

/// The matched run's measured time / the strategy's (1.00: the same cost;
/// study.hpp, plan_matched); NaN without one.
inline double matched_time_ratio(const RunResult& r) {
  const double t = run_time_s(r);
  return r.matched_run.empty() || !(t > 0) || !(r.matched_s > 0) ? std::numeric_limits<double>::quiet_NaN()
                                                                  : r.matched_s / t;
}

/// Paired: the strategy's test accuracy minus its matched run's; NaN without one.
inline double vs_matched(const RunResult& r) {
  return r.matched_run.empty() ? std::numeric_limits<double>::quiet_NaN() : r.test_accuracy - r.matched_accuracy;
}

/// ref's time / r's time, measured; NaN when either is missing.
inline double speedup_over(const RunResult& ref, const RunResult& r) {
  const double a = run_time_s(ref), b = run_time_s(r);
  return a > 0 && b > 0 ? a / b : std::numeric_limits<double>::quiet_NaN();
}

/// The same from the per-phase estimates (beside the measured one).
inline double estimated_speedup_over(const RunResult& ref, const RunResult& r) {
  return ref.time_est_s > 0 && r.time_est_s > 0 ? ref.time_est_s / r.time_est_s
                                                : std::numeric_limits<double>::quiet_NaN();
}

/// The speed-up's range from the quartiles: {ref.lo / r.hi, ref.hi / r.lo};
/// NaNs when the quartiles were not measured.
inline std::pair<double, double> speedup_range(const RunResult& ref, const RunResult& r) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (!(ref.time_lo_s > 0 && ref.time_hi_s > 0 && r.time_lo_s > 0 && r.time_hi_s > 0)) return {nan, nan};
  return {ref.time_lo_s / r.time_hi_s, ref.time_hi_s / r.time_lo_s};
}

/// The timing control: every run whose strategy declares itself one
/// (Strategy::timing_control: full-repeat, full's work again) must read 1.00x
/// within +-5 %; otherwise the machine was too noisy for the speed-ups to mean
/// anything. Declared, not inferred from "avoided no work": full-early-stop
/// that did not stop avoided no work either, yet it pays for the validation
/// passes its early stopping listens to, so it reads below 1.00x on a quiet
/// machine and would raise a false alarm. A declared control that did not do
/// full's work (another budget, fewer steps, work avoided) is said so, not
/// judged. One line per control, "" when none ran (or no full).
inline std::string format_control(const std::vector<RunResult>& rs, double tolerance = 0.05) {
  const RunResult* base = baseline(rs);
  if (base == nullptr) return {};
  std::ostringstream os;
  for (const auto& r : rs) {
    if (&r == base || !r.timing_control) continue;
    if (r.work_avoided > 1e-12 || r.planned_steps != base->planned_steps || r.steps != base->steps) {
      os << "timing control: " << r.strategy << " did not do full's work (" << r.steps << "/"
         << r.planned_steps << " steps against " << base->steps << "/" << base->planned_steps
         << ", work avoided " << std::fixed << std::setprecision(3) << r.work_avoided
         << "): not judged; run it with full's settings\n";
      continue;
    }
    const double s = speedup_over(*base, r);
    const bool ok = std::isfinite(s) && std::abs(s - 1.0) <= tolerance;
    os << "timing control: " << r.strategy << " does full's work again and reads " << std::fixed
       << std::setprecision(3) << s << "x: "
       << (ok ? "within" : "OUTSIDE") << " 1.00x +- " << std::setprecision(0) << tolerance * 100
       << " %" << (ok ? "" : "; the machine was too noisy for these speed-ups, run again") << "\n";
  }
  return os.str();
}

/// The final validation accuracy: val_accuracy, else the last finite evaluation's.
inline double final_val_accuracy(const RunResult& r) {
  if (std::isfinite(r.val_accuracy)) return r.val_accuracy;
  for (auto it = r.evals.rbegin(); it != r.evals.rend(); ++it)
    if (std::isfinite(it->val_accuracy)) return it->val_accuracy;
  return std::numeric_limits<double>::quiet_NaN();
}

/// Points below full's final validation accuracy that still count as "reached".
constexpr double kTargetMargin = 0.3;

/// The accuracy target: full's final validation accuracy minus kTargetMargin
/// points; NaN without a full run (or its validation accuracy).
inline double accuracy_target(const std::vector<RunResult>& rs) {
  const RunResult* base = baseline(rs);
  return base ? final_val_accuracy(*base) - kTargetMargin : std::numeric_limits<double>::quiet_NaN();
}

/// Fine-tuning time at the first evaluation with val_accuracy >= target; NaN
/// when it never got there (or target is NaN).
inline double time_to_target_s(const RunResult& r, double target) {
  if (!std::isfinite(target)) return std::numeric_limits<double>::quiet_NaN();
  for (const auto& e : r.evals)
    if (std::isfinite(e.val_accuracy) && e.val_accuracy >= target) return e.time_s;
  return std::numeric_limits<double>::quiet_NaN();
}

/// Share of the samples looked up in the activation cache that it served; NaN
/// when the run had no cache or looked nothing up.
inline double cache_hit_rate(const RunResult& r) {
  const std::int64_t n = r.cache_hits + r.cache_misses;
  return r.cached && n > 0 ? static_cast<double>(r.cache_hits) / static_cast<double>(n)
                           : std::numeric_limits<double>::quiet_NaN();
}

/// Rows as aligned columns (two blanks apart), a rule under the header; the
/// columns `left(i)` says are left-aligned, the others right-aligned.
template <class Left>
std::string format_columns(const std::vector<std::vector<std::string>>& rows, Left left) {
  std::vector<std::size_t> w(rows[0].size(), 0);
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
  std::ostringstream os;
  for (std::size_t k = 0; k < rows.size(); ++k) {
    std::string line;
    for (std::size_t i = 0; i < rows[k].size(); ++i) {
      const std::string& c = rows[k][i];
      const std::string pad(w[i] - c.size(), ' ');
      line += (i ? "  " : "") + (left(i) ? c + pad : pad + c);
    }
    line.erase(line.find_last_not_of(' ') + 1);
    os << line << "\n";
    if (k == 0) {
      std::size_t total = 0;
      for (auto x : w) total += x + 2;
      os << std::string(total - 2, '-') << "\n";
    }
  }
  return os.str();
}

inline std::string format_table(const std::vector<RunResult>& rs) {
  const RunResult* base = baseline(rs);
  const RunResult* early = early_stop_baseline(rs);
  const double target = accuracy_target(rs);
  const std::string freeze_header = "froze at step (stem, block 0, 1, ...)";
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"strategy", "test acc %", "vs full", "vs early-stop", "speed-up", "estimate",
                  "work avoided/step", "steps not run", "to full-0.3", "cache hits", "steps",
                  "vs matched (run, time)", "peak MiB", freeze_header});
  auto fmt = [](const char* f, double v) {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return std::string(b);
  };
  auto acc_delta = [&](const RunResult& ref, const RunResult& r) {
    return std::isfinite(ref.test_accuracy) && std::isfinite(r.test_accuracy)
               ? fmt("%+.2f", r.test_accuracy - ref.test_accuracy)
               : std::string("n/a");
  };
  for (const auto& r : rs) {
    std::vector<std::string> row;
    row.push_back(r.strategy);
    row.push_back(std::isfinite(r.test_accuracy) ? fmt("%.2f", r.test_accuracy) : "n/a");
    row.push_back(base && std::isfinite(base->test_accuracy) ? acc_delta(*base, r) : "");
    if (early) {
      const double s = speedup_over(*early, r);
      row.push_back(acc_delta(*early, r) + " / " + (std::isfinite(s) ? fmt("%.2fx", s) : "n/a"));
    } else {
      row.push_back("");
    }
    const double s = base ? speedup_over(*base, r) : std::numeric_limits<double>::quiet_NaN();
    row.push_back(std::isfinite(s) ? fmt("%.2fx", s) : "");
    const double e = base ? estimated_speedup_over(*base, r) : std::numeric_limits<double>::quiet_NaN();
    row.push_back(std::isfinite(e) ? fmt("%.2fx", e) : "");
    row.push_back(fmt("%.0f%%", 100.0 * r.work_avoided_per_step));
    row.push_back(fmt("%.0f%%", 100.0 * r.steps_not_run));
    if (!std::isfinite(target) || r.evals.empty()) {
      row.push_back("");
    } else {
      const double t = time_to_target_s(r, target);
      row.push_back(std::isfinite(t) ? fmt("%.1f s", t) : "never");
    }
    if (r.cached) {
      const double h = cache_hit_rate(r);
      row.push_back(std::isfinite(h) ? fmt("%.0f%%", 100.0 * h) : "n/a");
    } else {
      row.push_back("-");
    }
    row.push_back(std::to_string(r.steps) + "/" + std::to_string(r.planned_steps));
    // the frontier at its own cost: the difference, the matched run and its time / this one's
    const double dm = vs_matched(r);
    row.push_back(r.matched_run.empty() ? (r.matched_only ? "(a matched run)" : "-")
                                        : (std::isfinite(dm) ? fmt("%+.2f", dm) : std::string("n/a")) + " (" +
                                              r.matched_run + ", " + fmt("%.2fx", matched_time_ratio(r)) + ")");
    row.push_back(std::isfinite(r.peak_mem_mib) ? fmt("%.1f", r.peak_mem_mib) : "n/a");
    row.push_back(freeze_steps_text(r));
    rows.push_back(row);
  }
  return format_columns(rows, [&](std::size_t i) {
    return rows[0][i] == "strategy" || rows[0][i] == freeze_header;
  });
}

inline std::string format_csv(const std::vector<RunResult>& rs) {
  const RunResult* base = baseline(rs);
  const RunResult* early = early_stop_baseline(rs);
  const double target = accuracy_target(rs);
  // a number, or an empty cell where it does not apply
  auto cell = [](double v) { return std::isfinite(v) ? csv_number(v) : std::string(""); };
  auto measured = [&](double v) { return v > 0 ? csv_number(v) : std::string(""); };
  std::ostringstream os;
  os << "strategy,composition,seed,epochs,test_accuracy,val_accuracy,measured_s,validation_s,"
        "wall_s,time_est_s,time_lo_s,time_hi_s,speedup,speedup_estimate,speedup_lo,speedup_hi,"
        "speedup_vs_early_stop,work_avoided,work_avoided_per_step,catch_up_share,steps_not_run,"
        "backward_avoided,time_to_target_s,cache_hit_rate,cache_samples,cache_mib,frozen_share,"
        "steps,planned_steps,freeze_steps,peak_mem_mib,peak_mem_kind,timing_control,"
        "matched_run,matched_steps,matched_s,matched_time_ratio,matched_accuracy,vs_matched,"
        "matched_capped,matched_only\n";
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const auto& r : rs) {
    const auto range = base && base != &r ? speedup_range(*base, r) : std::make_pair(nan, nan);
    os << r.strategy << ",\"" << r.composition << "\"," << r.seed << ',' << csv_number(r.epochs)
       << ',' << csv_number(r.test_accuracy) << ',' << csv_number(r.val_accuracy) << ','
       << measured(r.measured_s) << ',' << csv_number(r.validation_s) << ','
       << csv_number(r.wall_s) << ',' << measured(r.time_est_s) << ',' << measured(r.time_lo_s)
       << ',' << measured(r.time_hi_s) << ',' << cell(base ? speedup_over(*base, r) : nan) << ','
       << cell(base ? estimated_speedup_over(*base, r) : nan) << ',' << cell(range.first) << ','
       << cell(range.second) << ',' << cell(early ? speedup_over(*early, r) : nan) << ','
       << csv_number(r.work_avoided) << ',' << csv_number(r.work_avoided_per_step) << ','
       << csv_number(r.catch_up_share) << ',' << csv_number(r.steps_not_run) << ','
       << csv_number(r.backward_avoided) << ','
       << cell(time_to_target_s(r, target)) << ',' << cell(cache_hit_rate(r)) << ','
       << (r.cached ? std::to_string(r.cache_samples) : std::string("")) << ','
       << (r.cached ? csv_number(r.cache_mib) : std::string("")) << ',' << csv_number(r.frozen_share)
       << ',' << r.steps << ',' << r.planned_steps << ",\"" << freeze_steps_text(r) << "\","
       << csv_number(r.peak_mem_mib) << ",\"" << r.peak_mem_kind << "\","
       << (r.timing_control ? 1 : 0) << ',' << r.matched_run << ','
       << (r.matched_run.empty() ? std::string("") : std::to_string(r.matched_steps)) << ','
       << cell(r.matched_run.empty() ? nan : r.matched_s) << ',' << cell(matched_time_ratio(r)) << ','
       << cell(r.matched_run.empty() ? nan : r.matched_accuracy) << ',' << cell(vs_matched(r)) << ','
       << (r.matched_capped ? 1 : 0) << ',' << (r.matched_only ? 1 : 0) << "\n";
  }
  return os.str();
}

/// Every validation point of every run (the data of render_accuracy_svg).
inline std::string format_evals_csv(const std::vector<RunResult>& rs) {
  std::ostringstream os;
  os << "strategy,step,time_s,val_accuracy,val_loss\n";
  for (const auto& r : rs)
    for (const auto& e : r.evals)
      os << r.strategy << ',' << e.step << ',' << csv_number(e.time_s) << ','
         << csv_number(e.val_accuracy) << ',' << csv_number(e.val_loss) << '\n';
  return os.str();
}

/// One line of a CSV file: fields split at commas outside double quotes,
/// the quotes removed.
inline std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (char c : line) {
    if (c == '"') quoted = !quoted;
    else if (c == ',' && !quoted) out.emplace_back();
    else if (c != '\r') out.back() += c;
  }
  return out;
}

/// The runs of a results.csv written by format_csv (what the study's summary
/// needs: strategy, seed, budget, accuracies, times, work), so that seeds run
/// in several processes or on several machines can be summarised together
/// (--report). A missing file or column is a std::runtime_error naming it.
inline std::vector<RunResult> read_results_csv(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("--report: cannot read " + path + " (a frost-train results.csv)");
  std::string line;
  std::getline(f, line);
  const auto head = split_csv_line(line);
  auto find_col = [&](const char* name) {
    for (std::size_t i = 0; i < head.size(); ++i)
      if (head[i] == name) return i;
    return head.size();
  };
  auto col = [&](const char* name) {
    if (const std::size_t i = find_col(name); i < head.size()) return i;
    throw std::runtime_error("--report: " + path + " has no column '" + name +
                             "' (written by an older frost-train?)");
  };
  const std::size_t c_strategy = col("strategy"), c_seed = col("seed"), c_epochs = col("epochs"),
                    c_test = col("test_accuracy"), c_val = col("val_accuracy"),
                    c_measured = col("measured_s"), c_validation = col("validation_s"),
                    c_wall = col("wall_s"), c_est = col("time_est_s"),
                    c_wa = col("work_avoided"), c_wps = col("work_avoided_per_step"),
                    c_snr = col("steps_not_run"), c_steps = col("steps"),
                    c_planned = col("planned_steps");
  const std::size_t c_control = find_col("timing_control");  // absent before the column
  // the matched runs and peak memory (absent in older files: none)
  const std::size_t c_mrun = find_col("matched_run"), c_msteps = find_col("matched_steps"),
                    c_ms = find_col("matched_s"), c_macc = find_col("matched_accuracy"),
                    c_mcap = find_col("matched_capped"), c_monly = find_col("matched_only"),
                    c_mem = find_col("peak_mem_mib"), c_memkind = find_col("peak_mem_kind");
  auto text = [](const std::vector<std::string>& v, std::size_t i) { return i < v.size() ? v[i] : std::string(); };
  auto num = [](const std::string& v) {
    return v.empty() || v == "null" ? std::numeric_limits<double>::quiet_NaN() : std::strtod(v.c_str(), nullptr);
  };
  std::vector<RunResult> rs;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    const auto v = split_csv_line(line);
    if (v.size() != head.size())
      throw std::runtime_error("--report: " + path + ": a line has " + std::to_string(v.size()) +
                               " fields, the header " + std::to_string(head.size()));
    RunResult r;
    r.strategy = v[c_strategy];
    r.seed = std::strtoull(v[c_seed].c_str(), nullptr, 10);
    r.epochs = num(v[c_epochs]);
    r.test_accuracy = num(v[c_test]);
    r.val_accuracy = num(v[c_val]);
    r.measured_s = std::isfinite(num(v[c_measured])) ? num(v[c_measured]) : 0.0;
    r.validation_s = num(v[c_validation]);
    r.wall_s = num(v[c_wall]);
    r.time_est_s = std::isfinite(num(v[c_est])) ? num(v[c_est]) : 0.0;
    r.work_avoided = num(v[c_wa]);
    r.work_avoided_per_step = num(v[c_wps]);
    r.steps_not_run = num(v[c_snr]);
    r.steps = std::strtoll(v[c_steps].c_str(), nullptr, 10);
    r.planned_steps = std::strtoll(v[c_planned].c_str(), nullptr, 10);
    r.completed = std::isfinite(r.test_accuracy);
    // full fine-tuning at some budget: "full" and the frontier's "full-<E>ep"
    const auto& n = r.strategy;
    r.on_frontier = n == "full" || (n.rfind("full-", 0) == 0 && n.size() > 7 &&
                                    n.compare(n.size() - 2, 2, "ep") == 0 &&
                                    (std::isdigit(static_cast<unsigned char>(n[5])) != 0));
    // the control as its strategy declared it; a file from before the
    // column: full-repeat, the only control there was
    r.timing_control = c_control < v.size() ? v[c_control] == "1" : n == "full-repeat";
    r.matched_run = text(v, c_mrun);
    if (!r.matched_run.empty()) {
      r.matched_steps = std::strtoll(text(v, c_msteps).c_str(), nullptr, 10);
      r.matched_s = num(text(v, c_ms));
      r.matched_accuracy = num(text(v, c_macc));
      r.matched_capped = text(v, c_mcap) == "1";
    }
    r.matched_only = text(v, c_monly) == "1";
    r.peak_mem_mib = num(text(v, c_mem));
    r.peak_mem_kind = text(v, c_memkind);
    rs.push_back(std::move(r));
  }
  return rs;
}

}  // namespace frost_train
