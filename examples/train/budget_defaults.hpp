#pragma once
// examples/train/budget_defaults.hpp — what a pretrained model family's
// comparison sets where the command line left it out: the budget (epochs,
// limits, batch, rates, the frontier), the strategies it adds to the default
// set, and the adaptive criteria's decision cadences in steps. One function
// for every family (effnet_net.hpp, minilm_defaults.hpp), each passing its own
// numbers: the families differ in sizes, not in which flags they fill.
#include <cstdint>
#include <string>
#include <vector>

#include "cli.hpp"

namespace frost_train {

struct BudgetDefaults {
  double epochs = 0;
  std::int64_t train_limit = -1, val_limit = -1, test_limit = -1;
  std::int64_t batch_size = 0;
  double lr = 0, weight_decay = 0;
  std::int64_t warmup = 0;
  std::vector<double> frontier;
  /// The adaptive strategies' cadence: half an epoch and a quarter, in steps
  /// (as the ViT's 20 of its 40-step epoch, strategies.hpp).
  std::string half_epoch, quarter_epoch;
  /// Joined to the default (or the study's) set, before the timing control.
  std::vector<std::string> extra_strategies;
};

/// Whether the command line gave `flag` (TrainConfig::given).
inline bool flag_given(const TrainConfig& cfg, const std::string& flag) {
  for (const auto& g : cfg.given)
    if (g == flag) return true;
  return false;
}

/// `d` where the command line left a setting out; `default_strategies`: the
/// strategies are the default or the study's set.
inline void apply_budget_defaults(TrainConfig& cfg, const BudgetDefaults& d, bool default_strategies) {
  auto fill = [&](const char* flag, auto& field, const auto& value) {
    if (!flag_given(cfg, flag)) field = value;
  };
  fill("--epochs", cfg.epochs, d.epochs);
  fill("--train-limit", cfg.train_limit, d.train_limit);
  fill("--test-limit", cfg.test_limit, d.test_limit);
  fill("--val-limit", cfg.val_limit, d.val_limit);
  fill("--batch-size", cfg.batch_size, d.batch_size);
  fill("--lr", cfg.lr, d.lr);
  fill("--weight-decay", cfg.weight_decay, d.weight_decay);
  fill("--warmup", cfg.warmup_steps, d.warmup);
  fill("--frontier", cfg.frontier, d.frontier);
  if (default_strategies) {
    auto at = cfg.strategies.end();
    if (!cfg.strategies.empty() && cfg.strategies.back() == "full-repeat") --at;
    cfg.strategies.insert(at, d.extra_strategies.begin(), d.extra_strategies.end());
  }
  // The cadences, for the chosen strategies that have them and where --set
  // left them alone (as `key` or `strategy:key`).
  auto chosen = [&](const std::string& s) {
    for (const auto& c : cfg.strategies)
      if (c == s) return true;
    return false;
  };
  auto set = [&](const std::string& strategy, const std::string& key, const std::string& value) {
    if (!chosen(strategy)) return;
    for (const auto& kv : cfg.sets)
      if (kv.first == key || kv.first == strategy + ":" + key) return;
    cfg.sets.emplace_back(strategy + ":" + key, value);
  };
  for (const char* s : {"dyf", "dyf-nostop"}) set(s, "criterion.window", d.half_epoch);
  for (const char* s : {"autofreeze", "autofreeze-nostop"}) set(s, "criterion.interval", d.half_epoch);
  for (const char* s : {"simfreeze", "simfreeze-nostop"}) {
    set(s, "criterion.record_steps", d.half_epoch);
    set(s, "criterion.compare_steps", d.quarter_epoch);
  }
}

}  // namespace frost_train
