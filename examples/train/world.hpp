#pragma once
// examples/train/world.hpp — frost-train's ranks. One process unless
// WORLD_SIZE (or --world-size) says more; then the ranks join through
// frost::dist (c10d: Gloo on CPU, NCCL on GPU), each trains on its own fixed
// shard of the data, gradients are averaged by frost::dist::GradientSync and
// every freezing decision is taken by consensus (reducers::AllReduceMean).
// Built without frost::distributed (no libgloo-dev at configure time), a run
// asked for several ranks stops with a clear message.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#if defined(USE_C10D_GLOO) || defined(USE_C10D_NCCL)
#include "frost/distributed.hpp"
#define FROST_TRAIN_DISTRIBUTED 1
#endif
#include "frost/controller.hpp"
#include "frost/reducers/identity.hpp"

#include "cli.hpp"

namespace frost_train {

#ifdef FROST_TRAIN_DISTRIBUTED
using Reducer = frost::reducers::AllReduceMean;  // the identity in a world of one
#else
using Reducer = frost::reducers::Identity;
#endif

/// Every strategy's controller: the composition plus the consensus reducer.
template <class C, class S, class P>
using TrainController = frost::FreezeController<C, S, P, frost::with_reducer<Reducer>>;

struct World {
  int rank = 0;
  int size = 1;
  int local_rank = 0;
#ifdef FROST_TRAIN_DISTRIBUTED
  std::shared_ptr<frost::dist::Group> group;
#endif
  bool root() const noexcept { return rank == 0; }
  bool parallel() const noexcept { return size > 1; }

  /// The mean over the ranks, in place (any device; a no-op in a world of one).
  void mean_(at::Tensor& t) const {
#ifdef FROST_TRAIN_DISTRIBUTED
    if (!group || size == 1) return;
    at::Tensor x = t.to(group->device()).contiguous();
    group->all_reduce_(x);
    x.div_(static_cast<double>(size));
    t.copy_(x);
#endif
  }
  /// The sum over the ranks, in place.
  void sum_(at::Tensor& t) const {
#ifdef FROST_TRAIN_DISTRIBUTED
    if (!group || size == 1) return;
    at::Tensor x = t.to(group->device()).contiguous();
    group->all_reduce_(x);
    t.copy_(x);
#endif
  }

  /// Rank 0's `value` on every rank (through the rendezvous store); the others
  /// wait up to `wait` (rank 0 may be pre-training meanwhile).
  std::string share(const std::string& key, const std::string& value,
                    std::chrono::seconds wait = std::chrono::seconds(3600)) const {
#ifdef FROST_TRAIN_DISTRIBUTED
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
#else
    (void)key;
    (void)wait;
    return value;
#endif
  }

  void barrier() const {
#ifdef FROST_TRAIN_DISTRIBUTED
    if (group) group->barrier();
#endif
  }
};

/// Joins the run: flags first, then torchrun's environment (RANK, WORLD_SIZE,
/// MASTER_ADDR, MASTER_PORT, LOCAL_RANK, FROST_DIST_TIMEOUT).
inline World join_world(const TrainConfig& cfg, bool cuda) {
  World w;
#ifdef FROST_TRAIN_DISTRIBUTED
  auto o = frost::dist::GroupOptions::from_env();
  const char* env_rank = std::getenv("RANK");
  const bool rank_given = cfg.rank >= 0 || (env_rank && *env_rank);
  if (cfg.world_size > 0) o.world_size(cfg.world_size);
  if (cfg.rank >= 0) o.rank(cfg.rank);
  if (cfg.local_rank >= 0) o.local_rank(cfg.local_rank);
  if (!cfg.master_addr.empty()) o.master_addr(cfg.master_addr);
  if (cfg.master_port > 0) o.master_port(cfg.master_port);
  if (cfg.dist_timeout > 0) o.timeout_s(cfg.dist_timeout);
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
#else
  int size = cfg.world_size;
  if (size <= 0) {
    const char* e = std::getenv("WORLD_SIZE");
    size = e && *e ? std::atoi(e) : 1;
  }
  if (size > 1)
    throw UsageError("this frost-train was built without frost::distributed (the Gloo headers, "
                     "Debian's libgloo-dev, were missing when CMake ran): it cannot run " +
                     std::to_string(size) + " ranks; install libgloo-dev and rebuild");
  (void)cuda;
#endif
  return w;
}

}  // namespace frost_train
