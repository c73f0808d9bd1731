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
// With c10's own default handler in place (no program set one), frost writes
// the warning to std::cerr itself instead of calling it: on a LibTorch built
// with glog, as Debian's is, that default handler logs through glog, which
// prints "WARNING: Logging before InitGoogleLogging() is written to STDERR"
// before the first warning of a program that never initialised glog, and a
// glog header before each. A handler a program installs gets every warning.
//
// Each is emitted once per topic (what kind of warning, see the controller)
// and block, so a request refused at every decision point does not flood
// stderr; the timeline keeps every one.
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <cstdint>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <typeinfo>
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

namespace detail {
/// c10's current warning handler (LibTorch 1.x and 2.x keep it apart).
inline c10::WarningHandler* warning_handler() {
#if TORCH_VERSION_MAJOR >= 2
  return c10::WarningUtils::get_warning_handler();
#else
  return c10::Warning::get_warning_handler();
#endif
}
}  // namespace detail

/// Passes `message` to the warning handler a program installed (TORCH_WARN);
/// with c10's default handler, writes "Warning: <message>" on std::cerr
/// (see the header comment: not through glog).
inline void emit_warning(const std::string& message) {
  const c10::WarningHandler* handler = detail::warning_handler();
  if (handler != nullptr && typeid(*handler) != typeid(c10::WarningHandler)) {
    TORCH_WARN(message);
    return;
  }
  std::cerr << ("Warning: " + message + "\n") << std::flush;  // one write: lines stay whole
}

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
