#pragma once
// frost: freeze the parts of a LibTorch model that have stopped learning.
//
// Compose a strategy at compile time from a criterion (when a block freezes), a
// schedule (per-block learning rates) and a stop rule:
//
//   frost::FreezeController<frost::criteria::GradientNormChange,
//                           frost::schedules::FreezeOut<frost::Cubic, frost::Scaled>,
//                           frost::stop::AllFrozen> ctl(model, optimizer, blocks, options);
#include "frost/block_map.hpp"
#include "frost/block_state.hpp"
#include "frost/checkpoint.hpp"
#include "frost/cka.hpp"
#include "frost/controller.hpp"
#include "frost/controller_options.hpp"
#include "frost/criteria.hpp"
#include "frost/error.hpp"
#include "frost/extras.hpp"
#include "frost/host.hpp"
#include "frost/optimizer_state.hpp"
#include "frost/options.hpp"
#include "frost/param_groups.hpp"
#include "frost/schedules.hpp"
#include "frost/state_fields.hpp"
#include "frost/stop.hpp"
#include "frost/timeline.hpp"
