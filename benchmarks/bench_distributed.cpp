// benchmarks/bench_distributed.cpp — what frozen-aware gradient synchronisation
// saves: step time and bytes per step against the number of frozen blocks, for
// 2 data-parallel ranks on CPU (Gloo over loopback), side by side with a plain
// all-reduce of every gradient (GradientSync's `communicate_frozen` baseline:
// what DDP with find_unused_parameters does).
//
//   build/benchmarks/frost_bench_distributed            # the table in docs/benchmarks.md
//   build/benchmarks/frost_bench_distributed --steps 2 --reps 2   # a quick look
//   build/benchmarks/frost_bench_distributed --help
//
// A plain program, not a Google Benchmark: a data-parallel step needs two
// processes that step together, which Google Benchmark cannot drive. The
// program starts itself WORLD times (posix_spawn, as tests/distributed does;
// FROST_BENCH_WORKER marks a rank, RANK/WORLD_SIZE/MASTER_* are torchrun's
// variables), every rank runs the same schedule of cases, and rank 0 writes
// the markdown tables, which the launcher prints.
//
// Model: embed Linear(64, d) -> `blocks` residual MLP blocks
// (x + fc2(gelu(fc1(x))), two Linear(d, d) each) in a ModuleList named
// "blocks" -> head Linear(d, 10). With d = 512 and 8 blocks: 4.24 M parameters,
// 17 MB of fp32 gradients, so the all-reduce is a real part of a step.
// "k frozen blocks" freezes the stem (embed) and blocks 0..k-1 — the prefix
// frost's controller freezes (BlockMap::detect makes the embed the "stem"
// block, first in the map) — by requires_grad(false), as the controller does.
//
// Cases, per k (each rank: batch `--batch`, 1 intra-op thread):
//   frost        GradientSync, communicate_frozen = false (only what trains)
//   all-reduce   GradientSync, communicate_frozen = true (every gradient,
//                zeros for the frozen ones)
//   no-sync      the same step without any communication, both ranks at once
//                (the compute alone, under the same sharing of the cores)
// and, for the ks of --overlap-ks, both modes with overlap off, and frost with
// DDP's 25 MB buckets (one bucket here) with overlap on and off, to see
// whether launching buckets from backward hooks helps.
//
// Timing: a barrier before each step (so that one rank's lateness is not
// counted in the next step), then forward, backward, synchronize(), SGD step;
// a step's time is the slower rank's. The cases of one k are interleaved
// (round-robin, the order rotating each repetition) so that machine noise hits
// them alike; medians with p10-p90 over reps x steps. The defaults take about
// 35 s on an idle 2-core machine.
#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>
#include <torch/version.h>
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "frost/distributed.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using Sync = frost::dist::GradientSync;

std::string read_all_of(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// --- settings (the launcher passes its argv on to the ranks unchanged) -----------

struct Settings {
  int world = 2;
  int steps = 5;   ///< timed steps per case and repetition
  int reps = 10;    ///< repetitions (rounds over the cases of one k)
  int warmup = 1;  ///< untimed steps after a case's GradientSync is built
  std::int64_t dim = 512, blocks = 8, batch = 64;
  double bucket_mb = 4.0;
  int threads = 1;
  std::vector<int> frozen{0, 2, 4, 6, 8};
  std::vector<int> overlap_ks{0, 4};
  double deadline_s = 900;
};

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) v.push_back(std::stoi(item));
  return v;
}

const char* kUsage =
    "frost_bench_distributed: step time and bytes per step of data-parallel training\n"
    "against the number of frozen blocks (Gloo, loopback, CPU).\n\n"
    "  --world N        ranks (default 2)\n"
    "  --steps N        timed steps per case and repetition (default 5)\n"
    "  --reps N         repetitions, the cases interleaved (default 10)\n"
    "  --warmup N       untimed steps after each case starts (default 1)\n"
    "  --dim D          block width (default 512)\n"
    "  --blocks B       residual blocks (default 8)\n"
    "  --batch N        samples per rank and step (default 64)\n"
    "  --bucket-mb X    GradientSync bucket_cap_mb of the main table (default 4)\n"
    "  --threads N      intra-op threads per rank (default 1)\n"
    "  --frozen LIST    frozen-block counts (default 0,2,4,6,8)\n"
    "  --overlap-ks LIST  ks of the overlap table (default 0,4; '' for none)\n"
    "  --deadline S     kill the ranks after S seconds (default 900)\n"
    "Environment: FROST_BENCH_STEPS, FROST_BENCH_REPS (defaults for --steps, --reps).\n";

Settings parse(int argc, char** argv) {
  Settings s;
  if (const char* e = std::getenv("FROST_BENCH_STEPS"); e && *e) s.steps = std::atoi(e);
  if (const char* e = std::getenv("FROST_BENCH_REPS"); e && *e) s.reps = std::atoi(e);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (i + 1 >= argc) throw std::runtime_error("option " + a + " needs a value\n" + kUsage);
    const std::string v = argv[++i];
    if (a == "--world") s.world = std::stoi(v);
    else if (a == "--steps") s.steps = std::stoi(v);
    else if (a == "--reps") s.reps = std::stoi(v);
    else if (a == "--warmup") s.warmup = std::stoi(v);
    else if (a == "--dim") s.dim = std::stoll(v);
    else if (a == "--blocks") s.blocks = std::stoll(v);
    else if (a == "--batch") s.batch = std::stoll(v);
    else if (a == "--bucket-mb") s.bucket_mb = std::stod(v);
    else if (a == "--threads") s.threads = std::stoi(v);
    else if (a == "--frozen") s.frozen = parse_list(v);
    else if (a == "--overlap-ks") s.overlap_ks = parse_list(v);
    else if (a == "--deadline") s.deadline_s = std::stod(v);
    else throw std::runtime_error("unknown option " + a + "\n" + kUsage);
  }
  if (s.world < 2 || s.steps < 1 || s.reps < 1 || s.warmup < 0 || s.dim < 1 || s.blocks < 1 ||
      s.batch < 1 || !(s.bucket_mb > 0) || s.threads < 1)
    throw std::runtime_error("bad settings\n" + std::string(kUsage));
  for (const int k : s.frozen)
    if (k < 0 || k > s.blocks) throw std::runtime_error("--frozen: k out of 0..blocks");
  return s;
}

// --- the model: frost's layout (stem -> ModuleList "blocks" -> head) -------------

struct BlockImpl : torch::nn::Module {
  explicit BlockImpl(std::int64_t d)
      : fc1(register_module("fc1", torch::nn::Linear(d, d))),
        fc2(register_module("fc2", torch::nn::Linear(d, d))) {}
  at::Tensor forward(const at::Tensor& x) { return x + fc2(at::gelu(fc1(x))); }
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(Block);

constexpr std::int64_t kInputs = 64, kClasses = 10;

struct NetImpl : torch::nn::Module {
  NetImpl(std::int64_t dim, std::int64_t depth)
      : embed(register_module("embed", torch::nn::Linear(kInputs, dim))),
        blocks(register_module("blocks", torch::nn::ModuleList())),
        head(register_module("head", torch::nn::Linear(dim, kClasses))) {
    for (std::int64_t i = 0; i < depth; ++i) blocks->push_back(Block(dim));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = embed(x);
    for (const auto& b : *blocks) h = b->as<Block>()->forward(h);
    return head(h);
  }
  torch::nn::Linear embed;
  torch::nn::ModuleList blocks;
  torch::nn::Linear head;
};
TORCH_MODULE(Net);

/// Freezes the prefix of k blocks (stem included when k > 0), unfreezes the rest.
void freeze_prefix(Net& net, int k) {
  for (auto& p : net->embed->parameters()) p.set_requires_grad(k == 0);
  for (std::size_t i = 0; i < net->blocks->size(); ++i)
    for (auto& p : net->blocks[i]->parameters()) p.set_requires_grad(static_cast<int>(i) >= k);
}

std::int64_t trainable(Net& net) {
  std::int64_t n = 0;
  for (const auto& p : net->parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

// --- the cases -------------------------------------------------------------------

enum class Mode { frost, all_reduce, no_sync };

struct Case {
  std::string name;
  Mode mode;
  bool overlap = true;
  double bucket_mb = 4.0;
};

struct Result {
  /// Per step: the whole step, forward + backward, synchronize(); this
  /// rank's, then (after slowest()) the slower rank's.
  std::vector<double> step_ms, compute_ms, sync_ms;
  std::int64_t bytes = 0, buckets = 0;
};

/// Runs `warmup` untimed steps of `c`, then `steps` timed ones whose times go to `r`.
void run_case(const Case& c, Net& net, torch::optim::SGD& opt,
              const std::shared_ptr<frost::dist::Group>& group,
              const at::Tensor& x, const at::Tensor& y, int warmup, int steps, Result& r) {
  frost::dist::Group& g = *group;
  std::unique_ptr<Sync> sync;
  // A GradientSync per run of a case: two at once would both hook the
  // gradient accumulators. The weights are equal already (same seed on every
  // rank), so no broadcast; building it costs one all-gather (the layout check).
  if (c.mode != Mode::no_sync)
    sync = std::make_unique<Sync>(*net, group,
                                  Sync::Options()
                                      .overlap(c.overlap)
                                      .bucket_cap_mb(c.bucket_mb)
                                      .communicate_frozen(c.mode == Mode::all_reduce)
                                      .broadcast_parameters(false));
  const auto params = net->parameters();
  for (int s = 0; s < warmup + steps; ++s) {
    // set_to_none, as PyTorch's zero_grad() by default (LibTorch 1.13's
    // zero_grad() zeroes in place and would keep the baseline's zero
    // gradients of frozen parameters alive across steps).
    for (auto p : params) p.mutable_grad().reset();
    g.barrier();  // start together: the step time is not the other rank's lateness
    const auto t0 = Clock::now();
    const auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    loss.backward();
    const auto t1 = Clock::now();
    if (sync) sync->synchronize();
    const double sync_ms = ms_since(t1);
    if (c.mode == Mode::all_reduce) {
      // DDP leaves the gradient of a parameter no rank used untouched; the
      // baseline writes zeros there. Drop them so that the optimizer does the
      // same work in both modes and the difference is the communication.
      for (auto p : params)
        if (!p.requires_grad()) p.mutable_grad().reset();
    }
    opt.step();
    const double step_ms = ms_since(t0);
    if (s >= warmup) {
      r.step_ms.push_back(step_ms);
      r.compute_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      r.sync_ms.push_back(sync_ms);
    }
  }
  if (sync) {
    r.bytes = sync->bytes_last_step();
    r.buckets = sync->num_buckets();
  }
}

/// Per step, the slower rank's time (every rank gets the same answer).
std::vector<double> slowest(frost::dist::Group& g, const std::vector<double>& mine) {
  const auto all = g.all_gather(at::tensor(mine, at::kDouble));
  at::Tensor m = all[0];
  for (std::size_t r = 1; r < all.size(); ++r) m = at::maximum(m, all[r]);
  return std::vector<double>(m.data_ptr<double>(), m.data_ptr<double>() + m.numel());
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

std::string fmt(double v, int prec) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(prec) << v;
  return os.str();
}
std::string ms_cell(const std::vector<double>& v) {
  return fmt(percentile(v, 50), 1) + " (" + fmt(percentile(v, 10), 1) + "–" +
         fmt(percentile(v, 90), 1) + ")";
}
std::string mb(std::int64_t bytes) { return fmt(static_cast<double>(bytes) / 1e6, 2); }
std::string loadavg() {  // other work on the machine shows in the times: say how much
  std::string l = read_all_of("/proc/loadavg");
  return l.substr(0, l.find(' '));
}
std::string mparams(std::int64_t n) { return fmt(static_cast<double>(n) / 1e6, 2) + " M"; }

// --- a rank ----------------------------------------------------------------------

int worker(const Settings& S) {
  try {
    at::set_num_threads(S.threads);  // one core per rank: the two ranks share 2 cores
    auto g = frost::dist::init();
    torch::manual_seed(1);  // the same weights on every rank
    Net net(S.dim, S.blocks);
    torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(1e-4));
    torch::manual_seed(100 + g->rank());  // each rank its own shard of data
    const auto x = at::randn({S.batch, kInputs});
    const auto y = at::randint(kClasses, {S.batch}, at::kLong);

    const std::int64_t total = trainable(net);
    std::map<std::pair<int, std::string>, Result> res;  // (k, case) -> times
    std::map<int, std::int64_t> trainable_of;
    const auto t_start = Clock::now();
    const std::string load_before = loadavg();

    {  // warm the allocator, the kernels and the Gloo connections once, untimed
      Result scratch;
      freeze_prefix(net, 0);
      run_case({"warm", Mode::frost, true, S.bucket_mb}, net, opt, g, x, y, 2, 0, scratch);
      run_case({"warm", Mode::no_sync}, net, opt, g, x, y, 2, 0, scratch);
    }
    for (const int k : S.frozen) {
      freeze_prefix(net, k);
      trainable_of[k] = trainable(net);
      std::vector<Case> cases{{"frost", Mode::frost, true, S.bucket_mb},
                              {"all-reduce", Mode::all_reduce, true, S.bucket_mb},
                              {"no-sync", Mode::no_sync, true, S.bucket_mb}};
      if (std::find(S.overlap_ks.begin(), S.overlap_ks.end(), k) != S.overlap_ks.end()) {
        cases.push_back({"frost/no-overlap", Mode::frost, false, S.bucket_mb});
        cases.push_back({"all-reduce/no-overlap", Mode::all_reduce, false, S.bucket_mb});
        cases.push_back({"frost/25MB", Mode::frost, true, 25.0});
        cases.push_back({"frost/25MB/no-overlap", Mode::frost, false, 25.0});
      }
      for (int rep = 0; rep < S.reps; ++rep)
        for (std::size_t i = 0; i < cases.size(); ++i) {
          const Case& c = cases[(i + static_cast<std::size_t>(rep)) % cases.size()];
          run_case(c, net, opt, g, x, y, S.warmup, S.steps, res[{k, c.name}]);
        }
      if (g->rank() == 0)
        std::cerr << "k=" << k << " done at " << fmt(ms_since(t_start) / 1000, 1) << " s\n";
    }
    for (auto& [key, r] : res) {
      r.step_ms = slowest(*g, r.step_ms);
      r.compute_ms = slowest(*g, r.compute_ms);
      r.sync_ms = slowest(*g, r.sync_ms);
    }
    const double seconds = ms_since(t_start) / 1000;

    if (g->rank() == 0) {
      const char* outdir = std::getenv("FROST_BENCH_OUT");
      std::ofstream out(std::string(outdir ? outdir : ".") + "/result.md");
      out << "Setup: " << S.world << " ranks (Gloo, loopback), " << S.threads
          << " intra-op thread(s) per rank, " << std::thread::hardware_concurrency()
          << " hardware threads; LibTorch " << TORCH_VERSION << "; model: embed Linear(" << kInputs
          << ", " << S.dim << ") -> " << S.blocks << " residual blocks (2 x Linear(" << S.dim
          << ", " << S.dim << ") + GELU) -> head Linear(" << S.dim << ", " << kClasses << "), "
          << mparams(total) << " parameters, fp32; batch " << S.batch << " per rank; SGD; "
          << S.reps << " reps x " << S.steps << " timed steps per case (" << S.warmup
          << " warm-up step(s) per rep); buckets " << fmt(S.bucket_mb, 0)
          << " MB, overlap on unless said otherwise. Times: median (p10–p90) ms of the slower "
             "rank, per step. Bytes: GradientSync::bytes_last_step() (payload all-reduced "
             "per step), MB = 10^6 bytes. Whole run: "
          << fmt(seconds, 0) << " s; 1-minute load average " << load_before << " before, "
          << loadavg() << " after (2 ranks busy = 2).\n\n";

      out << "| frozen blocks | trainable params | frost MB/step | frost ms/step | all-reduce-all "
             "MB/step | all-reduce-all ms/step | speed-up | no-sync ms/step |\n"
          << "|---:|---:|---:|---:|---:|---:|---:|---:|\n";
      for (const int k : S.frozen) {
        const auto& f = res[{k, "frost"}];
        const auto& a = res[{k, "all-reduce"}];
        const auto& n = res[{k, "no-sync"}];
        out << "| " << k << " | " << mparams(trainable_of[k]) << " | " << mb(f.bytes) << " | "
            << ms_cell(f.step_ms) << " | " << mb(a.bytes) << " | " << ms_cell(a.step_ms) << " | "
            << fmt(percentile(a.step_ms, 50) / percentile(f.step_ms, 50), 2) << "× | "
            << ms_cell(n.step_ms) << " |\n";
      }

      out << "\nWhere the time goes, median ms: forward + backward (with overlap, the buckets "
             "launched from backward hooks run meanwhile and compete for the cores) and "
             "`synchronize()` (after backward until every gradient is averaged: the "
             "communication not hidden behind backward); buckets per step:\n\n"
          << "| frozen blocks | no-sync fwd+bwd | frost fwd+bwd | frost sync | frost buckets | "
             "all-reduce-all fwd+bwd | all-reduce-all sync | all-reduce-all buckets |\n"
          << "|---:|---:|---:|---:|---:|---:|---:|---:|\n";
      auto med = [](const std::vector<double>& v) { return fmt(percentile(v, 50), 1); };
      for (const int k : S.frozen) {
        const auto& f = res[{k, "frost"}];
        const auto& a = res[{k, "all-reduce"}];
        const auto& n = res[{k, "no-sync"}];
        out << "| " << k << " | " << med(n.compute_ms) << " | " << med(f.compute_ms) << " | "
            << med(f.sync_ms) << " | " << f.buckets << " | " << med(a.compute_ms) << " | "
            << med(a.sync_ms) << " | " << a.buckets << " |\n";
      }

      bool any = false;
      for (const int k : S.overlap_ks)
        any = any || std::find(S.frozen.begin(), S.frozen.end(), k) != S.frozen.end();
      if (any) {
        out << "\nOverlap (buckets launched from backward hooks) on vs off, median (p10–p90) ms "
               "per step [forward + backward / synchronize() medians]:\n\n"
            << "| frozen blocks | mode | buckets MB | buckets | overlap on | overlap off |\n"
            << "|---:|---|---:|---:|---:|---:|\n";
        auto row = [&](int k, const char* mode, double cap, const std::string& on,
                       const std::string& off) {
          const auto& a = res[{k, on}];
          const auto& b = res[{k, off}];
          auto cell = [](const Result& x) {
            return ms_cell(x.step_ms) + " [" + fmt(percentile(x.compute_ms, 50), 1) + " / " +
                   fmt(percentile(x.sync_ms, 50), 1) + "]";
          };
          out << "| " << k << " | " << mode << " | " << fmt(cap, 0) << " | " << a.buckets << " | "
              << cell(a) << " | " << cell(b) << " |\n";
        };
        for (const int k : S.overlap_ks) {
          if (std::find(S.frozen.begin(), S.frozen.end(), k) == S.frozen.end()) continue;
          row(k, "frost", S.bucket_mb, "frost", "frost/no-overlap");
          row(k, "all-reduce-all", S.bucket_mb, "all-reduce", "all-reduce/no-overlap");
          row(k, "frost", 25.0, "frost/25MB", "frost/25MB/no-overlap");
        }
      }
    }
    g->barrier();  // rank 0 hosts the store: leave together
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "rank error: " << e.what() << std::endl;
    return 2;
  }
}

// --- the launcher ----------------------------------------------------------------

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("no free TCP port on 127.0.0.1");
  ::close(fd);
  return ntohs(a.sin_port);
}

int launch(const Settings& S, int argc, char** argv) {
  char buf[4096];
  const auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  const std::string exe(buf, static_cast<std::size_t>(n));
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/frost_bench_dist_XXXXXX";
  if (!::mkdtemp(dir.data())) throw std::runtime_error("mkdtemp failed");

  std::map<std::string, std::string> env{{"FROST_BENCH_WORKER", "1"},
                                         {"FROST_BENCH_OUT", dir},
                                         {"WORLD_SIZE", std::to_string(S.world)},
                                         {"MASTER_ADDR", "127.0.0.1"},
                                         {"MASTER_PORT", std::to_string(free_port())},
                                         {"FROST_DIST_TIMEOUT", "120"},
                                         {"FROST_DIST_BACKEND", "gloo"},  // CPU tensors
                                         {"OMP_NUM_THREADS", std::to_string(S.threads)}};
  std::vector<std::string> args(argv, argv + argc);  // the ranks parse the same options
  args[0] = exe;
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);

  std::cerr << "frost_bench_distributed: " << S.world << " ranks, logs in " << dir << "\n";
  std::vector<pid_t> pids;
  for (int r = 0; r < S.world; ++r) {
    auto e = env;
    e["RANK"] = e["LOCAL_RANK"] = std::to_string(r);
    std::vector<std::string> strs;
    for (char** p = environ; *p; ++p) {
      const std::string kv = *p;
      if (!e.count(kv.substr(0, kv.find('=')))) strs.push_back(kv);
    }
    for (const auto& kv : e) strs.push_back(kv.first + "=" + kv.second);
    std::vector<char*> envp;
    for (auto& s : strs) envp.push_back(s.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    const std::string log = dir + "/rank" + std::to_string(r) + ".log";
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argp.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("posix_spawn failed");
    pids.push_back(pid);
  }

  // Wait for every rank; past the deadline, kill what is left (only our ranks).
  const auto t0 = Clock::now();
  std::vector<int> codes(pids.size(), -1);
  std::size_t left = pids.size();
  std::vector<bool> done(pids.size(), false);
  while (left > 0) {
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (done[i]) continue;
      int status = 0;
      if (::waitpid(pids[i], &status, WNOHANG) == pids[i]) {
        codes[i] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        done[i] = true;
        --left;
      } else if (ms_since(t0) > S.deadline_s * 1000) {
        ::kill(pids[i], SIGKILL);
        ::waitpid(pids[i], &status, 0);
        done[i] = true;
        --left;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  bool ok = true;
  for (std::size_t r = 0; r < codes.size(); ++r)
    if (codes[r] != 0) {
      ok = false;
      std::cerr << "rank " << r << " exited with " << codes[r] << "; its log:\n"
                << read_all_of(dir + "/rank" + std::to_string(r) + ".log") << "\n";
    }
  if (!ok) return 1;  // the logs stay in `dir`
  std::cerr << read_all_of(dir + "/rank0.log");  // progress lines
  std::cout << read_all_of(dir + "/result.md");
  // Not std::filesystem: pip's libtorch.so exports its own copy of it, which
  // crashes when called from here (see tests/distributed/main.cpp).
  for (int r = 0; r < S.world; ++r) ::unlink((dir + "/rank" + std::to_string(r) + ".log").c_str());
  ::unlink((dir + "/result.md").c_str());
  ::rmdir(dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Settings S = parse(argc, argv);
    if (std::getenv("FROST_BENCH_WORKER")) return worker(S);
    return launch(S, argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "frost_bench_distributed: " << e.what() << std::endl;
    return 2;
  }
}
