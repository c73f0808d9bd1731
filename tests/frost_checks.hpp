#pragma once
// The checks every frost test uses. Written with doctest's DOCTEST_-prefixed
// macros, so it works before or after LibTorch's glog CHECK macros (see
// doctest_torch.hpp, which test files that use LibTorch include last).
#include <doctest/doctest.h>

#include <string>

#include "frost/error.hpp"

namespace frost_test {
inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
}  // namespace frost_test

/// Checks that `expr` throws frost::Error and that its message contains
/// `part` (the part that tells the user what to change).
#define CHECK_FROST_ERROR(expr, part)                                             \
  do {                                                                            \
    bool thrown_ = false;                                                         \
    try {                                                                         \
      (void)(expr);                                                               \
    } catch (const frost::Error& e) {                                             \
      thrown_ = true;                                                             \
      DOCTEST_INFO("message: " << e.what());                                              \
      DOCTEST_CHECK(frost_test::contains(e.what(), part));                                \
    }                                                                             \
    DOCTEST_CHECK_MESSAGE(thrown_, "expected frost::Error containing '" << part << "'"); \
  } while (0)
