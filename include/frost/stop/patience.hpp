#pragma once
// stop::Patience — early stopping on a reported validation loss: stop after
// `patience` reports in a row without an improvement of more than `min_delta`
// over the best loss so far (the baseline DyF compares against uses patience 3).
// A non-finite loss never counts as an improvement.
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "frost/concepts/stop_rule.hpp"
#include "frost/detail/archive.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"
#include "frost/state_fields.hpp"

namespace frost::stop {

struct PatienceOptions {
  FROST_OPTIONS(
      (std::int64_t, patience, 3),
      (double, min_delta, 0.0));
};

class Patience {
 public:
  using Options = PatienceOptions;
  static constexpr const char* name = "Patience";
  explicit Patience(const Options& o = {}) : o_(o) {
    detail::require(o_.patience() >= 1, "stop.patience is ", o_.patience(),
                    "; it must be 1 or more (reports without improvement before stopping)");
    detail::require(o_.min_delta() >= 0.0, "stop.min_delta is ", o_.min_delta(),
                    "; it must be 0 or more");
  }
  void on_validation(double loss, const StopState&) {
    if (std::isfinite(loss) && loss < best_ - o_.min_delta()) {
      best_ = loss;
      bad_ = 0;
    } else {
      ++bad_;
    }
  }
  bool should_stop(const StopState&) const { return bad_ >= o_.patience(); }
 private:
  // The state, listed once for save() and load() (frost/state_fields.hpp);
  // before them: their deduced return type must be known where they are used.
  FROST_STATE(best, bad)

 public:
  /// The best loss so far and the reports since it.
  void save(torch::serialize::OutputArchive& ar) const { frost::save_fields(ar, state_fields()); }
  void load(torch::serialize::InputArchive& ar) {  // on a fresh copy
    frost::load_fields(ar, state_fields());
    detail::require(!std::isnan(best_) && bad_ >= 0, "best loss ", best_, ", reports without "
                    "improvement ", bad_);
  }
  double best() const noexcept { return best_; }
  std::int64_t reports_without_improvement() const noexcept { return bad_; }

 private:
  Options o_;
  double best_ = std::numeric_limits<double>::infinity();
  std::int64_t bad_ = 0;
};

}  // namespace frost::stop
