#pragma once
// The block lifecycle as one table: what a request does to a block in each
// state (frost/block_state.hpp describes the states). Torch-free, so it can be
// tested and read on its own; the block ledger looks requests up here and the
// controller carries the resulting transitions out on the parameters.
//
//   state \ request | freeze           trial          revert          commit           unfreeze
//   ----------------+------------------------------------------------------------------------------
//   training        | frozen (freeze)  trial (trial)  -               refused (1)      -
//   trial           | frozen (commit)  -              training        frozen (commit)  training
//                   |                                 (revert)                         (revert)
//   frozen          | -                refused (2)    refused (3)     -                training
//                   |                                                                  (unfreeze)
//
//   "-": already so, nothing happens and nothing is recorded.
//   (1) "the block is not in trial"  (2) "the block is frozen for good"
//   (3) "the block is frozen for good (only ctl.unfreeze() trains it again)"
//
// Criteria send freeze, trial, revert and commit (frost::Decisions); unfreeze
// is the user's (ctl.unfreeze). Every request passes one gate,
// FreezeController::gate: this table's cell first, then the guards that
// depend on more than the block's own state (for a criterion's request a
// non-finite statistic and in_order, BlockLedger::review; for the user's
// unfreeze a schedule that has annealed the block to 0). What a state means
// once entered is its row in block_state.hpp.
#include <cstdint>

#include "frost/block_state.hpp"
#include "frost/timeline.hpp"

namespace frost {

/// What someone asks of a block.
enum class Request : std::uint8_t { freeze, trial, revert, commit, unfreeze };

// One line per cell reads as the table:
// clang-format off
inline const char* to_string(Request r) {
  switch (r) {
    case Request::freeze: return "freeze";
    case Request::trial: return "trial";
    case Request::revert: return "revert";
    case Request::commit: return "commit";
    case Request::unfreeze: return "unfreeze";
  }
  return "?";
}

/// One cell of the table.
struct Transition {
  enum class Outcome : std::uint8_t { moves, stays, refused };
  Outcome outcome = Outcome::stays;
  BlockState to = BlockState::training;  ///< the state after (the same when it stays)
  EventKind event = EventKind::warning;  ///< what the timeline records when it moves
  const char* refusal = nullptr;         ///< why, when refused

  constexpr bool moves() const { return outcome == Outcome::moves; }
  constexpr bool refused() const { return outcome == Outcome::refused; }
};

namespace lifecycle_detail {
constexpr Transition move(BlockState to, EventKind e) {
  return {Transition::Outcome::moves, to, e, nullptr};
}
constexpr Transition stay(BlockState s) {
  return {Transition::Outcome::stays, s, EventKind::warning, nullptr};
}
constexpr Transition refuse(BlockState s, const char* why) {
  return {Transition::Outcome::refused, s, EventKind::warning, why};
}
}  // namespace lifecycle_detail

/// The table above: what `r` does to a block in state `from`.
constexpr Transition lifecycle(BlockState from, Request r) {
  using namespace lifecycle_detail;
  using S = BlockState;
  using E = EventKind;
  constexpr const char* not_in_trial = "the block is not in trial";
  constexpr const char* frozen = "the block is frozen for good";
  constexpr const char* frozen_revert =
      "the block is frozen for good (only ctl.unfreeze() trains it again)";
  switch (from) {
    case S::training:
      switch (r) {
        case Request::freeze: return move(S::frozen, E::freeze);
        case Request::trial: return move(S::trial, E::trial);
        case Request::revert: return stay(from);
        case Request::commit: return refuse(from, not_in_trial);
        case Request::unfreeze: return stay(from);
      }
      break;
    case S::trial:
      switch (r) {
        case Request::freeze: return move(S::frozen, E::commit);
        case Request::trial: return stay(from);
        case Request::revert: return move(S::training, E::revert);
        case Request::commit: return move(S::frozen, E::commit);
        case Request::unfreeze: return move(S::training, E::revert);
      }
      break;
    case S::frozen:
      switch (r) {
        case Request::freeze: return stay(from);
        case Request::trial: return refuse(from, frozen);
        case Request::revert: return refuse(from, frozen_revert);
        case Request::commit: return stay(from);
        case Request::unfreeze: return move(S::training, E::unfreeze);
      }
      break;
  }
  return refuse(from, "unknown block state");
}

// clang-format on

/// Whether the move ends out of training (training -> trial or frozen, trial
/// -> frozen): the controller's guards on non-finite statistics and in_order
/// apply to these.
constexpr bool ends_out_of_training(const Transition& t) {
  return t.moves() && !meaning(t.to).trains;
}

}  // namespace frost
