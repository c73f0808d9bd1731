#pragma once
// examples/train/report.hpp — the comparison table (terminal and CSV).
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "trainer.hpp"

namespace frost_train {

/// "when each block froze": per block its freeze step, '-' when it never froze.
inline std::string freeze_steps_text(const RunResult& r) {
  std::string s;
  for (std::size_t b = 0; b < r.freeze_step.size(); ++b)
    s += (b ? " " : "") + (r.freeze_step[b] < 0 ? std::string("-") : std::to_string(r.freeze_step[b]));
  return s;
}

/// The reference for speed-up and accuracy deltas: the "full" run if present.
inline const RunResult* baseline(const std::vector<RunResult>& rs) {
  for (const auto& r : rs)
    if (r.strategy == "full") return &r;
  return nullptr;
}

inline std::string format_table(const std::vector<RunResult>& rs) {
  const RunResult* base = baseline(rs);
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"strategy", "test acc %", "vs full", "wall s", "speed-up", "bwd avoided",
                  "steps", "froze at step (stem, block 0, 1, ...)", "peak MiB"});
  for (const auto& r : rs) {
    char b[64];
    std::vector<std::string> row;
    row.push_back(r.strategy);
    std::snprintf(b, sizeof b, "%.2f", r.test_accuracy);
    row.push_back(b);
    if (base && std::isfinite(base->test_accuracy)) {
      std::snprintf(b, sizeof b, "%+.2f", r.test_accuracy - base->test_accuracy);
      row.push_back(b);
    } else {
      row.push_back("");
    }
    std::snprintf(b, sizeof b, "%.1f", r.wall_s);
    row.push_back(b);
    if (base && r.wall_s > 0) {
      std::snprintf(b, sizeof b, "%.2fx", base->wall_s / r.wall_s);
      row.push_back(b);
    } else {
      row.push_back("");
    }
    std::snprintf(b, sizeof b, "%.0f%%", 100.0 * r.backward_avoided);
    row.push_back(b);
    row.push_back(std::to_string(r.steps) + "/" + std::to_string(r.planned_steps));
    row.push_back(freeze_steps_text(r));
    if (std::isfinite(r.peak_mem_mib)) {
      std::snprintf(b, sizeof b, "%.0f", r.peak_mem_mib);
      row.push_back(b);
    } else {
      row.push_back("n/a");
    }
    rows.push_back(row);
  }
  std::vector<std::size_t> w(rows[0].size(), 0);
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
  std::ostringstream os;
  for (std::size_t k = 0; k < rows.size(); ++k) {
    for (std::size_t i = 0; i < rows[k].size(); ++i) {
      const bool left = i == 0 || i == 7;
      const std::string& c = rows[k][i];
      const std::string pad(w[i] - c.size(), ' ');
      os << (i ? "  " : "") << (left ? c + pad : pad + c);
    }
    os << "\n";
    if (k == 0) {
      std::size_t total = 0;
      for (auto x : w) total += x + 2;
      os << std::string(total - 2, '-') << "\n";
    }
  }
  return os.str();
}

inline std::string format_csv(const std::vector<RunResult>& rs) {
  const RunResult* base = baseline(rs);
  std::ostringstream os;
  os << "strategy,composition,test_accuracy,wall_s,speedup,backward_avoided,frozen_share,steps,"
        "planned_steps,freeze_steps,peak_mem_mib,peak_mem_kind\n";
  for (const auto& r : rs) {
    os << r.strategy << ",\"" << r.composition << "\"," << csv_number(r.test_accuracy) << ','
       << csv_number(r.wall_s) << ','
       << (base && r.wall_s > 0 ? csv_number(base->wall_s / r.wall_s) : std::string("")) << ','
       << csv_number(r.backward_avoided) << ',' << csv_number(r.frozen_share) << ',' << r.steps
       << ',' << r.planned_steps << ",\"" << freeze_steps_text(r) << "\","
       << csv_number(r.peak_mem_mib) << ",\"" << r.peak_mem_kind << "\"\n";
  }
  return os.str();
}

}  // namespace frost_train
