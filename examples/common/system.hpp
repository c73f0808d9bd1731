#pragma once
// examples/common/system.hpp — the two operating-system chores the example
// programs (frost-train, frost-predictor) share: mkdir -p, and OpenBLAS on one
// thread.
#include <dlfcn.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>

namespace frost_examples {

/// mkdir -p; throws when a directory cannot be created.
inline void make_dirs(const std::string& path) {
  if (path.empty()) return;
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  if (path[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
      throw std::runtime_error("cannot create directory " + cur + ": " + std::strerror(errno));
  }
}

/// OpenBLAS (Debian's libopenblas0-pthread, LibTorch's BLAS here) keeps its
/// own pool of spinning threads next to LibTorch's OpenMP pool; on a 2-core
/// machine the two pools fight and the same fine-tuning step took 3.5x longer
/// with 2 threads than with 1 (25.4 s against 7.1 s for 120 steps, measured).
/// LibTorch parallelises around its BLAS calls itself: OpenBLAS gets one
/// thread. (Looked up at run time: another BLAS simply lacks the symbol.)
inline void single_threaded_blas() {
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    f(1);
}

}  // namespace frost_examples
