#pragma once
// frost's data-parallel training on c10d: link the CMake target
// frost::distributed (Gloo on CPU; NCCL on GPU with LibTorch 2.x).
//
//   auto group = frost::dist::init();            // torchrun's environment
//   frost::dist::GradientSync sync(*model);      // rank 0's weights everywhere
//   frost::FreezeController<C, S, P, frost::with_reducer<frost::reducers::AllReduceMean>>
//       ctl(model, opt, blocks, options);        // every rank takes every decision
//
// Kept out of frost/frost.hpp: the c10d headers need the build flags the
// target sets, and single-process users pay nothing for them.
#include "frost/distributed/gradient_sync.hpp"
#include "frost/distributed/group.hpp"
#include "frost/reducers/all_reduce_mean.hpp"
