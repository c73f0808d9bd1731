#pragma once
// The block lifecycle as one table: what a request does to a block in each
// state (frost/block_state.hpp describes the states and the requests),
// kLifecycle below, one row per cell. Torch-free, so it can be
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
//   "-": already so, nothing happens and nothing is recorded. A pair the
//   table does not list is refused.
//   (1) "the block is not in trial"  (2) "the block is frozen for good"
//   (3) "the block is frozen for good (only ctl.unfreeze() trains it again)"
//
// Criteria send freeze, trial, revert and commit (frost::Decisions); unfreeze
// is the user's (ctl.unfreeze). Every request, whoever sends it, passes one
// gate, BlockLedger::review: this table's cell first, then the guards that
// depend on more than the block's own state and on who asks (a criterion's
// move out of training: a non-finite statistic, in_order; the user's: a
// refusal is a frost::Error). The controller adds the one guard only the
// schedule can answer (a user's move back into training after the schedule
// annealed the block to 0). What a state means once entered is its row in
// block_state.hpp.
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "frost/block_state.hpp"
#include "frost/timeline.hpp"

namespace frost {

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

/// One row of the table: what `request` does to a block in state `from`.
struct Move {
  BlockState from;
  Request request;
  Transition cell;
};

namespace lifecycle_detail {
using S = BlockState;
using R = Request;
using E = EventKind;
constexpr Transition move(BlockState to, EventKind e) {
  return {Transition::Outcome::moves, to, e, nullptr};
}
constexpr Transition stay() { return {Transition::Outcome::stays, {}, EventKind::warning, nullptr}; }
constexpr Transition refuse(const char* why) {
  return {Transition::Outcome::refused, {}, EventKind::warning, why};
}
constexpr const char* not_in_trial = "the block is not in trial";
constexpr const char* frozen = "the block is frozen for good";
constexpr const char* frozen_revert =
    "the block is frozen for good (only ctl.unfreeze() trains it again)";

// clang-format off
/// The table above, one row per cell (a pair not listed is refused).
inline constexpr Move kLifecycle[] = {
  // from         request       what happens
  {S::training,  R::freeze,    move(S::frozen, E::freeze)},
  {S::training,  R::trial,     move(S::trial, E::trial)},
  {S::training,  R::revert,    stay()},
  {S::training,  R::commit,    refuse(not_in_trial)},
  {S::training,  R::unfreeze,  stay()},
  {S::trial,     R::freeze,    move(S::frozen, E::commit)},
  {S::trial,     R::trial,     stay()},
  {S::trial,     R::revert,    move(S::training, E::revert)},
  {S::trial,     R::commit,    move(S::frozen, E::commit)},
  {S::trial,     R::unfreeze,  move(S::training, E::revert)},
  {S::frozen,    R::freeze,    stay()},
  {S::frozen,    R::trial,     refuse(frozen)},
  {S::frozen,    R::revert,    refuse(frozen_revert)},
  {S::frozen,    R::commit,    stay()},
  {S::frozen,    R::unfreeze,  move(S::training, E::unfreeze)},
};
// clang-format on
}  // namespace lifecycle_detail
using lifecycle_detail::kLifecycle;

/// What `r` does to a block in state `from`: its row of kLifecycle, with
/// `to` the state after (`from` when it stays or is refused).
constexpr Transition lifecycle(BlockState from, Request r) {
  for (const Move& m : kLifecycle) {
    if (m.from != from || m.request != r) continue;
    Transition t = m.cell;
    if (!t.moves()) t.to = from;
    return t;
  }
  return {Transition::Outcome::refused, from, EventKind::warning,
          "the lifecycle table has no such move from this state"};
}

namespace lifecycle_detail {
/// No (state, request) pair twice: a cell means one thing.
constexpr bool cells_unique() {
  for (std::size_t i = 0; i < std::size(kLifecycle); ++i)
    for (std::size_t j = i + 1; j < std::size(kLifecycle); ++j)
      if (kLifecycle[i].from == kLifecycle[j].from &&
          kLifecycle[i].request == kLifecycle[j].request)
        return false;
  return true;
}
static_assert(cells_unique(), "frost: kLifecycle lists a (state, request) pair twice");
}  // namespace lifecycle_detail

/// Whether the move ends out of training (training -> trial or frozen, trial
/// -> frozen): the controller's guards on non-finite statistics and in_order
/// apply to these.
constexpr bool ends_out_of_training(const Transition& t) {
  return t.moves() && !meaning(t.to).trains;
}

}  // namespace frost
