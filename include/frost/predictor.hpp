#pragma once
// SmartFRZ's learned predictor, on demand: criteria::AttentionPredictor and the
// predictor network it runs (predictor::FreezePredictor, predictor::Tailor).
// Not in frost/frost.hpp: the network is a torch::nn module that only users of
// this criterion should compile.
//
//   #include <frost/frost.hpp>
//   #include <frost/predictor.hpp>
//   frost::FreezeController<frost::criteria::AttentionPredictor, ...> ctl(...);
#include "frost/criteria/attention_predictor.hpp"
#include "frost/predictor/freeze_predictor.hpp"
#include "frost/predictor/tailor.hpp"
