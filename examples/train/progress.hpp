#pragma once
// examples/train/progress.hpp — a one-line progress bar with step rate and
// ETA, drawn on stderr only when it is a terminal (or when forced on).
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace frost_train {

inline bool stderr_is_terminal() { return ::isatty(::fileno(stderr)) != 0; }

inline std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", s / 60, s % 60);
  return buf;
}

class Progress {
 public:
  /// `mode`: -1 auto (on when stderr is a terminal), 0 off, 1 on.
  Progress(std::string label, std::int64_t total, int mode = -1)
      : label_(std::move(label)), total_(total),
        enabled_(mode == 1 || (mode == -1 && stderr_is_terminal())),
        start_(clock::now()), last_draw_(start_ - std::chrono::seconds(1)) {}
  ~Progress() { finish(); }

  bool enabled() const noexcept { return enabled_; }

  /// `done` steps completed (of total); `extra` is appended (loss, frozen...).
  void update(std::int64_t done, const std::string& extra = "") {
    if (!enabled_) return;
    const auto now = clock::now();
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    if (first_done_ < 0) {
      first_done_ = done;
      first_time_ = now;
    }
    const double el = std::chrono::duration<double>(now - first_time_).count();
    const double rate = el > 0 ? static_cast<double>(done - first_done_) / el : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : -1.0;
    const int width = 24;
    const double frac = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 0.0;
    const int fill = static_cast<int>(frac * width + 0.5);
    std::string bar(static_cast<std::size_t>(fill), '#');
    bar.resize(width, '.');
    // The rate is measured from the first update (a resumed run starts part
    // way), so that one has none yet.
    char rate_text[32] = "--";
    if (rate > 0) std::snprintf(rate_text, sizeof rate_text, "%.1f", rate);
    std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %s it/s ETA %s %s", label_.c_str(),
                 bar.c_str(), static_cast<long long>(done), static_cast<long long>(total_),
                 rate_text, format_duration(eta).c_str(), extra.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }

  /// Clears the line (the caller prints its own summary).
  void finish() {
    if (enabled_ && drawn_) {
      std::fprintf(stderr, "\r\033[K");
      std::fflush(stderr);
    }
    drawn_ = false;
  }

 private:
  using clock = std::chrono::steady_clock;
  std::string label_;
  std::int64_t total_;
  bool enabled_;
  bool drawn_ = false;
  clock::time_point start_, last_draw_, first_time_;
  std::int64_t first_done_ = -1;
};

}  // namespace frost_train
