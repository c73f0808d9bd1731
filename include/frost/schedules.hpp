#pragma once
// All learning-rate/freezing schedules. Pure host arithmetic: none of these
// headers includes LibTorch, so they can be used (and previewed with
// frost-schedule) without it.
#include "frost/schedules/constant.hpp"
#include "frost/schedules/cosine.hpp"
#include "frost/schedules/freezeout.hpp"
#include "frost/schedules/layer_wise.hpp"
#include "frost/schedules/spacing.hpp"
#include "frost/schedules/stage_wise.hpp"
