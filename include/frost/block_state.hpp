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
// StepState: what counts as frozen, which blocks train). A new state is, and
// only is (ctest lifecycle.extra_state adds one to a copy of the headers and
// trains with it):
//   * its enumerator and its row of kStateMeanings, here;
//   * its rows in controller/lifecycle.hpp's table of moves (the moves out of
//     it, and the move into it);
//   * an EventKind and its name (frost/timeline.hpp), for the move into it;
//   * a Request and its name, here, when no request leads into it yet.
#include <cstddef>
#include <cstdint>
#include <string>

namespace frost {

// The values are stored in checkpoints: new states are appended.
enum class BlockState : std::uint8_t {
  training = 0,
  trial = 1,
  frozen = 2,
};

/// What a block state means, for every part of frost that acts on one.
struct StateMeaning {
  BlockState state;
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
  //  state                 name        trains  keeps optimizer state  frozen for good  eval mode
    {BlockState::training,  "training",  true,   true,                  false,           false},
    {BlockState::trial,     "trial",     false,  true,                  false,           true},
    {BlockState::frozen,    "frozen",    false,  false,                 true,            true},
};
// clang-format on
inline constexpr std::size_t kNumBlockStates = sizeof(kStateMeanings) / sizeof(kStateMeanings[0]);

namespace detail {
/// Whether row i of a table of rows that name their enumerator names the
/// i-th one: the rows are in the enumerators' order, one per enumerator.
template <class Row, std::size_t N, class Enum>
constexpr bool rows_in_order(const Row (&rows)[N], Enum Row::*value) {
  for (std::size_t i = 0; i < N; ++i)
    if (static_cast<std::size_t>(rows[i].*value) != i) return false;
  return true;
}
/// The name in row `v` of such a table, "?" for a value it lacks.
template <class Row, std::size_t N, class Enum>
constexpr const char* name_in(const Row (&rows)[N], Enum v) {
  const auto i = static_cast<std::size_t>(v);
  return i < N ? rows[i].name : "?";
}
}  // namespace detail

/// A row of an enum's table of names (Request, EventKind).
template <class Enum>
struct EnumName {
  Enum value;
  const char* name;
};
static_assert(detail::rows_in_order(kStateMeanings, &StateMeaning::state),
              "frost: kStateMeanings' rows must be in the enumerators' order, one per BlockState");

/// The row of state `s`.
constexpr const StateMeaning& meaning(BlockState s) {
  return kStateMeanings[static_cast<std::size_t>(s)];
}

/// Whether `code` (a saved state's number) names a state.
constexpr bool is_block_state(std::int64_t code) {
  return code >= 0 && static_cast<std::size_t>(code) < kNumBlockStates;
}

inline const char* to_string(BlockState s) { return detail::name_in(kStateMeanings, s); }

inline bool from_string(const std::string& text, BlockState& s) {
  for (const StateMeaning& m : kStateMeanings)
    if (text == m.name) return (s = m.state), true;
  return false;
}

/// What someone asks of a block: a criterion (frost::Decisions), the schedule
/// (freeze), the user (ctl.freeze, ctl.trial, ctl.unfreeze). What each does
/// in each state is controller/lifecycle.hpp's table.
enum class Request : std::uint8_t {
  freeze,    ///< to frozen for good (from training or trial)
  trial,     ///< training -> trial
  revert,    ///< trial -> training
  commit,    ///< trial -> frozen for good
  unfreeze,  ///< back to training from trial or frozen (the user's)
};

/// One row per request, in the enumerators' order.
inline constexpr EnumName<Request> kRequestNames[] = {
    {Request::freeze, "freeze"},
    {Request::trial, "trial"},
    {Request::revert, "revert"},
    {Request::commit, "commit"},
    {Request::unfreeze, "unfreeze"},
};
static_assert(detail::rows_in_order(kRequestNames, &EnumName<Request>::value),
              "frost: kRequestNames' rows must be in the enumerators' order, one per Request");

inline const char* to_string(Request r) { return detail::name_in(kRequestNames, r); }

}  // namespace frost
