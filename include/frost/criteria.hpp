#pragma once
// All freezing criteria.
#include "frost/criteria/all_of.hpp"
#include "frost/criteria/any_of.hpp"
#include "frost/criteria/attention_predictor.hpp"
#include "frost/criteria/at_steps.hpp"
#include "frost/criteria/gradient_norm_change.hpp"
#include "frost/criteria/gradient_threshold.hpp"
#include "frost/criteria/never.hpp"
#include "frost/criteria/token_similarity.hpp"
