#pragma once
// examples/train/minilm_defaults.hpp — the settings of --model minilm-l6's
// comparison (the text task of text_data.hpp, docs/minilm.md) that the command
// line leaves out, and what the model seam asks of the task: the number of
// classes, the pooling the head reads, the tokens per gloss.
//
// Sized for 2 CPU cores: a MiniLM-L6 step (batch 32, glosses of ~16 tokens,
// trimmed to each batch's longest) costs about 0.7 s on one core (measured),
// so the budget is 1 500 training glosses (150 per class: the file's first,
// balanced half) for 2 epochs, 94 steps, and one seed of the comparison
// (every strategy, the control, the frontier and the matched runs, --jobs 2)
// fits the set-up script's ~15 minutes (docs/minilm.md).
#include <cstdint>
#include <string>

#include "bert.hpp"

#include "budget_defaults.hpp"
#include "cli.hpp"

namespace frost_train {

/// The classes of the loaded task (TrainConfig::text_classes, set by
/// load_run_data when it reads the file).
inline std::int64_t minilm_num_classes(const TrainConfig& cfg) {
  if (cfg.text_classes < 2)
    throw UsageError("--model minilm-l6: the text task is not loaded yet (no classes known)");
  return cfg.text_classes;
}

/// The feature the head reads: --pooling (mean: the mean of the real tokens'
/// final states, sentence-transformers' own pooling for these weights; cls:
/// the final [CLS] state; apply_minilm_defaults makes cls the default, chosen
/// on validation: docs/minilm.md).
inline frost_examples::BertPooling minilm_pooling(const TrainConfig& cfg) {
  frost_examples::BertPooling p = frost_examples::BertPooling::mean;
  if (!frost_examples::from_string(cfg.pooling, p))
    throw UsageError("--pooling is cls or mean, got '" + cfg.pooling + "'");
  return p;
}

/// The mean real tokens of a training gloss ([CLS] and [SEP] included): what
/// a block's forward work scales with when the model trims padding.
inline double minilm_tokens(const TrainConfig& cfg) { return cfg.text_tokens; }

/// The comparison's settings where the command line left them out;
/// `default_strategies`: the strategies are the default or the study's set.
inline void apply_minilm_defaults(TrainConfig& cfg, bool default_strategies) {
  BudgetDefaults b;
  b.epochs = 2.0;          // BERT fine-tuning's usual few epochs
  b.train_limit = 1500;    // 150 glosses per class (of the file's 300)
  b.val_limit = -1;
  b.test_limit = -1;
  b.batch_size = 32;
  b.lr = 1e-4;             // BERT-small's usual rate (not tuned: docs/minilm.md)
  b.weight_decay = 0.01;   // BERT's
  b.warmup = 10;
  b.frontier = {0.5, 1};
  // The adaptive strategies' decision cadence, in steps: half an epoch (1500
  // glosses / 32 = 47 steps), as on the ViT (20 of its 40 steps) and the CNN.
  b.half_epoch = "23";
  b.quarter_epoch = "12";
  // The arms a strong encoder invites (issue 33): frozen embeddings only
  // (static-stem: block 0 of 7), the linear probe and LP-FT.
  b.extra_strategies = {"probe", "lpft", "static-stem", "static-50"};
  apply_budget_defaults(cfg, b, default_strategies);
  // [CLS] pooling: chosen on validation (seed 0, full fine-tuning: 83.8 %
  // against mean pooling's 78.7 %, docs/minilm.md), although the weights were
  // trained with mean pooling.
  if (!flag_given(cfg, "--pooling")) cfg.pooling = "cls";
  // A checkpoint holds the model and AdamW's two moments: 270 MB here; one at
  // the end of each run (--resume still works from it), not every 50 steps.
  if (!flag_given(cfg, "--checkpoint-every")) cfg.checkpoint_every = 0;
}

}  // namespace frost_train
