#pragma once
// frost::cka — linear Centered Kernel Alignment (Kornblith et al., 2019), the
// representational similarity SmartFRZ labels its predictor's training data
// with (../shared/papers/smartfrz-attention-predictor-freezing.txt, §3.4,
// eq. 5):
//
//   CKA(X, Y) = ||Yc^T Xc||_F^2 / ( ||Xc^T Xc||_F * ||Yc^T Yc||_F )
//
// X is [n, p] and Y is [n, q]: the outputs of two layers on the same n inputs
// (extra dimensions are flattened after the first, so a [n, tokens, dim]
// transformer output or a [n, C, H, W] feature map is one row per input); Xc
// and Yc are centred per feature (column means removed). CKA is 1 for the same
// representation, invariant to orthogonal transforms and isotropic scaling of
// either input, and in [0, 1].
//
// Cost: every Frobenius norm is computed in whichever space is smaller: the
// n x n Gram matrices Kx = Xc Xc^T, Ky = Yc Yc^T give the same values
// (||Yc^T Xc||_F^2 = <Kx, Ky>_F, ||Xc^T Xc||_F = ||Kx||_F), so a probe batch of
// 256 rows against features of thousands of columns costs n^2 (p + q), not
// p^2 n, and a wide X against a narrow Y never builds a p x p matrix.
// Everything runs on the inputs' device in float64 (float32 inputs are
// converted first, so a float32 computation agrees with a float64 one to
// round-off of the inputs alone).
//
// One host read: the denominator and the inputs' spread are checked (a constant input has no
// variance and gives frost::Error instead of a NaN). CKA is an offline probe
// (the dataset generator), never in the per-step path.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (ATen.h alone lacks it in LibTorch 2.x)

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "frost/error.hpp"
#include "frost/host.hpp"

namespace frost {

/// Linear CKA of two feature matrices with the same number of rows, as a
/// 0-dim float64 tensor on their device. Throws frost::Error for different
/// row counts, fewer than 2 rows, an empty or non-floating input, inputs on
/// different devices, or a constant input (zero denominator).
inline at::Tensor cka(const at::Tensor& x, const at::Tensor& y) {
  detail::require(x.defined() && y.defined(), "cka: an input is an undefined tensor");
  detail::require(x.dim() >= 1 && y.dim() >= 1, "cka: inputs must have at least one dimension ",
                  "(rows = inputs), got ", x.dim(), "-d and ", y.dim(), "-d tensors");
  detail::require(x.is_floating_point() && y.is_floating_point(),
                  "cka: inputs must be floating point (got ", x.scalar_type(), " and ",
                  y.scalar_type(), "); convert the features with .to(torch::kFloat)");
  detail::require(x.device() == y.device(), "cka: inputs live on different devices (",
                  x.device(), " and ", y.device(), "); move one with .to()");
  const std::int64_t n = x.size(0);
  detail::require(n == y.size(0), "cka: X has ", n, " rows and Y has ", y.size(0),
                  "; both must be the outputs for the same inputs, one row each");
  detail::require(n >= 2, "cka: ", n, " row(s); centring needs at least 2 inputs");
  detail::require(x.numel() > 0 && y.numel() > 0, "cka: an input has no features (",
                  x.sizes(), " and ", y.sizes(), ")");
  at::NoGradGuard ng;
  auto xc = x.detach().reshape({n, -1}).to(at::kDouble);
  auto yc = y.detach().reshape({n, -1}).to(at::kDouble);
  const std::int64_t p = xc.size(1), q = yc.size(1);
  xc = xc - xc.mean(0, /*keepdim=*/true);
  yc = yc - yc.mean(0, /*keepdim=*/true);
  // Each norm in its own smaller space (||Xc^T Xc||_F = ||Xc Xc^T||_F), the
  // cross term from the cheaper of ||Yc^T Xc||_F^2 (n p q) and <Kx, Ky>_F
  // (n^2 (p + q), with the Gram matrices it needs).
  at::Tensor kx, ky;
  auto gram_x = [&] { return kx.defined() ? kx : (kx = at::mm(xc, xc.t())); };
  auto gram_y = [&] { return ky.defined() ? ky : (ky = at::mm(yc, yc.t())); };
  const at::Tensor nx = n <= p ? gram_x().norm() : at::mm(xc.t(), xc).norm();
  const at::Tensor ny = n <= q ? gram_y().norm() : at::mm(yc.t(), yc).norm();
  const double cost_feature = static_cast<double>(n) * p * q;
  const double cost_gram = static_cast<double>(n) * n * (p + q);
  const at::Tensor cross =
      cost_feature <= cost_gram ? at::mm(yc.t(), xc).pow(2).sum() : (gram_x() * gram_y()).sum();
  auto den = nx * ny;
  // One read: the denominator and each input's spread against its own scale.
  // A constant input centres to round-off, not exactly to 0 (0.1 - mean(0.1,
  // 0.1, 0.1) is 1e-17 in float64), so "constant" means a centred magnitude
  // within a few ulps of the input's magnitude.
  const auto v = host::read(at::stack({den, xc.abs().max(), x.detach().abs().max().to(at::kDouble),
                                       yc.abs().max(), y.detach().abs().max().to(at::kDouble)}));
  const double ulps = 64.0 * std::numeric_limits<double>::epsilon();
  const bool x_const = v[1] <= ulps * v[2], y_const = v[3] <= ulps * v[4];
  detail::require(v[0] > 0.0 && std::isfinite(v[0]) && !x_const && !y_const, "cka: ",
                  x_const ? "X" : (y_const ? "Y" : "an input"),
                  " is constant over its rows (zero variance) or not finite; CKA is undefined, "
                  "probe with inputs that differ");
  return cross / den;
}

}  // namespace frost
