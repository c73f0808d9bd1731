#pragma once
// examples/train/device.hpp — the device a run trains on: --device, waiting
// for its queue (CUDA), its peak memory (on the CPU per run: a counting
// allocator, MemoryMeter), and the CPU cores a thread may be pinned to (--jobs).
#include <c10/core/CPUAllocator.h>
#include <c10/core/alignment.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/version.h>  // TORCH_VERSION_MAJOR/MINOR: the allocator's interface

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
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

// --- peak memory of one run on the CPU: a counting allocator -----------------
//
// With --jobs 2 two runs step in one process on two threads, and all of a
// seed's runs live in the process at once (they take turns), so the
// process' resident set cannot say what one run needs. Instead every CPU
// tensor allocation made while a MemoryMeter is the thread's current one
// (MeterScope: the runner sets it around a run's construction and turns) is
// counted against that meter, and its free subtracts from the same meter
// whichever thread frees it: a meter's peak is the most bytes of tensors its
// run held at once (weights, gradients, optimizer state, activations, the
// activation cache, batches). Allocator overhead, the data set shared by
// all runs and LibTorch's own memory are left out, the same for every run,
// and so are the validation and test passes (the trainer turns the meter
// off around them): they evaluate 500 images at a time, which on the
// EfficientNet at 64x64 needs about 0.5 GB of activations, several times
// what a training step holds, and would hide what a strategy changes in
// every run alike. A user short of memory evaluates in smaller batches.
// Allocations made on other threads (intra-op threads with --threads > 1)
// are not attributed.

/// One run's live and peak bytes of CPU tensors.
class MemoryMeter {
 public:
  void add(std::int64_t bytes) {
    const std::int64_t now = live_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    std::int64_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
  }
  void sub(std::int64_t bytes) { live_.fetch_sub(bytes, std::memory_order_relaxed); }
  std::int64_t live_bytes() const { return live_.load(std::memory_order_relaxed); }
  std::int64_t peak_bytes() const { return peak_.load(std::memory_order_relaxed); }
  double peak_mib() const { return static_cast<double>(peak_bytes()) / (1024.0 * 1024.0); }
  /// The peak restarts from what is live now.
  void reset_peak() { peak_.store(live_bytes(), std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> live_{0}, peak_{0};
};

namespace detail {
inline thread_local MemoryMeter* t_meter = nullptr;

/// Wraps LibTorch's CPU allocator: each block carries a header (one
/// alignment unit before the data) with its meter and size, so that data and
/// context stay the same pointer (raw_allocate keeps working) and a free
/// finds its meter without a table or a lock.
class CountingCpuAllocator final : public c10::Allocator {
 public:
  explicit CountingCpuAllocator(c10::Allocator* base) : base_(base), base_free_(base->raw_deleter()) {}

  // LibTorch 2.3 made Allocator::allocate non-const and added a pure copy_data
  // (the torch2 leg's build failed on this class without them).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t n) override { return counted(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#else
  c10::DataPtr allocate(size_t n) const override { return counted(n); }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  static bool usable(c10::Allocator* base) { return base != nullptr && base->raw_deleter() != nullptr; }

 private:
  c10::DataPtr counted(size_t n) const {
    c10::DataPtr raw = base_->allocate(n + kHeader);
    auto* block = static_cast<char*>(raw.release_context());  // freed by base_free_ (release)
    auto* h = reinterpret_cast<Header*>(block);
    h->meter = t_meter;
    h->bytes = static_cast<std::int64_t>(n);
    if (h->meter) h->meter->add(h->bytes);
    void* data = block + kHeader;
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  struct Header {
    MemoryMeter* meter;
    std::int64_t bytes;
  };
  static constexpr size_t kHeader = c10::gAlignment;  // keeps the data aligned as LibTorch's
  static_assert(sizeof(Header) <= kHeader, "the header must fit one alignment unit");

  static void release(void* data) {
    if (data == nullptr) return;
    char* block = static_cast<char*>(data) - kHeader;
    const auto* h = reinterpret_cast<const Header*>(block);
    if (h->meter) h->meter->sub(h->bytes);
    instance()->base_free_(block);
  }

 public:
  static CountingCpuAllocator*& instance() {
    static CountingCpuAllocator* p = nullptr;
    return p;
  }

 private:
  c10::Allocator* base_;
  c10::DeleterFnPtr base_free_;
};
}  // namespace detail

/// Installs the counting allocator as LibTorch's CPU allocator, once per
/// process (later calls do nothing); false when LibTorch's allocator has no
/// raw deleter to free through (then nothing is counted). Meters outlive
/// the tensors they count: the runner keeps them for the whole invocation.
inline bool install_memory_meters() {
  static const bool installed = [] {
    c10::Allocator* base = c10::GetCPUAllocator();
    if (!detail::CountingCpuAllocator::usable(base)) return false;
    detail::CountingCpuAllocator::instance() = new detail::CountingCpuAllocator(base);  // for good
    c10::SetCPUAllocator(detail::CountingCpuAllocator::instance(), /*priority=*/0);
    return c10::GetCPUAllocator() == detail::CountingCpuAllocator::instance();
  }();
  return installed;
}

/// While it lives, the CPU tensors this thread allocates count against
/// `meter` (null: against none).
class MeterScope {
 public:
  explicit MeterScope(MemoryMeter* meter) : previous_(detail::t_meter) { detail::t_meter = meter; }
  ~MeterScope() { detail::t_meter = previous_; }
  MeterScope(const MeterScope&) = delete;
  MeterScope& operator=(const MeterScope&) = delete;

 private:
  MemoryMeter* previous_;
};

/// A new meter that lives as long as the process: a tensor counted against
/// it may outlive its run (a cache inside LibTorch) and is freed into it.
inline MemoryMeter* new_memory_meter() {
  static std::mutex m;
  static auto* all = new std::deque<MemoryMeter>();  // never destroyed, never moved
  std::lock_guard<std::mutex> l(m);
  return &all->emplace_back();
}

/// What a CPU run's peak_mem_mib measures (results.csv's peak_mem_kind).
inline constexpr const char* kCpuPeakKind =
    "CPU tensors of this run's training (counting allocator; evaluation left out)";

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
