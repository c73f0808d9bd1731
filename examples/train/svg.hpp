#pragma once
// examples/train/svg.hpp — the picture: per strategy, the freeze timeline
// (blocks x steps: training, frozen, not run) with the training-loss curve
// drawn over it, one panel per strategy on a common step axis.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

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
  const RunResult* base = nullptr;
  for (const auto& r : rs)
    if (r.strategy == "full") base = &r;

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
    if (base && r.wall_s > 0) {
      std::snprintf(t, sizeof t, " (%.2fx vs full)", base->wall_s / r.wall_s);
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

}  // namespace frost_train
