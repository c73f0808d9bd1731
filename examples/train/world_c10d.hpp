#pragma once
// examples/train/world_c10d.hpp — the World of a build with frost::distributed:
// one process unless WORLD_SIZE (or --world-size) says more; then the ranks
// join through frost::dist (c10d: Gloo on CPU, NCCL on GPU). Included by
// world.hpp only (which also names the alternative, world_single.hpp).
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "frost/distributed.hpp"

namespace frost_train {

using Reducer = frost::reducers::AllReduceMean;  // the identity in a world of one

/// The gradient all-reduce of one model (frozen blocks left out), and what it
/// sent: after the backward pass, before the criterion reads the gradients.
class GradientExchange {
 public:
  GradientExchange() = default;
  GradientExchange(torch::nn::Module& model, const std::shared_ptr<frost::dist::Group>& group,
                   bool parallel) {
    // Rank 0's weights everywhere; then gradients averaged over the ranks.
    if (parallel) sync_ = std::make_unique<frost::dist::GradientSync>(model, group);
    for (const auto& p : model.parameters()) full_numel_ += p.numel();
  }
  void after_backward() {
    if (!sync_) return;
    sync_->synchronize();
    bytes_ += sync_->bytes_last_step();
    full_bytes_ += full_numel_ * 4;
  }
  double mib() const { return mebibytes(bytes_); }            ///< payload sent by this rank
  double full_mib() const { return mebibytes(full_bytes_); }  ///< the same had nothing been frozen

 private:
  std::unique_ptr<frost::dist::GradientSync> sync_;
  std::int64_t bytes_ = 0, full_bytes_ = 0, full_numel_ = 0;
};

struct World : Ranks {
  std::shared_ptr<frost::dist::Group> group;  ///< null in a world of one

  /// The mean over the ranks, in place (any device; a no-op in a world of one).
  void mean_(at::Tensor& t) const {
    if (!group || size == 1) return;
    at::Tensor x = t.to(group->device()).contiguous();
    group->all_reduce_(x);
    x.div_(static_cast<double>(size));
    t.copy_(x);
  }
  /// The sum over the ranks, in place.
  void sum_(at::Tensor& t) const {
    if (!group || size == 1) return;
    at::Tensor x = t.to(group->device()).contiguous();
    group->all_reduce_(x);
    t.copy_(x);
  }

  /// Rank 0's `value` on every rank (through the rendezvous store); the others
  /// wait up to `wait` (rank 0 may be pre-training meanwhile).
  std::string share(const std::string& key, const std::string& value,
                    std::chrono::seconds wait = std::chrono::seconds(3600)) const {
    if (!group || size == 1) return value;
    const std::string k = "frost-train/" + key;
    auto& store = group->store();
    if (root()) {
      store.set(k, std::vector<uint8_t>(value.begin(), value.end()));
      return value;
    }
    store.wait({k}, wait);
    const auto v = store.get(k);
    return std::string(v.begin(), v.end());
  }

  void barrier() const {
    if (group) group->barrier();
  }

  /// Every rank takes every freezing decision (the consensus reducer's group).
  template <class ReducerOptions>
  void bind_reducer(ReducerOptions& o) const {
    o.group(group);
  }

  GradientExchange gradient_exchange(torch::nn::Module& model) const {
    return GradientExchange(model, group, parallel());
  }
};

namespace detail {
/// torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
/// LOCAL_RANK, FROST_DIST_TIMEOUT), then the flags over it.
inline frost::dist::GroupOptions group_options(const TrainConfig& cfg) {
  auto o = frost::dist::GroupOptions::from_env();
  if (cfg.world_size > 0) o.world_size(cfg.world_size);
  if (cfg.rank >= 0) o.rank(cfg.rank);
  if (cfg.local_rank >= 0) o.local_rank(cfg.local_rank);
  if (!cfg.master_addr.empty()) o.master_addr(cfg.master_addr);
  if (cfg.master_port > 0) o.master_port(cfg.master_port);
  if (cfg.dist_timeout > 0) o.timeout_s(cfg.dist_timeout);
  return o;
}
}  // namespace detail

/// Joins the run: flags first, then torchrun's environment.
inline World join_world(const TrainConfig& cfg, bool cuda) {
  World w;
  auto o = detail::group_options(cfg);
  const char* env_rank = std::getenv("RANK");
  const bool rank_given = cfg.rank >= 0 || (env_rank && *env_rank);
  w.local_rank = o.local_rank();
  if (o.world_size() == 1) {
    if (o.rank() != 0)
      throw UsageError("--rank " + std::to_string(o.rank()) + " in a world of one process; give "
                       "--world-size (WORLD_SIZE) too");
    return w;
  }
  if (!rank_given)
    throw UsageError("--world-size " + std::to_string(o.world_size()) + " starts one rank of a " +
                     std::to_string(o.world_size()) + "-rank run: give each process its --rank " +
                     "(RANK), or start them all with scripts/launch.sh -n " +
                     std::to_string(o.world_size()) + " or torchrun");
  o.device(cuda ? "cuda" : "cpu");
  w.group = frost::dist::init(o);
  w.rank = w.group->rank();
  w.size = w.group->size();
  return w;
}

}  // namespace frost_train
