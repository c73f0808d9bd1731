#pragma once
// frost::RunShape: what every policy is told about the run once, before the
// first step (and again for the fresh policy a checkpoint is loaded into), so
// that options that do not fit the run fail then, not deep into it. One
// struct for all three kinds of policy; the names the concepts use for it
// (CriterionSetup, ScheduleSetup, StopSetup) are aliases.
// (Torch-free: the block map is only named.)
#include <cstdint>
#include <vector>

namespace frost {

class BlockMap;

struct RunShape {
  std::int64_t num_blocks = 0;       ///< B
  const BlockMap* blocks = nullptr;  ///< parameters per block, input side first
  std::vector<int> stages;           ///< stage (1..S) of each block; empty if unset
  std::int64_t total_steps = 0;      ///< N, warm-up included (0 = unknown)
  std::int64_t warmup_steps = 0;     ///< W
  std::int64_t steps_per_epoch = 0;  ///< 0 when the user did not say
};

using CriterionSetup = RunShape;
using ScheduleSetup = RunShape;
using StopSetup = RunShape;

}  // namespace frost
