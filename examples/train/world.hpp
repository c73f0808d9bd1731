#pragma once
// examples/train/world.hpp — frost-train's ranks: the one seam between the
// trainer and data-parallel training. The trainer talks to a World (who am I,
// mean/sum a tensor over the ranks, share a string, bind the consensus
// reducer, exchange the gradients) and never to c10d itself.
//
// Which World this build has is chosen here, once:
//   world_c10d.hpp   several ranks through frost::dist (c10d: Gloo on CPU,
//                    NCCL on GPU), each on its own fixed shard of the data,
//                    gradients averaged by frost::dist::GradientSync, every
//                    freezing decision taken by consensus (AllReduceMean);
//   world_single.hpp one process, every collective a no-op: the build without
//                    frost::distributed (no libgloo-dev when CMake ran), where
//                    a run asked for several ranks stops with a clear message.
// Both define the same names: Reducer, GradientExchange, World, join_world.
#include <cstdint>
#include <string>

#include "frost/controller.hpp"

#include "cli.hpp"

namespace frost_train {

/// Who this process is; what every World has.
struct Ranks {
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  bool root() const noexcept { return rank == 0; }
  bool parallel() const noexcept { return size > 1; }
};

/// Bytes as MiB, for the report's gradient traffic.
inline double mebibytes(std::int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

}  // namespace frost_train

#if defined(USE_C10D_GLOO) || defined(USE_C10D_NCCL)
#include "world_c10d.hpp"
#else
#include "world_single.hpp"
#endif

namespace frost_train {

/// Every strategy's controller: the composition plus the consensus reducer.
template <class C, class S, class P>
using TrainController = frost::FreezeController<C, S, P, frost::with_reducer<Reducer>>;

}  // namespace frost_train
