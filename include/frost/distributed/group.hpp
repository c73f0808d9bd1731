#pragma once
// frost::dist::Group — the ranks of a data-parallel run, on PyTorch's own
// distributed engine (c10d): a TCPStore for the rendezvous, ProcessGroupGloo
// on CPU, ProcessGroupNCCL on GPU (LibTorch 2.x built with NCCL).
//
//   auto group = frost::dist::init();   // RANK, WORLD_SIZE, MASTER_ADDR,
//                                       // MASTER_PORT, LOCAL_RANK (torchrun's)
//
// What c10d does not give, and frost adds:
//  * a rank that never joins, or dies, or stops answering makes the others fail
//    with a frost::Error that *names* it, within the timeout the user sets
//    (default 300 s, as a few minutes; seconds in tests), never a hang. Each
//    rank beats a counter in the store from a small thread; when a collective
//    fails, the ranks whose counter stopped moving are the ones named.
//  * every collective error is translated into that message (the c10d text is
//    kept at the end, for the details).
//
// Build: link frost::distributed (it defines USE_C10D_GLOO and finds the Gloo
// headers, Debian's libgloo-dev); NCCL is used when FROST_WITH_NCCL is on.
#if !defined(USE_C10D_GLOO) && !defined(USE_C10D_NCCL)
#error "frost/distributed: link the CMake target frost::distributed (it defines USE_C10D_GLOO and adds the Gloo headers from libgloo-dev), or define USE_C10D_GLOO yourself"
#endif

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "frost/error.hpp"
#include "frost/options.hpp"

namespace frost::dist {

/// Which c10d backend carries the collectives.
enum class Backend {
  automatic,  ///< NCCL for a CUDA device when compiled in, Gloo otherwise
  gloo,
  nccl,
};
inline const char* to_string(Backend b) {
  switch (b) {
    case Backend::automatic: return "auto";
    case Backend::gloo: return "gloo";
    case Backend::nccl: return "nccl";
  }
  return "?";
}
inline bool from_string(const std::string& s, Backend& b) {
  if (s == "auto" || s == "automatic") b = Backend::automatic;
  else if (s == "gloo") b = Backend::gloo;
  else if (s == "nccl") b = Backend::nccl;
  else return false;
  return true;
}

/// Where this rank is and how long it waits for the others. The defaults are
/// torchrun's; from_env() reads what torchrun (or scripts/launch.sh) sets.
struct GroupOptions {
  FROST_OPTIONS(
      (int, rank, 0),
      (int, world_size, 1),
      (std::string, master_addr, "127.0.0.1"),
      (int, master_port, 29500),
      /// Index of this rank's GPU on its machine (LOCAL_RANK); "cuda" devices
      /// become cuda:<local_rank>.
      (int, local_rank, 0),
      /// How long a rank waits for another one (to join, in a collective) before
      /// it fails naming it. A few minutes by default: a slow first step (data
      /// loading, a cold cache) must not look like a dead rank.
      (double, timeout_s, 300.0),
      (Backend, backend, Backend::automatic),
      /// The device the collectives run on: "cpu" or "cuda".
      (std::string, device, "cpu"));

 public:
  /// RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK,
  /// FROST_DIST_TIMEOUT (seconds) and FROST_DIST_BACKEND (auto, gloo, nccl)
  /// where set; the defaults above elsewhere.
  static GroupOptions from_env();
};

namespace detail {

inline bool env_int(const char* name, int& out) {
  const char* v = std::getenv(name);
  if (!v || !*v) return false;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0')
    frost::detail::fail("environment variable ", name, "='", v, "' is not an integer");
  out = static_cast<int>(x);
  return true;
}

/// Rank r's liveness counter and its 'left' flag in the store.
inline std::string beat_key(int r) { return "frost/beat/" + std::to_string(r); }
inline std::string left_key(int r) { return "frost/left/" + std::to_string(r); }
inline std::string joined_key(int r) { return "frost/joined/" + std::to_string(r); }

#if TORCH_VERSION_MAJOR >= 2
using BackendBase = c10d::Backend;  // 2.x: ProcessGroupGloo/NCCL are Backends
#else
using BackendBase = c10d::ProcessGroup;
#endif

}  // namespace detail

inline GroupOptions GroupOptions::from_env() {
  GroupOptions o;
  int v = 0;
  if (detail::env_int("RANK", v)) o.rank(v);
  if (detail::env_int("WORLD_SIZE", v)) o.world_size(v);
  if (detail::env_int("MASTER_PORT", v)) o.master_port(v);
  if (detail::env_int("LOCAL_RANK", v)) o.local_rank(v);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) o.master_addr(a);
  if (const char* t = std::getenv("FROST_DIST_TIMEOUT"); t && *t) {
    char* end = nullptr;
    const double s = std::strtod(t, &end);
    if (*end != '\0' || !(s > 0))
      frost::detail::fail("FROST_DIST_TIMEOUT='", t, "' must be a positive number of seconds");
    o.timeout_s(s);
  }
  if (const char* b = std::getenv("FROST_DIST_BACKEND"); b && *b) {
    Backend v{};
    if (!from_string(b, v))
      frost::detail::fail("FROST_DIST_BACKEND='", b, "': give auto, gloo or nccl");
    o.backend(v);
  }
  return o;
}

/// The ranks of one data-parallel run. Create it with frost::dist::init (or
/// Group::create); every rank must create it, in the same order as any other
/// collective. Not copyable: share it (std::shared_ptr).
class Group {
 public:
  static std::shared_ptr<Group> create(const GroupOptions& o) {
    return std::shared_ptr<Group>(new Group(o));
  }

  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  ~Group() {
    stop_heartbeat();
    if (size_ > 1) {
      // A rank that leaves says so: the others then report "rank r left"
      // rather than "stopped responding" if they still wait for it.
      try {
        store_->set(detail::left_key(rank_), std::vector<uint8_t>{1});
      } catch (...) {
      }
    }
  }

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  const GroupOptions& options() const noexcept { return options_; }
  Backend backend() const noexcept { return backend_; }
  /// The device collectives run on (tensors are moved there when needed).
  at::Device device() const noexcept { return device_; }
  std::chrono::milliseconds timeout() const noexcept { return timeout_; }
  c10d::Store& store() { return *store_; }

  /// Sums (or another c10d reduction) `tensors` over the ranks, in place,
  /// asynchronously; wait() on the result.
  c10::intrusive_ptr<c10d::Work> all_reduce_async(std::vector<at::Tensor>& tensors,
                                                  c10d::ReduceOp op = c10d::ReduceOp::SUM) {
    c10d::AllreduceOptions ao;
    ao.reduceOp = op;
    ao.timeout = timeout_;
    if (size_ == 1) return {};  // a world of one: nothing to add
    try {
      return backend_impl_->allreduce(tensors, ao);
    } catch (const std::exception& e) {
      fail("all-reduce", e);
    }
  }

  /// Waits for `work`; a failure becomes a frost::Error naming the rank.
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
    if (!work) return;
    try {
      work->wait(timeout_);
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }

  /// In-place blocking sum over the ranks.
  void all_reduce_(at::Tensor& t, c10d::ReduceOp op = c10d::ReduceOp::SUM) {
    std::vector<at::Tensor> v{t};
    wait(all_reduce_async(v, op), "all-reduce");
  }

  /// Rank `root`'s tensors on every rank (in place).
  void broadcast_(std::vector<at::Tensor>& tensors, int root = 0) {
    c10d::BroadcastOptions bo;
    bo.rootRank = root;
    bo.timeout = timeout_;
    if (size_ == 1) return;
    try {
      wait(backend_impl_->broadcast(tensors, bo), "broadcast");
    } catch (const frost::Error&) {
      throw;
    } catch (const std::exception& e) {
      fail("broadcast", e);
    }
  }

  /// Every rank's copy of `t` (same shape on every rank), index = rank.
  std::vector<at::Tensor> all_gather(const at::Tensor& t) {
    at::Tensor in = t.contiguous();
    if (size_ == 1) return {in};
    std::vector<at::Tensor> ins{in};
    std::vector<std::vector<at::Tensor>> outs(1);
    for (int r = 0; r < size_; ++r) outs[0].push_back(at::empty_like(in));
    c10d::AllgatherOptions go;
    go.timeout = timeout_;
    try {
      wait(backend_impl_->allgather(outs, ins, go), "all-gather");
    } catch (const frost::Error&) {
      throw;
    } catch (const std::exception& e) {
      fail("all-gather", e);
    }
    return outs[0];
  }

  /// Rank 0's `mine` on every rank, or a frost::Error (on every rank alike)
  /// naming each rank whose values differ: `describe(values)` says what a
  /// rank holds, `fix` what the user should change.
  template <class Describe>
  void agree(const std::vector<int64_t>& mine, const Describe& describe, const std::string& fix) {
    if (size_ == 1) return;
    const auto t = at::tensor(mine, at::TensorOptions().dtype(at::kLong)).to(device_);
    const auto all = all_gather(t);
    auto values = [](const at::Tensor& x) {
      const at::Tensor h = x.cpu();
      return std::vector<int64_t>(h.data_ptr<int64_t>(), h.data_ptr<int64_t>() + h.numel());
    };
    const auto ref = values(all[0]);
    std::string bad;
    for (int r = 1; r < size_; ++r) {
      const auto v = values(all[static_cast<std::size_t>(r)]);
      if (v != ref) bad += "; rank " + std::to_string(r) + " " + describe(v);
    }
    if (!bad.empty())
      frost::detail::fail("rank ", rank_, " of ", size_, ": the ranks disagree: rank 0 ",
                          describe(ref), bad, "; ", fix);
  }

  /// Waits until every rank is here (within the timeout).
  void barrier() {
    if (size_ == 1) return;
    at::Tensor t = at::zeros({1}, at::TensorOptions().device(device_));
    all_reduce_(t);
  }

  /// Turns a failed collective into a frost::Error that names the ranks that
  /// are gone (or says that every rank is alive, so the ranks are out of step).
  [[noreturn]] void fail(const char* what, const std::exception& e) {
    std::string cause = e.what();
    if (const auto nl = cause.find("\nException raised from"); nl != std::string::npos)
      cause.resize(nl);  // c10's backtrace: long and not the user's business
    frost::detail::fail("rank ", rank_, " of ", size_, ": ", what, " failed: ", diagnose(),
                        " [c10d: ", cause, "]");
  }

  /// Who is missing, as a sentence (reads the heartbeat counters twice).
  std::string diagnose() {
    if (size_ == 1) return "a world of one rank";
    std::vector<int64_t> before(size_), after(size_);
    std::vector<bool> left(size_);
    try {
      for (int r = 0; r < size_; ++r) before[r] = store_->add(detail::beat_key(r), 0);
      std::this_thread::sleep_for(2 * beat_ + std::chrono::milliseconds(200));
      for (int r = 0; r < size_; ++r) {
        after[r] = store_->add(detail::beat_key(r), 0);
        left[r] = store_->check({detail::left_key(r)});
      }
    } catch (const std::exception&) {
      return "rank 0, which hosts the rendezvous store at " + options_.master_addr() + ":" +
             std::to_string(options_.master_port()) +
             ", is gone (it died or was killed; its own log says why)";
    }
    std::string gone, quit;
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      if (left[r]) quit += (quit.empty() ? "" : ", ") + std::to_string(r);
      else if (after[r] == before[r]) gone += (gone.empty() ? "" : ", ") + std::to_string(r);
    }
    if (!gone.empty())
      return "rank " + gone + " stopped responding (died, was killed, or hangs; its own log " +
             "says why)";
    if (!quit.empty())
      return "rank " + quit + " left the group while this rank still waited for it (it " +
             "finished early or failed; the ranks ran different numbers of steps?)";
    return "every rank is alive, so the ranks are out of step (different numbers of steps or " +
           std::string("decision points, or a timeout of ") +
           std::to_string(timeout_.count() / 1000.0) + " s too short for a step)";
  }

 private:
  explicit Group(const GroupOptions& o) : options_(o) {
    using namespace std::chrono;
    rank_ = o.rank();
    size_ = o.world_size();
    frost::detail::require(size_ >= 1, "WORLD_SIZE (world_size) is ", size_,
                           "; give the number of ranks, 1 or more");
    frost::detail::require(rank_ >= 0 && rank_ < size_, "RANK (rank) is ", rank_,
                           " but WORLD_SIZE is ", size_, "; ranks go from 0 to WORLD_SIZE-1");
    frost::detail::require(o.master_port() > 0 && o.master_port() < 65536, "MASTER_PORT is ",
                           o.master_port(), "; give a TCP port (1-65535) free on rank 0's host");
    frost::detail::require(o.timeout_s() > 0, "timeout_s is ", o.timeout_s(),
                           "; give a positive number of seconds");
    timeout_ = milliseconds(static_cast<int64_t>(o.timeout_s() * 1000.0));
    // Beat often enough that a dead rank is found within a few beats of the
    // failure, rarely enough to cost nothing (one small store message).
    beat_ = std::clamp(timeout_ / 10, milliseconds(100), milliseconds(2000));
    if (o.device() == "cpu") device_ = at::Device(at::kCPU);
    else if (o.device() == "cuda") device_ = at::Device(at::kCUDA, static_cast<int8_t>(o.local_rank()));
    else frost::detail::fail("device '", o.device(), "': give \"cpu\" or \"cuda\"");
    backend_ = o.backend();
    if (backend_ == Backend::automatic) {
#ifdef USE_C10D_NCCL
      backend_ = device_.is_cuda() ? Backend::nccl : Backend::gloo;
#else
      backend_ = Backend::gloo;
#endif
    }

    if (size_ == 1) return;  // nothing to connect: collectives are no-ops
    const std::string where = o.master_addr() + ":" + std::to_string(o.master_port());
    try {
      store_ = make_store(o, rank_ == 0);
    } catch (const std::exception& e) {
      std::string m = e.what();
      if (const auto nl = m.find("\nException raised from"); nl != std::string::npos) m.resize(nl);
      if (rank_ == 0)
        frost::detail::fail("rank 0 cannot host the rendezvous store at ", where, " (", m,
                            "); choose a free MASTER_PORT, or end the run that holds it");
      frost::detail::fail("rank ", rank_, " of ", size_, " could not reach rank 0's rendezvous ",
                          "store at ", where, " within ", o.timeout_s(),
                          " s: rank 0 never started, or MASTER_ADDR/MASTER_PORT differ between "
                          "the ranks [", m, "]");
    }
    join();
    beat_store_ = make_store(o, false);
    heartbeat_ = std::thread([this] { beat(); });
    try {
      auto prefixed = c10::make_intrusive<c10d::PrefixStore>("frost/pg", store_);
      backend_impl_ = make_backend(prefixed);
    } catch (const std::exception& e) {
      stop_heartbeat();
      std::string m = e.what();
      if (const auto nl = m.find("\nException raised from"); nl != std::string::npos) m.resize(nl);
      frost::detail::fail("rank ", rank_, " of ", size_, ": the ", to_string(backend_),
                          " process group did not start (", m, ")");
    }
  }

  c10::intrusive_ptr<c10d::Store> make_store(const GroupOptions& o, bool server) const {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(o.master_port());
    so.isServer = server;
    so.numWorkers = size_;
    so.waitWorkers = false;  // join() waits, and names who is missing
    so.timeout = timeout_;
    return c10::make_intrusive<c10d::TCPStore>(o.master_addr(), so);
  }

  // Every rank announces itself, then waits for the others; who has not come
  // within the timeout is named.
  void join() {
    store_->set(detail::joined_key(rank_), std::vector<uint8_t>{1});
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    std::string missing = "?";
    for (;;) {
      const bool late = std::chrono::steady_clock::now() > deadline;
      try {
        std::string now;
        for (int r = 0; r < size_; ++r)
          if (!store_->check({detail::joined_key(r)}))
            now += (now.empty() ? "" : ", ") + std::to_string(r);
        missing = now;
      } catch (const std::exception&) {
        // Rank 0 gave up first (its clock ran out a moment earlier) and took
        // the store with it: the answer is the same.
        frost::detail::fail("rank ", missing, " of a world of ", size_, " did not join within ",
                            options_.timeout_s(), " s (rank 0 gave up on it and closed the "
                            "store; was it started, with the same MASTER_ADDR/MASTER_PORT?)");
      }
      if (missing.empty()) return;
      if (late)
        frost::detail::fail("rank ", missing, " of a world of ", size_, " did not join within ",
                            options_.timeout_s(), " s (was it started, with the same "
                            "MASTER_ADDR/MASTER_PORT and WORLD_SIZE?)");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  c10::intrusive_ptr<detail::BackendBase> make_backend(
      const c10::intrusive_ptr<c10d::Store>& store) {
    if (backend_ == Backend::nccl) {
#ifdef USE_C10D_NCCL
      frost::detail::require(device_.is_cuda(), "the NCCL backend needs device \"cuda\"");
      auto no = c10d::ProcessGroupNCCL::Options::create();
      no->timeout = timeout_;
      return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank_, size_, no);
#else
      frost::detail::fail("this build of frost has no NCCL (LibTorch 2.x with CUDA and "
                          "FROST_WITH_NCCL=ON); use the gloo backend");
#endif
    }
#ifdef USE_C10D_GLOO
    auto go = c10d::ProcessGroupGloo::Options::create(timeout_);
    // Gloo binds one interface per rank: GLOO_SOCKET_IFNAME as in PyTorch,
    // loopback when the run is local, the host's own name otherwise.
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    const std::string& addr = options_.master_addr();
    if (ifname && *ifname)
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (addr == "127.0.0.1" || addr == "localhost" || addr == "::1")
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(addr));
    else
      go->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank_, size_, go);
#else
    frost::detail::fail("this build of frost has no Gloo; link frost::distributed");
#endif
  }

  void beat() {
    std::unique_lock<std::mutex> lock(beat_mutex_);
    while (!stopping_) {
      try {
        beat_store_->add(detail::beat_key(rank_), 1);
      } catch (...) {
        return;  // the store is gone (rank 0 ended); the main thread finds out
      }
      beat_cv_.wait_for(lock, beat_, [this] { return stopping_; });
    }
  }

  void stop_heartbeat() {
    {
      std::lock_guard<std::mutex> lock(beat_mutex_);
      stopping_ = true;
    }
    beat_cv_.notify_all();
    if (heartbeat_.joinable()) heartbeat_.join();
  }

  GroupOptions options_;
  int rank_ = 0;
  int size_ = 1;
  Backend backend_ = Backend::gloo;
  at::Device device_{at::kCPU};
  std::chrono::milliseconds timeout_{300000};
  std::chrono::milliseconds beat_{1000};
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Store> beat_store_;
  c10::intrusive_ptr<detail::BackendBase> backend_impl_;
  std::thread heartbeat_;
  std::mutex beat_mutex_;
  std::condition_variable beat_cv_;
  bool stopping_ = false;
};

namespace detail {
inline std::shared_ptr<Group>& default_slot() {
  static std::shared_ptr<Group> g;
  return g;
}
}  // namespace detail

/// Joins the run described by `o` (by default: torchrun's environment) and
/// makes it the default group, the one GradientSync and
/// reducers::AllReduceMean use when given none. With WORLD_SIZE unset or 1,
/// a group of one rank: every collective is a no-op.
inline std::shared_ptr<Group> init(const GroupOptions& o = GroupOptions::from_env()) {
  auto g = Group::create(o);
  detail::default_slot() = g;
  return g;
}

/// The group init() made (null before init or after shutdown()).
inline std::shared_ptr<Group> default_group() { return detail::default_slot(); }

/// Forgets the default group (it ends when its last user lets go of it).
inline void shutdown() { detail::default_slot().reset(); }

}  // namespace frost::dist
