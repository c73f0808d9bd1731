#pragma once
// schedules::LayerWise<Spacing> — Layer-wise Reduction of Learning Rate (LR-LR,
// thesis §3.5.2): FreezeOut with the scaling of eq. 6 generalised to a power,
//
//   alpha_i(0) = alpha / t_i^p,   i.e.  s_i = t_i^(-p)
//
// so p = 1 is FreezeOut<Spacing, Scaled> and p = 0 is FreezeOut<Spacing, Unscaled>;
// 0 < p < 1 lowers the early (input-side) blocks' rates below eq. 6 regardless
// of stage. Freezing times, warm-up and the cosine are FreezeOut's (see
// freezeout.hpp). The head (t = 1) keeps multiplier 1 for every p.
//
// Default p = 0.7: the best value the thesis reports for LR-LR alone (Table 15,
// 85.82% top-1 on IN-100 with Cubic spacing, t0 = 0.8; the thesis only says
// LR-LR beat plain ViTFreeze, i.e. p = 1). Set p = 1 to recover Scaled.
#include <cmath>
#include <cstdint>
#include <string>

#include "frost/concepts/schedule.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"
#include "frost/schedules/freezeout.hpp"
#include "frost/schedules/spacing.hpp"

namespace frost::schedules {

struct LayerWiseOptions {
  FROST_OPTIONS(
      /// As FreezeOut's t0: linear freezing time of the first block, in (0, 1],
      /// or 0 for the spacing's default (0.5 Linear, 0.8 Cubic).
      (double, t0, 0.0),
      /// The power p in s_i = t_i^(-p) (1 = FreezeOut's Scaled, 0 = Unscaled).
      (double, p, 0.7));
};

template <class Spacing>
class LayerWise : public frost::detail::FreezeOutFamily<LayerWiseOptions> {
  static_assert(is_spacing_v<Spacing>,
                "frost: LayerWise's parameter must be frost::Linear or frost::Cubic");

 public:
  using Options = LayerWiseOptions;
  using spacing_type = Spacing;

  static std::string name() { return std::string("LayerWise<") + Spacing::name + ">"; }

  explicit LayerWise(const Options& o = default_options()) : FreezeOutFamily(o) {}
  static Options default_options() { return Options().t0(Spacing::default_t0); }

  void setup(const ScheduleSetup& ss) {
    const double p = o_.p();
    frost::detail::require(std::isfinite(p), "schedule.p is ", p,
                           "; LayerWise (LR-LR) needs a finite power p (1 = FreezeOut's scaled "
                           "rates, 0 = unscaled; the thesis' best is 0.7)");
    rule_.setup(ss, o_.t0() == 0.0 ? Spacing::default_t0 : o_.t0(), "LayerWise", &Spacing::apply,
                [p](double t) { return std::pow(t, -p); });
  }
  // lr_scale, frozen, t (t_i), scale (s_i = t_i^(-p)), options: FreezeOutFamily.
};

}  // namespace frost::schedules
