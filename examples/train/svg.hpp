#pragma once
// examples/train/svg.hpp — the pictures: per strategy, the freeze timeline
// (blocks x steps: training, frozen, not run) with the training-loss curve
// drawn over it, one panel per strategy on a common step axis (render_svg);
// and validation accuracy against fine-tuning time, one line per strategy
// (render_accuracy_svg).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "report.hpp"
#include "run.hpp"
#include "study.hpp"

namespace frost_train {

inline std::string svg_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

/// A colour per strategy (Tableau 10), cycling.
inline const char* svg_colour(std::size_t i) {
  static const char* const c[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  return c[i % (sizeof c / sizeof c[0])];
}

/// A round tick step (1, 2 or 5 x 10^k) giving about `ticks` intervals over span.
inline double svg_tick_step(double span, int ticks) {
  if (!(span > 0) || !std::isfinite(span)) return 1.0;
  const double raw = span / ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/// A tick's label with as many decimals as the step needs.
inline std::string svg_tick_label(double v, double step) {
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, std::abs(v) < step * 1e-6 ? 0.0 : v);
  return b;
}

/// A plot's frame: the area, its data ranges and tick steps.
struct SvgFrame {
  double left, top, w, h;   ///< the plot area
  double x1, xstep;         ///< x from 0 to x1
  double y0, y1, ystep;     ///< y from y0 to y1
  double X(double x) const { return left + w * x / x1; }
  double Y(double y) const { return top + h - h * (y - y0) / (y1 - y0); }
};

/// Grid lines, tick labels, the frame and the axis titles.
inline void svg_frame(std::ostream& o, const SvgFrame& f, const std::string& xlabel,
                      const std::string& ylabel) {
  char b[512];
  for (int k = 0; f.y0 + k * f.ystep <= f.y1 + f.ystep * 1e-6; ++k) {
    const double a = f.y0 + k * f.ystep;
    std::snprintf(b, sizeof b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555\">%s</text>\n",
                  f.left, f.Y(a), f.left + f.w, f.Y(a), f.left - 6, f.Y(a) + 4,
                  svg_tick_label(a, f.ystep).c_str());
    o << b;
  }
  for (int k = 0; k * f.xstep <= f.x1 + f.xstep * 1e-6; ++k) {
    const double t = k * f.xstep;
    std::snprintf(b, sizeof b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#555\">%s</text>\n",
                  f.X(t), f.top, f.X(t), f.top + f.h, f.X(t), f.top + f.h + 14,
                  svg_tick_label(t, f.xstep).c_str());
    o << b;
  }
  std::snprintf(b, sizeof b,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n"
                "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n",
                f.left, f.top, f.w, f.h, f.left + f.w / 2, f.top + f.h + 34,
                svg_escape(xlabel).c_str(), f.left - 46, f.top + f.h / 2, svg_escape(ylabel).c_str());
  o << b;
}

/// A y range [y0, y1] and its tick step around [lo, hi] (at least a point wide).
inline void svg_y_range(double lo, double hi, double& y0, double& y1, double& step) {
  if (!(lo <= hi)) lo = 0, hi = 100;
  if (hi - lo < 1) {
    const double mid = (lo + hi) / 2;
    lo = mid - 0.5, hi = mid + 0.5;
  }
  step = svg_tick_step(hi - lo, 6);
  y0 = std::floor(lo / step) * step;
  y1 = std::ceil(hi / step) * step;
}

/// The freeze timeline's geometry: the plot area's left edge and width, the
/// rows, and the common step axis (0..xmax) and loss axis (0..lmax).
struct TimelineFrame {
  double left, plot_w, row_h;
  std::int64_t xmax;
  double lmax;
  double X(double step) const { return left + plot_w * step / static_cast<double>(xmax); }
};

/// A strategy panel's two title lines: its result and its composition.
inline void svg_timeline_title(std::ostream& o, const TimelineFrame& f, const RunResult& r,
                               const RunResult* base, double y0) {
  const double left = f.left;
  std::ostringstream title;
  char t[160];
  std::snprintf(t, sizeof t, "%s: test acc %.2f%%, %.1f s", r.strategy.c_str(), r.test_accuracy,
                r.wall_s);
  title << t;
  if (base && std::isfinite(speedup_over(*base, r))) {
    std::snprintf(t, sizeof t, " (%.2fx vs full)", speedup_over(*base, r));
    title << t;
  }
  std::snprintf(t, sizeof t, ", %.0f%% backward avoided", 100 * r.backward_avoided);
  title << t;
  o << "<text x=\"" << left << "\" y=\"" << y0 + 14 << "\" font-size=\"13\" font-weight=\"bold\">"
    << svg_escape(title.str()) << "</text>\n";
  o << "<text x=\"" << left << "\" y=\"" << y0 + 28 << "\" fill=\"#555\">"
    << svg_escape(r.composition) << "</text>\n";
}

/// A strategy's rows, one per block: training, frozen, not run (stopped).
inline void svg_timeline_rows(std::ostream& o, const TimelineFrame& f, const RunResult& r, double top) {
  const double left = f.left, row_h = f.row_h;
  const std::int64_t xmax = f.xmax;
  auto X = [&](double step) { return f.X(step); };
  char b[512];
  for (std::size_t i = 0; i < r.block_names.size(); ++i) {
    const double y = top + row_h * static_cast<double>(i);
    const std::int64_t fz = r.freeze_step[i];
    const double end_train = fz < 0 ? static_cast<double>(r.steps) : static_cast<double>(std::min(fz, r.steps));
    std::snprintf(b, sizeof b,
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n"
                  "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#f4c27a\"/>\n",
                  left - 6, y + row_h - 4, svg_escape(r.block_names[i]).c_str(), X(0), y + 1,
                  X(end_train) - X(0), row_h - 2);
    o << b;
    if (fz >= 0 && fz < r.steps) {
      std::snprintf(b, sizeof b,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#5b8fd0\"/>\n",
                    X(static_cast<double>(fz)), y + 1,
                    X(static_cast<double>(r.steps)) - X(static_cast<double>(fz)), row_h - 2);
      o << b;
    }
    if (r.steps < xmax) {
      std::snprintf(b, sizeof b,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#eeeeee\"/>\n",
                    X(static_cast<double>(r.steps)), y + 1,
                    X(static_cast<double>(xmax)) - X(static_cast<double>(r.steps)), row_h - 2);
      o << b;
    }
  }
}

/// The training loss over a strategy's rows (moving average over 5 steps),
/// with its frame and the step axis.
inline void svg_timeline_loss(std::ostream& o, const TimelineFrame& f, const RunResult& r, double top,
                              double ph) {
  const double plot_w = f.plot_w, lmax = f.lmax;
  const std::int64_t xmax = f.xmax;
  auto X = [&](double step) { return f.X(step); };
  char b[512];
  // loss curve (moving average over 5 steps), right axis 0..lmax
  if (!r.losses.empty()) {
    o << "<polyline fill=\"none\" stroke=\"#b22222\" stroke-width=\"1.5\" points=\"";
    const std::size_t n = r.losses.size();
    const std::size_t stride = std::max<std::size_t>(1, n / 600);
    for (std::size_t s = 0; s < n; s += stride) {
      double sum = 0;
      int k = 0;
      for (std::size_t j = s >= 4 ? s - 4 : 0; j <= s; ++j)
        if (std::isfinite(r.losses[j])) sum += r.losses[j], ++k;
      if (!k) continue;
      const double l = sum / k;
      std::snprintf(b, sizeof b, "%.1f,%.1f ", X(static_cast<double>(s)), top + ph - ph * l / lmax);
      o << b;
    }
    o << "\"/>\n";
  }
  std::snprintf(b, sizeof b,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" fill=\"#b22222\">loss %.2f</text>\n"
                "<text x=\"%.1f\" y=\"%.1f\" fill=\"#b22222\">0</text>\n",
                X(0), top, plot_w, ph, X(static_cast<double>(xmax)) + 4, top + 9, lmax,
                X(static_cast<double>(xmax)) + 4, top + ph);
  o << b;
  for (int k = 0; k <= 4; ++k) {
    const double s = static_cast<double>(xmax) * k / 4.0;
    std::snprintf(b, sizeof b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#555\">%lld</text>\n",
                  X(s), top + ph + 12, static_cast<long long>(std::llround(s)));
    o << b;
  }
}

/// The freeze timeline: a panel per strategy (blocks x steps) with its
/// training loss over it, on a common step axis.
inline std::string render_svg(const std::vector<RunResult>& rs) {
  const double left = 110, right = 60, width = 960, row_h = 16, head = 34, gap = 26;
  const double plot_w = width - left - right;
  std::int64_t xmax = 1;
  double lmax = 0;
  for (const auto& r : rs) {
    xmax = std::max({xmax, r.planned_steps, r.steps});
    for (double l : r.losses)
      if (std::isfinite(l)) lmax = std::max(lmax, l);
  }
  if (!(lmax > 0)) lmax = 1;
  double height = 20;
  for (const auto& r : rs) height += head + row_h * static_cast<double>(r.block_names.size()) + gap + 14;
  const RunResult* base = baseline(rs);

  std::ostringstream o;
  char b[512];
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  const TimelineFrame f{left, plot_w, row_h, xmax, lmax};
  double y0 = 10;
  for (const auto& r : rs) {
    const double rows = static_cast<double>(r.block_names.size());
    const double top = y0 + head, ph = row_h * rows;
    svg_timeline_title(o, f, r, base, y0);
    svg_timeline_rows(o, f, r, top);
    svg_timeline_loss(o, f, r, top, ph);
    y0 = top + ph + gap;
  }
  std::snprintf(b, sizeof b,
                "<g transform=\"translate(%.1f,%.1f)\"><rect width=\"10\" height=\"10\" fill=\"#f4c27a\"/>"
                "<text x=\"14\" y=\"9\">training</text><rect x=\"80\" width=\"10\" height=\"10\" fill=\"#5b8fd0\"/>"
                "<text x=\"94\" y=\"9\">frozen</text><rect x=\"150\" width=\"10\" height=\"10\" fill=\"#eeeeee\" stroke=\"#999\"/>"
                "<text x=\"164\" y=\"9\">not run (stopped)</text><line x1=\"270\" y1=\"5\" x2=\"285\" y2=\"5\" stroke=\"#b22222\" stroke-width=\"2\"/>"
                "<text x=\"290\" y=\"9\">training loss; x axis: fine-tuning step</text></g>\n",
                left, height - 16);
  o << b << "</svg>\n";
  return o.str();
}

/// A validation point that can be drawn (a finite time and accuracy).
inline bool usable_eval(const EvalPoint& e) {
  return std::isfinite(e.time_s) && e.time_s >= 0 && std::isfinite(e.val_accuracy);
}

/// A strategy's validation accuracy against time: a line with markers, in
/// colour `c`; returns how many points it has.
inline std::size_t svg_accuracy_line(std::ostream& o, const SvgFrame& f, const RunResult& r,
                                     const char* c) {
  char b[512];
  std::ostringstream pts, marks;
  std::size_t n = 0;
  for (const auto& e : r.evals) {
    if (!usable_eval(e)) continue;
    ++n;
    std::snprintf(b, sizeof b, "%.1f,%.1f ", f.X(e.time_s), f.Y(e.val_accuracy));
    pts << b;
    std::snprintf(b, sizeof b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", f.X(e.time_s),
                  f.Y(e.val_accuracy), c);
    marks << b;
  }
  if (n) {
    o << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2\" points=\"" << pts.str()
      << "\"/>\n"
      << marks.str();
  }
  return n;
}

/// A strategy's legend entry at (lx, ly): its name, and when it reached the
/// target (full's final validation accuracy minus 0.3 points).
inline void svg_accuracy_legend(std::ostream& o, const RunResult& r, const char* c, std::size_t n,
                                double lx, double ly, double target) {
  char b[512];
  std::string note;
  if (!n) {
    note = "no validation points";
  } else if (std::isfinite(target)) {
    const double t = time_to_target_s(r, target);
    char tb[64];
    std::snprintf(tb, sizeof tb, "%.1f s", t);
    note = std::string("to full - 0.3: ") + (std::isfinite(t) ? tb : "never");
  }
  std::snprintf(b, sizeof b,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>"
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                lx, ly + 6, lx + 20, ly + 6, c, lx + 10, ly + 6, c);
  o << b << "<text x=\"" << lx + 26 << "\" y=\"" << ly + 10 << "\">" << svg_escape(r.strategy)
    << "</text>\n";
  if (!note.empty())
    o << "<text x=\"" << lx + 26 << "\" y=\"" << ly + 23 << "\" fill=\"#555\" font-size=\"10\">"
      << svg_escape(note) << "</text>\n";
}

/// Validation accuracy (y, %) against fine-tuning time (x, s; EvalPoint::time_s),
/// one line with markers per strategy, and the target the table's "to full-0.3"
/// column measures against: full's final validation accuracy minus 0.3 points.
inline std::string render_accuracy_svg(const std::vector<RunResult>& rs) {
  const double width = 960, left = 70, right = 240, top = 52, bottom = 56, legend_row = 30;
  const double height = std::max(520.0, top + legend_row * static_cast<double>(rs.size()) + 20);
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const double target = accuracy_target(rs);
  double tmax = 0, ylo = HUGE_VAL, yhi = -HUGE_VAL;
  bool any = false;
  for (const auto& r : rs)
    for (const auto& e : r.evals)
      if (usable_eval(e)) {
        any = true;
        tmax = std::max(tmax, e.time_s);
        ylo = std::min(ylo, e.val_accuracy);
        yhi = std::max(yhi, e.val_accuracy);
      }
  if (std::isfinite(target)) ylo = std::min(ylo, target), yhi = std::max(yhi, target);
  double y0, y1, ystep;
  svg_y_range(ylo, yhi, y0, y1, ystep);
  const double xstep = svg_tick_step(tmax > 0 ? tmax : 1.0, 6);
  const double x1 = std::max(xstep, std::ceil((tmax > 0 ? tmax : 1.0) / xstep) * xstep);
  const SvgFrame f{left, top, plot_w, plot_h, x1, xstep, y0, y1, ystep};

  std::ostringstream o;
  char b[512];
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  std::snprintf(b, sizeof b,
                "<text x=\"%.1f\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Validation accuracy "
                "against fine-tuning time</text>\n"
                "<text x=\"%.1f\" y=\"36\" fill=\"#555\">after every epoch; time: measured so far (the "
                "steps, and the validation passes the strategy's early stopping needs)</text>\n",
                left, left);
  o << b;
  svg_frame(o, f, "fine-tuning time (s)", "validation accuracy (%)");
  if (std::isfinite(target)) {
    std::snprintf(b, sizeof b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
                  "stroke-dasharray=\"6,4\"/>\n"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555\">full - 0.3 (%.2f%%)</text>\n",
                  left, f.Y(target), left + plot_w, f.Y(target), left + plot_w - 4, f.Y(target) - 4, target);
    o << b;
  }
  if (!any) {
    std::snprintf(b, sizeof b,
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#999\">no validation "
                  "points</text>\n",
                  left + plot_w / 2, top + plot_h / 2);
    o << b;
  }
  for (std::size_t i = 0; i < rs.size(); ++i) {
    const char* c = svg_colour(i);
    const std::size_t n = svg_accuracy_line(o, f, rs[i], c);
    // legend: the name, and when it reached the target
    svg_accuracy_legend(o, rs[i], c, n, left + plot_w + 16,
                        top + legend_row * static_cast<double>(i), target);
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace frost_train

namespace frost_train {

/// The interval the picture draws for a strategy: the table's, against its
/// matched runs where it has them, else against the interpolated line.
inline const Interval& pictured_interval(const StrategySummary& s) {
  return s.vs_matched.n > 0 ? s.vs_matched : s.vs_frontier;
}

/// The vertical error bar of a strategy in the frontier picture: the same 95 %
/// interval the study table reports in "vs matched" (or "vs frontier"),
/// paired by seed, drawn around the point at its mean accuracy. {NaN, NaN}
/// where the table reports no interval (the frontier itself, one seed, no
/// comparison).
inline std::pair<double, double> frontier_error_bar(const StrategySummary& s) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Interval& d = pictured_interval(s);
  if (s.on_frontier || d.n < 2 || !std::isfinite(d.lo) || !std::isfinite(d.hi)) return {nan, nan};
  return {s.accuracy.mean + (d.lo - d.mean), s.accuracy.mean + (d.hi - d.mean)};
}

namespace detail {
/// One strategy's marks: its time spread (min-max over the seeds) as a
/// horizontal bar, the table's interval as a vertical one with end caps
/// (class "ci", its ends in data-lo/data-hi, the table's text in a title),
/// the point, and its legend entry at (lx, ly).
inline void svg_frontier_marks(std::ostream& o, const SvgFrame& f, const StrategySummary& s,
                               const char* c, double lx, double ly) {
  char b[640];
  const double x = f.X(s.time_s), y = f.Y(s.accuracy.mean);
  // its own frontier point: the matched runs' mean time and accuracy, hollow,
  // joined to the strategy's point by a dashed line (class "matched")
  if (std::isfinite(s.matched_s) && std::isfinite(s.matched_accuracy)) {
    const double mx = f.X(s.matched_s), my = f.Y(s.matched_accuracy);
    std::snprintf(b, sizeof b,
                  "<g class=\"matched\" data-time=\"%.2f\" data-accuracy=\"%.2f\" stroke=\"%s\">"
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke-dasharray=\"3,3\"/>"
                  "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"white\" stroke-width=\"2\"/><title>",
                  s.matched_s, s.matched_accuracy, c, x, y, mx, my, mx, my);
    o << b << svg_escape(s.strategy) << "'s matched run: full fine-tuning at its cost, "
      << fmt("%.2f", s.matched_accuracy) << " % in " << fmt("%.1f", s.matched_s) << " s (mean)</title></g>\n";
  }
  if (std::isfinite(s.time_min_s) && std::isfinite(s.time_max_s)) {
    std::snprintf(b, sizeof b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n",
                  f.X(s.time_min_s), y, f.X(s.time_max_s), y, c);
    o << b;
  }
  const auto bar = frontier_error_bar(s);
  if (std::isfinite(bar.first)) {
    const double y_lo = f.Y(bar.first), y_hi = f.Y(bar.second);
    std::snprintf(b, sizeof b,
                  "<g class=\"ci\" data-lo=\"%.2f\" data-hi=\"%.2f\" stroke=\"%s\"><title>",
                  bar.first, bar.second, c);
    o << b << svg_escape(s.strategy) << (s.vs_matched.n > 0 ? ": vs matched " : ": vs frontier ")
      << fmt_interval(pictured_interval(s), s.seeds) << " (95 %)</title>";
    std::snprintf(b, sizeof b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/></g>\n",
                  x, y_lo, x, y_hi, x - 4, y_lo, x + 4, y_lo, x - 4, y_hi, x + 4, y_hi);
    o << b;
  }
  std::snprintf(b, sizeof b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\"/>\n", x, y,
                s.on_frontier ? 3 : 5, c);
  o << b;
  std::snprintf(b, sizeof b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>", lx + 6, ly + 6, c);
  const bool one_seed = !s.on_frontier && pictured_interval(s).n == 1;
  o << b << "<text x=\"" << lx + 16 << "\" y=\"" << ly + 10 << "\">" << svg_escape(s.strategy)
    << (s.on_frontier ? " (frontier)" : one_seed ? " (one seed: no interval)" : "") << "</text>\n";
}
}  // namespace detail

/// Test accuracy against measured time over the seeds: the frontier (full
/// fine-tuning at every budget, mean time and accuracy) as a line, every
/// other strategy as a point at its means, with the interval the study table
/// reports against the frontier as its vertical bar (frontier_error_bar) and
/// its time's min-max over the seeds as its horizontal one.
inline std::string render_frontier_svg(const std::vector<StrategySummary>& ss) {
  const double width = 960, left = 70, right = 240, top = 52, bottom = 56, legend_row = 18;
  const double height = std::max(520.0, top + legend_row * static_cast<double>(ss.size()) + 20);
  double tmax = 0, ylo = HUGE_VAL, yhi = -HUGE_VAL;
  for (const auto& s : ss) {
    if (!std::isfinite(s.accuracy.mean)) continue;
    tmax = std::max(tmax, std::isfinite(s.time_max_s) ? s.time_max_s : s.time_s);
    const auto bar = frontier_error_bar(s);
    ylo = std::min({ylo, s.accuracy.mean, std::isfinite(bar.first) ? bar.first : HUGE_VAL});
    yhi = std::max({yhi, s.accuracy.mean, std::isfinite(bar.second) ? bar.second : -HUGE_VAL});
    if (std::isfinite(s.matched_s) && std::isfinite(s.matched_accuracy)) {
      tmax = std::max(tmax, s.matched_s);
      ylo = std::min(ylo, s.matched_accuracy);
      yhi = std::max(yhi, s.matched_accuracy);
    }
  }
  SvgFrame f{left, top, width - left - right, height - top - bottom, 1, 1, 0, 1, 1};
  svg_y_range(ylo, yhi, f.y0, f.y1, f.ystep);
  f.xstep = svg_tick_step(tmax > 0 ? tmax : 1.0, 6);
  f.x1 = std::max(f.xstep, std::ceil((tmax > 0 ? tmax : 1.0) / f.xstep) * f.xstep);
  std::ostringstream o;
  char b[512];
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << left << "\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Test accuracy "
       "against measured time: the full fine-tuning frontier and every strategy</text>\n"
    << "<text x=\"" << left << "\" y=\"36\" fill=\"#555\">means over the seeds; the line: the "
       "frontier's budgets; hollow points, dashed: each strategy's matched run (full fine-tuning at "
       "its own cost); vertical bars: the table's 95 % interval (paired by seed) around the mean; "
       "horizontal: time min-max</text>\n";
  svg_frame(o, f, "measured time (s)", "test accuracy (%)");
  std::vector<const StrategySummary*> front;
  for (const auto& s : ss)
    if (s.on_frontier && std::isfinite(s.time_s) && std::isfinite(s.accuracy.mean)) front.push_back(&s);
  std::sort(front.begin(), front.end(),
            [](const StrategySummary* a, const StrategySummary* c) { return a->time_s < c->time_s; });
  std::ostringstream pts;
  for (const auto* s : front) {
    std::snprintf(b, sizeof b, "%.1f,%.1f ", f.X(s->time_s), f.Y(s->accuracy.mean));
    pts << b;
  }
  o << "<polyline fill=\"none\" stroke=\"#333\" stroke-width=\"2\" points=\"" << pts.str() << "\"/>\n";
  std::size_t i = 0;
  for (const auto& s : ss) {
    if (!std::isfinite(s.time_s) || !std::isfinite(s.accuracy.mean)) continue;
    detail::svg_frontier_marks(o, f, s, s.on_frontier ? "#333" : svg_colour(i), left + f.w + 16,
                               top + legend_row * static_cast<double>(i));
    ++i;
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace frost_train
