#pragma once
// frost::cache::ActivationCache — skip the forward pass of the frozen prefix.
//
// Freezing saves the backward pass of frozen blocks; their forward still runs
// every step. Once the first k blocks are frozen for good and a sample's input
// is the same every epoch (no augmentation), its output of block k-1 is the
// same every epoch too: keep it, and run later forwards from block k (the
// activation cache of AutoFreeze, §3.3, and of PipeTransformer).
//
//   frost::cache::ActivationCache cache(train_size, ActivationCacheOptions().budget_mb(512));
//   ...
//   const int64_t k = ctl.frozen_prefix();              // frozen for good, never trials
//   at::Tensor h = cache.activations(*model, indices, images, k);   // output of block k-1
//   at::Tensor logits = model->forward_range(h, k, frost::cache::kOutput);
//
// The model protocol (checked at compile time): a method
//   at::Tensor forward_range(const at::Tensor& input, int64_t from, int64_t to)
// that runs blocks [from, to) of the BlockMap's order on `input` (the model's
// input when from == 0, else the output of block from-1) and returns the
// output of block to-1 (to == kOutput: the model's output). The example ViT
// implements it (block 0 = the embedding, block i = encoder block i-1). A
// torchvision-style ResNet adds the same over stem, layer1.0, ..., layer4.1
// and its pooled head; a user's own model over whatever blocks its BlockMap
// names, in that order.
//
// * Entries are keyed by sample index (0 <= index < num_samples, the position
//   in the user's dataset) and hold the activation at the current depth k.
//   When the frozen prefix grows from k to k', every entry is advanced by
//   running only blocks k..k'-1 on it (never recomputed from the input); when
//   it shrinks (a block was unfrozen) the cache is cleared.
// * The memory budget (budget_mb) bounds the entries: at most
//   floor(budget / bytes per sample) samples are cached, the first ones seen;
//   the others run the prefix every time (counted as misses). stats() says
//   how many samples are cached and the bytes they use. When advancing makes
//   a sample's activation larger, the entries over the budget are dropped.
// * Entries live on the activations' device (Storage::device) or in host
//   memory (Storage::host, pinned when CUDA is available) and are copied to
//   the device per batch.
// * With augmented inputs a cached activation would freeze one random view of
//   the sample: declare augmented_inputs(true) and the cache refuses to start.
//   The frozen blocks must run deterministically (the controller's
//   eval_frozen, default on, puts them in eval mode: no dropout, batch-norm
//   running statistics).
// * activations() reads `indices` on the host (give them on the CPU: a CUDA
//   tensor costs a synchronisation per step).
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (ATen.h alone lacks it in LibTorch 2.x)

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "frost/detail/detect.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"

namespace frost::cache {

/// `to` of forward_range: through the whole model, to its output.
inline constexpr std::int64_t kOutput = -1;

enum class Storage {
  device,  ///< next to the activations (fastest; uses device memory)
  host,    ///< host memory, pinned when CUDA is available
};
inline const char* to_string(Storage s) { return s == Storage::device ? "device" : "host"; }
inline bool from_string(const std::string& t, Storage& s) {
  if (t == "device") s = Storage::device;
  else if (t == "host") s = Storage::host;
  else return false;
  return true;
}

struct ActivationCacheOptions {
  FROST_OPTIONS(
      /// Memory for the entries, MiB.
      (double, budget_mb, 1024.0),
      (Storage, storage, Storage::device),
      /// Whether the inputs are augmented (a new random view every epoch): then
      /// there is nothing to cache and the cache refuses.
      (bool, augmented_inputs, false),
      /// Samples advanced at once when the frozen prefix grows.
      (std::int64_t, advance_chunk, 512));
};

/// What the cache holds and did (counts since construction).
struct CacheStats {
  std::int64_t depth = 0;           ///< blocks the entries have passed
  std::int64_t cached_samples = 0;  ///< samples with an entry
  std::int64_t capacity = 0;        ///< samples the budget holds at this depth
  std::int64_t bytes = 0;           ///< memory held by the entries
  std::int64_t hits = 0;            ///< samples served from the cache
  std::int64_t misses = 0;          ///< samples whose prefix ran (cache full or first sight)
  std::int64_t advanced = 0;        ///< entry-advances when the prefix grew
  std::int64_t cleared = 0;         ///< times the prefix shrank and the cache was emptied
};

namespace detail {
template <class M>
using forward_range_op = decltype(at::Tensor{std::declval<M&>().forward_range(
    std::declval<const at::Tensor&>(), std::int64_t{}, std::int64_t{})});

/// The module behind a ModuleHolder (`ViT` -> `ViTImpl`), or the module itself.
template <class M>
auto& module_of(M& m) {
  if constexpr (::frost::detail::is_detected<forward_range_op, M>)
    return m;
  else
    return *m;
}
}  // namespace detail

class ActivationCache {
 public:
  using Options = ActivationCacheOptions;

  /// `num_samples`: the size of the dataset whose indices activations() gets.
  explicit ActivationCache(std::int64_t num_samples, const Options& options = {})
      : options_(options), num_samples_(num_samples) {
    frost::detail::require(
        !options_.augmented_inputs(),
        "ActivationCache: the inputs are augmented (augmented_inputs = true): a cached activation "
        "would freeze one random view of each sample. Train without the cache, or cache only "
        "inputs that are the same every epoch");
    frost::detail::require(num_samples_ > 0, "ActivationCache: num_samples is ", num_samples_,
                           "; give the size of the dataset the indices refer to");
    frost::detail::require(options_.budget_mb() >= 0, "ActivationCache: budget_mb is ",
                           options_.budget_mb(), "; give 0 (cache nothing) or more MiB");
    frost::detail::require(options_.advance_chunk() > 0, "ActivationCache: advance_chunk is ",
                           options_.advance_chunk(), "; give a positive number of samples");
    slot_of_.assign(static_cast<std::size_t>(num_samples_), -1);
  }

  /// The output of block `depth`-1 for the samples `indices` (the model's
  /// input `inputs` when depth == 0), without autograd history: from the cache
  /// where it has them, else by running blocks [0, depth) (and keeping the
  /// result while the budget allows). `depth` is the frozen prefix: blocks
  /// frozen for good (FreezeController::frozen_prefix()).
  template <class Model>
  at::Tensor activations(Model& model, const at::Tensor& indices, const at::Tensor& inputs,
                         std::int64_t depth) {
    static_assert(::frost::detail::is_detected<detail::forward_range_op,
                                        std::remove_reference_t<decltype(detail::module_of(model))>>,
                  "frost::cache::ActivationCache: the model needs `at::Tensor forward_range(const "
                  "at::Tensor& input, int64_t from, int64_t to)` running blocks [from, to) (see "
                  "frost/cache/activation_cache.hpp)");
    auto& m = detail::module_of(model);
    frost::detail::require(depth >= 0, "ActivationCache: depth ", depth, " is negative");
    frost::detail::require(indices.defined() && indices.dim() == 1 &&
                               inputs.defined() && inputs.dim() >= 1 &&
                               indices.size(0) == inputs.size(0),
                           "ActivationCache: give one sample index per input row (indices [",
                           indices.defined() ? indices.numel() : 0, "], inputs with ",
                           inputs.defined() && inputs.dim() >= 1 ? inputs.size(0) : 0, " rows)");
    if (depth == 0) return inputs;  // nothing frozen: nothing to skip
    at::NoGradGuard ng;
    if (depth < stats_.depth) clear_entries(/*count=*/true);  // a block came back to training
    if (depth > stats_.depth && stats_.cached_samples > 0) advance(m, depth);
    stats_.depth = depth;

    const at::Tensor idx = indices.to(at::kCPU, at::kLong).contiguous();
    const std::int64_t* ip = idx.data_ptr<std::int64_t>();
    const std::int64_t n = idx.numel();
    std::vector<std::int64_t> hit_pos, hit_slot, miss_pos;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t s = ip[i];
      frost::detail::require(s >= 0 && s < num_samples_, "ActivationCache: sample index ", s,
                             " is outside [0, ", num_samples_, ") (the num_samples given)");
      const std::int64_t slot = slot_of_[static_cast<std::size_t>(s)];
      if (slot >= 0) {
        hit_pos.push_back(i);
        hit_slot.push_back(slot);
      } else {
        miss_pos.push_back(i);
      }
    }
    stats_.hits += static_cast<std::int64_t>(hit_pos.size());
    stats_.misses += static_cast<std::int64_t>(miss_pos.size());

    const auto lopt = at::TensorOptions().dtype(at::kLong);
    at::Tensor from_cache, computed;
    if (!hit_slot.empty()) {
      from_cache = store_.index_select(0, at::tensor(hit_slot, lopt).to(store_.device()));
      if (from_cache.device() != device_) from_cache = from_cache.to(device_, /*non_blocking=*/true);
    }
    if (!miss_pos.empty()) {
      const at::Tensor pos = at::tensor(miss_pos, lopt);
      at::Tensor x = miss_pos.size() == static_cast<std::size_t>(n)
                         ? inputs
                         : inputs.index_select(0, pos.to(inputs.device()));
      computed = m.forward_range(x, 0, depth);
      device_ = computed.device();
      keep(computed, miss_pos, ip);
    }
    if (!computed.defined()) return from_cache;  // every sample from the cache, in order
    if (!from_cache.defined()) return computed;
    at::Tensor out = at::empty(with_rows(computed.sizes(), n), computed.options());
    out.index_copy_(0, at::tensor(hit_pos, lopt).to(out.device()), from_cache);
    out.index_copy_(0, at::tensor(miss_pos, lopt).to(out.device()), computed);
    return out;
  }

  const CacheStats& stats() const noexcept { return stats_; }
  const Options& options() const noexcept { return options_; }
  std::int64_t num_samples() const noexcept { return num_samples_; }

  /// Drops every entry (the counts stay).
  void clear() { clear_entries(/*count=*/false); }

 private:
  static std::vector<std::int64_t> with_rows(at::IntArrayRef sizes, std::int64_t rows) {
    std::vector<std::int64_t> v(sizes.begin(), sizes.end());
    v[0] = rows;
    return v;
  }

  std::int64_t capacity_for(const at::Tensor& batch) const {
    const std::int64_t per = batch.numel() / std::max<std::int64_t>(1, batch.size(0)) *
                             static_cast<std::int64_t>(batch.element_size());
    if (per <= 0) return 0;
    const auto budget = static_cast<std::int64_t>(options_.budget_mb() * 1024.0 * 1024.0);
    return std::min(num_samples_, budget / per);
  }

  at::TensorOptions storage_options(const at::Tensor& like) const {
    auto o = like.options();
    if (options_.storage() == Storage::host) {
      o = o.device(at::kCPU);
      if (at::hasCUDA()) o = o.pinned_memory(true);
    }
    return o;
  }

  // Keeps the freshly computed activations of the missed samples while the
  // budget has room (the first samples seen stay; see the header comment).
  void keep(const at::Tensor& computed, const std::vector<std::int64_t>& miss_pos,
            const std::int64_t* ip) {
    if (!store_.defined()) {
      const std::int64_t cap = capacity_for(computed);
      stats_.capacity = cap;
      if (cap == 0) return;
      store_ = at::empty(with_rows(computed.sizes(), cap), storage_options(computed));
    }
    const std::int64_t room = stats_.capacity - stats_.cached_samples;
    if (room <= 0) return;
    std::vector<std::int64_t> rows, slots;
    for (std::size_t j = 0; j < miss_pos.size() && static_cast<std::int64_t>(rows.size()) < room; ++j) {
      const std::int64_t sample = ip[miss_pos[j]];
      if (slot_of_[static_cast<std::size_t>(sample)] >= 0) continue;  // twice in one batch
      const std::int64_t slot = stats_.cached_samples + static_cast<std::int64_t>(slots.size());
      slot_of_[static_cast<std::size_t>(sample)] = slot;
      rows.push_back(static_cast<std::int64_t>(j));
      slots.push_back(slot);
    }
    if (slots.empty()) return;
    const auto lopt = at::TensorOptions().dtype(at::kLong);
    at::Tensor src = rows.size() == miss_pos.size()
                         ? computed
                         : computed.index_select(0, at::tensor(rows, lopt).to(computed.device()));
    store_.index_copy_(0, at::tensor(slots, lopt).to(store_.device()), src.to(store_.device()));
    stats_.cached_samples += static_cast<std::int64_t>(slots.size());
    stats_.bytes = store_.numel() * static_cast<std::int64_t>(store_.element_size());
  }

  // The prefix grew: run blocks [depth, to) on every entry, chunk by chunk.
  template <class M>
  void advance(M& m, std::int64_t to) {
    const std::int64_t from = stats_.depth, n = stats_.cached_samples;
    at::Tensor next;
    std::int64_t kept = n;
    for (std::int64_t b = 0; b < n; b += options_.advance_chunk()) {
      const std::int64_t len = std::min(options_.advance_chunk(), n - b);
      at::Tensor h = store_.narrow(0, b, len);
      if (h.device() != device_) h = h.to(device_, /*non_blocking=*/true);
      at::Tensor out = m.forward_range(h, from, to);
      if (!next.defined()) {
        const std::int64_t cap = capacity_for(out);
        stats_.capacity = cap;
        kept = std::min(n, cap);
        if (kept == 0) break;
        next = at::empty(with_rows(out.sizes(), cap), storage_options(out));
      }
      if (b >= kept) break;
      const std::int64_t take = std::min(len, kept - b);
      next.narrow(0, b, take).copy_(out.narrow(0, 0, take), /*non_blocking=*/true);
    }
    stats_.advanced += kept;
    if (kept < n)  // the larger activations no longer fit: the last slots go
      for (auto& s : slot_of_)
        if (s >= kept) s = -1;
    store_ = next;
    stats_.cached_samples = kept;
    stats_.bytes = store_.defined() ? store_.numel() * static_cast<std::int64_t>(store_.element_size()) : 0;
  }

  void clear_entries(bool count) {
    std::fill(slot_of_.begin(), slot_of_.end(), -1);
    store_ = at::Tensor();
    stats_.cached_samples = 0;
    stats_.bytes = 0;
    stats_.capacity = 0;
    stats_.depth = 0;
    if (count) ++stats_.cleared;
  }

  Options options_;
  std::int64_t num_samples_;
  std::vector<std::int64_t> slot_of_;  // per sample: its row in store_, -1 none
  at::Tensor store_;                   // [capacity, activation...] at stats_.depth
  at::Device device_{at::kCPU};        // where the activations are used
  CacheStats stats_;
};

}  // namespace frost::cache
