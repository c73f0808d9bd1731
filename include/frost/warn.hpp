#pragma once
// frost's warnings reach the user where LibTorch's do. A warning event (a
// batch-norm block in train mode while frozen, a block map that holds little
// of the model, a learning rate changed in only some param groups, a refused
// request) is kept in the timeline and also passed to c10's warning handler,
// as TORCH_WARN does with LibTorch's own: by default it is printed on stderr,
// and a program routes or silences it like any LibTorch warning, with its own
// c10::WarningHandler:
//
//   LibTorch 1.x: c10::Warning::WarningHandlerGuard guard(&my_handler);
//   LibTorch 2.x: c10::WarningUtils::WarningHandlerGuard guard(&my_handler);
//
// Each is emitted once per topic (what kind of warning, see the controller)
// and block, so a request refused at every decision point does not flood
// stderr; the timeline keeps every one.
#include <c10/util/Exception.h>

#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "frost/timeline.hpp"

namespace frost {

/// The text a warning event is emitted with, e.g. "frost: step 12, block 1
/// (layer1.0), controller: ...".
inline std::string warning_text(const Event& e) {
  std::ostringstream os;
  os << "frost: step " << e.step;
  if (e.block >= 0) os << ", block " << e.block << " (" << e.block_name << ")";
  os << ", " << e.policy << ": " << e.detail;
  return os.str();
}

/// Passes `message` to c10's current warning handler (TORCH_WARN).
inline void emit_warning(const std::string& message) { TORCH_WARN(message); }

/// Emits warning events through emit_warning, once per topic and block.
class WarningLog {
 public:
  /// Emits `e` unless a warning of the same topic and block was emitted
  /// before; returns whether it was emitted.
  bool emit(const Event& e, const std::string& topic) {
    if (!seen_.insert({topic, e.block}).second) return false;
    emit_warning(warning_text(e));
    return true;
  }

 private:
  std::set<std::pair<std::string, std::int64_t>> seen_;
};

}  // namespace frost
