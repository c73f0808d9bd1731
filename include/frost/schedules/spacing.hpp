#pragma once
// The two knobs of FreezeOut (thesis §3.2), as tag types:
//
//   spacing  t_i = g(u_i), u_i = t0 + (1 - t0) * i / B   (when block i stops training)
//     frost::Linear   g(u) = u
//     frost::Cubic    g(u) = u^3   ("t_{i,cubed} = t_{i,linear}^3": keeps the later,
//                                  output-side blocks training for longer)
//   scaling  s_i = h(t_i)                                (initial lr multiplier, alpha_i(0)/alpha)
//     frost::Scaled   h(t) = 1 / t   (eq. 6: every block's cosine integrates to the same
//                                  area, i.e. the same distance in weight space)
//     frost::Unscaled h(t) = 1
//
// Each tag carries a static `name` (for FreezeOut's name(), e.g. "FreezeOut<Cubic,Scaled>")
// and a static `apply` (the function above). The traits is_spacing / is_scaling
// let the schedules reject anything else with a readable static_assert instead
// of a page of template errors.
#include <cmath>
#include <type_traits>

namespace frost {

/// t_i = u_i: freezing times spaced evenly between t0 and 1.
struct Linear {
  static constexpr const char* name = "Linear";
  /// FreezeOut's t0 default with linear spacing: 0.5 (FreezeOut README, the
  /// ViTFreeze code, SmartFRZ's appendix).
  static constexpr double default_t0 = 0.5;
  static double apply(double u) noexcept { return u; }
};

/// t_i = u_i^3 (t0 = 0.8 gives a first freezing time of 0.512). std::pow, as
/// the original FreezeOut code's `x**3`, so freezing steps match it exactly.
struct Cubic {
  static constexpr const char* name = "Cubic";
  /// FreezeOut's t0 default with cubic spacing: 0.8 (the thesis; first block
  /// freezes at 0.8^3 = 0.512).
  static constexpr double default_t0 = 0.8;
  static double apply(double u) noexcept { return std::pow(u, 3.0); }
};

/// s_i = 1 / t_i (thesis eq. 6).
struct Scaled {
  static constexpr const char* name = "Scaled";
  static double apply(double t) noexcept { return 1.0 / t; }
};

/// s_i = 1: every block starts at the base learning rate.
struct Unscaled {
  static constexpr const char* name = "Unscaled";
  static double apply(double) noexcept { return 1.0; }
};

/// True for the spacing tags (Linear, Cubic).
template <class T>
struct is_spacing : std::false_type {};
template <>
struct is_spacing<Linear> : std::true_type {};
template <>
struct is_spacing<Cubic> : std::true_type {};
template <class T>
inline constexpr bool is_spacing_v = is_spacing<T>::value;

/// True for the scaling tags (Scaled, Unscaled).
template <class T>
struct is_scaling : std::false_type {};
template <>
struct is_scaling<Scaled> : std::true_type {};
template <>
struct is_scaling<Unscaled> : std::true_type {};
template <class T>
inline constexpr bool is_scaling_v = is_scaling<T>::value;

}  // namespace frost
