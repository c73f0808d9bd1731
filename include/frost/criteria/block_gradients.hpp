#pragma once
// Shared machinery of the gradient-based criteria (GradientThreshold,
// GradientNormChange): per-block norms of one tensor per block parameter (this
// step's gradients, or GradientNormChange's accumulators), computed on the
// device with a number of kernels that does not grow with the number of
// parameter tensors, and no host synchronisation.
//
// grads() gives one entry per block parameter: the parameter's .grad() when
// its block trains and the gradient is defined (checking `.defined()` is host
// metadata), otherwise an undefined tensor, which counts as a zero gradient.
// norms() turns such a list into [num_blocks] float32 norms, L1 (sum of |g|
// over the block's parameters) or L2 (sqrt of the sum of g^2). Two ways,
// chosen in setup() from the parameters' device:
//
// CPU ("grouped"). LibTorch has no fused _foreach kernels on the CPU: its
// _foreach_norm runs one linalg_vector_norm per tensor (a dispatch each, ~2-4
// us), and the L1 norm itself takes a generic, non-vectorised reduction that is
// 15-30x slower than abs() + sum() over the same values (1.13 and 2.x). So the
// entries are grouped by shape (in setup, and again only when the set of
// defined entries changes), and per group of same-shaped tensors, in chunks of
// at most 2^18 values (1 MiB, so the chunk stays in cache between the three
// passes):
//
//   at::cat_out(scratch, members, 0)         // one copy (a lone member: abs_out / mul_out)
//   rows.abs_()  (L1) | rows.mul_(rows) (L2) // rows = scratch viewed [members, numel]
//   at::sum_out(sums.narrow(...), rows, {1}) // one sum per member, into its slot
//
// then per_block = sums.index_select(0, gather).view({B, maxP}).sum(1) (and a
// sqrt for L2), where `gather` maps block b's k-th parameter to its slot and
// absent entries to a trailing zero. A ViT has about ten distinct parameter
// shapes whatever its depth, so that is ~30 small ops per step instead of 2-4
// per tensor. The only memory is one 1 MiB scratch buffer and a [tensors]
// vector (no copy of the gradients is kept). On the CPU nothing here
// synchronises (no host read; building a layout's index is a host copy).
//
// Other devices (CUDA: "foreach"). The list, with a preallocated one-element
// zero for every absent entry plus a trailing zero, goes through
//
//   norms = at::_foreach_norm(list, ord)        // one fused kernel (1.13 and 2.x)
//   flat  = at::stack(norms)                    // [P + 1]
//   per_block = flat.index_select(0, gather)    // [B * maxP], padded with the trailing 0
//                   .view({B, maxP}).sum(1)     // L1: sum of norms; L2: sqrt(sum of squares)
//
// with a gather index built once in setup() on the parameters' device, so the
// list's shape never changes when blocks freeze or parameters go unused, and
// no host->device copy (a synchronising cudaMemcpy) happens while training.
// index_select + sum is used rather than index_add_ because it is
// deterministic on CUDA (index_add_ raises under
// at::globalContext().setDeterministicAlgorithms(true)).
//
// Both give the same statistic (the formulas above) up to float32 rounding.
//
// Precision: every statistic is computed and accumulated in float32 whatever
// the gradients' dtype. A gradient that is not float32 (bf16, fp16, float64)
// is converted to float32 before its norm (one conversion kernel per such
// tensor; nothing extra for float32 models): in fp16 the sum of |g| over a
// block overflows at 65504, and in bf16 the per-step norms keep only 3
// significant digits, which is below the changes the gradient-norm test
// compares.
//
// A block is observed while it trains (StepState::trains): blocks in trial or
// frozen have no gradient.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <utility>
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
  /// How norms() reduces (see the header comment); automatic: grouped on the
  /// CPU, foreach elsewhere. The others are for tests and measurements.
  enum class Path { automatic, grouped, foreach };

  /// Values per chunk of the grouped path (a larger tensor is a chunk alone).
  static constexpr std::int64_t kChunkValues = std::int64_t{1} << 18;

  void setup(const BlockMap& blocks, const std::string& who, Path path = Path::automatic) {
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
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto b = static_cast<std::size_t>(block_of_[i]);
      frost::detail::require(params_[i].device() == device_, who,
                             " needs every block parameter on one device: parameter '",
                             blocks[b].param_names[local_[i]], "' of block '",
                             blocks[b].name, "' is on ", params_[i].device().str(),
                             " but the first block parameter is on ", device_.str(),
                             "; move the model to one device before building the controller");
    }
    maxp_ = maxp;
    convert_.clear();
    bool floating = true;
    for (const auto& p : params_) {
      const bool f = at::isFloatingType(p.scalar_type());
      convert_.push_back(f && p.scalar_type() != at::kFloat);
      floating = floating && f;
    }
    // Complex parameters (no float32 conversion) keep the foreach path.
    grouped_ = path == Path::grouped || (path == Path::automatic && device_.is_cpu() && floating);
    plans_.clear();
    at::NoGradGuard ng;
    const auto P = static_cast<std::int64_t>(params_.size());
    zeros_.clear();
    if (!grouped_)  // placeholders of the foreach path
      for (std::int64_t i = 0; i <= P; ++i)
        zeros_.push_back(at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(device_)));
    // gather[b * maxp + k] = position (in the list) of block b's k-th parameter;
    // the padding points at the trailing zero.
    std::vector<std::int64_t> gather(static_cast<std::size_t>(nb_ * maxp_), P);
    std::vector<std::int64_t> fill(static_cast<std::size_t>(nb_), 0);
    for (std::int64_t i = 0; i < P; ++i) {
      const auto b = block_of_[static_cast<std::size_t>(i)];
      gather[static_cast<std::size_t>(b * maxp_ + fill[static_cast<std::size_t>(b)]++)] = i;
    }
    // One host->device copy, here in setup, never while training.
    gather_ = at::tensor(gather, at::TensorOptions().dtype(at::kLong)).to(device_);
  }

  std::int64_t num_blocks() const noexcept { return nb_; }
  std::size_t num_params() const noexcept { return params_.size(); }
  std::int64_t block_of(std::size_t i) const { return block_of_[i]; }
  const at::Tensor& param(std::size_t i) const { return params_[i]; }
  const at::Device& device() const noexcept { return device_; }
  double numel(std::size_t b) const { return static_cast<double>(numel_[b]); }
  /// Whether norms() takes the grouped (CPU) path.
  bool grouped() const noexcept { return grouped_; }

  /// Whether block b trains (neither in trial nor frozen).
  static bool active(const StepState& s, std::size_t b) {
    return s.trains(static_cast<std::int64_t>(b));
  }

  /// This step's list, one entry per block parameter: the defined gradient of
  /// a training block (as float32 when it is another dtype), an undefined
  /// tensor elsewhere. `had_grad[b]` is set when block b has at least one
  /// defined gradient. Host metadata only (plus the dtype conversions).
  std::vector<at::Tensor> grads(const StepState& s, std::vector<char>& had_grad,
                                const std::string& who) const {
    std::vector<at::Tensor> list(params_.size());
    std::fill(had_grad.begin(), had_grad.end(), 0);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto b = static_cast<std::size_t>(block_of_[i]);
      if (!active(s, b)) continue;
      const at::Tensor& g = params_[i].grad();
      if (!g.defined()) continue;
      // Checked with plain ifs: the messages' strings must not be built
      // every step for every parameter.
      if (g.device() != device_)
        frost::detail::fail(who, ": a gradient is on ", g.device().str(),
                            " but the criterion was set up on ", device_.str(),
                            "; move the model before building the controller, not after");
      if (g.is_sparse())
        frost::detail::fail(who, ": sparse gradients are not supported (an Embedding with "
                                 "sparse=true?); leave that module out of the block map");
      list[i] = convert_[i] ? g.to(at::kFloat) : g;
      had_grad[b] = 1;
    }
    return list;
  }

  /// Per-block norms ([num_blocks], float32, on the device, a new tensor) of a
  /// list built like grads() (one float32 entry per block parameter, shaped
  /// like it; undefined = zero): L1 adds the entries' sums of |x|, L2 takes
  /// sqrt of the sum of the entries' sums of x^2.
  at::Tensor norms(const std::vector<at::Tensor>& list, criteria::GradNorm kind) const {
    frost::detail::require(list.size() == params_.size(), "BlockGradients::norms: ", list.size(),
                           " entries for ", params_.size(), " parameters");
    at::NoGradGuard ng;
    return grouped_ ? grouped(list, kind) : foreach(list, kind);
  }

 private:
  // --- grouped path (CPU) ---------------------------------------------------
  struct Chunk {
    std::vector<std::size_t> members;  // list positions, all of one shape
    at::Tensor in;    // scratch shaped like the members concatenated on dim 0 (one: its shape)
    at::Tensor rows;  // the same values as [members, numel]
    at::Tensor out;   // the members' slots in Plan::sums
  };
  // The layout for one set of defined entries.
  struct Plan {
    std::vector<char> present;
    std::vector<Chunk> chunks;
    at::Tensor sums;    // [defined entries + 1], the last one stays 0
    at::Tensor gather;  // [B * maxP] slots in sums (absent parameters: the trailing 0)
  };

  Plan make_plan(std::vector<char> present) const {
    Plan plan;
    plan.present = std::move(present);
    const auto opts = at::TensorOptions().dtype(at::kFloat).device(device_);
    // Same-shaped entries, in order of first appearance; 0-d ones alone (cat
    // takes no 0-d tensors).
    std::vector<std::vector<std::size_t>> groups;
    std::map<std::vector<std::int64_t>, std::size_t> where;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (!plan.present[i]) continue;
      const auto sizes = params_[i].sizes().vec();
      if (sizes.empty()) {
        groups.push_back({i});
        continue;
      }
      auto it = where.find(sizes);
      if (it == where.end()) {
        where.emplace(sizes, groups.size());
        groups.push_back({i});
      } else {
        groups[it->second].push_back(i);
      }
    }
    for (const auto& g : groups) {
      const std::int64_t n = params_[g.front()].numel();
      Chunk c;
      for (std::size_t i : g) {
        if (!c.members.empty() &&
            static_cast<std::int64_t>(c.members.size() + 1) * n > kChunkValues) {
          plan.chunks.push_back(std::move(c));
          c = Chunk();
        }
        c.members.push_back(i);
      }
      plan.chunks.push_back(std::move(c));
    }
    std::int64_t scratch = 1, slots = 0;
    for (const auto& c : plan.chunks) {
      scratch = std::max<std::int64_t>(
          scratch, static_cast<std::int64_t>(c.members.size()) * params_[c.members.front()].numel());
      slots += static_cast<std::int64_t>(c.members.size());
    }
    at::Tensor buf = at::empty({scratch}, opts);
    plan.sums = at::zeros({slots + 1}, opts);
    std::vector<std::int64_t> slot(params_.size(), slots);  // absent: the trailing zero
    std::int64_t off = 0;
    for (auto& c : plan.chunks) {
      const auto k = static_cast<std::int64_t>(c.members.size());
      const auto& p = params_[c.members.front()];
      const std::int64_t n = p.numel();
      auto shape = p.sizes().vec();
      if (k > 1) shape[0] *= k;
      c.in = buf.narrow(0, 0, k * n).view(shape);
      c.rows = buf.narrow(0, 0, k * n).view({k, n});
      c.out = plan.sums.narrow(0, off, k);
      for (std::int64_t j = 0; j < k; ++j) slot[c.members[static_cast<std::size_t>(j)]] = off + j;
      off += k;
    }
    std::vector<std::int64_t> gather(static_cast<std::size_t>(nb_ * maxp_), slots);
    std::vector<std::int64_t> fill(static_cast<std::size_t>(nb_), 0);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto b = static_cast<std::size_t>(block_of_[i]);
      gather[static_cast<std::size_t>(block_of_[i] * maxp_ + fill[b]++)] = slot[i];
    }
    plan.gather = at::tensor(gather, at::TensorOptions().dtype(at::kLong)).to(device_);
    return plan;
  }

  // The plan for this list's defined entries: the last two are kept (the
  // gradients' and, in GradientNormChange exact, the accumulators'), a new one
  // is made when blocks freeze or come back, or a parameter starts or stops
  // getting a gradient.
  Plan& plan_for(const std::vector<at::Tensor>& list) const {
    present_.resize(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) present_[i] = list[i].defined() ? 1 : 0;
    for (std::size_t k = 0; k < plans_.size(); ++k)
      if (plans_[k].present == present_) {
        if (k != 0) std::swap(plans_[0], plans_[k]);
        return plans_[0];
      }
    plans_.insert(plans_.begin(), make_plan(present_));
    if (plans_.size() > 2) plans_.pop_back();
    return plans_[0];
  }

  at::Tensor grouped(const std::vector<at::Tensor>& list, criteria::GradNorm kind) const {
    Plan& plan = plan_for(list);
    const bool l1 = kind == criteria::GradNorm::l1;
    const std::int64_t dim1[] = {1};
    for (auto& c : plan.chunks) {
      if (c.members.size() == 1) {
        const at::Tensor& t = list[c.members.front()];
        if (l1)
          at::abs_out(c.in, t);
        else
          at::mul_out(c.in, t, t);
      } else {
        cat_.clear();
        for (std::size_t i : c.members) cat_.push_back(list[i]);
        at::cat_out(c.in, cat_, 0);
        cat_.clear();
        if (l1)
          c.rows.abs_();
        else
          c.rows.mul_(c.rows);
      }
      at::sum_out(c.out, c.rows, at::IntArrayRef(dim1));
    }
    at::Tensor m = plan.sums.index_select(0, plan.gather).view({nb_, maxp_}).sum(1);
    return l1 ? m : m.sqrt();
  }

  // --- foreach path (CUDA and other devices) --------------------------------
  at::Tensor foreach(const std::vector<at::Tensor>& list, criteria::GradNorm kind) const {
    std::vector<at::Tensor> full;
    full.reserve(list.size() + 1);
    for (std::size_t i = 0; i < list.size(); ++i)
      full.push_back(list[i].defined() ? list[i] : zeros_[i]);
    full.push_back(zeros_.back());
    const double ord = kind == criteria::GradNorm::l1 ? 1.0 : 2.0;
    at::Tensor flat = at::stack(at::_foreach_norm(full, ord)).to(at::kFloat);
    at::Tensor m = flat.index_select(0, gather_).view({nb_, maxp_});
    return kind == criteria::GradNorm::l1 ? m.sum(1) : m.mul(m).sum(1).sqrt();
  }

  std::int64_t nb_ = 0;
  std::int64_t maxp_ = 1;
  std::vector<at::Tensor> params_;
  std::vector<std::int64_t> block_of_;
  std::vector<std::size_t> local_;  // index of each parameter inside its block
  std::vector<std::int64_t> numel_;
  std::vector<char> convert_;       // per parameter: floating but not float32, converted first
  bool grouped_ = false;
  // foreach path
  std::vector<at::Tensor> zeros_;   // float32 placeholders, one per parameter + the tail
  at::Tensor gather_;
  // grouped path
  mutable std::vector<Plan> plans_;      // most recently used first
  mutable std::vector<char> present_;    // scratch
  mutable std::vector<at::Tensor> cat_;  // scratch
  at::Device device_{at::kCPU};
};

/// One step's gradients as a gradient criterion took them in observe()
/// (right after the backward, the raw gradients), held until the step
/// completes (commit(), from the controller's after_step()) or is abandoned
/// (drop(), from ctl.abort_step()). An abandoned step (an exception from the
/// optimizer step, an infinite gradient found by clipping's norm after
/// after_backward()) so leaves no trace: the run decides as one without that
/// step, bit for bit, and an infinite gradient never reaches a window.
/// Per-block norms are staged as they are ([num_blocks], new tensors); a
/// per-parameter accumulator (GradientNormChange's exact mode) as its next
/// value, accumulator + gradient computed out of place, which replaces it at
/// commit: the arithmetic of an in-place add, for one more accumulator's
/// memory between after_backward() and after_step().
struct StagedGradients {
  bool pending = false;
  std::vector<char> had;              ///< per block: it had a gradient this step
  at::Tensor block_sums;              ///< [num_blocks] this step's norms (or undefined)
  std::vector<std::size_t> which;     ///< accumulators replaced at commit ...
  std::vector<at::Tensor> next;       ///< ... by these

  void drop() {
    pending = false;
    block_sums = at::Tensor();
    which.clear();
    next.clear();
  }
  /// A block that changes state between the observation and the step's end
  /// (ctl.freeze() by hand, mid-step) keeps none of this step's gradients.
  void forget_block(std::size_t b, const BlockGradients& bg) {
    if (!pending || b >= had.size()) return;
    had[b] = 0;
    if (block_sums.defined()) block_sums.select(0, static_cast<std::int64_t>(b)).zero_();
    for (std::size_t j = 0; j < which.size();)
      if (static_cast<std::size_t>(bg.block_of(which[j])) == b) {
        which.erase(which.begin() + static_cast<std::ptrdiff_t>(j));
        next.erase(next.begin() + static_cast<std::ptrdiff_t>(j));
      } else {
        ++j;
      }
  }
  /// Takes the step in: each block's step count, the block norms into
  /// `block_acc`, the staged accumulators into `acc`. Then nothing is staged.
  void commit(std::vector<std::int64_t>& steps, at::Tensor* block_acc,
              std::vector<at::Tensor>* acc) {
    if (!pending) return;
    for (std::size_t b = 0; b < had.size() && b < steps.size(); ++b) steps[b] += had[b];
    at::NoGradGuard ng;
    if (block_sums.defined() && block_acc != nullptr) block_acc->add_(block_sums);
    if (acc != nullptr)
      for (std::size_t j = 0; j < which.size(); ++j) (*acc)[which[j]] = std::move(next[j]);
    drop();
  }
};

/// min_epochs (both gradient criteria): decisions wait until `min_epochs`
/// epochs of `steps_per_epoch` steps are done. An epoch needs a length, so
/// min_epochs > 0 with steps_per_epoch 0 (unknown) is refused rather than
/// silently doing nothing.
inline void require_epoch_length(const char* criterion, double min_epochs,
                                 std::int64_t steps_per_epoch) {
  require(min_epochs == 0.0 || steps_per_epoch > 0, criterion, ": criterion.min_epochs is ",
          min_epochs,
          " but controller.steps_per_epoch is 0 (unknown), so an epoch has no length; set "
          "controller.steps_per_epoch (e.g. ControllerOptions().epochs(epochs, "
          "batches_per_epoch)) or criterion.min_epochs(0) to decide from the first evaluation");
}
/// Whether min_epochs still holds decisions back at `step`.
inline bool held_by_min_epochs(std::int64_t step, double min_epochs,
                               std::int64_t steps_per_epoch) {
  return static_cast<double>(step + 1) <
         min_epochs * static_cast<double>(steps_per_epoch) - 1e-9;
}

}  // namespace frost::detail
