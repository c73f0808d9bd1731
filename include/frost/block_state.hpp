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
// What each state *means* is one row of kStateMeanings below, read by every
// part that acts on a state (BlockParams: gradients and optimizer state;
// ModeGuard: eval mode; the controller: learning rates; BlockLedger and
// StepState: what counts as frozen, which blocks train): a new state is an
// enumerator, its row here, and its row and column in
// controller/lifecycle.hpp's table of moves (plus an EventKind, appended,
// for the move into it).
#include <cstddef>
#include <cstdint>
#include <string>

namespace frost {

enum class BlockState : std::uint8_t {
  training = 0,
  trial = 1,
  frozen = 2,
};

/// What a block state means, for every part of frost that acts on one.
struct StateMeaning {
  const char* name;
  bool trains;                 ///< requires_grad on, gradients read by the criteria, the
                               ///< schedule's learning rate (else rate 0, no gradient)
  bool keeps_optimizer_state;  ///< its optimizer state is kept (else released)
  bool frozen_for_good;        ///< counts as frozen: num_frozen(), frozen_prefix(), the stop
                               ///< rules, the activation cache (a trial may revert: it does not)
  bool eval_mode;              ///< eval mode while in it (with controller.eval_frozen)
};

// clang-format off
/// One row per state, in the enumerators' order.
inline constexpr StateMeaning kStateMeanings[] = {
  //  name        trains  keeps optimizer state  frozen for good  eval mode
    {"training",  true,   true,                  false,           false},
    {"trial",     false,  true,                  false,           true},
    {"frozen",    false,  false,                 true,            true},
};
// clang-format on
inline constexpr std::size_t kNumBlockStates = sizeof(kStateMeanings) / sizeof(kStateMeanings[0]);

/// The row of state `s`.
constexpr const StateMeaning& meaning(BlockState s) {
  return kStateMeanings[static_cast<std::size_t>(s)];
}
static_assert(kNumBlockStates == static_cast<std::size_t>(BlockState::frozen) + 1,
              "frost: a BlockState without its row in kStateMeanings");
static_assert(meaning(BlockState::training).trains && !meaning(BlockState::trial).trains &&
                  meaning(BlockState::trial).keeps_optimizer_state &&
                  meaning(BlockState::frozen).frozen_for_good,
              "frost: kStateMeanings' rows are out of the enumerators' order");

/// Whether `code` (a saved state's number) names a state.
constexpr bool is_block_state(std::int64_t code) {
  return code >= 0 && static_cast<std::size_t>(code) < kNumBlockStates;
}

inline const char* to_string(BlockState s) {
  return is_block_state(static_cast<std::int64_t>(s)) ? meaning(s).name : "?";
}

inline bool from_string(const std::string& text, BlockState& s) {
  for (std::size_t i = 0; i < kNumBlockStates; ++i)
    if (text == kStateMeanings[i].name) return (s = static_cast<BlockState>(i)), true;
  return false;
}

}  // namespace frost
