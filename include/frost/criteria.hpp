#pragma once
// All freezing criteria but one: criteria::AttentionPredictor (SmartFRZ)
// brings its predictor network (a torch::nn module) and is included on demand,
// `#include <frost/predictor.hpp>`, so every other user's build stays lean.
#include "frost/criteria/all_of.hpp"
#include "frost/criteria/any_of.hpp"
#include "frost/criteria/at_steps.hpp"
#include "frost/criteria/gradient_norm_change.hpp"
#include "frost/criteria/gradient_threshold.hpp"
#include "frost/criteria/never.hpp"
#include "frost/criteria/token_similarity.hpp"
