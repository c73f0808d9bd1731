#pragma once
// frost::BlockState: where a block stands in the freezing protocol.
//
//   training  the block trains: requires_grad on, the schedule's learning rate.
//   trial     frozen on probation: no gradient (requires_grad off, gradients
//             released, learning rate 0, eval mode when eval_frozen) but its
//             optimizer state is kept. LibTorch's optimizers skip parameters
//             whose gradient is undefined, so Adam's moments stay untouched (and
//             are saved with the optimizer); a revert trains on from them.
//   frozen    frozen for good: as a trial, and its optimizer state is released.
//
// Transitions (the controller applies them; each is a timeline event):
//   training -> trial    Decisions::trial    / ctl.trial(b)
//   trial    -> training Decisions::revert   / ctl.unfreeze(b)
//   trial    -> frozen   Decisions::commit   (or freeze)
//   training -> frozen   Decisions::freeze   / ctl.freeze(b) / the schedule
//   frozen   -> training                       ctl.unfreeze(b) (fresh optimizer state)
//
// What a trial counts as:
//   * frozen_prefix(), num_frozen(), the stop rules (stop::AllFrozen) and the
//     activation cache see only blocks frozen for good: a trial may revert.
//   * no_grad_prefix() counts trial and frozen blocks: the part of the network
//     that costs no backward work this step.
//   * in_order: a block may leave training (trial or freeze) only when every
//     block before it is frozen for good.
//   * criteria that read gradients do not observe trial blocks (they have no
//     gradient); every criterion hears every change through on_state_change.
#include <cstdint>
#include <string>

namespace frost {

enum class BlockState : std::uint8_t {
  training = 0,
  trial = 1,
  frozen = 2,
};

inline const char* to_string(BlockState s) {
  switch (s) {
    case BlockState::training: return "training";
    case BlockState::trial: return "trial";
    case BlockState::frozen: return "frozen";
  }
  return "?";
}

inline bool from_string(const std::string& text, BlockState& s) {
  if (text == "training") return (s = BlockState::training), true;
  if (text == "trial") return (s = BlockState::trial), true;
  if (text == "frozen") return (s = BlockState::frozen), true;
  return false;
}

}  // namespace frost
