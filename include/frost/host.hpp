#pragma once
// The one door between device statistics and the host.
//
// Policies keep their per-step statistics in device tensors (next to the
// gradients) and read them on the host only at the decision points the user
// configured. Every such read goes through these functions, which count them,
// so that a test can prove that the count does not move between decision
// points (on CUDA a host read is a device synchronisation; see
// docs/benchmarks.md and tests/test_criteria.cpp).
#include <ATen/core/Tensor.h>

#include <atomic>
#include <cstdint>
#include <vector>

namespace frost::host {

namespace detail {
inline std::atomic<std::int64_t>& counter() {
  static std::atomic<std::int64_t> c{0};
  return c;
}
}  // namespace detail

/// Number of host reads (device→host copies of statistics) made so far by the
/// library in this process.
inline std::int64_t reads() { return detail::counter().load(std::memory_order_relaxed); }

/// Copies a device tensor of any shape to the host as doubles (one transfer).
inline std::vector<double> read(const at::Tensor& t) {
  detail::counter().fetch_add(1, std::memory_order_relaxed);
  at::Tensor h = t.detach().to(at::kCPU, at::kDouble).contiguous().reshape({-1});
  const double* p = h.data_ptr<double>();
  return std::vector<double>(p, p + h.numel());
}

/// Copies a one-element device tensor to the host.
inline double read_scalar(const at::Tensor& t) {
  detail::counter().fetch_add(1, std::memory_order_relaxed);
  return t.detach().to(at::kCPU, at::kDouble).item<double>();
}

}  // namespace frost::host
