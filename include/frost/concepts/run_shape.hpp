#pragma once
// frost::RunShape: what every policy is told about the run once, before the
// first step (and again for the fresh policy a checkpoint is loaded into), so
// that options that do not fit the run fail then, not deep into it. One
// struct for all three kinds of policy; the names the concepts use for it
// (CriterionSetup, ScheduleSetup, StopSetup) are aliases.
// (Torch-free: the block map is only named.)
#include <cstdint>
#include <string>
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

/// Whether two runs are planned alike: the same total, warm-up and epoch
/// length (what a checkpoint records of its run; blocks are checked apart).
inline bool same_plan(const RunShape& a, const RunShape& b) {
  return a.total_steps == b.total_steps && a.warmup_steps == b.warmup_steps &&
         a.steps_per_epoch == b.steps_per_epoch;
}

/// "345 steps (69 per epoch, 0 warm-up)", the words messages use for a plan.
inline std::string plan_of(const RunShape& r) {
  auto n = [](std::int64_t v) { return v > 0 ? std::to_string(v) : std::string("unknown"); };
  return "total_steps " + n(r.total_steps) + " (steps_per_epoch " + n(r.steps_per_epoch) +
         ", warmup_steps " + std::to_string(r.warmup_steps) + ")";
}

using CriterionSetup = RunShape;
using ScheduleSetup = RunShape;
using StopSetup = RunShape;

}  // namespace frost
