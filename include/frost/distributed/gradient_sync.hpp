#pragma once
// frost::dist::GradientSync — data-parallel gradient averaging that knows what
// is frozen. LibTorch has no C++ DistributedDataParallel; this is the part of
// it a freezing trainer needs, on c10d collectives (frost::dist::Group):
//
//   auto group = frost::dist::init();                // torchrun's environment
//   frost::dist::GradientSync sync(*model);          // broadcasts rank 0's weights
//   ...
//   loss.backward();
//   sync.synchronize();                              // before the controller and the step
//   ctl.after_backward();
//   opt.step();
//
// * Only parameters that require a gradient are communicated: blocks the
//   controller froze, or holds in trial, cost no bytes at all. Parameters
//   outside the block map (a head, embeddings) are communicated like any other.
// * Gradients go in flat buckets (reverse registration order, about the order
//   backward produces them; `bucket_cap_mb` each, DDP's 25 MB by default) and
//   are all-reduced and averaged. When a parameter starts or stops requiring a
//   gradient, the buckets are rebuilt on the next step; the model is never
//   re-wrapped. Every rebuild checks with one all-gather that all ranks built
//   the same buckets (ranks that froze different blocks fail, named).
// * With `overlap` (default), a hook on each parameter's gradient accumulator
//   marks it ready during backward; a full bucket is launched at once (in
//   bucket order, the same on every rank) while backward goes on, and
//   synchronize() only waits for the rest. Without it, synchronize() launches
//   every bucket after backward.
// * A parameter that requires a gradient but got none on this rank this step
//   counts as zeros (as DDP's find_unused_parameters): every rank must send the
//   same buckets; after synchronize() its gradient is the sum over the ranks
//   divided by their number, as for every other parameter.
// * Two backward passes before one synchronize() without no_sync() (the hooks
//   already sent the first pass's buckets) are detected: synchronize() then
//   sends every bucket again with the accumulated gradients, so the result is
//   right; no_sync() avoids paying twice.
// * `communicate_frozen = true` all-reduces every parameter, zeros for frozen
//   ones: what DDP with find_unused_parameters does; kept as the baseline of
//   benchmarks/bench_distributed.cpp. Frozen parameters get no gradient back
//   (an optimizer with momentum or weight decay would move them).
// * Gradient accumulation over several backward passes: hold
//   `auto guard = sync.no_sync();` over all but the last one (as DDP's no_sync).
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "frost/distributed/group.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"

namespace frost::dist {

struct GradientSyncOptions {
  FROST_OPTIONS(
      /// Size of one bucket (one all-reduce); DDP's default.
      (double, bucket_cap_mb, 25.0),
      /// Launch each bucket from backward as soon as its gradients are ready.
      (bool, overlap, true),
      /// Baseline only: all-reduce every parameter, frozen ones as zeros.
      (bool, communicate_frozen, false),
      /// Copy rank 0's parameters and buffers to every rank at construction.
      (bool, broadcast_parameters, true));
};

namespace detail {

/// FNV-1a over 64-bit words: a fingerprint of a layout, compared across ranks.
inline std::int64_t fingerprint(const std::vector<std::int64_t>& words) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const auto w : words) {
    h ^= static_cast<std::uint64_t>(w);
    h *= 1099511628211ULL;
  }
  return static_cast<std::int64_t>(h >> 1);
}

}  // namespace detail

/// Copies rank 0's parameters and buffers of `model` to every rank (one
/// broadcast per dtype), after checking that every rank holds the same
/// architecture (count, shapes).
inline void broadcast_parameters(Group& g, torch::nn::Module& model) {
  if (g.size() == 1) return;
  std::vector<at::Tensor> ts = model.parameters(true);
  for (auto& b : model.buffers(true)) ts.push_back(b);
  std::vector<std::int64_t> shape_words;
  std::int64_t total = 0;
  for (const auto& t : ts) {
    shape_words.push_back(t.dim());
    for (const auto s : t.sizes()) shape_words.push_back(s);
    total += t.numel();
  }
  g.agree({static_cast<std::int64_t>(ts.size()), total, detail::fingerprint(shape_words)},
                [](const std::vector<std::int64_t>& v) {
                  return "holds " + std::to_string(v[0]) + " parameters and buffers with " +
                         std::to_string(v[1]) + " values (shape fingerprint " +
                         std::to_string(v[2]) + ")";
                },
                "every rank must build the same model");
  at::NoGradGuard ng;
  // One flat tensor per (dtype, device): few collectives whatever the model.
  std::vector<bool> done(ts.size(), false);
  for (std::size_t i = 0; i < ts.size(); ++i) {
    if (done[i]) continue;
    std::vector<std::size_t> same;
    for (std::size_t j = i; j < ts.size(); ++j)
      if (!done[j] && ts[j].scalar_type() == ts[i].scalar_type() &&
          ts[j].device() == ts[i].device()) {
        same.push_back(j);
        done[j] = true;
      }
    std::vector<at::Tensor> flat_parts;
    for (const auto j : same) flat_parts.push_back(ts[j].reshape({-1}));
    std::vector<at::Tensor> flat{at::cat(flat_parts).to(g.device())};
    g.broadcast_(flat, 0);
    std::int64_t off = 0;
    for (const auto j : same) {
      ts[j].copy_(flat[0].narrow(0, off, ts[j].numel()).view(ts[j].sizes()));
      off += ts[j].numel();
    }
  }
}

class GradientSync {
 public:
  using Options = GradientSyncOptions;

  /// Averages the gradients of `model`'s parameters over `group` (by default
  /// the one frost::dist::init made). Broadcasts rank 0's parameters and
  /// buffers first unless the options say not to.
  explicit GradientSync(torch::nn::Module& model, std::shared_ptr<Group> group = default_group(),
                        const Options& options = {})
      : group_(std::move(group)), options_(options) {
    frost::detail::require(group_ != nullptr,
                           "GradientSync: no process group; call frost::dist::init() first (or "
                           "give the group)");
    frost::detail::require(options_.bucket_cap_mb() > 0, "GradientSync: bucket_cap_mb is ",
                           options_.bucket_cap_mb(), "; give a positive size in MiB");
    params_ = model.parameters(true);
    if (options_.broadcast_parameters()) broadcast_parameters(*group_, model);
    hook_keys_.assign(params_.size(), 0);
    accumulators_.resize(params_.size());
    seen_.assign(params_.size(), 0);
    std::lock_guard<std::mutex> lock(mutex_);
    ensure_layout();  // the first buckets (and hooks) before the first backward
  }

  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  ~GradientSync() {
    for (std::size_t i = 0; i < accumulators_.size(); ++i)
      if (accumulators_[i]) accumulators_[i]->del_post_hook(hook_keys_[i]);
  }

  /// After backward, before the optimizer step (and before
  /// FreezeController::after_backward, so that criteria see the averaged
  /// gradients): every communicated gradient becomes the mean over the ranks.
  void synchronize() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (accumulating_)
      frost::detail::fail("GradientSync::synchronize() inside no_sync(): let the guard end first");
    if (!in_backward_) ensure_layout();
    std::int64_t bytes = 0;
    if (group_->size() > 1) {
      if (stale_) {
        // A second backward ran after the hooks had sent the first pass's
        // buckets: finish those collectives (every rank issued them), then
        // send every bucket again with the accumulated gradients.
        for (auto& bk : buckets_) {
          group_->wait(bk.work, "gradient all-reduce");
          bk.work.reset();
          if (bk.launched)
            bytes += bk.flat.numel() * static_cast<std::int64_t>(bk.flat.element_size());
          bk.filled = bk.launched = false;
        }
        next_launch_ = 0;
      }
      for (std::size_t b = 0; b < buckets_.size(); ++b)
        if (!buckets_[b].launched) fill(buckets_[b]);
      launch_ready();
      at::NoGradGuard ng;
      const double inv = 1.0 / static_cast<double>(group_->size());
      for (auto& bk : buckets_) {
        group_->wait(bk.work, "gradient all-reduce");
        bk.work.reset();
        bk.flat.mul_(inv);
        for (const auto& e : bk.entries) {
          auto& p = params_[e.param];
          if (!p.requires_grad()) continue;  // frozen (the communicate_frozen baseline)
          at::Tensor piece = bk.flat.narrow(0, e.offset, e.numel).view(p.sizes());
          if (p.grad().defined()) p.mutable_grad().copy_(piece);
          else p.mutable_grad() = piece.clone();
        }
        bytes += bk.flat.numel() * static_cast<std::int64_t>(bk.flat.element_size());
      }
    }
    for (auto& bk : buckets_) {
      bk.ready = 0;
      bk.filled = bk.launched = false;
    }
    std::fill(seen_.begin(), seen_.end(), 0);
    next_launch_ = 0;
    in_backward_ = false;
    stale_ = false;
    bytes_last_ = bytes;
    bytes_total_ += bytes;
    ++steps_;
  }

  /// While the returned guard lives, backward passes only accumulate (no
  /// communication); the synchronize() after it averages the sum.
  class NoSync {
   public:
    explicit NoSync(GradientSync& s) : s_(&s) { s_->accumulating_ = true; }
    NoSync(NoSync&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;
    NoSync& operator=(NoSync&&) = delete;
    ~NoSync() {
      if (s_) s_->accumulating_ = false;
    }

   private:
    GradientSync* s_;
  };
  NoSync no_sync() { return NoSync(*this); }

  /// Payload bytes all-reduced by the last synchronize() (the gradients of
  /// the communicated parameters; a ring all-reduce puts about
  /// 2 (N-1)/N times this on each rank's wire).
  std::int64_t bytes_last_step() const noexcept { return bytes_last_; }
  std::int64_t bytes_total() const noexcept { return bytes_total_; }
  std::int64_t steps() const noexcept { return steps_; }
  /// Buckets of the current layout and the values they hold.
  std::int64_t num_buckets() const noexcept { return static_cast<std::int64_t>(buckets_.size()); }
  std::int64_t communicated_numel() const noexcept { return communicated_numel_; }
  /// How often the buckets were (re)built: once, plus once per change of
  /// which parameters train.
  std::int64_t rebuilds() const noexcept { return rebuilds_; }
  Group& group() noexcept { return *group_; }
  const Options& options() const noexcept { return options_; }

 private:
  struct Entry {
    std::size_t param;
    std::int64_t offset;
    std::int64_t numel;
  };
  struct Bucket {
    at::Tensor flat;
    std::vector<Entry> entries;
    std::size_t ready = 0;
    bool filled = false;
    bool launched = false;
    c10::intrusive_ptr<c10d::Work> work;
  };

  // Fires on the autograd thread after a parameter's gradient accumulated.
  struct ReadyHook : torch::autograd::FunctionPostHook {
    ReadyHook(GradientSync* s, std::size_t i) : sync(s), index(i) {}
    torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                              const torch::autograd::variable_list&) override {
      sync->on_ready(index);
      return outputs;
    }
    GradientSync* sync;
    std::size_t index;
  };

  bool communicates(std::size_t i) const {
    return options_.communicate_frozen() || params_[i].requires_grad();
  }

  void on_ready(std::size_t i) {
    if (!options_.overlap() || group_->size() == 1) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (accumulating_) return;
    if (!in_backward_) {
      in_backward_ = true;
      ensure_layout();  // the first gradient of this backward: is the layout current?
    }
    const int b = bucket_of_[i];
    if (b < 0) return;
    if (seen_[i]) {  // a second backward before synchronize(): see the header comment
      stale_ = true;
      return;
    }
    seen_[i] = 1;
    auto& bk = buckets_[static_cast<std::size_t>(b)];
    if (++bk.ready == bk.entries.size()) {
      fill(bk);
      launch_ready();
    }
  }

  // Copies the bucket's gradients in (zeros where a gradient is missing).
  void fill(Bucket& bk) {
    at::NoGradGuard ng;
    for (const auto& e : bk.entries) {
      const auto& g = params_[e.param].grad();
      at::Tensor piece = bk.flat.narrow(0, e.offset, e.numel);
      if (g.defined()) piece.view(g.sizes()).copy_(g);
      else piece.zero_();
    }
    bk.filled = true;
  }

  // Launches filled buckets strictly in order: every rank issues the same
  // collectives in the same order, whatever order its hooks fired in.
  void launch_ready() {
    while (next_launch_ < buckets_.size() && buckets_[next_launch_].filled) {
      auto& bk = buckets_[next_launch_++];
      std::vector<at::Tensor> v{bk.flat};
      bk.work = group_->all_reduce_async(v);
      bk.launched = true;
    }
  }

  // Per parameter: communicated (bit 0), requires a gradient (bit 1: a
  // parameter that starts to need one gets its hook on the next rebuild).
  void ensure_layout() {
    std::vector<char> now(params_.size());
    for (std::size_t i = 0; i < params_.size(); ++i)
      now[i] = static_cast<char>((communicates(i) ? 1 : 0) | (params_[i].requires_grad() ? 2 : 0));
    if (built_ && now == layout_) return;
    rebuild(now);
  }

  void rebuild(const std::vector<char>& now) {
    layout_ = now;
    built_ = true;
    buckets_.clear();
    bucket_of_.assign(params_.size(), -1);
    communicated_numel_ = 0;
    const double cap = options_.bucket_cap_mb() * 1024.0 * 1024.0;
    std::vector<std::int64_t> words;
    // Reverse registration order: roughly the order backward finishes them.
    std::vector<std::int64_t> size;  // per bucket: values so far
    std::vector<char> open;          // per bucket: still taking parameters
    for (std::size_t k = params_.size(); k-- > 0;) {
      if (!(now[k] & 1)) continue;
      const auto& p = params_[k];
      int target = -1;
      for (std::size_t b = 0; b < buckets_.size() && target < 0; ++b) {
        const auto& q = params_[buckets_[b].entries.front().param];
        if (!open[b] || q.scalar_type() != p.scalar_type() || q.device() != p.device()) continue;
        if (static_cast<double>((size[b] + p.numel()) * p.element_size()) > cap) open[b] = 0;
        else target = static_cast<int>(b);
      }
      if (target < 0) {
        buckets_.emplace_back();
        size.push_back(0);
        open.push_back(1);
        target = static_cast<int>(buckets_.size()) - 1;
      }
      const auto t = static_cast<std::size_t>(target);
      buckets_[t].entries.push_back({k, size[t], p.numel()});
      size[t] += p.numel();
      bucket_of_[k] = target;
      communicated_numel_ += p.numel();
      words.push_back(static_cast<std::int64_t>(k));
      words.push_back(p.numel());
      if (options_.overlap() && p.requires_grad() && !accumulators_[k]) hook(k);
    }
    for (std::size_t b = 0; b < buckets_.size(); ++b)
      buckets_[b].flat = at::empty(
          {size[b]}, params_[buckets_[b].entries.front().param].options().requires_grad(false));
    ++rebuilds_;
    group_->agree(
                  {communicated_numel_, static_cast<std::int64_t>(buckets_.size()),
                   detail::fingerprint(words)},
                  [](const std::vector<std::int64_t>& v) {
                    return "communicates " + std::to_string(v[0]) + " gradient values in " +
                           std::to_string(v[1]) + " buckets (layout " + std::to_string(v[2]) +
                           ")";
                  },
                  "the ranks froze different blocks: give every controller the consensus "
                  "reducer (frost::with_reducer<frost::reducers::AllReduceMean>) and the same "
                  "options");
  }

  void hook(std::size_t k) {
    auto acc = torch::autograd::impl::grad_accumulator(params_[k]);
    if (!acc) return;  // not a leaf that needs a gradient
    hook_keys_[k] = acc->add_post_hook(std::make_unique<ReadyHook>(this, k));
    accumulators_[k] = std::move(acc);  // keeps it (and the hook) alive
  }

  std::shared_ptr<Group> group_;
  Options options_;
  std::vector<at::Tensor> params_;
  std::vector<char> layout_;
  bool built_ = false;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_;
  std::vector<char> seen_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<std::uintptr_t> hook_keys_;
  std::size_t next_launch_ = 0;
  bool in_backward_ = false;
  bool stale_ = false;
  bool accumulating_ = false;
  std::int64_t communicated_numel_ = 0;
  std::int64_t bytes_last_ = 0;
  std::int64_t bytes_total_ = 0;
  std::int64_t steps_ = 0;
  std::int64_t rebuilds_ = 0;
  std::mutex mutex_;
};

}  // namespace frost::dist
