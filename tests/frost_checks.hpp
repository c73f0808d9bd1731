#pragma once
// The checks every frost test uses. Written with doctest's DOCTEST_-prefixed
// macros, so it works before or after LibTorch's glog CHECK macros (see
// doctest_torch.hpp, which test files that use LibTorch include last).
#include <doctest/doctest.h>

#include <stdlib.h>  // mkdtemp

#include <string>

#include "frost/error.hpp"

namespace frost_test {
inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

/// A fresh directory /tmp/<prefix>-XXXXXX (POSIX mkdtemp: the pip LibTorch's
/// std::filesystem copy crashes, see tests/distributed/main.cpp).
inline std::string temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  const char* d = ::mkdtemp(tmpl.data());
  DOCTEST_REQUIRE(d != nullptr);
  return d;
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
      const std::string message_ = e.what(); /* INFO captures by reference */            \
      DOCTEST_INFO("message: " << message_);                                              \
      DOCTEST_CHECK(frost_test::contains(message_, part));                                \
    }                                                                             \
    DOCTEST_CHECK_MESSAGE(thrown_, "expected frost::Error containing '" << part << "'"); \
  } while (0)
