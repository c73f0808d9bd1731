#pragma once
// All stop rules.
#include "frost/stop/all_frozen.hpp"
#include "frost/stop/any_of.hpp"
#include "frost/stop/max_steps.hpp"
#include "frost/stop/never.hpp"
#include "frost/stop/patience.hpp"
