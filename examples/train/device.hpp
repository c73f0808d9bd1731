#pragma once
// examples/train/device.hpp — the device a run trains on: --device, waiting
// for its queue (CUDA), its peak memory, and the CPU cores a thread may be
// pinned to (--jobs).
#include <torch/cuda.h>
#include <torch/types.h>

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#if defined(FROST_TRAIN_CUDA_STATS) && __has_include(<c10/cuda/CUDACachingAllocator.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define FROST_TRAIN_HAVE_CUDA_STATS 1
#endif

#include "cli.hpp"

namespace frost_train {

inline torch::Device parse_device(const std::string& s) {
  torch::Device d(torch::kCPU);
  try {
    d = torch::Device(s);
  } catch (const std::exception&) {
    throw UsageError("--device: cannot parse '" + s + "' (cpu, cuda or cuda:N)");
  }
  if (d.is_cuda() && !torch::cuda::is_available())
    throw UsageError("--device " + s +
                     ": CUDA is not available (a CPU-only LibTorch, or no GPU); use --device cpu");
  if (!d.is_cpu() && !d.is_cuda()) throw UsageError("--device " + s + ": only cpu and cuda");
  return d;
}

inline void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.has_index() ? d.index() : -1);
}

// --- memory ---------------------------------------------------------------

/// Resets the peak-memory counter of `device` (CUDA: the caching allocator's
/// peak; CPU: the process' peak RSS through /proc/self/clear_refs, Linux).
inline void reset_peak_memory(const torch::Device& device) {
  if (device.is_cuda()) {
#ifdef FROST_TRAIN_HAVE_CUDA_STATS
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index() : 0);
#endif
    return;
  }
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);  // resets VmHWM to the current RSS
    std::fclose(f);
  }
}

/// Peak memory in MiB since reset_peak_memory and what it measures; NaN when
/// not measurable.
inline std::pair<double, std::string> peak_memory_mib(const torch::Device& device) {
  if (device.is_cuda()) {
#ifdef FROST_TRAIN_HAVE_CUDA_STATS
    const auto stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
    return {static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0),
            "CUDA max allocated"};
#else
    return {std::numeric_limits<double>::quiet_NaN(), "not measurable in this build"};
#endif
  }
  // CPU: the process' peak resident set (VmHWM; model, data and LibTorch
  // itself, a rough measure).
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
      long kb = 0;
      if (std::sscanf(line, "VmHWM: %ld kB", &kb) == 1) {
        std::fclose(f);
        return {static_cast<double>(kb) / 1024.0, "process peak RSS"};
      }
    }
    std::fclose(f);
  }
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return {static_cast<double>(ru.ru_maxrss) / 1024.0, "process max RSS"};
}

// --- cores ----------------------------------------------------------------

/// The CPUs this process may run on (its affinity mask: taskset, a cgroup's
/// cpuset), in order; empty when the mask cannot be read.
inline std::vector<int> allowed_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cores;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return cores;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cores.push_back(c);
  return cores;
}

/// Pins the calling thread to CPU `core`; false when the system refuses
/// (the thread then runs wherever the scheduler puts it).
inline bool pin_to_core(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set) == 0;
}

/// OpenBLAS's thread count, or 0 when LibTorch's BLAS is not OpenBLAS (the
/// symbol is looked up at run time, as single_threaded_blas sets it).
inline int blas_threads() {
  using Get = int (*)();
  if (auto f = reinterpret_cast<Get>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))) return f();
  return 0;
}

}  // namespace frost_train
