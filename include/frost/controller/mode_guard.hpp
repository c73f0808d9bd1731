#pragma once
// frost::ModeGuard: the module modes and buffers of blocks out of training.
//
// With eval_frozen (the default, chosen once when the controller is built) a
// block leaving training goes to eval mode (dropout off, batch-norm running
// statistics fixed, as both FreezeOut codebases do) and gets its mode back
// when it trains again. Eval mode is re-applied before every step, so a
// model->train() between steps does not undo it; one called after
// before_step() would let that step's forward update the running statistics
// of a block out of training (its output would drift, and an activation
// cache would serve stale entries). So the buffers of a block leaving
// training are copied once (at the next before_step(), after any model load:
// small for batch norm, nothing for layer norm), and after each step a block
// found in train mode gets them back and is put in eval mode again; the
// first time, the guard tells the controller, which warns. A host check of
// the modules' flags per step.
//
// Without eval_frozen the guard only remembers each block's mode (it is part
// of a checkpoint either way, key "was_training").
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/block_state.hpp"
#include "frost/error.hpp"
#include "frost/state_fields.hpp"

namespace frost {

class ModeGuard {
  FROST_STATE(was_training)  // the key "was_training" (before save/load; "mode_warned" by hand)

 public:
  ModeGuard() = default;
  ModeGuard(bool eval_frozen, std::size_t blocks)
      : eval_frozen_(eval_frozen),
        was_training_(blocks, 1),
        snapshot_due_(blocks, 0),
        live_(blocks),
        saved_(blocks) {}

  bool eval_frozen() const noexcept { return eval_frozen_; }

  /// Block b goes out of training (to trial or frozen). `from_training`: it
  /// was training until now, so its mode is remembered (a trial committed
  /// keeps both that mode and the buffers copied when it left training).
  void leave(const Block& blk, std::size_t b, bool from_training) {
    if (from_training)
      was_training_[b] =
          blk.modules.empty() ? 1 : static_cast<char>(blk.modules.front()->is_training());
    if (!eval_frozen_) return;
    for (const auto& m : blk.modules) m->eval();
    if (saved_[b].empty()) snapshot_due_[b] = 1;
  }

  /// Block b trains again: the mode it had when it left.
  void rejoin(const Block& blk, std::size_t b) {
    if (eval_frozen_)
      for (const auto& m : blk.modules) m->train(was_training_[b] != 0);
    snapshot_due_[b] = 0;
    live_[b].clear();
    saved_[b].clear();
  }

  /// Before a step's forward: eval mode for every block out of training, and
  /// the copies of buffers that are due.
  void before_step(const BlockMap& blocks, const std::vector<BlockState>& states) {
    if (!eval_frozen_) return;
    reapply(blocks, states);
    at::NoGradGuard ng;
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      if (!snapshot_due_[b]) continue;
      snapshot_due_[b] = 0;
      live_[b].clear();
      saved_[b].clear();
      std::vector<const void*> seen;
      for (const auto& m : blocks[b].modules)
        for (const auto& t : m->buffers(/*recurse=*/true)) {
          if (!t.defined() ||
              std::find(seen.begin(), seen.end(), t.unsafeGetTensorImpl()) != seen.end())
            continue;
          seen.push_back(t.unsafeGetTensorImpl());
          live_[b].push_back(t);
          saved_[b].push_back(t.clone());
        }
    }
  }

  /// Eval mode for every block out of training (after a checkpoint's load too).
  void reapply(const BlockMap& blocks, const std::vector<BlockState>& states) const {
    if (!eval_frozen_) return;
    for (std::size_t b = 0; b < blocks.size(); ++b)
      if (meaning(states[b]).eval_mode)
        for (const auto& m : blocks[b].modules) m->eval();
  }

  /// After a step (or an abandoned one): a block out of training found in
  /// train mode gets its buffers back and eval mode again. Returns the first
  /// such block the first time it happens (for the controller's warning).
  std::optional<std::size_t> after_step(const BlockMap& blocks,
                                        const std::vector<BlockState>& states) {
    if (!eval_frozen_) return std::nullopt;
    std::optional<std::size_t> first;
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      if (!meaning(states[b]).eval_mode) continue;
      const auto& mods = blocks[b].modules;
      if (std::none_of(mods.begin(), mods.end(), [](const auto& m) { return m->is_training(); }))
        continue;
      for (const auto& m : mods) m->eval();
      {
        at::NoGradGuard ng;
        for (std::size_t i = 0; i < live_[b].size(); ++i) live_[b][i].copy_(saved_[b][i]);
      }
      if (!warned_ && !first) first = b;
    }
    if (first) warned_ = true;
    return first;
  }

  /// What the controller warns when after_step() returned block `name`.
  static std::string warning(const std::string& name, std::int64_t step) {
    return "block '" + name + "' is out of training but was in train mode during step " +
           std::to_string(step) +
           " (model->train() after ctl.before_step()?): its buffers "
           "(batch-norm statistics) were restored and it is in eval mode again; call "
           "model->train() before ctl.before_step(). Reported once";
  }

  // --- checkpoint: keys "was_training" and "mode_warned" -------------------
  // "mode_warned" keeps a resumed run from warning again what the first run
  // already reported once (its timeline would differ). It is written only
  // once the warning was given, so an absent key means "not warned yet" and
  // checkpoints written before it existed load, and save again, unchanged.
  void save(torch::serialize::OutputArchive& ar) const {
    save_fields(ar, state_fields());
    if (warned_) ar.write("mode_warned", c10::IValue(true));
  }
  void load(torch::serialize::InputArchive& ar) {
    ModeGuard g = *this;
    load_fields(ar, g.state_fields());
    detail::require(g.was_training_.size() == was_training_.size(), "block modes for ",
                    g.was_training_.size(), " blocks, ", was_training_.size(), " expected");
    c10::IValue w;
    const bool has_warned = ar.try_read("mode_warned", w);
    detail::require(!has_warned || w.isBool(), "'mode_warned' is not a bool");
    for (auto& t : g.was_training_) t = static_cast<char>(t != 0);
    g.warned_ = has_warned && w.toBool();
    *this = std::move(g);
  }

 private:
  bool eval_frozen_ = true;
  bool warned_ = false;             // the train-mode warning was given
  std::vector<char> was_training_;  // per block: its mode when it left training
  std::vector<char> snapshot_due_;  // per block: copy its buffers at the next before_step
  std::vector<std::vector<at::Tensor>> live_;   // per block out of training: its buffers
  std::vector<std::vector<at::Tensor>> saved_;  // ... and their values when it left
};

}  // namespace frost
