#pragma once
// frost::Error: the one exception type the library throws for bad input.
// Messages say what was wrong *and* what to change, because the user reading
// them is in the middle of wiring frost into an existing trainer.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace frost {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error("frost: " + what), message_(what) {}
  /// The message without the "frost: " prefix of what(), to continue in another
  /// (a checkpoint's name in front: "run.frost is corrupt: ...").
  const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
};

namespace detail {
template <class... Args>
[[noreturn]] inline void fail(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  throw Error(os.str());
}

template <class... Args>
inline void require(bool ok, Args&&... args) {
  if (!ok) fail(std::forward<Args>(args)...);
}
}  // namespace detail

}  // namespace frost
