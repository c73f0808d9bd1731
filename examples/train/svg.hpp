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
#include <string>
#include <vector>

#include "report.hpp"
#include "trainer.hpp"

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
  auto X = [&](double step) { return left + plot_w * step / static_cast<double>(xmax); };
  double y0 = 10;
  for (const auto& r : rs) {
    const double rows = static_cast<double>(r.block_names.size());
    const double top = y0 + head, ph = row_h * rows;
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

/// Validation accuracy (y, %) against fine-tuning time (x, s; EvalPoint::time_s),
/// one line with markers per strategy, and the target the table's "to full-0.3"
/// column measures against: full's final validation accuracy minus 0.3 points.
inline std::string render_accuracy_svg(const std::vector<RunResult>& rs) {
  const double width = 960, left = 70, right = 240, top = 52, bottom = 56, legend_row = 30;
  const double height = std::max(520.0, top + legend_row * static_cast<double>(rs.size()) + 20);
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const double target = accuracy_target(rs);
  auto usable = [](const EvalPoint& e) {
    return std::isfinite(e.time_s) && e.time_s >= 0 && std::isfinite(e.val_accuracy);
  };
  double tmax = 0, ylo = HUGE_VAL, yhi = -HUGE_VAL;
  bool any = false;
  for (const auto& r : rs)
    for (const auto& e : r.evals)
      if (usable(e)) {
        any = true;
        tmax = std::max(tmax, e.time_s);
        ylo = std::min(ylo, e.val_accuracy);
        yhi = std::max(yhi, e.val_accuracy);
      }
  if (std::isfinite(target)) ylo = std::min(ylo, target), yhi = std::max(yhi, target);
  if (!(ylo <= yhi)) ylo = 0, yhi = 100;
  if (yhi - ylo < 1) {
    const double mid = (ylo + yhi) / 2;
    ylo = mid - 0.5, yhi = mid + 0.5;
  }
  const double ystep = svg_tick_step(yhi - ylo, 6);
  const double y0 = std::floor(ylo / ystep) * ystep, y1 = std::ceil(yhi / ystep) * ystep;
  const double xstep = svg_tick_step(tmax > 0 ? tmax : 1.0, 6);
  const double x1 = std::max(xstep, std::ceil((tmax > 0 ? tmax : 1.0) / xstep) * xstep);
  auto X = [&](double t) { return left + plot_w * t / x1; };
  auto Y = [&](double a) { return top + plot_h - plot_h * (a - y0) / (y1 - y0); };

  std::ostringstream o;
  char b[512];
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  std::snprintf(b, sizeof b,
                "<text x=\"%.1f\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Validation accuracy "
                "against fine-tuning time</text>\n"
                "<text x=\"%.1f\" y=\"36\" fill=\"#555\">after every epoch; time: the sum of the measured "
                "step times so far (evaluation not counted)</text>\n",
                left, left);
  o << b;
  // grid and ticks
  for (int k = 0; y0 + k * ystep <= y1 + ystep * 1e-6; ++k) {
    const double a = y0 + k * ystep;
    std::snprintf(b, sizeof b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555\">%s</text>\n",
                  left, Y(a), left + plot_w, Y(a), left - 6, Y(a) + 4, svg_tick_label(a, ystep).c_str());
    o << b;
  }
  for (int k = 0; k * xstep <= x1 + xstep * 1e-6; ++k) {
    const double t = k * xstep;
    std::snprintf(b, sizeof b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#555\">%s</text>\n",
                  X(t), top, X(t), top + plot_h, X(t), top + plot_h + 14, svg_tick_label(t, xstep).c_str());
    o << b;
  }
  std::snprintf(b, sizeof b,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">fine-tuning time (s)</text>\n"
                "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\">validation "
                "accuracy (%%)</text>\n",
                left, top, plot_w, plot_h, left + plot_w / 2, top + plot_h + 34, left - 46,
                top + plot_h / 2);
  o << b;
  if (std::isfinite(target)) {
    std::snprintf(b, sizeof b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
                  "stroke-dasharray=\"6,4\"/>\n"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555\">full - 0.3 (%.2f%%)</text>\n",
                  left, Y(target), left + plot_w, Y(target), left + plot_w - 4, Y(target) - 4, target);
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
    const RunResult& r = rs[i];
    const char* c = svg_colour(i);
    std::ostringstream pts, marks;
    std::size_t n = 0;
    for (const auto& e : r.evals) {
      if (!usable(e)) continue;
      ++n;
      std::snprintf(b, sizeof b, "%.1f,%.1f ", X(e.time_s), Y(e.val_accuracy));
      pts << b;
      std::snprintf(b, sizeof b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", X(e.time_s),
                    Y(e.val_accuracy), c);
      marks << b;
    }
    if (n) {
      o << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2\" points=\"" << pts.str()
        << "\"/>\n"
        << marks.str();
    }
    // legend: the name, and when it reached the target
    const double lx = left + plot_w + 16, ly = top + legend_row * static_cast<double>(i);
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
  o << "</svg>\n";
  return o.str();
}

}  // namespace frost_train
