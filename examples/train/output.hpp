#pragma once
// examples/train/output.hpp — what frost-train writes when runs are done:
// one seed's report (its table on stdout, results.csv, validation.csv and
// the pictures), the summary over the seeds (the study table, the verdict,
// summary.csv and frontier.svg), and --report, the same summary from the
// results.csv of finished runs. The tables and CSV formats themselves are in
// report.hpp, the statistics over seeds in study.hpp, the pictures in svg.hpp.
#include <ctime>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "files.hpp"
#include "report.hpp"
#include "run.hpp"
#include "study.hpp"
#include "svg.hpp"

namespace frost_train {

/// The local date and time, for a default output directory's name.
inline std::string timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y%m%d-%H%M%S", &tm);
  return b;
}

/// One seed's report: its table and timing control on `out`, results.csv,
/// validation.csv, timeline.svg and accuracy.svg in cfg.out_dir.
inline void write_seed_report(const TrainConfig& cfg, const std::vector<RunResult>& rs,
                              std::ostream& out) {
  const std::string svg_path = join(cfg.out_dir, "timeline.svg");
  const std::string acc_path = join(cfg.out_dir, "accuracy.svg");
  const std::string csv_path = join(cfg.out_dir, "results.csv");
  // the pictures: the runs of the comparison and the frontier's budgets (the
  // matched runs are in the table and the CSV, their curves would crowd it)
  std::vector<RunResult> shown;
  for (const auto& r : rs)
    if (!r.matched_only) shown.push_back(r);
  write_file_atomic(svg_path, render_svg(shown));
  write_file_atomic(acc_path, render_accuracy_svg(shown));
  write_file_atomic(csv_path, format_csv(rs));
  write_file_atomic(join(cfg.out_dir, "validation.csv"), format_evals_csv(rs));
  out << "\n" << format_table(rs)
      << "(speed-up: full fine-tuning's measured wall-clock time / this strategy's: its steps, "
         "with the activation cache's fills and catch-up passes and the criterion's stages, and "
         "the validation passes its early stopping listens to; test evaluation and checkpoint "
         "writes are left out, the same for all; the strategies take turns epoch by epoch. "
         "estimate: the same from steps x median step time per phase. work avoided/step: "
         "FLOP-weighted forward and backward block work of full fine-tuning not done in the "
         "steps run (catch-up passes counted); steps not run: left out by a stop rule; to "
         "full-0.3: measured time until the validation accuracy reached full's final one minus "
         "0.3 points; vs matched: test accuracy minus that of full fine-tuning annealed to the "
         "steps that cost what this strategy cost at full's measured step time (the run named, "
         "its measured time / this one's); peak MiB: "
      << (rs.empty() || rs.front().peak_mem_kind.empty() ? std::string("not measured") : rs.front().peak_mem_kind)
      << "; see docs/main-job.md)\n"
      << format_control(rs) << format_matched_check(rs);
  out << "\nper strategy: " << join(cfg.out_dir, "<strategy>/") << "{steps.jsonl, timeline.csv, "
      << "timeline.svg, config.txt, checkpoint.pt}\n"
      << "table: " << csv_path << " (validation points: " << join(cfg.out_dir, "validation.csv")
      << ")\npictures: " << acc_path << " (validation accuracy against time), " << svg_path
      << " (freeze timeline)\n";
}

/// The summary over the seeds: the table with paired intervals and the
/// frontier, the verdict, summary.csv, results.csv (every run) and the
/// accuracy-against-time picture with the frontier.
inline void report_study(const TrainConfig& cfg, const std::vector<std::vector<RunResult>>& per_seed,
                         std::ostream& out) {
  const auto summary = summarize(per_seed);
  const std::string sum_path = join(cfg.out_dir, "summary.csv");
  const std::string fr_path = join(cfg.out_dir, "frontier.svg");
  write_file_atomic(sum_path, format_study_csv(summary));
  write_file_atomic(fr_path, render_frontier_svg(summary));
  if (per_seed.size() > 1) {
    std::string csv = format_csv(per_seed.front());
    for (std::size_t k = 1; k < per_seed.size(); ++k) {
      const std::string more = format_csv(per_seed[k]);
      csv += more.substr(more.find('\n') + 1);  // without its header
    }
    write_file_atomic(join(cfg.out_dir, "results.csv"), csv);
  }
  std::ostringstream seeds;
  for (const auto& rs : per_seed)
    if (!rs.empty()) seeds << " " << rs.front().seed;
  out << "\n== over " << per_seed.size() << " seed" << (per_seed.size() == 1 ? "" : "s")
      << " (seeds" << seeds.str() << ")\n"
      << format_study_table(summary)
      << "(vs full: test accuracy minus full fine-tuning's of the same seed, mean and 95 % "
         "interval; speed-up: measured, mean and min-max over the seeds; "
      << (has_matched(summary)
              ? "vs matched: test accuracy minus that of full fine-tuning annealed to the steps that "
                "cost what the strategy cost in the same seed (its measured time / full's step "
                "time), paired; matched time: that run's measured time / the strategy's, mean and "
                "min-max, \"k out\": seeds outside 1.00 +- 0.05; "
              : "vs frontier: test accuracy minus what full fine-tuning reaches in the same "
                "measured time, interpolated between the budgets full-<E>ep and full; ")
      << "peak MiB: the run's peak memory, mean, and its ratio to full's of the same seed; "
         "\"(k of n seeds)\": the interval stands on fewer seeds than the seeds column, the "
         "others had no pair; one seed: no interval, no side of the frontier)\n"
      << format_verdict(summary, static_cast<int>(per_seed.size()), target_speedup(cfg.model))
      << "summary: " << sum_path << "; picture: " << fr_path
      << " (test accuracy against measured time: the frontier's budgets as the line, every "
         "strategy with its bar the table's interval"
      << (has_matched(summary) ? " vs its matched run, drawn next to it as a hollow point" : "")
      << ")\n";
}

/// --report: the summary over the seeds of finished runs (each directory's
/// results.csv: one seed, or every seed of a --seeds run), written to --out.
inline int report_dirs(TrainConfig cfg, std::ostream& out) {
  std::map<std::uint64_t, std::vector<RunResult>> by_seed;
  for (const auto& dir : cfg.report)
    for (auto& r : read_results_csv(join(dir, "results.csv"))) {
      auto& rs = by_seed[r.seed];
      if (find_strategy(rs, r.strategy))
        throw UsageError("--report: seed " + std::to_string(r.seed) + " of strategy " +
                         r.strategy + " appears twice (" + dir + " and another directory)");
      rs.push_back(std::move(r));
    }
  std::vector<std::vector<RunResult>> per_seed;
  for (auto& kv : by_seed) per_seed.push_back(std::move(kv.second));
  if (per_seed.empty()) throw UsageError("--report: no runs in the results.csv files given");
  if (cfg.out_dir.empty()) cfg.out_dir = join("out", timestamp() + "-report");
  make_dirs(cfg.out_dir);
  cfg.seed = by_seed.begin()->first;
  report_study(cfg, per_seed, out);
  return 0;
}

}  // namespace frost_train
