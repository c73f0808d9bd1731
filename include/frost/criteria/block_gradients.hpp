#pragma once
// Shared machinery of the gradient-based criteria (GradientThreshold,
// GradientNormChange): per-block gradient norms computed on the device with a
// fixed number of fused kernels per step and no host synchronisation.
//
// Every step the criterion builds one list with an entry per block parameter:
// the parameter's .grad() when its block is active and the gradient is defined
// (checking `.defined()` is host metadata), otherwise a preallocated
// one-element zero tensor (an undefined gradient *is* a zero gradient), plus a
// trailing zero. Then
//
//   norms = at::_foreach_norm(list, ord)        // one fused kernel (1.13 and 2.x)
//   flat  = at::stack(norms)                    // [P + 1]
//   per_block = flat.index_select(0, gather)    // [B * maxP], padded with the trailing 0
//                   .view({B, maxP}).sum(1)     // L1: sum of norms; L2: sqrt(sum of squares)
//
// The gather index is built once in setup() and stays on the parameters'
// device, so the list's shape never changes when blocks freeze or parameters
// go unused, and no host->device copy (a synchronising cudaMemcpy) happens
// while training. index_select + sum is used rather than index_add_ because
// it is deterministic on CUDA (index_add_ raises under
// at::globalContext().setDeterministicAlgorithms(true)).
//
// Precision: every statistic is computed and accumulated in float32 whatever
// the gradients' dtype. A bf16/fp16 gradient is converted to float32 before
// its norm (one conversion kernel per such tensor; nothing extra for float32
// models): in fp16 the sum of |g| over a block overflows at 65504, and in bf16
// the per-step norms keep only 3 significant digits, which is below the
// changes the gradient-norm test compares. The placeholders are float32 too.
//
// A block is observed while it trains (StepState::trains): blocks in trial or
// frozen have no gradient.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/concepts/criterion.hpp"
#include "frost/error.hpp"

namespace frost::criteria {

/// Which norm of a block's gradient a criterion takes.
enum class GradNorm {
  l1,  ///< sum of |g| over the block's parameters (AutoFreeze's code)
  l2,  ///< Euclidean norm over all the block's parameters
};
inline const char* to_string(GradNorm n) { return n == GradNorm::l1 ? "l1" : "l2"; }
inline bool from_string(const std::string& s, GradNorm& n) {
  if (s == "l1" || s == "L1" || s == "1") return (n = GradNorm::l1), true;
  if (s == "l2" || s == "L2" || s == "2") return (n = GradNorm::l2), true;
  return false;
}

}  // namespace frost::criteria

// (in frost::detail, not frost::criteria::detail: a nested `detail` namespace
// would hide frost::detail::require from the other criteria)
namespace frost::detail {

class BlockGradients {
 public:
  void setup(const BlockMap& blocks, const std::string& who) {
    nb_ = static_cast<std::int64_t>(blocks.size());
    params_.clear();
    block_of_.clear();
    numel_.assign(blocks.size(), 0);
    std::int64_t maxp = 1;
    local_.clear();
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      maxp = std::max<std::int64_t>(maxp, static_cast<std::int64_t>(blocks[b].params.size()));
      for (std::size_t k = 0; k < blocks[b].params.size(); ++k) {
        const at::Tensor& p = blocks[b].params[k];
        local_.push_back(k);
        params_.push_back(p);
        block_of_.push_back(static_cast<std::int64_t>(b));
        numel_[b] += p.numel();
      }
    }
    frost::detail::require(!params_.empty(), who, ": the block map has no parameters");
    device_ = params_.front().device();
    uniform_ = true;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto b = static_cast<std::size_t>(block_of_[i]);
      frost::detail::require(params_[i].device() == device_, who,
                             " needs every block parameter on one device: parameter '",
                             blocks[b].param_names[local_[i]], "' of block '",
                             blocks[b].name, "' is on ", params_[i].device().str(),
                             " but the first block parameter is on ", device_.str(),
                             "; move the model to one device before building the controller");
    }
    at::NoGradGuard ng;
    zeros_.clear();
    low_.clear();
    for (const auto& p : params_) {
      low_.push_back(p.scalar_type() == at::kHalf || p.scalar_type() == at::kBFloat16);
      if (p.scalar_type() != at::kFloat) uniform_ = false;
      zeros_.push_back(at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(device_)));
    }
    zeros_.push_back(at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(device_)));
    // gather[b * maxp + k] = position (in the list) of block b's k-th parameter;
    // the padding points at the trailing zero.
    const auto P = static_cast<std::int64_t>(params_.size());
    std::vector<std::int64_t> gather(static_cast<std::size_t>(nb_ * maxp), P);
    std::vector<std::int64_t> fill(static_cast<std::size_t>(nb_), 0);
    for (std::int64_t i = 0; i < P; ++i) {
      const auto b = block_of_[static_cast<std::size_t>(i)];
      gather[static_cast<std::size_t>(b * maxp + fill[static_cast<std::size_t>(b)]++)] = i;
    }
    maxp_ = maxp;
    // One host->device copy, here in setup, never while training.
    gather_ = at::tensor(gather, at::TensorOptions().dtype(at::kLong)).to(device_);
  }

  std::int64_t num_blocks() const noexcept { return nb_; }
  std::size_t num_params() const noexcept { return params_.size(); }
  std::int64_t block_of(std::size_t i) const { return block_of_[i]; }
  const at::Tensor& param(std::size_t i) const { return params_[i]; }
  const at::Tensor& zero(std::size_t i) const { return zeros_[i]; }
  /// The trailing zero entry of every list.
  const at::Tensor& tail() const { return zeros_.back(); }
  const at::Device& device() const noexcept { return device_; }
  double numel(std::size_t b) const { return static_cast<double>(numel_[b]); }

  /// Whether block b trains (neither in trial nor frozen).
  static bool active(const StepState& s, std::size_t b) {
    return s.trains(static_cast<std::int64_t>(b));
  }

  /// This step's list: defined gradients of training blocks (as float32 when
  /// they are bf16/fp16), zeros elsewhere, and the trailing zero.
  /// `had_grad[b]` is set when block b has at least one defined gradient.
  /// Host metadata only (plus the conversions of low-precision gradients).
  std::vector<at::Tensor> grads(const StepState& s, std::vector<char>& had_grad,
                                const std::string& who) const {
    std::vector<at::Tensor> list;
    list.reserve(params_.size() + 1);
    std::fill(had_grad.begin(), had_grad.end(), 0);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto b = static_cast<std::size_t>(block_of_[i]);
      const at::Tensor& g = params_[i].grad();
      if (active(s, b) && g.defined()) {
        // Checked with plain ifs: the messages' strings must not be built
        // every step for every parameter.
        if (g.device() != device_)
          frost::detail::fail(who, ": a gradient is on ", g.device().str(),
                              " but the criterion was set up on ", device_.str(),
                              "; move the model before building the controller, not after");
        if (g.is_sparse())
          frost::detail::fail(who, ": sparse gradients are not supported (an Embedding with "
                                   "sparse=true?); leave that module out of the block map");
        list.push_back(low_[i] ? g.to(at::kFloat) : g);
        had_grad[b] = 1;
      } else {
        list.push_back(zeros_[i]);
      }
    }
    list.push_back(zeros_.back());
    return list;
  }

  /// Whether parameter i is bf16/fp16 (its gradient is converted to float32).
  bool low_precision(std::size_t i) const { return low_[i] != 0; }

  /// Per-block norms (float32, [num_blocks], on the device) from per-entry
  /// norms of a list built like grads(): L1 adds the entries' L1 norms, L2
  /// takes sqrt of the sum of the entries' squared L2 norms.
  at::Tensor per_block(const std::vector<at::Tensor>& norms, criteria::GradNorm kind) const {
    at::Tensor flat;
    if (uniform_) {
      flat = at::stack(norms).to(at::kFloat);
    } else {
      std::vector<at::Tensor> f;
      f.reserve(norms.size());
      for (const auto& n : norms) f.push_back(n.to(at::kFloat));
      flat = at::stack(f);
    }
    at::Tensor m = flat.index_select(0, gather_).view({nb_, maxp_});
    return kind == criteria::GradNorm::l1 ? m.sum(1) : m.mul(m).sum(1).sqrt();
  }

 private:
  std::int64_t nb_ = 0;
  std::int64_t maxp_ = 1;
  std::vector<at::Tensor> params_;
  std::vector<std::int64_t> block_of_;
  std::vector<std::size_t> local_;  // index of each parameter inside its block
  std::vector<std::int64_t> numel_;
  std::vector<at::Tensor> zeros_;  // float32 placeholders, one per parameter + the tail
  std::vector<char> low_;          // per parameter: bf16/fp16, converted before its norm
  at::Tensor gather_;
  at::Device device_{at::kCPU};
  bool uniform_ = true;
};

}  // namespace frost::detail
