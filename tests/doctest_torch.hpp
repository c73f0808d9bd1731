#pragma once
// doctest next to LibTorch. Debian's LibTorch is built with glog, whose
// CHECK/CHECK_EQ/... macros collide with doctest's: whichever header comes
// last wins, and a glog CHECK aborts the whole test binary on failure. Every
// test includes this header instead of <doctest/doctest.h>; it pulls in
// glog first (when LibTorch uses it) and then gives the names back to doctest,
// whatever order other headers (or a precompiled header) came in.
#include <c10/util/Logging.h>
#include <doctest/doctest.h>

#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LT
#undef CHECK_LE
#undef CHECK_GT
#undef CHECK_GE
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)
#define CHECK_EQ(...) DOCTEST_CHECK_EQ(__VA_ARGS__)
#define CHECK_NE(...) DOCTEST_CHECK_NE(__VA_ARGS__)
#define CHECK_LT(...) DOCTEST_CHECK_LT(__VA_ARGS__)
#define CHECK_LE(...) DOCTEST_CHECK_LE(__VA_ARGS__)
#define CHECK_GT(...) DOCTEST_CHECK_GT(__VA_ARGS__)
#define CHECK_GE(...) DOCTEST_CHECK_GE(__VA_ARGS__)
