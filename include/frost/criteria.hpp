#pragma once
// All freezing criteria.
#include "frost/criteria/at_steps.hpp"
#include "frost/criteria/never.hpp"
