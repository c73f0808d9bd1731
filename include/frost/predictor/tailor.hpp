#pragma once
// frost::predictor::Tailor — SmartFRZ's layer tailoring
// (../shared/papers/smartfrz-attention-predictor-freezing.txt, §3.2 "Layer
// Tailoring"): every block is represented by a fixed random subset of its
// weights (1024 in the paper), so that one predictor serves blocks of any size.
//
// The indices are drawn once, on the host, from a seed: block b's subset is a
// uniform sample without replacement of its flattened parameters (in
// block-map order, the parameters concatenated), from std::mt19937_64 seeded
// with seed + 0x9E3779B97F4A7C15 * (b + 1), with our own rejection sampling
// (std::uniform_int_distribution differs between standard libraries). So the
// same (seed, block map) gives the same subset on every machine, in a resumed
// run and on every rank of a data-parallel run. A block with fewer weights
// than the subset repeats them (a random permutation, cycled).
//
// gather() copies the current subset of every block into one [blocks, subset]
// float32 tensor on the parameters' device: one take() per parameter, one cat
// and one index_select for the whole block map, no host read.
//
// encode() turns two consecutive records into the predictor's input (the
// reading frost chose, see freeze_predictor.hpp): the weight change since the
// previous record relative to the block's weight scale,
//   x_j = (w_j - w_{j-1}) / (rms(w_j) + 1e-12).
#include <ATen/ATen.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/error.hpp"

namespace frost::predictor {

namespace detail {
/// Uniform integer in [0, n) from a 64-bit engine, the same on every platform.
inline std::uint64_t uniform_below(std::mt19937_64& g, std::uint64_t n) {
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() -
                              std::numeric_limits<std::uint64_t>::max() % n;
  std::uint64_t v;
  do v = g(); while (v >= limit);
  return v % n;
}
}  // namespace detail

/// `count` indices into [0, numel): without replacement when numel >= count,
/// else a permutation of [0, numel) repeated. Deterministic in (numel, count, seed).
inline std::vector<std::int64_t> sample_indices(std::int64_t numel, std::int64_t count,
                                                std::uint64_t seed) {
  frost::detail::require(numel > 0 && count > 0, "predictor: cannot sample ", count,
                         " weights of a block with ", numel);
  std::mt19937_64 g(seed);
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(count));
  if (numel >= count) {
    // Floyd's algorithm would need a set; a partial Fisher-Yates over a lazily
    // materialised permutation keeps it O(count) in memory via a swap map.
    std::vector<std::pair<std::int64_t, std::int64_t>> swapped;  // position -> value
    auto value_at = [&](std::int64_t pos) {
      for (auto it = swapped.rbegin(); it != swapped.rend(); ++it)
        if (it->first == pos) return it->second;
      return pos;
    };
    // Small counts (1024) make the linear lookup cheaper than a hash map here.
    for (std::int64_t i = 0; i < count; ++i) {
      const auto j = i + static_cast<std::int64_t>(
                             detail::uniform_below(g, static_cast<std::uint64_t>(numel - i)));
      const auto vi = value_at(i), vj = value_at(j);
      swapped.emplace_back(j, vi);
      swapped.emplace_back(i, vj);
      out.push_back(vj);
    }
  } else {
    std::vector<std::int64_t> perm(static_cast<std::size_t>(numel));
    for (std::int64_t i = 0; i < numel; ++i) perm[static_cast<std::size_t>(i)] = i;
    for (std::int64_t i = numel - 1; i > 0; --i)
      std::swap(perm[static_cast<std::size_t>(i)],
                perm[detail::uniform_below(g, static_cast<std::uint64_t>(i + 1))]);
    for (std::int64_t i = 0; i < count; ++i) out.push_back(perm[static_cast<std::size_t>(i % numel)]);
  }
  return out;
}

/// The subset of every block of a block map, and its gather.
class Tailor {
 public:
  Tailor() = default;
  Tailor(const BlockMap& blocks, std::int64_t subset, std::uint64_t seed) { setup(blocks, subset, seed); }

  void setup(const BlockMap& blocks, std::int64_t subset, std::uint64_t seed) {
    frost::detail::require(!blocks.empty(), "predictor::Tailor: the block map is empty");
    frost::detail::require(subset > 0, "predictor::Tailor: subset is ", subset, "; give 1 or more");
    params_.clear();
    for (std::size_t b = 0; b < blocks.size(); ++b) params_.push_back(blocks[b].params);
    subset_ = subset;
    seed_ = seed;
    picks_.clear();
    std::vector<std::int64_t> inverse_all;  // into the concatenation of every block's parts
    std::int64_t gathered = 0;
    indices_ = at::empty({static_cast<std::int64_t>(blocks.size()), subset}, at::kLong);
    auto acc = indices_.accessor<std::int64_t, 2>();
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const auto& blk = blocks[b];
      std::int64_t numel = 0;  // from the tensors themselves, not Block::numel
      for (const auto& p : blk.params) numel += p.numel();
      frost::detail::require(!blk.params.empty() && numel > 0, "predictor::Tailor: block '",
                             blk.name, "' has no parameters; give every block at least one");
      const auto idx = sample_indices(numel, subset,
                                      seed + 0x9E3779B97F4A7C15ULL * (static_cast<std::uint64_t>(b) + 1));
      for (std::int64_t i = 0; i < subset; ++i) acc[static_cast<std::int64_t>(b)][i] = idx[static_cast<std::size_t>(i)];
      // Split the block-wide indices by parameter; the order of `idx` is kept
      // through a final permutation so that gather() returns them as drawn.
      std::vector<Pick> per_param;
      std::int64_t offset = 0;
      std::vector<std::int64_t> order;  // position in idx of each gathered element
      for (std::size_t p = 0; p < blk.params.size(); ++p) {
        const auto n = blk.params[p].numel();
        std::vector<std::int64_t> local;
        for (std::int64_t i = 0; i < subset; ++i) {
          const auto v = idx[static_cast<std::size_t>(i)];
          if (v >= offset && v < offset + n) {
            local.push_back(v - offset);
            order.push_back(i);
          }
        }
        if (!local.empty())
          per_param.push_back({p, at::tensor(local, at::kLong).to(blk.params[p].device())});
        offset += n;
      }
      frost::detail::require(static_cast<std::int64_t>(order.size()) == subset,
                             "predictor::Tailor: block '", blk.name, "' lost sampled weights");
      // inverse permutation: element k of the concatenation goes to order[k]
      std::vector<std::int64_t> inverse(order.size());
      for (std::size_t k = 0; k < order.size(); ++k) inverse[static_cast<std::size_t>(order[k])] = static_cast<std::int64_t>(k);
      for (auto k : inverse) inverse_all.push_back(gathered + k);
      gathered += static_cast<std::int64_t>(order.size());
      picks_.push_back({std::move(per_param)});
    }
    inverse_ = at::tensor(inverse_all, at::kLong).to(blocks[0].params.front().device());
  }

  /// Every block's subset now: [blocks, subset] float32 on the parameters'
  /// device (no host read, no autograd).
  at::Tensor gather() const {
    frost::detail::require(!params_.empty(), "predictor::Tailor: gather() before setup()");
    at::NoGradGuard ng;
    std::vector<at::Tensor> parts;
    for (std::size_t b = 0; b < picks_.size(); ++b)
      for (const auto& pick : picks_[b].parts) {
        // take(): the flattened parameter's elements, one op (no view, no copy of it)
        at::Tensor t = at::take(params_[b][pick.param], pick.local);
        parts.push_back(t.scalar_type() == at::kFloat ? t : t.to(at::kFloat));
      }
    return at::cat(parts)
        .index_select(0, inverse_)
        .view({static_cast<std::int64_t>(picks_.size()), subset_});
  }

  /// [blocks, subset] int64 on the host: the drawn indices into each block's
  /// concatenated parameters (kept with a criterion's state).
  const at::Tensor& indices() const noexcept { return indices_; }
  std::int64_t subset() const noexcept { return subset_; }
  std::uint64_t seed() const noexcept { return seed_; }

 private:
  struct Pick {
    std::size_t param;
    at::Tensor local;  // indices into the flattened parameter
  };
  struct BlockPicks {
    std::vector<Pick> parts;
  };
  // The parameters themselves (they share storage with the model), not the
  // block map: a controller holding this Tailor may be moved or copied.
  std::vector<std::vector<at::Tensor>> params_;
  std::int64_t subset_ = 0;
  std::uint64_t seed_ = 0;
  at::Tensor indices_;
  std::vector<BlockPicks> picks_;
  at::Tensor inverse_;  // [blocks * subset]: the drawn order, from the concatenated parts
};

/// The predictor's input for one record: the change since the previous record
/// relative to the block's weight scale, x_j = (w_j - w_{j-1}) / (rms(w_j) + 1e-12),
/// row-wise for [..., subset] tensors.
inline at::Tensor encode(const at::Tensor& current, const at::Tensor& previous) {
  auto rms = current.pow(2).mean(-1, /*keepdim=*/true).sqrt();
  return (current - previous) / (rms + 1e-12);
}

}  // namespace frost::predictor
