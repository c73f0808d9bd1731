// frost_dist_tests: data-parallel training on c10d (Gloo, loopback).
//
// The test cases start this same executable 2 or 3 times as ranks (the
// environment torchrun would set: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT;
// FROST_TEST_WORKER says which scenario), collect what each rank wrote, and
// compare: bit-identical parameters and timelines across ranks, the losses of
// single-process training on the same global batch, bytes that fall with the
// frozen parameters, and clear errors (naming the rank) when a rank dies,
// never joins, or brings other statistics.
#define DOCTEST_CONFIG_IMPLEMENT

#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>
#include <torch/serialize.h>
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "frost/distributed.hpp"
#include "frost/frost.hpp"
#ifdef FROST_DIST_TESTS_TRAINER
#include "app.hpp"  // examples/train: frost-train's whole program
#endif
#include "doctest_torch.hpp"  // after LibTorch's headers: CHECK is doctest's

extern char** environ;

namespace {

using Sync = frost::dist::GradientSync;

// --- a small model with frost's layout: embed -> blocks -> head -----------------
struct BlockImpl : torch::nn::Module {
  explicit BlockImpl(std::int64_t d) : fc(register_module("fc", torch::nn::Linear(d, d))) {}
  at::Tensor forward(const at::Tensor& x) { return x + at::tanh(fc(x)); }
  torch::nn::Linear fc;
};
TORCH_MODULE(Block);

struct DpNetImpl : torch::nn::Module {
  DpNetImpl(std::int64_t depth, std::int64_t dim = 16)
      : embed(register_module("embed", torch::nn::Linear(8, dim))),
        blocks(register_module("blocks", torch::nn::ModuleList())),
        head(register_module("head", torch::nn::Linear(dim, 3))) {
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
TORCH_MODULE(DpNet);

using Ctl = frost::FreezeController<frost::criteria::GradientNormChange, frost::schedules::Constant,
                                    frost::stop::Never,
                                    frost::with_reducer<frost::reducers::AllReduceMean>>;

int env_int(const char* name, int dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : dflt;
}

constexpr std::int64_t kGlobalBatch = 12;  // divisible by 1, 2 and 3 ranks

struct RunOut {
  std::vector<double> losses;
  std::vector<std::int64_t> bytes, trainable;
  std::string timeline, decisions;  // decisions: the timeline without statistics
  at::Tensor params;
  std::int64_t rebuilds = 0;
};

/// The timeline as text; with `statistics`, each event's statistic to the last bit.
std::string timeline_text(const frost::Timeline& tl, bool statistics = true) {
  std::ostringstream os;
  os.precision(17);
  for (const auto& e : tl) {
    os << e.step << ' ' << frost::to_string(e.kind) << ' ' << e.block_name;
    if (statistics) os << ' ' << e.statistic;
    os << '\n';
  }
  return os.str();
}

/// One rank's training (g == nullptr: a single process on the whole batch).
RunOut train(const std::shared_ptr<frost::dist::Group>& g, int steps, bool overlap) {
  const int rank = g ? g->rank() : 0, world = g ? g->size() : 1;
  const int die_rank = env_int("FROST_TEST_DIE_RANK", -1);
  const int die_step = env_int("FROST_TEST_DIE_STEP", -1);
  // Different initialisations per rank: the broadcast must make them equal.
  torch::manual_seed(rank == 0 ? 1 : 100 + rank);
  DpNet net(4 + (rank == env_int("FROST_TEST_EXTRA_BLOCK_RANK", -1) ? 1 : 0));
  auto blocks = frost::BlockMap::detect(*net);
  torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.05).momentum(0.9));
  std::unique_ptr<Sync> sync;
  // Small buckets: several per step, so their order across ranks matters.
  if (g) sync = std::make_unique<Sync>(*net, g, Sync::Options().overlap(overlap).bucket_cap_mb(0.002));
  Ctl::Options o;
  o.controller().total_steps(steps).steps_per_epoch(4);
  o.criterion().percentile(50).evals_per_epoch(2);
  o.reducer().group(g);
  Ctl ctl(net, opt, blocks, o);

  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const auto x = at::randn({steps * kGlobalBatch, 8}, gen);
  const auto teacher = at::randn({8, 3}, gen);
  const auto y = at::argmax(at::matmul(x, teacher), 1);
  const std::int64_t per = kGlobalBatch / world;

  RunOut r;
  for (int s = 0; s < steps; ++s) {
    ctl.before_step();
    std::int64_t trainable = 0;
    for (const auto& p : net->parameters())
      if (p.requires_grad()) trainable += p.numel();
    r.trainable.push_back(trainable);
    opt.zero_grad();
    const auto rows = s * kGlobalBatch + rank * per;
    auto loss = torch::nn::functional::cross_entropy(net->forward(x.narrow(0, rows, per)),
                                                     y.narrow(0, rows, per));
    loss.backward();
    if (sync) sync->synchronize();
    ctl.after_backward();
    opt.step();
    ctl.after_step();
    at::Tensor l = loss.detach().clone();
    if (g) {
      g->all_reduce_(l);
      l.div_(world);
    }
    r.losses.push_back(l.item<double>());
    r.bytes.push_back(sync ? sync->bytes_last_step() : 0);
    if (s % 8 == 7) ctl.report_validation(l.item<double>() + 0.25 * rank);  // averaged
    if (rank == die_rank && s == die_step) std::_Exit(7);  // killed: no goodbye
  }
  r.timeline = timeline_text(ctl.timeline());
  r.decisions = timeline_text(ctl.timeline(), false);
  std::vector<at::Tensor> flat;
  for (const auto& p : net->parameters()) flat.push_back(p.detach().reshape({-1}));
  r.params = at::cat(flat);
  r.rebuilds = sync ? sync->rebuilds() : 0;
  return r;
}

// --- over a real link (tests/distributed/link.sh) ----------------------------------
using HandCtl = frost::FreezeController<frost::criteria::Never, frost::schedules::Constant,
                                        frost::stop::Never,
                                        frost::with_reducer<frost::reducers::AllReduceMean>>;

/// Bytes this rank's network interface has sent (the kernel's own counter;
/// inside a namespace `ip netns exec` mounts that namespace's /sys).
std::int64_t link_tx_bytes() {
  const char* ifn = std::getenv("GLOO_SOCKET_IFNAME");
  std::ifstream f(std::string("/sys/class/net/") + (ifn && *ifn ? ifn : "lo") +
                  "/statistics/tx_bytes");
  std::int64_t v = -1;
  f >> v;
  return v;
}

/// Phases of FROST_TEST_STEPS steps with the first k of 4 blocks frozen by
/// hand (k = 0, 1, 2, 3, then all unfrozen again, on the same GradientSync):
/// per phase one line "k steps frost_bytes wire_tx_bytes rebuilds". Between
/// phases a barrier: the peer has then received every byte of the phase, so
/// the counter holds all of it. FROST_TEST_DIE_RANK/STEP: that rank dies there.
void link_worker(const std::shared_ptr<frost::dist::Group>& g, const std::string& me) {
  const int steps = env_int("FROST_TEST_STEPS", 8);
  const int die_rank = env_int("FROST_TEST_DIE_RANK", -1), die_step = env_int("FROST_TEST_DIE_STEP", -1);
  torch::manual_seed(1);
  // Width 256: about 1 MB of gradients per step, so the link, not the step,
  // sets the pace and the headers are a small share of the bytes.
  DpNet net(4, 256);
  auto blocks = frost::BlockMap::detect(*net);
  torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.01));
  Sync sync(*net, g);
  HandCtl::Options o;
  o.controller().total_steps(1000);
  o.reducer().group(g);
  HandCtl ctl(net, opt, blocks, o);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11 + g->rank());
  std::ofstream f(me + ".txt");
  int frozen = 0, step = 0;
  for (const int k : {0, 1, 2, 3, 0}) {
    // Block 0 is the stem (embed); blocks 1..4 the DpNet's blocks: freeze a
    // prefix of those (the stem and head stay, as outside-the-map parameters would).
    for (; frozen < k; ++frozen) ctl.freeze(static_cast<std::size_t>(1 + frozen));
    for (; frozen > k; --frozen) ctl.unfreeze(static_cast<std::size_t>(frozen));
    g->barrier();
    const std::int64_t before = link_tx_bytes();
    std::int64_t frost_bytes = 0;
    for (int s = 0; s < steps; ++s, ++step) {
      ctl.before_step();
      opt.zero_grad();
      const auto x = at::randn({16, 8}, gen);
      net->forward(x).pow(2).mean().backward();
      sync.synchronize();
      ctl.after_backward();
      opt.step();
      ctl.after_step();
      frost_bytes += sync.bytes_last_step();
      if (g->rank() == die_rank && step == die_step) std::_Exit(7);  // killed: no goodbye
    }
    g->barrier();
    f << k << ' ' << steps << ' ' << frost_bytes << ' ' << (link_tx_bytes() - before) << ' '
      << sync.rebuilds() << std::endl;
  }
  g->barrier();  // rank 0 hosts the store: leave together
}

// --- worker side ------------------------------------------------------------------
std::string fashion_mnist() {
  const char* env = std::getenv("FROST_FASHION_MNIST");
  return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

int worker(const std::string& scenario) {
  try {
    const std::string out = std::getenv("FROST_TEST_OUT") ? std::getenv("FROST_TEST_OUT") : ".";
#ifdef FROST_DIST_TESTS_TRAINER
    if (scenario == "trainer") {  // frost-train joins the run itself, from the environment
      frost_train::TrainConfig cfg;
      frost_train::parse_args(
          {"--compare", "full,autofreeze", "--data", fashion_mnist(), "--out", out + "/run",
           "--cache", out + "/cache", "--threads", "1", "--pretrain-limit", "600",
           "--train-limit", "320", "--test-limit", "300", "--batch-size", "32", "--epochs", "2",
           "--warmup", "2", "--set", "autofreeze:criterion.interval=3", "--no-progress"},
          cfg);
      // a NaN loss on rank 1 only, at two steps: every rank must skip them
      cfg.nan_at = {4, 9};
      cfg.nan_rank = 1;
      std::ostringstream os;
      const int rc = frost_train::run_app(cfg, os);
      std::ofstream(out + "/rank" + std::getenv("RANK") + ".txt") << os.str();
      return rc;
    }
#endif
    auto g = frost::dist::init();
    const std::string me = out + "/rank" + std::to_string(g->rank());
    if (scenario == "train") {
      const RunOut r = train(g, env_int("FROST_TEST_STEPS", 24), env_int("FROST_TEST_OVERLAP", 1));
      torch::save(r.params, me + ".pt");
      std::ofstream f(me + ".txt");
      f.precision(17);
      for (std::size_t s = 0; s < r.losses.size(); ++s)
        f << r.losses[s] << ' ' << r.bytes[s] << ' ' << r.trainable[s] << '\n';
      f << "rebuilds " << r.rebuilds << '\n' << "timeline\n" << r.timeline;
      g->barrier();  // rank 0 hosts the store: leave together
    } else if (scenario == "double_backward") {
      // Two backward passes, one synchronize(), no no_sync(): the hooks sent
      // the first pass's buckets; the result must still be the accumulated
      // gradients' mean (the same data on both ranks: the local sum).
      torch::manual_seed(1);
      DpNet net(3);
      Sync sync(*net, g, Sync::Options().bucket_cap_mb(0.002));
      const auto x = at::randn({6, 8}, at::make_generator<at::CPUGeneratorImpl>(3));
      net->forward(x).pow(2).mean().backward();
      net->forward(x * 2).pow(2).mean().backward();
      std::vector<at::Tensor> local;
      for (const auto& p : net->parameters()) local.push_back(p.grad().clone());
      sync.synchronize();
      bool same = true;
      const auto ps = net->parameters();
      for (std::size_t i = 0; i < ps.size(); ++i) same = same && at::allclose(ps[i].grad(), local[i]);
      std::ofstream(me + ".txt") << (same ? "accumulated" : "first pass only") << ' '
                                 << sync.bytes_last_step() << '\n';
    } else if (scenario == "link") {
      link_worker(g, me);
    } else if (scenario == "reduce") {
      frost::reducers::AllReduceMean red;  // the default group
      const auto mean = red.reduce(at::full({3}, double(g->rank() + 1), at::kDouble));
      std::ofstream(me + ".txt") << mean[0].item<double>() << '\n';
      // Rank 1 brings one value more: every rank must fail, naming it.
      red.reduce(at::ones({3 + (g->rank() == 1 ? 1 : 0)}));
      std::ofstream(me + ".txt", std::ios::app) << "no error\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "worker error: " << e.what() << std::endl;
    return 2;
  }
}

// --- launcher side ----------------------------------------------------------------
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string self_exe() {
  char buf[4096];
  const auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  REQUIRE(n > 0);
  return std::string(buf, static_cast<std::size_t>(n));
}

std::string read_all(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Launch {
  Launch() = default;
  Launch(Launch&& o) noexcept : dir(std::exchange(o.dir, "")), exit_codes(std::move(o.exit_codes)),
                                seconds(std::move(o.seconds)) {}
  ~Launch() {
    // Failures print the logs first. (Not std::filesystem: pip's libtorch.so
    // exports its own copy of it, which crashes when called from here.)
    if (!dir.empty())
      ::nftw(dir.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); },
             16, FTW_DEPTH | FTW_PHYS);
  }
  std::string dir;
  std::vector<int> exit_codes;  ///< per started rank; -1: killed at the deadline
  std::vector<double> seconds;  ///< per started rank: until it exited
  std::string log(int r) const { return read_all(dir + "/rank" + std::to_string(r) + ".log"); }
  std::string text(int r) const { return read_all(dir + "/rank" + std::to_string(r) + ".txt"); }
};

/// Starts ranks `ranks` of a world of `world` running `scenario`, waits up to
/// `deadline_s` for all of them (then kills what is left).
Launch launch(const std::string& scenario, int world, const std::vector<int>& ranks,
              std::map<std::string, std::string> env, double deadline_s = 60) {
  Launch L;
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/frost_dist_XXXXXX";
  REQUIRE(::mkdtemp(templ.data()) != nullptr);
  L.dir = templ;
  env["FROST_TEST_WORKER"] = scenario;
  env["FROST_TEST_OUT"] = L.dir;
  env["WORLD_SIZE"] = std::to_string(world);
  env["MASTER_ADDR"] = "127.0.0.1";
  env["MASTER_PORT"] = std::to_string(free_port());
  if (!env.count("FROST_DIST_TIMEOUT")) env["FROST_DIST_TIMEOUT"] = "20";
  env["OMP_NUM_THREADS"] = "1";
  const std::string exe = self_exe();
  std::vector<pid_t> pids;
  const auto t0 = std::chrono::steady_clock::now();
  for (const int r : ranks) {
    auto e = env;
    e["RANK"] = std::to_string(r);
    e["LOCAL_RANK"] = std::to_string(r);
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
    const std::string log = L.dir + "/rank" + std::to_string(r) + ".log";
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::string arg0 = exe;
    char* argv[] = {arg0.data(), nullptr};
    pid_t pid = 0;
    REQUIRE(posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv, envp.data()) == 0);
    posix_spawn_file_actions_destroy(&fa);
    pids.push_back(pid);
  }
  L.exit_codes.assign(pids.size(), -1);
  L.seconds.assign(pids.size(), deadline_s);
  std::size_t left = pids.size();
  std::vector<bool> done(pids.size(), false);
  while (left > 0) {
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (done[i]) continue;
      int status = 0;
      if (::waitpid(pids[i], &status, WNOHANG) == pids[i]) {
        done[i] = true;
        --left;
        L.exit_codes[i] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        L.seconds[i] = t;
      } else if (t > deadline_s) {
        ::kill(pids[i], SIGKILL);
        ::waitpid(pids[i], &status, 0);
        done[i] = true;
        --left;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return L;
}

struct RankFile {
  std::vector<double> losses;
  std::vector<std::int64_t> bytes, trainable;
  std::int64_t rebuilds = 0;
  std::string timeline;
};
RankFile parse(const std::string& text) {
  RankFile f;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("rebuilds ", 0) == 0) {
      f.rebuilds = std::stoll(line.substr(9));
      continue;
    }
    if (line == "timeline") {
      std::stringstream rest;
      rest << in.rdbuf();
      f.timeline = rest.str();
      break;
    }
    std::istringstream ls(line);
    double l;
    std::int64_t b, t;
    ls >> l >> b >> t;
    f.losses.push_back(l);
    f.bytes.push_back(b);
    f.trainable.push_back(t);
  }
  return f;
}

void check_data_parallel_run(int world, bool overlap) {
  const int steps = 24;
  std::vector<int> ranks;
  for (int r = 0; r < world; ++r) ranks.push_back(r);
  const Launch L = launch("train", world, ranks,
                          {{"FROST_TEST_STEPS", std::to_string(steps)},
                           {"FROST_TEST_OVERLAP", overlap ? "1" : "0"}});
  for (int r = 0; r < world; ++r) {
    INFO("rank " << r << " log:\n" << L.log(r));
    REQUIRE(L.exit_codes[static_cast<std::size_t>(r)] == 0);
  }
  std::vector<RankFile> files;
  std::vector<at::Tensor> params;
  for (int r = 0; r < world; ++r) {
    files.push_back(parse(L.text(r)));
    at::Tensor p;
    torch::load(p, L.dir + "/rank" + std::to_string(r) + ".pt");
    params.push_back(p);
  }
  // Every rank: the same parameters, bit for bit, and the same timeline.
  for (int r = 1; r < world; ++r) {
    CHECK(at::equal(params[static_cast<std::size_t>(r)], params[0]));
    CHECK(files[static_cast<std::size_t>(r)].timeline == files[0].timeline);
    CHECK(files[static_cast<std::size_t>(r)].losses == files[0].losses);
  }
  const RankFile& f = files[0];
  REQUIRE(f.losses.size() == static_cast<std::size_t>(steps));
  INFO("timeline:\n" << f.timeline);
  CHECK(f.timeline.find("freeze") != std::string::npos);  // the criterion did freeze blocks

  // Bytes: exactly the gradients of what trains (4 bytes per float value),
  // falling as blocks freeze; the buckets were rebuilt once per change.
  std::int64_t changes = 0;
  for (int s = 0; s < steps; ++s) {
    CHECK(f.bytes[static_cast<std::size_t>(s)] == 4 * f.trainable[static_cast<std::size_t>(s)]);
    if (s > 0 && f.trainable[static_cast<std::size_t>(s)] != f.trainable[static_cast<std::size_t>(s) - 1])
      ++changes;
  }
  CHECK(f.bytes.back() < f.bytes.front());
  CHECK(f.rebuilds == 1 + changes);

  // The same as one process on the same global batch, within float tolerance.
  const RunOut single = train(nullptr, steps, overlap);
  for (int s = 0; s < steps; ++s)
    CHECK(f.losses[static_cast<std::size_t>(s)] ==
          doctest::Approx(single.losses[static_cast<std::size_t>(s)]).epsilon(1e-5));
  CHECK(at::allclose(params[0], single.params, 1e-4, 1e-5));
  // The same decisions at the same steps (statistics agree to float rounding).
  std::string decisions;
  std::istringstream tl(f.timeline);
  for (std::string line; std::getline(tl, line);) decisions += line.substr(0, line.rfind(' ')) + "\n";
  CHECK(single.decisions == decisions);
}

}  // namespace

TEST_CASE("data-parallel, 2 ranks (Gloo, buckets launched from backward hooks)") {
  check_data_parallel_run(2, /*overlap=*/true);
}

TEST_CASE("data-parallel, 3 ranks (Gloo, buckets launched after backward)") {
  check_data_parallel_run(3, /*overlap=*/false);
}

TEST_CASE("a rank killed mid-run: the others fail naming it, within the timeout") {
  const Launch L = launch("train", 3, {0, 1, 2},
                          {{"FROST_TEST_STEPS", "40"},
                           {"FROST_TEST_DIE_RANK", "2"},
                           {"FROST_TEST_DIE_STEP", "5"},
                           {"FROST_DIST_TIMEOUT", "8"}});
  CHECK(L.exit_codes[2] == 7);
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r << " log:\n" << L.log(r));
    CHECK(L.exit_codes[static_cast<std::size_t>(r)] == 2);
    CHECK(L.log(r).find("frost: rank " + std::to_string(r) + " of 3") != std::string::npos);
    CHECK(L.log(r).find("rank 2 stopped responding") != std::string::npos);
    CHECK(L.seconds[static_cast<std::size_t>(r)] < 8 + 10);  // timeout + start-up + diagnosis
  }
}

TEST_CASE("rank 0 (the store's host) killed: the others say so") {
  const Launch L = launch("train", 2, {0, 1},
                          {{"FROST_TEST_STEPS", "40"},
                           {"FROST_TEST_DIE_RANK", "0"},
                           {"FROST_TEST_DIE_STEP", "3"},
                           {"FROST_DIST_TIMEOUT", "8"}});
  INFO("rank 1 log:\n" << L.log(1));
  CHECK(L.exit_codes[1] == 2);
  CHECK(L.log(1).find("rank 0") != std::string::npos);
  CHECK(L.log(1).find("is gone") != std::string::npos);
}

TEST_CASE("a rank that never joins is named, within the timeout") {
  const Launch L = launch("train", 3, {0, 1}, {{"FROST_DIST_TIMEOUT", "3"}});
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r << " log:\n" << L.log(r));
    CHECK(L.exit_codes[static_cast<std::size_t>(r)] == 2);
    CHECK(L.log(r).find("rank 2 of a world of 3 did not join within 3 s") != std::string::npos);
    CHECK(L.seconds[static_cast<std::size_t>(r)] < 3 + 10);
  }
}

TEST_CASE("two backward passes before synchronize(): the accumulated gradients are averaged") {
  const Launch L = launch("double_backward", 2, {0, 1}, {});
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r << " log:\n" << L.log(r));
    CHECK(L.exit_codes[static_cast<std::size_t>(r)] == 0);
    CHECK(L.text(r).rfind("accumulated ", 0) == 0);
  }
}

TEST_CASE("statistics of another shape at a decision point fail every rank, naming it") {
  const Launch L = launch("reduce", 3, {0, 1, 2}, {});
  for (int r = 0; r < 3; ++r) {
    INFO("rank " << r << " log:\n" << L.log(r));
    CHECK(L.exit_codes[static_cast<std::size_t>(r)] == 2);
    CHECK(L.text(r).rfind("2\n", 0) == 0);  // the first reduction: mean of 1, 2, 3
    CHECK(L.log(r).find("rank 1 brings 4 values") != std::string::npos);
  }
}

TEST_CASE("another model on one rank fails every rank before training") {
  const Launch L = launch("train", 2, {0, 1}, {{"FROST_TEST_EXTRA_BLOCK_RANK", "1"}});
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r << " log:\n" << L.log(r));
    CHECK(L.exit_codes[static_cast<std::size_t>(r)] == 2);
    CHECK(L.log(r).find("the ranks disagree: rank 0 holds") != std::string::npos);
  }
}

#ifdef FROST_DIST_TESTS_TRAINER
TEST_CASE("frost-train on 2 ranks: one table, identical timelines on every rank, a NaN on one rank skipped by all") {
  if (!std::ifstream(fashion_mnist() + "/train-images-idx3-ubyte.gz")) {
    MESSAGE("Fashion-MNIST not installed (dataset-fashion-mnist); skipped");
    return;
  }
  const Launch L = launch("trainer", 2, {0, 1}, {}, 240);
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r << " log:\n" << L.log(r) << L.text(r));
    REQUIRE(L.exit_codes[static_cast<std::size_t>(r)] == 0);
  }
  const std::string table = L.text(0);
  INFO(table);
  CHECK(table.find("speed-up") != std::string::npos);
  CHECK(table.find("data-parallel: 2 ranks") != std::string::npos);
  CHECK(table.find("% of what an all-reduce of every gradient sends") != std::string::npos);
  CHECK(L.text(1).empty());  // rank 1 prints nothing
  // rank 1's NaN losses (steps 4 and 9): both ranks skipped those batches
  // (else the gradient exchange would have hung or the timelines differ)
  CHECK(table.find("step 4: the loss is not finite; the batch is skipped") != std::string::npos);
  CHECK(table.find("step 9: the loss is not finite; the batch is skipped") != std::string::npos);
  for (const char* s : {"full", "autofreeze"}) {
    const std::string dir = L.dir + "/run/" + s;
    const std::string t0 = read_all(dir + "/rank0/timeline.csv");
    CHECK(!t0.empty());
    CHECK(t0 == read_all(dir + "/rank1/timeline.csv"));
  }
  const std::string af = read_all(L.dir + "/run/autofreeze/rank0/timeline.csv");
  CHECK(std::count(af.begin(), af.end(), '\n') > 1);  // AutoFreeze froze blocks (header + events)
  CHECK(!read_all(L.dir + "/run/results.csv").empty());
}
#endif

TEST_CASE("bad settings are clear errors") {
  auto opts = frost::dist::GroupOptions().world_size(2).rank(2);
  CHECK_THROWS_WITH_AS(frost::dist::Group::create(opts),
                       doctest::Contains("ranks go from 0 to WORLD_SIZE-1"), frost::Error);
  CHECK_THROWS_WITH_AS(frost::dist::Group::create(frost::dist::GroupOptions().world_size(0)),
                       doctest::Contains("WORLD_SIZE"), frost::Error);
  CHECK_THROWS_WITH_AS(frost::dist::Group::create(frost::dist::GroupOptions().device("tpu")),
                       doctest::Contains("give \"cpu\" or \"cuda\""), frost::Error);
  ::setenv("WORLD_SIZE", "two", 1);
  CHECK_THROWS_WITH_AS(frost::dist::GroupOptions::from_env(),
                       doctest::Contains("WORLD_SIZE='two' is not an integer"), frost::Error);
  ::unsetenv("WORLD_SIZE");
  // A client whose rank 0 never comes: named, within the timeout.
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(
      frost::dist::Group::create(
          frost::dist::GroupOptions().world_size(2).rank(1).master_port(free_port()).timeout_s(1)),
      doctest::Contains("could not reach rank 0's rendezvous store"), frost::Error);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  // GradientSync needs a group.
  DpNet net(2);
  frost::dist::shutdown();
  CHECK_THROWS_WITH_AS(Sync(*net, nullptr), doctest::Contains("call frost::dist::init() first"),
                       frost::Error);
}

TEST_CASE("a world of one: every collective is a no-op, nothing is communicated") {
  auto g = frost::dist::init(frost::dist::GroupOptions());
  DpNet net(2);
  Sync sync(*net);
  auto loss = net->forward(at::randn({4, 8})).sum();
  loss.backward();
  const auto before = net->parameters()[0].grad().clone();
  sync.synchronize();
  CHECK(at::equal(net->parameters()[0].grad(), before));
  CHECK(sync.bytes_last_step() == 0);
  frost::reducers::AllReduceMean red;
  const auto t = at::arange(3.0);
  CHECK(at::equal(red.reduce(t), t));
  frost::dist::shutdown();
}

int main(int argc, char** argv) {
  if (const char* scenario = std::getenv("FROST_TEST_WORKER")) return worker(scenario);
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
