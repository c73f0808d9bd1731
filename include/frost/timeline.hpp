#pragma once
// The timeline: every decision the controller acted on, in order, with the
// statistic that triggered it. It is what a user reads after a run ("block 3
// froze at step 1200 because its gradient-norm change fell to 0.004") and what
// the example trainer draws.
#include <cstdint>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

#include "frost/block_state.hpp"  // EnumName, detail::rows_in_order

namespace frost {

// The values are stored in checkpoints: new kinds are appended, never inserted.
enum class EventKind {
  freeze = 0,    ///< training -> frozen (for good)
  warning = 1,   ///< a statistic was not finite, or a request was refused; nothing changed
  stop = 2,      ///< the stop rule asked training to end
  trial = 3,     ///< training -> trial (no gradient, optimizer state kept)
  revert = 4,    ///< trial -> training
  commit = 5,    ///< trial -> frozen (for good)
  unfreeze = 6,  ///< frozen -> training (fresh optimizer state)
};

/// One row per kind, in the enumerators' order (block_state.hpp checks it).
inline constexpr EnumName<EventKind> kEventKindNames[] = {
    {EventKind::freeze, "freeze"},
    {EventKind::warning, "warning"},
    {EventKind::stop, "stop"},
    {EventKind::trial, "trial"},
    {EventKind::revert, "revert"},
    {EventKind::commit, "commit"},
    {EventKind::unfreeze, "unfreeze"},
};
static_assert(detail::rows_in_order(kEventKindNames, &EnumName<EventKind>::value),
              "frost: kEventKindNames' rows must be in the enumerators' order, one per EventKind");
/// The largest value a saved event kind may hold.
inline constexpr int kLastEventKind = static_cast<int>(std::size(kEventKindNames)) - 1;

inline const char* to_string(EventKind k) { return detail::name_in(kEventKindNames, k); }

struct Event {
  std::int64_t step = 0;    ///< the 0-based training step at which it happened (for a
                            ///< stop: the last step run)
  std::int64_t block = -1;  ///< block index, -1 when not about one block
  std::string block_name;
  EventKind kind = EventKind::freeze;
  std::string policy;       ///< which policy decided: "schedule:FreezeOut", "criterion:GradientThreshold", ...
  double statistic = 0.0;   ///< the value that triggered it (NaN allowed in warnings)
  std::string detail;       ///< human-readable reason
};

using Timeline = std::vector<Event>;

inline std::ostream& operator<<(std::ostream& os, const Event& e) {
  os << "step " << e.step << ": " << to_string(e.kind);
  if (e.block >= 0) os << " block " << e.block << " (" << e.block_name << ")";
  os << " by " << e.policy << ", statistic " << e.statistic;
  if (!e.detail.empty()) os << " — " << e.detail;
  return os;
}

}  // namespace frost
