#pragma once
// schedules::StageWise<Inner> — Stage-wise Reduction of Learning Rate (SR-LR,
// thesis §3.5.1, eq. 7): a FreezeOut-family schedule whose multipliers are
// further scaled per stage,
//
//   f(s, S, p) = (1 / (S - s + 1))^p          s = the block's stage (1..S, input side first)
//   m_i(j)     = f(s_i, S, p) * inner m_i(j)   S = the largest stage
//
// Multi-stage losses (LocalMIM's per-stage decoders) push larger gradients into
// the early stages, so their rates are cut most; the last stage keeps factor 1
// and p = 0 is the inner schedule unchanged. Freezing times are the inner
// schedule's (eq. 7 changes alpha_i(0) only). The head uses factor 1.
//
// Inner is FreezeOut<Spacing, Scaling> (Options: StageWiseOptions) or
// LayerWise<Spacing> (Options: StageWiseLayerWiseOptions: SR-LR and LR-LR
// combined, thesis Table 16). Options hold p plus the inner schedule's options
// under `inner` ("schedule.p", "schedule.inner.t0"). Default p = 0.8, the
// thesis' best (Table 14).
//
// Stages come from ScheduleSetup::stages (BlockMap::stages({...})).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "frost/concepts/schedule.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"
#include "frost/schedules/freezeout.hpp"
#include "frost/schedules/layer_wise.hpp"

namespace frost::schedules {

/// Options of StageWise<FreezeOut<...>>.
struct StageWiseOptions {
  FROST_OPTIONS(
      /// The power p of f(s, S, p) = (1 / (S - s + 1))^p (0 = no reduction).
      (double, p, 0.8),
      /// The wrapped FreezeOut schedule's options.
      (FreezeOutOptions, inner, {}));
};

/// Options of StageWise<LayerWise<...>> (SR-LR combined with LR-LR).
struct StageWiseLayerWiseOptions {
  FROST_OPTIONS(
      (double, p, 0.8),
      (LayerWiseOptions, inner, {}));
};

/// Maps the inner schedule's Options to StageWise's (reflected options must be
/// non-template structs, so there is one per inner options type).
template <class InnerOptions>
struct stage_wise_options {};
template <>
struct stage_wise_options<FreezeOutOptions> {
  using type = StageWiseOptions;
};
template <>
struct stage_wise_options<LayerWiseOptions> {
  using type = StageWiseLayerWiseOptions;
};

template <class T>
struct is_stage_wise_inner : std::false_type {};
template <class Sp, class Sc>
struct is_stage_wise_inner<FreezeOut<Sp, Sc>> : std::true_type {};
template <class Sp>
struct is_stage_wise_inner<LayerWise<Sp>> : std::true_type {};

template <class Inner>
class StageWise {
  static_assert(is_stage_wise_inner<Inner>::value,
                "frost: StageWise wraps a FreezeOut-family schedule: "
                "StageWise<FreezeOut<Spacing, Scaling>> or StageWise<LayerWise<Spacing>>");

 public:
  using inner_type = Inner;
  using Options = typename stage_wise_options<typename Inner::Options>::type;

  static std::string name() { return "StageWise<" + Inner::name() + ">"; }

  static constexpr bool stateless = true;
  explicit StageWise(const Options& o = default_options()) : o_(o), inner_(o.inner()) {}
  static Options default_options() { return Options().inner(Inner::default_options()); }

  void setup(const ScheduleSetup& ss) {
    inner_.setup(ss);
    const double p = o_.p();
    frost::detail::require(std::isfinite(p), "schedule.p is ", p,
                           "; StageWise (SR-LR) needs a finite power p (0 = no reduction; the "
                           "thesis' best is 0.8)");
    frost::detail::require(!ss.stages.empty(),
                           "StageWise needs block stages: call blocks.stages({...}) with the "
                           "stage (1..S, input side first) of every block");
    frost::detail::require(static_cast<std::int64_t>(ss.stages.size()) == ss.num_blocks,
                           "StageWise got ", ss.stages.size(), " block stages for ",
                           ss.num_blocks, " blocks; give one stage per block");
    int S = 0;
    for (std::size_t i = 0; i < ss.stages.size(); ++i) {
      frost::detail::require(ss.stages[i] >= 1, "StageWise: block ", i, " has stage ",
                             ss.stages[i], "; stages are numbered from 1 at the input side");
      S = std::max(S, ss.stages[i]);
    }
    factor_.assign(ss.stages.size() + 1, 1.0);  // last entry: the head, factor 1
    for (std::size_t i = 0; i < ss.stages.size(); ++i)
      factor_[i] = std::pow(1.0 / static_cast<double>(S - ss.stages[i] + 1), p);
    num_stages_ = S;
  }

  double lr_scale(std::int64_t step, std::int64_t block) const {
    return inner_.lr_scale(step, block) * stage_factor(block);
  }
  bool frozen(std::int64_t step, std::int64_t block) const { return inner_.frozen(step, block); }

  /// f(s_i, S, p) (1 for kHead).
  double stage_factor(std::int64_t block) const {
    (void)inner_.t(block);  // checks the block index
    if (factor_.empty())
      frost::detail::fail("StageWise was used before a successful setup(); the controller calls "
                          "it for you");
    return block == kHead ? factor_.back() : factor_[static_cast<std::size_t>(block)];
  }
  /// t_i, as the inner schedule.
  double t(std::int64_t block) const { return inner_.t(block); }
  /// The block's initial multiplier: the inner s_i times f(s_i, S, p).
  double scale(std::int64_t block) const { return inner_.scale(block) * stage_factor(block); }
  int num_stages() const noexcept { return num_stages_; }
  const Inner& inner() const noexcept { return inner_; }
  const Options& options() const noexcept { return o_; }

 private:
  Options o_;
  Inner inner_;
  std::vector<double> factor_;
  int num_stages_ = 0;
};

}  // namespace frost::schedules
