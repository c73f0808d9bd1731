// frost-train (examples/train): the Fashion-MNIST IDX reader on constructed
// files, the trainer's checkpoint round trip (a resumed run makes the same
// freeze decisions as an uninterrupted one) and a tiny end-to-end run.
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "app.hpp"
#include "support.hpp"
// last: after every LibTorch header (see doctest_torch.hpp)
#include "doctest_torch.hpp"
#include "frost_checks.hpp"

namespace {

std::string temp_dir() { return frost_test::temp_dir("frost-train-test"); }

/// $FROST_FASHION_MNIST or Debian's directory; "" (and a message: the test is
/// skipped) when the dataset is not installed.
std::string fashion_mnist_dir() {
  const std::string data = frost_examples::default_fashion_mnist_dir();
  if (frost_train::path_exists(data + "/train-images-idx3-ubyte.gz")) return data;
  MESSAGE("Fashion-MNIST not installed (dataset-fashion-mnist); skipped");
  return {};
}

void be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}

std::vector<uint8_t> idx_images(uint32_t n, uint32_t magic = 0x803) {
  std::vector<uint8_t> v;
  be32(v, magic);
  be32(v, n);
  be32(v, 28);
  be32(v, 28);
  for (uint32_t i = 0; i < n * 28 * 28; ++i) v.push_back(static_cast<uint8_t>(i * 7));
  return v;
}
std::vector<uint8_t> idx_labels(uint32_t n, uint32_t magic = 0x801) {
  std::vector<uint8_t> v;
  be32(v, magic);
  be32(v, n);
  for (uint32_t i = 0; i < n; ++i) v.push_back(static_cast<uint8_t>(i % 10));
  return v;
}

void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!bytes.empty()) gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

void write_split(const std::string& dir, const std::string& prefix, const std::vector<uint8_t>& img,
                 const std::vector<uint8_t>& lbl) {
  write_gz(dir + "/" + prefix + "-images-idx3-ubyte.gz", img);
  write_gz(dir + "/" + prefix + "-labels-idx1-ubyte.gz", lbl);
}

std::string error_of(const std::string& dir) {
  try {
    frost_train::load_task_data(dir, -1, -1, -1);
  } catch (const frost_examples::DataError& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("train: IDX reader on good, truncated, wrong-magic, mismatched and missing files") {
  namespace fx = frost_examples;
  const std::string dir = temp_dir();
  write_split(dir, "train", idx_images(20), idx_labels(20));
  write_split(dir, "t10k", idx_images(10), idx_labels(10));

  SUBCASE("a good file") {
    auto ds = fx::load_fashion_mnist(dir, true);
    CHECK(ds.size() == 20);
    CHECK(ds.images.sizes() == at::IntArrayRef({20, 1, 28, 28}));
    CHECK(ds.labels[13].item<int64_t>() == 3);
    auto task = frost_train::load_task_data(dir, -1, -1, -1);
    CHECK(task.pretrain.size() == 10);  // labels 0-4 of 0..9, 0..9
    CHECK(task.train.size() == 5);  // classes 5-9: 10 images, the last half held out
    CHECK(task.val.size() == 5);    // for validation (at most half, at most --val-limit)
    CHECK(task.test.size() == 5);
    CHECK(task.train.labels.min().item<int64_t>() == 5);
  }
  SUBCASE("truncated data") {
    auto img = idx_images(20);
    img.resize(img.size() - 100);
    write_split(dir, "train", img, idx_labels(20));
    const auto m = error_of(dir);
    CHECK(has(m, "truncated"));
    CHECK(has(m, "train-images"));
    CHECK(has(m, "dataset-fashion-mnist"));
  }
  SUBCASE("truncated gzip stream") {
    const std::string p = dir + "/t10k-labels-idx1-ubyte.gz";
    std::ifstream in(p, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
    const auto m = error_of(dir);
    CHECK(has(m, "t10k-labels"));
    CHECK(has(m, "dataset-fashion-mnist"));
  }
  SUBCASE("wrong magic") {
    write_split(dir, "train", idx_images(20), idx_images(20));  // images where labels belong
    const auto m = error_of(dir);
    CHECK(has(m, "magic"));
    CHECK(has(m, "train-labels"));
    write_split(dir, "train", idx_images(20, 0x12345678), idx_labels(20));
    CHECK(has(error_of(dir), "magic"));
  }
  SUBCASE("image and label counts differ") {
    write_split(dir, "train", idx_images(20), idx_labels(19));
    const auto m = error_of(dir);
    CHECK(has(m, "mismatch"));
  }
  SUBCASE("a missing file names the package") {
    const auto m = error_of(dir + "/nowhere");
    CHECK(has(m, "not found"));
    CHECK(has(m, "dataset-fashion-mnist"));
  }
}

TEST_CASE("train: a gzip bomb stops the IDX reader at the declared size or the limit, not at its end") {
  namespace fx = frost_examples;
  auto error_reading = [](const std::string& path, uint64_t limit) {
    try {
      fx::read_idx(path, limit);
    } catch (const fx::DataError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string dir = temp_dir();
  // 10 labels, then 64 MiB of zeros (64 KiB of gzip): stopped after the
  // first MiB, at the size the header declares
  auto bomb = idx_labels(10);
  bomb.resize(bomb.size() + (std::size_t(64) << 20), 0);
  write_gz(dir + "/bomb.gz", bomb);
  std::string m = error_reading(dir + "/bomb.gz", fx::detail::kMaxIdxBytes);
  CHECK(has(m, "bomb.gz: unexpected trailing bytes"));
  CHECK(has(m, "more than the 18 bytes its header declares; reading stopped there"));
  // a header declaring 2^20 x 2^20 bytes (1 TiB): refused from the header
  std::vector<uint8_t> big;
  be32(big, 0x802);
  be32(big, 1u << 20);
  be32(big, 1u << 20);
  big.resize(big.size() + 4096, 0);
  write_gz(dir + "/big.gz", big);
  m = error_reading(dir + "/big.gz", fx::detail::kMaxIdxBytes);
  CHECK(has(m, "big.gz: implausible IDX dimensions (its header declares 1099511627788 bytes"));
  // no IDX header (the bytes of no format), past the limit
  write_gz(dir + "/zeros.gz", std::vector<uint8_t>(std::size_t(3) << 20, 0));
  m = error_reading(dir + "/zeros.gz", std::uint64_t(2) << 20);
  CHECK(has(m, "zeros.gz: decompresses to more than 2097152 bytes"));
  // a good file under the limit reads as before
  write_gz(dir + "/good.gz", idx_images(3));
  CHECK(fx::read_idx(dir + "/good.gz", 4096).data.size() == 3 * 28 * 28);
  CHECK(has(error_reading(dir + "/good.gz", 1000), "implausible IDX dimensions"));
}

namespace {

// A small learnable image task (no files): class = brightest quadrant + 5.
frost_train::TaskData synthetic_task(int64_t n) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto x = at::randn({n, 1, 28, 28}, gen);
  auto q = at::stack({x.narrow(2, 0, 14).narrow(3, 0, 14).mean({1, 2, 3}),
                      x.narrow(2, 0, 14).narrow(3, 14, 14).mean({1, 2, 3}),
                      x.narrow(2, 14, 14).narrow(3, 0, 14).mean({1, 2, 3}),
                      x.narrow(2, 14, 14).narrow(3, 14, 14).mean({1, 2, 3})},
                     1);
  auto y = q.argmax(1) + 5;
  frost_train::TaskData d;
  d.pretrain = {x, y - 5};
  d.train = {x, y};
  d.test = {x.narrow(0, 0, 64), y.narrow(0, 0, 64)};
  return d;
}

template <class C, class S, class P, class F>
frost_train::RunResult run(const frost_train::RunContext& ctx, F configure) {
  std::function<void(typename frost_train::TrainController<C, S, P>::Options&, const frost_train::Plan&,
                     const frost::BlockMap&)>
      f = configure;
  return frost_train::run_strategy<C, S, P>(ctx, "test", f);
}

struct Decision {
  int64_t step, block;
  int kind;
  bool operator==(const Decision& o) const {
    return step == o.step && block == o.block && kind == o.kind;
  }
  friend std::ostream& operator<<(std::ostream& os, const Decision& d) {
    return os << "(step " << d.step << ", block " << d.block << ", kind " << d.kind << ")";
  }
};
std::vector<Decision> decisions(const frost::Timeline& t) {
  std::vector<Decision> d;
  for (const auto& e : t) d.push_back({e.step, e.block, static_cast<int>(e.kind)});
  return d;
}

/// The small run the resume and kill tests repeat: 192 synthetic samples,
/// batch 16, 4 epochs (48 steps), no pre-training (the initialisation is the
/// "pre-trained" model), quiet.
frost_train::TrainConfig resume_config(const std::string& dir) {
  frost_train::TrainConfig cfg;
  cfg.batch_size = 16;
  cfg.epochs = 4;  // 12 steps per epoch: 48 steps
  cfg.warmup_steps = 4;
  cfg.progress = 0;
  cfg.quiet = true;
  cfg.cache_dir = dir + "/cache";
  cfg.pretrain_epochs = 0;
  return cfg;
}

template <class C, class F>
void check_resume_matches(const at::Device& device, F configure) {
  using S = frost::schedules::Cosine;
  using P = frost::stop::Never;
  torch::set_num_threads(1);
  const auto data = synthetic_task(192);
  const std::string dir = temp_dir();
  const frost_train::TrainConfig cfg = resume_config(dir);
  frost_train::RunContext ctx;
  ctx.cfg = cfg;
  ctx.data = &data;
  ctx.device = device;
  ctx.pretrained = frost_train::ensure_pretrained(cfg, data, device, [](const std::string&) {});

  ctx.out_dir = dir + "/straight";
  const auto straight = run<C, S, P>(ctx, configure);
  REQUIRE(straight.completed);

  // Killed after 19 steps (mid-interval, mid-epoch), then resumed in a new
  // model/optimizer/controller built from the checkpoint.
  ctx.out_dir = dir + "/split";
  ctx.cfg.max_steps = 19;
  const auto first = run<C, S, P>(ctx, configure);
  CHECK_FALSE(first.completed);
  CHECK(first.steps == 19);
  ctx.cfg.max_steps = -1;
  ctx.resume = true;
  const auto resumed = run<C, S, P>(ctx, configure);
  REQUIRE(resumed.completed);
  CHECK(resumed.resumed);

  int freezes = 0;
  for (const auto& e : straight.timeline) freezes += e.kind == frost::EventKind::freeze;
  CHECK(freezes >= 1);  // the test means something only if decisions happened
  CHECK(decisions(resumed.timeline) == decisions(straight.timeline));
  CHECK(resumed.freeze_step == straight.freeze_step);
  REQUIRE(resumed.losses.size() == straight.losses.size());
  for (std::size_t i = 0; i < straight.losses.size(); ++i)
    CHECK(resumed.losses[i] == doctest::Approx(straight.losses[i]).epsilon(1e-4));
  CHECK(resumed.test_accuracy == doctest::Approx(straight.test_accuracy));
  // the step log has one line per step, none duplicated by the resume; every
  // line is a JSON object with the step keys in their order
  std::ifstream log(dir + "/split/steps.jsonl");
  int lines = 0;
  for (std::string l; std::getline(log, l);) {
    const auto j = nlohmann::ordered_json::parse(l);  // throws on a bad line
    REQUIRE(j.is_object());
    if (!j.contains("loss")) continue;
    ++lines;
    std::vector<std::string> keys;
    for (const auto& kv : j.items()) keys.push_back(kv.key());
    CHECK(keys == std::vector<std::string>{"step", "epoch", "loss", "lr_head", "lr", "frozen",
                                           "frozen_fraction", "step_ms", "events"});
    CHECK(j["lr"].size() == resumed.block_names.size());
    for (const auto& e : j["events"]) CHECK(e.contains("block_name"));
  }
  CHECK(lines == 48);
}

}  // namespace

TEST_CASE("train: JSON lines: numbers to 6 digits, null when not finite, strings escaped") {
  using frost_train::json_line;
  using frost_train::json_number;
  CHECK(json_line({{"step", 3}, {"loss", json_number(2.302585092994)}}) ==
        "{\"step\":3,\"loss\":2.30259}\n");
  CHECK(json_line({{"a", json_number(std::nan(""))},
                   {"b", json_number(HUGE_VAL)},
                   {"c", json_number(-HUGE_VAL)}}) == "{\"a\":null,\"b\":null,\"c\":null}\n");
  CHECK(json_line({{"s", "q\"\\\n\t\x01"}}) == "{\"s\":\"q\\\"\\\\\\n\\t\\u0001\"}\n");
  CHECK(json_line({{"bad", std::string("\xff")}}) == "{\"bad\":\"\xef\xbf\xbd\"}\n");  // U+FFFD
  CHECK(frost_train::csv_number(std::nan("")) == "null");
  CHECK(frost_train::csv_number(0.1234567) == "0.123457");
}

namespace {

frost_train::TrainConfig parsed(const std::vector<std::string>& args) {
  frost_train::TrainConfig cfg;
  frost_train::parse_args(args, cfg);
  return cfg;
}

std::string usage_error(const std::vector<std::string>& args) {
  try {
    parsed(args);
  } catch (const frost_train::UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("train: every command-line flag sets its TrainConfig field and --help lists them all") {
  using Cfg = frost_train::TrainConfig;
  using V = std::vector<std::string>;
  struct Flag {
    std::string name;
    std::vector<std::string> args;
    std::function<bool(const Cfg&)> set;  // true once the flag took effect
  };
  const std::vector<Flag> flags = {
      {"--strategy", {"--strategy", "dyf,full"},
       [](const Cfg& c) { return c.strategies == V{"dyf", "full"} && !c.compare; }},
      {"--compare", {"--compare", "full,dyf"},
       [](const Cfg& c) { return c.compare && c.strategies == V{"full", "dyf"}; }},
      {"--list", {"--list"}, [](const Cfg& c) { return c.list; }},
      {"--set", {"--set", "dyf:criterion.window=3"},
       [](const Cfg& c) {
         return c.sets.size() == 1 && c.sets[0].first == "dyf:criterion.window" &&
                c.sets[0].second == "3";
       }},
      {"--help", {"--help"}, [](const Cfg& c) { return c.help; }},
      {"-h", {"-h"}, [](const Cfg& c) { return c.help; }},
      {"--data", {"--data", "/d"}, [](const Cfg& c) { return c.data_dir == "/d"; }},
      {"--out", {"--out", "o"}, [](const Cfg& c) { return c.out_dir == "o"; }},
      {"--cache", {"--cache", "c"}, [](const Cfg& c) { return c.cache_dir == "c"; }},
      {"--resume", {"--resume", "r"}, [](const Cfg& c) { return c.resume_dir == "r"; }},
      {"--model", {"--model", "small"}, [](const Cfg& c) { return c.model == "small"; }},
      {"--weights", {"--weights", "w.safetensors"},
       [](const Cfg& c) { return c.weights == "w.safetensors"; }},
      {"--resolution", {"--resolution", "96"}, [](const Cfg& c) { return c.resolution == 96; }},
      {"--pooling", {"--pooling", "cls"}, [](const Cfg& c) { return c.pooling == "cls"; }},
      {"--device", {"--device", "cuda:1"}, [](const Cfg& c) { return c.device == "cuda:1"; }},
      {"--threads", {"--threads", "3"}, [](const Cfg& c) { return c.threads == 3; }},
      {"--jobs", {"--jobs", "2"}, [](const Cfg& c) { return c.jobs == 2; }},
      {"--seed", {"--seed", "7"}, [](const Cfg& c) { return c.seed == 7; }},
      {"--seeds", {"--seeds", "5"}, [](const Cfg& c) { return c.seeds == 5; }},
      {"--frontier", {"--frontier", "2,4.5"},
       [](const Cfg& c) { return c.frontier == std::vector<double>{2, 4.5}; }},
      {"--study", {"--study"}, [](const Cfg& c) { return c.study; }},
      {"--matched-frontier", {"--matched-frontier", "off"},
       [](const Cfg& c) { return c.matched_frontier == 0; }},
      {"--report", {"--report", "a,b"}, [](const Cfg& c) { return c.report == V{"a", "b"}; }},
      {"--epochs", {"--epochs", "2.5"}, [](const Cfg& c) { return c.epochs == 2.5; }},
      {"--batch-size", {"--batch-size", "32"}, [](const Cfg& c) { return c.batch_size == 32; }},
      {"--lr", {"--lr", "0.25"}, [](const Cfg& c) { return c.lr == 0.25; }},
      {"--weight-decay", {"--weight-decay", "0"}, [](const Cfg& c) { return c.weight_decay == 0; }},
      {"--warmup", {"--warmup", "0"}, [](const Cfg& c) { return c.warmup_steps == 0; }},
      {"--train-limit", {"--train-limit", "-1"}, [](const Cfg& c) { return c.train_limit == -1; }},
      {"--test-limit", {"--test-limit", "300"}, [](const Cfg& c) { return c.test_limit == 300; }},
      {"--val-limit", {"--val-limit", "200"}, [](const Cfg& c) { return c.val_limit == 200; }},
      {"--activation-cache", {"--activation-cache", "off"}, [](const Cfg& c) { return !c.cache; }},
      {"--activation-cache-mb", {"--activation-cache-mb", "64"},
       [](const Cfg& c) { return c.cache_mb == 64; }},
      {"--interleave", {"--interleave", "5"}, [](const Cfg& c) { return c.interleave == 5; }},
      {"--pretrain-epochs", {"--pretrain-epochs", "0"},
       [](const Cfg& c) { return c.pretrain_epochs == 0; }},
      {"--pretrain-limit", {"--pretrain-limit", "600"},
       [](const Cfg& c) { return c.pretrain_limit == 600; }},
      {"--pretrain-lr", {"--pretrain-lr", "1e-4"},
       [](const Cfg& c) { return c.pretrain_lr == 1e-4; }},
      {"--pretrain-data", {"--pretrain-data", "all"},
       [](const Cfg& c) { return c.pretrain_data == "all"; }},
      {"--checkpoint-every", {"--checkpoint-every", "0"},
       [](const Cfg& c) { return c.checkpoint_every == 0; }},
      {"--eval-every", {"--eval-every", "5"}, [](const Cfg& c) { return c.eval_every == 5; }},
      {"--max-steps", {"--max-steps", "19"}, [](const Cfg& c) { return c.max_steps == 19; }},
      {"--progress", {"--progress"}, [](const Cfg& c) { return c.progress == 1; }},
      {"--no-progress", {"--no-progress"}, [](const Cfg& c) { return c.progress == 0; }},
      {"--quiet", {"--quiet"}, [](const Cfg& c) { return c.quiet; }},
      {"--world-size", {"--world-size", "2"}, [](const Cfg& c) { return c.world_size == 2; }},
      {"--rank", {"--rank", "1"}, [](const Cfg& c) { return c.rank == 1; }},
      {"--local-rank", {"--local-rank", "3"}, [](const Cfg& c) { return c.local_rank == 3; }},
      {"--master-addr", {"--master-addr", "10.0.0.1"},
       [](const Cfg& c) { return c.master_addr == "10.0.0.1"; }},
      {"--master-port", {"--master-port", "29511"},
       [](const Cfg& c) { return c.master_port == 29511; }},
      {"--dist-timeout", {"--dist-timeout", "30"}, [](const Cfg& c) { return c.dist_timeout == 30; }},
  };
  const std::string help = frost_train::usage();
  std::set<std::string> tested;
  for (const auto& f : flags) {
    CAPTURE(f.name);
    tested.insert(f.name);
    CHECK_FALSE(f.set(Cfg{}));  // the value differs from the default
    const Cfg c = parsed(f.args);
    CHECK(f.set(c));
    CHECK(c.argv == f.args);
    if (f.args.size() == 2) {  // --flag=value works too
      const Cfg inl = parsed({f.args[0] + "=" + f.args[1]});
      CHECK(f.set(inl));
    }
    CHECK(has(help, f.name));
  }
  // ... and every flag in --help is in the table above
  std::istringstream lines(help);
  for (std::string l; std::getline(lines, l);) {
    const auto p = l.find_first_not_of(' ');
    if (p != 2) continue;  // option lines start at column 2
    std::istringstream words(l.substr(p));
    std::string w;
    words >> w;
    for (const auto& name : frost_train::detail::split(w, ','))
      if (name[0] == '-') CHECK_MESSAGE(tested.count(name) == 1, name << " is not tested");
  }
  // the defaults are in the help
  for (const char* d : {"--cache DIR=out/cache", "--model tiny|small|effnet-lite0|minilm-l6=tiny", "--resolution N=64", "--device cpu|cuda[:N]=cpu",
                        "--threads N=0", "--jobs N=0", "--seed N=0", "--seeds N=1", "--frontier E[,E]|none=4,8",
                        "--epochs X=12", "--batch-size N=128",
                        "--lr X=0.001", "--weight-decay X=0.05", "--warmup N=10",
                        "--train-limit N=5000", "--test-limit N=-1", "--pretrain-epochs X=4",
                        "--val-limit N=1000", "--activation-cache-mb X=512", "--interleave N=0",
                        "--pretrain-limit N=-1", "--pretrain-lr X=0.002",
                        "--checkpoint-every N=50", "--eval-every N=0", "--max-steps N=-1"})
    CHECK_MESSAGE(has(help, d), d);

  SUBCASE("--help: run_app prints the help and returns 0") {
    std::ostringstream out;
    CHECK(frost_train::run_app(parsed({"--help"}), out) == 0);
    CHECK(out.str() == help);
  }
  SUBCASE("no arguments: the defaults") {
    const Cfg c = parsed({});
    CHECK(c.strategies.empty());
    CHECK(c.progress == -1);
    CHECK(c.batch_size == 128);
    CHECK(c.cache_dir == "out/cache");
  }
  SUBCASE("lists, order and repetition") {
    auto c = parsed({"--strategy", "a,b", "--compare", "c,,d", "--strategy", "e"});
    CHECK(c.strategies == V{"a", "b", "c", "d", "e"});
    CHECK(c.compare);
    c = parsed({"--compare", "--quiet"});  // --compare without names
    CHECK(c.compare);
    CHECK(c.strategies.empty());
    CHECK(c.quiet);
    c = parsed({"--set", "a=1", "--set", "dyf:b=x=y", "--set=c=2"});
    REQUIRE(c.sets.size() == 3);
    CHECK(c.sets[1] == std::make_pair(std::string("dyf:b"), std::string("x=y")));
    CHECK(c.sets[2] == std::make_pair(std::string("c"), std::string("2")));
    CHECK(parsed({"--progress", "--no-progress"}).progress == 0);
    CHECK(parsed({"--no-progress", "--progress"}).progress == 1);
    CHECK(parsed({"--lr", "0.5", "--lr=0.25"}).lr == 0.25);  // the last one counts
    CHECK(parsed({"--threads", "010"}).threads == 10);        // decimal, not octal
  }
}

TEST_CASE("train: a bad command line is a UsageError naming the flag") {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--lr", "abc"}, "--lr"},
      {{"--lr", "0"}, "--lr"},
      {{"--lr", "-1"}, "--lr"},
      {{"--lr", "nan"}, "--lr"},
      {{"--lr"}, "--lr"},  // no value
      {{"--epochs", "0"}, "--epochs"},
      {{"--batch-size", "0"}, "--batch-size"},
      {{"--batch-size", "1.5"}, "--batch-size"},
      {{"--threads", "-1"}, "--threads"},
      {{"--threads", "0x10"}, "--threads"},
      {{"--warmup", "-1"}, "--warmup"},
      {{"--pretrain-epochs", "-1"}, "--pretrain-epochs"},
      {{"--seed", "x"}, "--seed"},
      {{"--weight-decay", "inf"}, "--weight-decay"},
      {{"--train-limit", "all"}, "--train-limit"},
      {{"--test-limit", "1e3"}, "--test-limit"},
      {{"--pretrain-limit", "?"}, "--pretrain-limit"},
      {{"--pretrain-lr", "fast"}, "--pretrain-lr"},
      {{"--checkpoint-every", "often"}, "--checkpoint-every"},
      {{"--eval-every", "2.5"}, "--eval-every"},
      {{"--max-steps", "many"}, "--max-steps"},
      {{"--model", "huge"}, "--model"},
      {{"--resolution", "16"}, "--resolution"},
      {{"--set", "criterion.threshold"}, "--set"},
      {{"--set", "=1"}, "--set"},
      {{"--bogus"}, "--bogus"},
      {{"--strategy", "a", "b"}, "b"},  // one value per flag
      {{"positional"}, "positional"},
      {{"--seed", "-5"}, "--seed"},  // would wrap to 2^64 - 5
      {{"--weight-decay", "-1"}, "--weight-decay"},
      {{"--train-limit", "0"}, "--train-limit"},
      {{"--test-limit", "-2"}, "--test-limit"},
      {{"--checkpoint-every", "-1"}, "--checkpoint-every"},
      {{"--eval-every", "-3"}, "--eval-every"},
      {{"--compare", "full,autofreeze,full"}, "'full' is named twice"},
      {{"--strategy", "dyf", "--strategy", "dyf"}, "'dyf' is named twice"},
  };
  for (const auto& b : bad) {
    const auto& args = b.first;
    const auto& flag = b.second;
    CAPTURE(args.front());
    const std::string m = usage_error(args);
    CHECK_MESSAGE(has(m, flag), m);
    CHECK_FALSE(has(m, "(no error)"));
  }
  CHECK(has(usage_error({"--lr", "abc"}), "abc"));
  CHECK(has(usage_error({"--model", "huge"}), "tiny or small"));
  CHECK(has(usage_error({"--set", "x"}), "KEY=VALUE"));
  CHECK(has(usage_error({"--train-limit", "-1"}), "(no error)"));  // -1: all images

  // --resume keeps the run's own settings: another option is refused before
  // anything runs; the ones that do not change the run may be given again.
  const std::string dir = temp_dir();
  std::ofstream(dir + "/args.txt") << "--strategy\nfull\n";
  auto resume_error = [&](std::vector<std::string> extra) -> std::string {
    std::vector<std::string> args{"--resume", dir};
    args.insert(args.end(), extra.begin(), extra.end());
    frost_train::TrainConfig cfg;
    frost_train::parse_args(args, cfg);
    std::ostringstream out;
    try {
      frost_train::run_app(cfg, out);
    } catch (const frost_train::UsageError& e) {
      return e.what();
    } catch (const std::exception& e) {
      return std::string("other error: ") + e.what();
    }
    return "(no error)";
  };
  const std::string m = resume_error({"--epochs", "3"});
  CHECK_MESSAGE(has(m, "--epochs cannot change them"), m);
  CHECK(has(m, dir + "/args.txt"));
  CHECK(has(resume_error({"--compare", "full,dyf"}), "--compare cannot change them"));
}

namespace {

/// frost-train's run SIGKILLed at random moments (a checkpoint after every
/// step, so kills land inside its writes too), resumed each time from what
/// is on the disk, then finished in this process: the same decisions, losses
/// and freeze steps as the uninterrupted run, and every checkpoint left
/// behind loads (issue 35, part 3). Returns {kills, unreadable, differ}.
template <class C, class F>
std::array<int, 3> check_kills_match(F configure, unsigned seeds) {
  using S = frost::schedules::Cosine;
  using P = frost::stop::Never;
  torch::set_num_threads(1);
  const auto data = synthetic_task(192);
  const std::string dir = temp_dir();
  frost_train::TrainConfig cfg = resume_config(dir);
  cfg.checkpoint_every = 1;
  frost_train::RunContext ctx;
  ctx.cfg = cfg;
  ctx.data = &data;
  ctx.device = at::kCPU;
  ctx.pretrained = frost_train::ensure_pretrained(cfg, data, at::kCPU, [](const std::string&) {});
  ctx.out_dir = dir + "/straight";
  const auto t0 = std::chrono::steady_clock::now();
  const auto straight = run<C, S, P>(ctx, configure);
  REQUIRE(straight.completed);
  int freezes = 0;
  for (const auto& e : straight.timeline) freezes += e.kind == frost::EventKind::freeze;
  REQUIRE(freezes >= 1);
  // kills spread over one uninterrupted run's time here (calibration only)
  const long span_us = std::max<long>(
      5000, static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now() - t0).count()));
  std::array<int, 3> counts{};
  std::fflush(nullptr);
  for (unsigned seed = 1; seed <= seeds; ++seed) {
    CAPTURE(seed);
    std::mt19937 gen(seed);
    ctx.out_dir = dir + "/killed-" + std::to_string(seed);
    const std::string ckpt = ctx.out_dir + "/checkpoint.pt";
    for (int round = 0; round < 4; ++round) {
      ctx.resume = frost_train::path_exists(ckpt);
      const long delay = static_cast<long>(gen() % static_cast<unsigned>(span_us));
      const pid_t pid = ::fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        std::thread([delay] {
          std::this_thread::sleep_for(std::chrono::microseconds(delay));
          ::kill(::getpid(), SIGKILL);
        }).detach();
        try {
          run<C, S, P>(ctx, configure);
        } catch (...) {
          ::_exit(3);
        }
        ::_exit(0);
      }
      int status = 0;
      const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
      while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > end) ::kill(pid, SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (WIFEXITED(status)) {
        REQUIRE(WEXITSTATUS(status) == 0);
        break;
      }
      REQUIRE(WTERMSIG(status) == SIGKILL);
      ++counts[0];
      if (frost_train::path_exists(ckpt)) {
        torch::serialize::InputArchive in;
        try {
          frost::load_file(in, ckpt);  // frost's checks: zip, CRCs, no code
        } catch (const frost::Error& e) {
          ++counts[1];
          FAIL_CHECK(e.what());
        }
      }
    }
    ctx.resume = frost_train::path_exists(ckpt);
    const auto resumed = run<C, S, P>(ctx, configure);  // finishes here
    REQUIRE(resumed.completed);
    bool same = decisions(resumed.timeline) == decisions(straight.timeline) &&
                resumed.freeze_step == straight.freeze_step &&
                resumed.losses.size() == straight.losses.size();
    for (std::size_t i = 0; same && i < straight.losses.size(); ++i)
      same = std::abs(resumed.losses[i] - straight.losses[i]) <= 1e-4 * std::abs(straight.losses[i]);
    counts[2] += !same;
    CHECK(same);
  }
  return counts;
}

}  // namespace

TEST_CASE("train: SIGKILL at random moments of frost-train's run: every resume decides as the "
          "uninterrupted run") {
  const auto a = check_kills_match<frost::criteria::GradientNormChange>(
      [](auto& o, auto&, auto&) { o.criterion().interval(5).percentile(60); }, 3);
  const auto b = check_kills_match<frost::criteria::GradientThreshold>(
      [](auto& o, auto&, auto&) { o.criterion().window(5).relative(0.7); }, 3);
  MESSAGE("frost-train SIGKILL: " << a[0] + b[0] << " kills over 6 runs; unreadable checkpoints: "
          << a[1] + b[1] << "; resumed runs whose decisions or losses differ: " << a[2] + b[2]);
  CHECK(a[1] + b[1] == 0);
  CHECK(a[2] + b[2] == 0);
}

TEST_CASE("train: a resumed run makes the same freeze decisions as an uninterrupted one") {
  for (const auto& device : frost_test::devices()) {
    CAPTURE(device);
    SUBCASE("GradientNormChange (AutoFreeze)") {
      check_resume_matches<frost::criteria::GradientNormChange>(device, [](auto& o, auto&, auto&) {
        o.criterion().interval(5).percentile(60);
      });
    }
    SUBCASE("GradientThreshold (DyF, relative)") {
      check_resume_matches<frost::criteria::GradientThreshold>(device, [](auto& o, auto&, auto&) {
        o.criterion().window(5).relative(0.7);
      });
    }
  }
}

TEST_CASE("train: tiny end-to-end run on Fashion-MNIST, two strategies") {
  const std::string data = fashion_mnist_dir();
  if (data.empty()) return;
  for (const auto& device : frost_test::devices()) {
    CAPTURE(device);
    const std::string dir = temp_dir();
    frost_train::TrainConfig cfg;
    frost_train::parse_args({"--compare", "full,dyf", "--data", data, "--out", dir + "/run",
                             "--cache", dir + "/cache", "--device", device.str(), "--threads", "2",
                             "--pretrain-limit", "600", "--train-limit", "320", "--test-limit",
                             "300", "--batch-size", "32", "--epochs", "2", "--warmup", "2",
                             "--set", "dyf:criterion.window=3", "--set",
                             "dyf:criterion.threshold=1", "--set", "dyf:criterion.relative=0", "--no-progress", "--quiet"},
                            cfg);
    std::ostringstream out;
    std::vector<frost_train::RunResult> rs;
    REQUIRE(frost_train::run_app(cfg, out, &rs) == 0);
    REQUIRE(rs.size() == 2);
    CHECK(has(out.str(), "speed-up"));
    for (const auto& r : rs) {
      CAPTURE(r.strategy);
      CHECK(r.test_accuracy > 30.0);  // 5 classes: chance is 20%
      for (const char* f : {"steps.jsonl", "timeline.csv", "timeline.svg", "checkpoint.pt"})
        CHECK(frost_train::path_exists(r.out_dir + "/" + f));
    }
    CHECK(rs[0].timeline.empty());   // full fine-tuning freezes nothing
    CHECK_FALSE(rs[1].timeline.empty());  // DyF froze blocks
    CHECK(rs[1].freeze_step[0] >= 0);
    // Validation after every epoch (2 epochs of 10 steps), the time-to-accuracy data.
    REQUIRE(rs[0].evals.size() == 2);
    CHECK(rs[0].evals[1].step == 19);
    CHECK(rs[0].evals[1].time_s > rs[0].evals[0].time_s);
    CHECK(rs[0].evals[1].val_accuracy > 30.0);
    // The activation cache served the frozen prefix once DyF froze the stem
    // (first sight of each sample after that: a miss, kept for later epochs).
    CHECK(rs[1].cached);
    CHECK(rs[1].cache_misses > 0);
    CHECK(rs[1].cache_samples > 0);
    CHECK(rs[1].work_avoided > 0.0);
    CHECK(rs[0].work_avoided == doctest::Approx(0.0));
    CHECK(rs[0].time_est_s > 0.0);
    for (const char* f : {"/run/timeline.svg", "/run/accuracy.svg", "/run/results.csv",
                          "/run/validation.csv", "/run/args.txt"})
      CHECK(frost_train::path_exists(dir + f));
  }
}

TEST_CASE("train: smartfrz runs with the shipped predictor and freezes at an epoch's end") {
  const std::string data = fashion_mnist_dir();
  if (data.empty()) return;
  // The shipped file is found where the build put it, with no path given.
  REQUIRE(frost_train::path_exists(frost::predictor::default_path()));
  const std::string dir = temp_dir();
  frost_train::TrainConfig cfg;
  // A threshold of 0.01 and one record: every block the predictor gives more
  // than 1 % freezes at the first epoch's end (step 9).
  frost_train::parse_args({"--strategy", "smartfrz", "--data", data, "--out", dir + "/run",
                           "--cache", dir + "/cache", "--threads", "2", "--pretrain-limit", "300",
                           "--train-limit", "320", "--test-limit", "300", "--batch-size", "32",
                           "--epochs", "2", "--warmup", "2", "--set",
                           "smartfrz:criterion.min_records=1", "--set",
                           "smartfrz:criterion.threshold=0.01", "--no-progress", "--quiet"},
                          cfg);
  std::ostringstream out;
  std::vector<frost_train::RunResult> rs;
  REQUIRE(frost_train::run_app(cfg, out, &rs) == 0);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].test_accuracy > 30.0);
  REQUIRE_FALSE(rs[0].timeline.empty());
  bool froze_at_epoch_end = false;
  for (auto s : rs[0].freeze_step) {
    CHECK((s == -1 || s == 9 || s == 19));  // only at freezing stages
    froze_at_epoch_end = froze_at_epoch_end || s == 9;
  }
  CHECK(froze_at_epoch_end);
}

namespace {

/// Cells of a format_table line: separated by two spaces or more.
std::vector<std::string> table_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    std::size_t j = i;
    while (j < line.size() && !(line[j] == ' ' && (j + 1 == line.size() || line[j + 1] == ' '))) ++j;
    if (j > i) cells.push_back(line.substr(i, j - i));
    i = j;
  }
  return cells;
}

/// format_table's cell in the row of `strategy`, column `column` (every cell of
/// that row must be non-empty: empty cells cannot be told from padding).
std::string table_cell(const std::string& table, const std::string& strategy, const std::string& column) {
  std::istringstream is(table);
  std::string l;
  std::getline(is, l);
  const auto head = table_cells(l);
  while (std::getline(is, l)) {
    const auto cells = table_cells(l);
    if (cells.empty() || cells[0] != strategy) continue;
    if (cells.size() != head.size()) return "<" + std::to_string(cells.size()) + " cells>";
    for (std::size_t i = 0; i < head.size(); ++i)
      if (head[i] == column) return cells[i];
    return "<no column " + column + ">";
  }
  return "<no row " + strategy + ">";
}

/// CSV cell of the row whose first cell is `strategy`, in column `column`.
std::string csv_cell(const std::string& csv, const std::string& strategy, const std::string& column) {
  auto split = [](const std::string& l) {
    std::vector<std::string> cells;
    std::string c;
    bool quoted = false;
    for (char ch : l) {
      if (ch == '"') quoted = !quoted;
      else if (ch == ',' && !quoted) cells.push_back(c), c.clear();
      else c += ch;
    }
    cells.push_back(c);
    return cells;
  };
  std::istringstream is(csv);
  std::string l;
  std::getline(is, l);
  const auto head = split(l);
  while (std::getline(is, l)) {
    const auto cells = split(l);
    if (cells.empty() || cells[0] != strategy) continue;
    for (std::size_t i = 0; i < head.size() && i < cells.size(); ++i)
      if (head[i] == column) return cells[i];
    return "<no column " + column + ">";
  }
  return "<no row " + strategy + ">";
}

std::size_t count_of(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("train: the timing control line judges the strategies declared controls") {
  using frost_train::RunResult;
  auto run = [](std::string name, double measured, double avoided) {
    RunResult r;
    r.strategy = std::move(name);
    r.measured_s = measured;
    r.work_avoided = avoided;
    r.planned_steps = 480;
    r.steps = avoided > 0 ? 400 : 480;
    r.timing_control = r.strategy == "full-repeat";
    return r;
  };
  std::vector<RunResult> rs{run("full", 100, 0), run("full-repeat", 97, 0), run("autofreeze", 45, 0.5)};
  auto text = frost_train::format_control(rs);
  CHECK(has(text, "full-repeat does full's work again and reads 1.031x: within 1.00x +- 5 %"));
  CHECK_FALSE(has(text, "autofreeze"));  // avoided work: its speed-up is the point
  CHECK_FALSE(has(text, "full does"));   // the reference itself
  rs[1].measured_s = 90;  // 1.11x for the same work: noise
  text = frost_train::format_control(rs);
  CHECK(has(text, "reads 1.111x: OUTSIDE 1.00x +- 5 %"));
  CHECK(has(text, "run again"));
  CHECK(frost_train::format_control({run("autofreeze", 45, 0.5)}).empty());  // no reference
  // a frontier run (a shorter budget) avoided no work per step, but is no control
  auto shorter = run("full-6ep", 50, 0);
  shorter.planned_steps = 240;
  CHECK_FALSE(has(frost_train::format_control({run("full", 100, 0), shorter}), "full-6ep"));
  // a declared control that did not do full's work is said so, not judged
  auto cut = run("full-repeat", 50, 0);
  cut.steps = 240;
  text = frost_train::format_control({run("full", 100, 0), cut});
  CHECK(has(text, "full-repeat did not do full's work (240/480 steps against 480/480"));
  CHECK_FALSE(has(text, "OUTSIDE"));
}

TEST_CASE("train: the timing control is declared by the strategy: full-early-stop raises no alarm") {
  using frost_train::RunResult;
  // The default run's case (issue 29): full-early-stop did not stop, so it
  // avoided no work and ran full's steps, but it paid for the validation
  // passes its early stopping listens to: 0.93x. full-repeat, full's work
  // again, read 1.00x. Only full-repeat is a control.
  auto run = [](std::string name, double measured) {
    RunResult r;
    r.strategy = std::move(name);
    r.measured_s = measured;
    r.planned_steps = r.steps = 240;
    return r;
  };
  const auto all = frost_train::all_strategies();
  std::vector<RunResult> rs{run("full", 100), run("full-early-stop", 100 / 0.93),
                            run("full-repeat", 100)};
  for (auto& r : rs) r.timing_control = frost_train::find_strategy(all, r.strategy)->timing_control;
  rs[1].validation_s = rs[1].measured_s - 100;  // what it paid for and full did not
  std::string text = frost_train::format_control(rs);
  CHECK(has(text, "full-repeat does full's work again and reads 1.000x: within"));
  CHECK_FALSE(has(text, "full-early-stop"));
  CHECK_FALSE(has(text, "OUTSIDE"));
  // full-repeat itself at 0.93x: the alarm
  rs[2].measured_s = 100 / 0.93;
  text = frost_train::format_control(rs);
  CHECK(has(text, "full-repeat does full's work again and reads 0.930x: OUTSIDE 1.00x +- 5 %"));
  CHECK(count_of(text, "timing control:") == 1);
  // the strategies' own declarations: full-repeat alone is one
  for (const auto& s : all) {
    CAPTURE(s.name);
    CHECK(s.timing_control == (s.name == "full-repeat"));
  }
  // results.csv keeps the declaration for --report; an older file's control is full-repeat
  const std::string dir = temp_dir();
  frost_train::write_file_atomic(dir + "/results.csv", frost_train::format_csv(rs));
  const auto back = frost_train::read_results_csv(dir + "/results.csv");
  REQUIRE(back.size() == 3);
  CHECK_FALSE(back[1].timing_control);
  CHECK(back[2].timing_control);
  std::string old;  // the same file without the column and the 8 after it, as frost-train wrote it before
  std::istringstream lines(frost_train::format_csv(rs));
  for (std::string l; std::getline(lines, l);) {
    for (int i = 0; i < 9; ++i) l = l.substr(0, l.rfind(','));
    old += l + "\n";
  }
  REQUIRE_FALSE(has(old, "timing_control"));
  REQUIRE(has(old, "peak_mem_kind\n"));
  frost_train::write_file_atomic(dir + "/results.csv", old);
  const auto older = frost_train::read_results_csv(dir + "/results.csv");
  REQUIRE(older.size() == 3);
  CHECK_FALSE(older[1].timing_control);
  CHECK(older[2].timing_control);
}

TEST_CASE("train: frost-train refuses a predictor trained on its main job's histories") {
  namespace fp = frost::predictor;
  const std::string dir = temp_dir();
  fp::FreezePredictor p(fp::FreezePredictorOptions().subset(8).hidden(16).embed(4).head_hidden(4).window(5));
  fp::save(p, dir + "/main.pt", "an experiment", /*includes_main_job=*/true);
  fp::save(p, dir + "/clean.pt", "out of sample");
  auto plan = [&](const std::string& file, const std::string& strategies) {
    frost_train::TrainConfig cfg;
    frost_train::parse_args({"--compare", strategies, "--set", "criterion.predictor=" + dir + file}, cfg);
    return frost_train::make_run_plan(std::move(cfg));
  };
  for (const char* s : {"smartfrz", "full,smartfrz-nostop"}) {
    CAPTURE(s);
    bool refused = false;
    try {
      plan("/main.pt", s);
    } catch (const frost_train::UsageError& e) {
      refused = true;
      const std::string m = e.what();
      CHECK(has(m, "predictor " + dir + "/main.pt was trained on histories that include "
                   "frost-train's main job (frost-predictor --allow-main-job"));
      CHECK(has(m, "--set criterion.predictor=<a file from frost-predictor train without "
                   "--allow-main-job>"));
    }
    CHECK(refused);  // before any data is read
    CHECK(plan("/clean.pt", s).chosen.size() >= 1);
  }
  // start refuses too (a RunContext built another way): before the model exists
  const auto all = frost_train::all_strategies();
  frost_train::RunContext ctx;
  ctx.sets = {{"criterion.predictor", dir + "/main.pt"}};
  CHECK_THROWS_AS(frost_train::find_strategy(all, "smartfrz")->start(ctx), frost_train::UsageError);
  // the shipped predictor passes
  if (!fp::default_path().empty()) CHECK_NOTHROW(frost_train::detail::check_predictor_file({}));
  std::remove((dir + "/main.pt").c_str());
  std::remove((dir + "/clean.pt").c_str());
  ::rmdir(dir.c_str());
}

TEST_CASE("train: report table, CSV and time-to-accuracy picture from constructed results") {
  using frost_train::EvalPoint;
  using frost_train::RunResult;
  auto run = [](std::string name, double test, double val, double est, double lo, double hi, double wall,
                std::int64_t steps, std::vector<EvalPoint> evals) {
    RunResult r;
    r.strategy = std::move(name);
    r.composition = "c / s / t";
    r.test_accuracy = test;
    r.val_accuracy = val;
    r.measured_s = est;  // the headline: measured
    r.time_est_s = est;  // the estimate beside it (the same here)
    r.time_lo_s = lo;
    r.time_hi_s = hi;
    r.wall_s = wall;
    r.steps = steps;
    r.planned_steps = 240;
    r.freeze_step = {-1, -1};
    r.evals = std::move(evals);
    return r;
  };
  // full reaches its final 88.0 -> target 87.7 at 100 s; early stop never
  // (87.5); autofreeze at 22 s.
  std::vector<RunResult> rs;
  rs.push_back(run("full", 90.0, 88.0, 100, 90, 110, 105, 240,
                   {{60, 25, 85.0, 0.6}, {120, 50, 87.0, 0.5}, {180, 75, 87.5, 0.45}, {240, 100, 88.0, 0.4}}));
  rs.push_back(run("full-early-stop", 89.5, 87.5, 50, 45, 55, 52, 120,
                   {{60, 25, 85.0, 0.6}, {120, 50, 87.5, 0.5}}));
  rs.push_back(run("autofreeze", 89.9, 88.1, 40, 36, 44, 35, 240,
                   {{60, 12, 86.0, 0.55}, {120, 22, 87.8, 0.47}, {180, 31, 88.1, 0.44}, {240, 40, 88.1, 0.43}}));
  rs[2].work_avoided = 0.55;
  rs[2].work_avoided_per_step = 0.55;
  rs[1].steps_not_run = 0.5;
  rs[2].freeze_step = {60, 180};
  rs[2].cached = true;
  rs[2].cache_hits = 300;
  rs[2].cache_misses = 100;
  rs[2].cache_samples = 320;
  rs[2].cache_mib = 12.5;

  const std::string table = frost_train::format_table(rs);
  INFO(table);
  for (const char* h : {"test acc %", "vs full", "vs early-stop", "speed-up", "estimate",
                        "work avoided/step", "steps not run", "to full-0.3", "cache hits", "steps",
                        "froze at step"})
    CHECK(has(table, h));
  CHECK_FALSE(has(table, "wall s"));
  CHECK_FALSE(has(table, " \n"));  // no trailing blanks
  auto cell = [&](const char* strategy, const char* column) { return table_cell(table, strategy, column); };
  // autofreeze: 100/40 = 2.50x; spread 90/44 .. 110/36 = 2.0-3.1; vs early
  // stop +0.40 points, 50/40 = 1.25x; 55% avoided; target at 22 s; 300 of 400
  // samples from the cache
  CHECK(cell("autofreeze", "test acc %") == "89.90");
  CHECK(cell("autofreeze", "vs full") == "-0.10");
  CHECK(cell("autofreeze", "vs early-stop") == "+0.40 / 1.25x");
  CHECK(cell("autofreeze", "speed-up") == "2.50x");
  CHECK(cell("autofreeze", "estimate") == "2.50x");
  CHECK(cell("autofreeze", "work avoided/step") == "55%");
  CHECK(cell("autofreeze", "steps not run") == "0%");
  CHECK(cell("autofreeze", "to full-0.3") == "22.0 s");
  CHECK(cell("autofreeze", "cache hits") == "75%");
  CHECK(cell("autofreeze", "steps") == "240/240");
  CHECK(cell("autofreeze", "froze at step (stem, block 0, 1, ...)") == "60 180");
  // early stop: 2.00x, spread 90/55 .. 110/45 = 1.6-2.4, never reaches 87.7
  CHECK(cell("full-early-stop", "vs early-stop") == "+0.00 / 1.00x");
  CHECK(cell("full-early-stop", "speed-up") == "2.00x");
  CHECK(cell("full-early-stop", "estimate") == "2.00x");
  CHECK(cell("full-early-stop", "steps not run") == "50%");
  CHECK(cell("full-early-stop", "to full-0.3") == "never");
  CHECK(cell("full-early-stop", "cache hits") == "-");
  CHECK(cell("full-early-stop", "steps") == "120/240");
  // full: no spread against itself, reaches its own target at the end
  CHECK(cell("full", "vs full") == "+0.00");
  CHECK(cell("full", "vs early-stop") == "+0.50 / 0.50x");
  CHECK(cell("full", "speed-up") == "1.00x");
  CHECK(cell("full", "estimate") == "1.00x");
  CHECK(cell("full", "to full-0.3") == "100.0 s");
  CHECK(cell("full", "vs matched (run, time)") == "-");  // no matched runs here
  CHECK(cell("full", "peak MiB") == "n/a");               // nor a measured peak

  {  // no measured total and no estimate: speed-ups from the steps' time
    auto wall = rs;
    for (auto& r : wall) r.measured_s = r.time_est_s = r.time_lo_s = r.time_hi_s = 0;
    const std::string t = frost_train::format_table(wall);
    INFO(t);
    // (the empty estimate cells defeat table_cell)
    CHECK(has(t, "  3.00x  "));          // autofreeze: 105 / 35
    CHECK(has(t, "  +0.40 / 1.49x  "));  // autofreeze: 52 / 35 vs early stop
    CHECK_FALSE(has(t, "2.0-3.1"));
    const std::string c = frost_train::format_csv(wall);
    CHECK(csv_cell(c, "autofreeze", "speedup") == "3");
    CHECK(csv_cell(c, "autofreeze", "time_est_s") == "");
    CHECK(csv_cell(c, "autofreeze", "speedup_lo") == "");
  }

  const std::string csv = frost_train::format_csv(rs);
  INFO(csv);
  CHECK(csv.rfind("strategy,composition,seed,epochs,test_accuracy,val_accuracy,measured_s,"
                  "validation_s,wall_s,time_est_s,time_lo_s,time_hi_s,speedup,speedup_estimate,"
                  "speedup_lo,speedup_hi,speedup_vs_early_stop,work_avoided,work_avoided_per_step,"
                  "catch_up_share,steps_not_run,backward_avoided,time_to_target_s,cache_hit_rate,"
                  "cache_samples,cache_mib,frozen_share,steps,planned_steps,freeze_steps,"
                  "peak_mem_mib,peak_mem_kind,timing_control,matched_run,matched_steps,matched_s,"
                  "matched_time_ratio,matched_accuracy,vs_matched,matched_capped,matched_only\n",
                  0) == 0);
  CHECK(csv_cell(csv, "autofreeze", "measured_s") == "40");
  CHECK(csv_cell(csv, "autofreeze", "speedup_estimate") == "2.5");
  CHECK(csv_cell(csv, "autofreeze", "speedup") == "2.5");
  CHECK(csv_cell(csv, "autofreeze", "speedup_lo") == "2.04545");
  CHECK(csv_cell(csv, "autofreeze", "speedup_hi") == "3.05556");
  CHECK(csv_cell(csv, "autofreeze", "speedup_vs_early_stop") == "1.25");
  CHECK(csv_cell(csv, "autofreeze", "time_to_target_s") == "22");
  CHECK(csv_cell(csv, "autofreeze", "cache_hit_rate") == "0.75");
  CHECK(csv_cell(csv, "autofreeze", "cache_samples") == "320");
  CHECK(csv_cell(csv, "autofreeze", "freeze_steps") == "60 180");
  CHECK(csv_cell(csv, "full-early-stop", "speedup") == "2");
  CHECK(csv_cell(csv, "full-early-stop", "time_to_target_s") == "");
  CHECK(csv_cell(csv, "full-early-stop", "cache_hit_rate") == "");
  CHECK(csv_cell(csv, "full", "speedup_lo") == "");
  CHECK(csv_cell(csv, "full", "time_to_target_s") == "100");

  const std::string evals = frost_train::format_evals_csv(rs);
  CHECK(evals.rfind("strategy,step,time_s,val_accuracy,val_loss\n", 0) == 0);
  CHECK(has(evals, "\nautofreeze,120,22,87.8,0.47\n"));
  CHECK(count_of(evals, "\n") == 1 + 4 + 2 + 4);

  rs[1].evals.push_back({180, std::nan(""), std::nan(""), 0.5});  // skipped in the picture
  const std::string svg = frost_train::render_accuracy_svg(rs);
  INFO(svg);
  CHECK(svg.rfind("<svg ", 0) == 0);
  CHECK(has(svg, "</svg>"));
  CHECK(count_of(svg, "<polyline") == 3);
  CHECK(count_of(svg, "<circle") == 3 + 4 + 2 + 4);  // legend markers + points
  CHECK(has(svg, "full - 0.3"));
  CHECK(has(svg, "stroke-dasharray"));
  CHECK(has(svg, "full-early-stop"));
  CHECK(has(svg, "to full - 0.3: never"));
  CHECK(has(svg, "to full - 0.3: 22.0 s"));
  CHECK_FALSE(has(svg, "nan"));
  CHECK_FALSE(has(svg, "inf"));

  // no validation points at all: a picture without lines, no target
  std::vector<RunResult> bare(1);
  bare[0].strategy = "a<b";
  const std::string empty = frost_train::render_accuracy_svg(bare);
  CHECK(count_of(empty, "<polyline") == 0);
  CHECK(has(empty, "a&lt;b"));
  CHECK(has(empty, "no validation points"));
  CHECK_FALSE(has(empty, "nan"));
  CHECK(frost_train::format_table(bare).find("never") == std::string::npos);
}

TEST_CASE("train: the FLOP-weighted work of constructed steps") {
  using namespace frost_train;
  // three blocks: a cheap stem (1) and two blocks (4, 5); full's step of 10
  // samples: 10 x 3 x 10 = 300
  const WorkModel m{{1, 4, 5}};
  CHECK(m.full_per_sample() == doctest::Approx(30));
  StepShape s;
  s.samples = 10;
  s.trains = {true, true, true};
  CHECK(step_work(m, s).forward == doctest::Approx(100));
  CHECK(step_work(m, s).backward == doctest::Approx(200));
  // the stem frozen: its backward is not needed at all (nothing before it)
  s.trains = {false, true, true};
  CHECK(step_work(m, s).backward == doctest::Approx(10 * 2 * 9));
  // out of order: block 1 frozen, the stem training: the gradient still
  // passes through block 1 (input gradient only, one forward's worth)
  s.trains = {true, false, true};
  CHECK(step_work(m, s).backward == doctest::Approx(10 * (2 * 1 + 1 * 4 + 2 * 5)));
  // a prefix of 2 frozen and cached for 6 of the 10 samples
  s.trains = {false, false, true};
  s.cached_depth = 2;
  s.cache_hits = 6;
  CHECK(step_work(m, s).forward == doctest::Approx(100 - 6 * 5));
  CHECK(step_work(m, s).backward == doctest::Approx(10 * 2 * 5));
  // nothing trains (every block frozen or in trial): no backward
  s.trains = {false, false, false};
  CHECK(step_work(m, s).backward == doctest::Approx(0));
  s.trains = {true};
  CHECK_THROWS_WITH(step_work(m, s), doctest::Contains("1 training flags for 3 blocks"));
  // the cache's catch-up: 50 entries advanced from depth 1 to 3
  CHECK(catch_up_work(m, 50, 1, 3) == doctest::Approx(50 * 9));
  CHECK(catch_up_work(m, 50, 2, 2) == 0.0);
}

TEST_CASE("train: a run's bill: measured time, validation, catch-up passes and the estimate") {
  using namespace frost_train;
  const WorkModel m{{1, 4, 5}};
  RunBill bill;
  StepShape full;
  full.samples = 10;
  full.trains = {true, true, true};
  StepShape frozen = full;
  frozen.trains = {false, false, true};
  frozen.cached_depth = 2;
  frozen.cache_hits = 10;
  // 4 steps as full's (one slow outlier), then 4 with the prefix frozen and
  // cached, the first of which ran the cache's catch-up (50 entries, 2 blocks)
  for (double t : {1.0, 1.0, 1.0, 5.0}) bill.add_step(m, full, t, /*phase=*/0);
  bill.add_step(m, frozen, 2.0, /*phase=*/1, catch_up_work(m, 50, 0, 2));
  for (double t : {0.5, 0.5, 0.5}) bill.add_step(m, frozen, t, /*phase=*/1);
  bill.add_validation(0.75, /*needed=*/true);
  bill.add_validation(9.0, /*needed=*/false);  // pictures only: not the strategy's cost
  // measured: every step as it ran (the outlier and the catch-up step
  // included) and the validation the decisions needed
  CHECK(bill.step_s == doctest::Approx(11.5));
  CHECK(bill.measured_s() == doctest::Approx(12.25));
  // the estimate: 4 x median(1, 1, 1, 5) + 4 x median(2, .5, .5, .5)
  CHECK(bill.estimate_s(0.5) == doctest::Approx(4 * 1.0 + 4 * 0.5));
  CHECK(bill.estimate_s(0.5) < bill.step_s);  // what the estimate drops by construction
  // work: full's 4 x 300, then 4 x (forward 10 x 5 + backward 10 x 10) and
  // the catch-up 50 x 5, against full's 8 x 300
  CHECK(bill.full_work_run == doctest::Approx(8 * 300));
  CHECK(bill.step_work == doctest::Approx(4 * 300 + 4 * 150));
  CHECK(bill.catch_up_work == doctest::Approx(250));
  CHECK(bill.work_avoided_per_step() == doctest::Approx(1 - (1800.0 + 250) / 2400));
  // planned 16 steps, 8 run: stopping's share apart, and both together
  CHECK(RunBill::steps_not_run(8, 16) == doctest::Approx(0.5));
  CHECK(bill.work_avoided_total(16) == doctest::Approx(1 - (1800.0 + 250) / 4800));
}

TEST_CASE("train: seed statistics: a constructed set of paired differences gives the known interval") {
  using frost_train::mean_ci;
  // 1..5: mean 3, sd sqrt(2.5), se sqrt(0.5), t(0.975, 4) = 2.776
  const auto i = mean_ci({1, 2, 3, 4, 5});
  CHECK(i.n == 5);
  CHECK(i.mean == doctest::Approx(3));
  CHECK(i.lo == doctest::Approx(3 - 2.776 * std::sqrt(0.5)).epsilon(1e-6));
  CHECK(i.hi == doctest::Approx(3 + 2.776 * std::sqrt(0.5)).epsilon(1e-6));
  // -0.2, -0.4, -0.3: mean -0.3, sd 0.1, t(0.975, 2) = 4.303
  const auto j = mean_ci({-0.2, -0.4, -0.3, std::nan("")});  // a missing seed is left out
  CHECK(j.n == 3);
  CHECK(j.mean == doctest::Approx(-0.3));
  CHECK(j.hi == doctest::Approx(-0.3 + 4.303 * 0.1 / std::sqrt(3.0)));
  const auto one = mean_ci({0.7});  // one seed: a mean, no interval
  CHECK(one.mean == doctest::Approx(0.7));
  CHECK(std::isnan(one.lo));
  CHECK(frost_train::t_quantile_975(1) == doctest::Approx(12.706));
}

TEST_CASE("train: seed statistics: Student's t for every df, not 2.000 from 31 to 59") {
  using frost_train::t_quantile_975;
  // the exact 97.5 % quantiles, to four decimals
  for (const auto& [df, t] : std::vector<std::pair<double, double>>{
           {30, 2.042}, {31, 2.0395}, {40, 2.0211}, {45, 2.0141}, {59, 2.0010}, {60, 2.0003},
           {120, 1.9799}, {1000, 1.9623}, {HUGE_VAL, 1.9600}}) {
    CAPTURE(df);
    CHECK(std::abs(t_quantile_975(df) - t) < 6e-5);
  }
  double last = t_quantile_975(1);
  for (int df = 2; df <= 200; ++df) {  // falls with df, table and expansion joined
    CAPTURE(df);
    CHECK(t_quantile_975(df) < last);
    last = t_quantile_975(df);
  }
  CHECK(std::isnan(t_quantile_975(0)));
  // 41 seeds: the interval uses t(40) = 2.0211, not 2.000
  std::vector<double> xs;
  for (int k = 0; k < 41; ++k) xs.push_back(k % 2 ? 1.0 : -1.0);
  const auto i = frost_train::mean_ci(xs);
  double ss = 0;
  for (double x : xs) ss += (x - i.mean) * (x - i.mean);
  const double se = std::sqrt(ss / 40) / std::sqrt(41.0);
  CHECK((i.hi - i.mean) / se == doctest::Approx(2.021075).epsilon(1e-5));
}

namespace {
/// A completed run of `name` at test accuracy `acc` after `t` measured seconds.
frost_train::RunResult completed_run(std::string name, double acc, double t, bool frontier) {
  frost_train::RunResult r;
  r.strategy = std::move(name);
  r.test_accuracy = acc;
  r.measured_s = t;
  r.completed = true;
  r.on_frontier = frontier;
  return r;
}
}  // namespace

TEST_CASE("train: the frontier: interpolation, envelope, and a strategy's place against it") {
  using frost_train::FrontierPoint;
  using frost_train::frontier_accuracy;
  const std::vector<FrontierPoint> f{{40, 93}, {10, 90}, {20, 92}, {30, 91.5}};
  CHECK(frontier_accuracy(f, 15) == doctest::Approx(91));
  CHECK(frontier_accuracy(f, 20) == doctest::Approx(92));
  // the 30 s budget did worse than the 20 s one: a user takes the 20 s one
  CHECK(frontier_accuracy(f, 25) == doctest::Approx(92));
  CHECK(frontier_accuracy(f, 35) == doctest::Approx(92.5));
  CHECK(frontier_accuracy(f, 400) == doctest::Approx(93));  // flat after the longest budget
  CHECK(std::isnan(frontier_accuracy(f, 5)));                // faster than the shortest
  CHECK(std::isnan(frontier_accuracy({}, 5)));

  // Two seeds: full (40 s) and a 10 s budget; a strategy at 20 s. Seed 0:
  // frontier at 20 s = 90 + (93 - 90) / 3 = 91, strategy 92.5 (+1.5, vs full
  // -0.5); seed 1: frontier 89 + (92 - 89) / 3 = 90, strategy 90.5 (+0.5).
  using frost_train::RunResult;
  const auto run = completed_run;
  const std::vector<std::vector<RunResult>> seeds{
      {run("full", 93, 40, true), run("freeze", 92.5, 20, false), run("full-3ep", 90, 10, true)},
      {run("full", 92, 40, true), run("freeze", 90.5, 20, false), run("full-3ep", 89, 10, true)}};
  const auto ss = frost_train::summarize(seeds);
  REQUIRE(ss.size() == 3);
  const auto& s = ss[1];
  CHECK(s.strategy == "freeze");
  CHECK(s.seeds == 2);
  CHECK(s.accuracy.mean == doctest::Approx(91.5));
  CHECK(s.vs_full.mean == doctest::Approx(-1.0));
  CHECK(s.speedup == doctest::Approx(2.0));
  CHECK(s.vs_frontier.mean == doctest::Approx(1.0));
  CHECK(s.vs_frontier.lo == doctest::Approx(1.0 - 12.706 * 0.5));
  CHECK(frost_train::frontier_verdict(s) == "on it (interval holds 0)");
  CHECK(frost_train::frontier_verdict(ss[0]) == "is the frontier");
  const std::string table = frost_train::format_study_table(ss);
  CHECK(has(table, "vs frontier [95% CI]"));
  CHECK(has(table, "+1.00 [-5.35, +7.35]"));
  const std::string verdict = frost_train::format_verdict(ss, 2, 2.0, 1.0);
  CHECK(has(verdict, "fastest within 1 points of full: freeze, 2.00x"));
  CHECK(has(verdict, "NOT met"));
  const std::string csv = frost_train::format_study_csv(ss);
  CHECK(has(csv, "\nfreeze,2,91.5,"));
  const std::string svg = frost_train::render_frontier_svg(ss);
  CHECK(count_of(svg, "<polyline") == 1);
  CHECK_FALSE(has(svg, "nan"));
  // the picture's bar is the table's interval vs the frontier, around the
  // mean accuracy 91.5: [91.5 - 6.353, 91.5 + 6.353]; the frontier's points have none
  CHECK(count_of(svg, "class=\"ci\"") == 1);
  CHECK(has(svg, "<g class=\"ci\" data-lo=\"85.15\" data-hi=\"97.85\""));
  CHECK(has(svg, "<title>freeze: vs frontier +1.00 [-5.35, +7.35] (95 %)</title>"));
}

TEST_CASE("train: the study: one seed has no side of the frontier, an interval on fewer seeds says so") {
  using frost_train::RunResult;
  const auto run = completed_run;
  // One seed: at 25 s the frontier is 90 + (93 - 90) / 2 = 91.5; "same" is
  // exactly on it (0.00), "ahead" 0.4 above: neither is above or below.
  const std::vector<std::vector<RunResult>> one{{run("full", 93, 40, true), run("same", 91.5, 25, false),
                                                 run("ahead", 91.9, 25, false), run("full-3ep", 90, 10, true)}};
  const auto s1 = frost_train::summarize(one);
  REQUIRE(s1.size() == 4);
  CHECK(s1[1].vs_frontier.mean == 0.0);
  for (const auto* s : {&s1[1], &s1[2]}) {
    CAPTURE(s->strategy);
    CHECK(frost_train::frontier_verdict(*s) == "n/a (one seed, no interval)");
  }
  const std::string table1 = frost_train::format_study_table(s1);
  CHECK_FALSE(has(table1, "below"));
  CHECK_FALSE(has(table1, "above"));
  CHECK(has(frost_train::format_verdict(s1, 1, 1.0, 2.0), "not shown above the frontier"));
  const std::string svg1 = frost_train::render_frontier_svg(s1);
  CHECK(count_of(svg1, "class=\"ci\"") == 0);  // the table reports no interval: no bar
  CHECK(has(svg1, "same (one seed: no interval)"));

  // Three seeds; in the third "fast" ran in 5 s, under the shortest budget
  // (10 s): no frontier comparison there, so its interval stands on 2 seeds.
  const std::vector<std::vector<RunResult>> three{
      {run("full", 93, 40, true), run("fast", 92.5, 20, false), run("full-3ep", 90, 10, true)},
      {run("full", 92, 40, true), run("fast", 90.5, 20, false), run("full-3ep", 89, 10, true)},
      {run("full", 92, 40, true), run("fast", 91.0, 5, false), run("full-3ep", 89, 10, true)}};
  const auto s3 = frost_train::summarize(three);
  const auto& fast = s3[1];
  CHECK(fast.seeds == 3);
  CHECK(fast.vs_full.n == 3);
  CHECK(fast.vs_frontier.n == 2);
  CHECK(fast.below_frontier_range == 1);
  const std::string table3 = frost_train::format_study_table(s3);
  CHECK(has(table3, "+1.00 [-5.35, +7.35] (2 of 3 seeds)"));
  CHECK_FALSE(has(table3, "(3 of 3"));  // vs full used every seed: nothing to say
  CHECK(has(frost_train::format_verdict(s3, 3, 1.0, 2.0), "(2 of 3 seeds)"));
  const std::string csv = frost_train::format_study_csv(s3);
  CHECK(csv_cell(csv, "fast", "seeds") == "3");
  CHECK(csv_cell(csv, "fast", "vs_full_seeds") == "3");
  CHECK(csv_cell(csv, "fast", "vs_frontier_seeds") == "2");
  CHECK(has(frost_train::render_frontier_svg(s3), "(2 of 3 seeds) (95 %)</title>"));
}

TEST_CASE("train: the frontier at each strategy's own cost: matched budgets from constructed step times") {
  using frost_train::RunResult;
  const auto run = completed_run;
  // full: 480 steps in 48 s, 0.1 s a step; the frontier's 4 epochs: 160 steps.
  auto seed = [&](double acc_a, double acc_240) {
    std::vector<RunResult> rs{run("full", 93, 48, true), run("full-4ep", 90, 16, true),
                              run("full-repeat", 93, 47, false), run("a", acc_a, 24.04, false),
                              run("b", 91, 16.04, false), run("c", 92, 60, false), run("d", 90, 23.96, false),
                              run("e", 50, 0.01, false), run("f", 93, 47.96, false), run("g", 0, 5, false)};
    rs[0].steps = rs[0].planned_steps = 480;
    rs[1].steps = rs[1].planned_steps = 160;
    rs[2].timing_control = true;
    rs[9].completed = false;  // stopped: no matched run
    const auto plan = frost_train::plan_matched(rs);
    // full-240st and full-1st are run; the others' steps exist already
    CHECK(frost_train::matched_runs_to_start(plan) == std::vector<std::int64_t>{240, 1});
    RunResult m240 = run("full-240st", acc_240, 24.5, false), m1 = run("full-1st", 20, 0.1, false);
    m240.steps = 240;
    m1.steps = 1;
    m240.matched_only = m1.matched_only = true;
    rs.push_back(m240);
    rs.push_back(m1);
    frost_train::attach_matched(rs, plan);
    return std::make_pair(plan, rs);
  };
  const auto first = seed(92.5, 92.0);
  const auto& plan = first.first;
  const auto& rs = first.second;
  REQUIRE(plan.size() == 6);  // a-f: not full, the frontier, the control or the stopped g
  auto budget = [&](const std::string& name) {
    for (const auto& m : plan)
      if (m.strategy == name) return m;
    FAIL("no budget for " << name);
    return frost_train::MatchedBudget{};
  };
  CHECK(budget("a").steps == 240);  // 24.04 / 0.1 = 240.4: rounded
  CHECK(budget("a").run == "full-240st");
  CHECK(budget("a").to_run);
  CHECK(budget("d").steps == 240);  // 239.6: the same run, not a second one
  CHECK(budget("d").run == "full-240st");
  CHECK_FALSE(budget("d").to_run);
  CHECK(budget("b").run == "full-4ep");  // 160 steps: the frontier's run of exactly those
  CHECK(budget("c").steps == 480);       // 600 steps' cost: full, not a longer run
  CHECK(budget("c").run == "full");
  CHECK(budget("c").capped);
  CHECK(budget("f").run == "full");  // 479.6: full's own 480 steps
  CHECK_FALSE(budget("f").capped);
  CHECK(budget("e").steps == 1);  // at least one step
  CHECK(frost_train::matched_steps(24.04, 0.1, 480) == 240);
  CHECK(frost_train::matched_steps(24.04, std::nan(""), 480) == 0);

  const RunResult* a = frost_train::find_strategy(rs, "a");
  REQUIRE(a != nullptr);
  CHECK(a->matched_run == "full-240st");
  CHECK(a->matched_steps == 240);
  CHECK(frost_train::vs_matched(*a) == doctest::Approx(0.5));
  CHECK(frost_train::matched_time_ratio(*a) == doctest::Approx(24.5 / 24.04));
  CHECK(frost_train::find_strategy(rs, "full-repeat")->matched_run.empty());
  // within 5 %: a, b, d, f; outside: c (dearer than full) and e (one step
  // costs ten times its 0.01 s)
  const std::string check = frost_train::format_matched_check(rs);
  CHECK(count_of(check, "\n") == 2);
  CHECK(has(check, "c's matched run full (480 steps) took 0.800x its measured time, outside 1.00x +- 5 % "
                   "(it cost more than full"));
  CHECK(has(check, "e's matched run full-1st (1 steps) took 10.000x"));

  // results.csv carries the columns and reads back (--report)
  const std::string csv = frost_train::format_csv(rs);
  CHECK(csv_cell(csv, "a", "matched_run") == "full-240st");
  CHECK(csv_cell(csv, "a", "matched_steps") == "240");
  CHECK(csv_cell(csv, "a", "vs_matched") == "0.5");
  CHECK(csv_cell(csv, "c", "matched_capped") == "1");
  CHECK(csv_cell(csv, "full-240st", "matched_only") == "1");
  CHECK(csv_cell(csv, "full", "matched_run").empty());
  const std::string dir = temp_dir();
  frost_train::write_file_atomic(dir + "/results.csv", csv);
  const auto back = frost_train::read_results_csv(dir + "/results.csv");
  REQUIRE(back.size() == rs.size());
  CHECK(back[3].matched_run == "full-240st");
  CHECK(back[3].matched_accuracy == doctest::Approx(92.0));
  CHECK(back[3].matched_s == doctest::Approx(24.5));
  CHECK(back[5].matched_capped);
  CHECK(back.back().matched_only);

  // Over two seeds: a's paired differences +0.5 and +1.5 (t(1) = 12.706, se
  // 0.5); the matched runs are no rows of their own.
  const auto second = seed(93.5, 92.0).second;
  const auto ss = frost_train::summarize({rs, second});
  for (const auto& s : ss) CHECK(s.strategy.rfind("full-240st", 0) != 0);
  const frost_train::StrategySummary* sa = nullptr;
  for (const auto& s : ss)
    if (s.strategy == "a") sa = &s;
  REQUIRE(sa != nullptr);
  CHECK(sa->vs_matched.n == 2);
  CHECK(sa->vs_matched.mean == doctest::Approx(1.0));
  CHECK(sa->vs_matched.lo == doctest::Approx(1.0 - 12.706 * 0.5));
  CHECK(sa->matched_s == doctest::Approx(24.5));
  CHECK(frost_train::frontier_verdict(*sa) == "on it (interval holds 0)");
  const std::string table = frost_train::format_study_table(ss);
  CHECK(has(table, "vs matched [95% CI]"));
  CHECK_FALSE(has(table, "vs frontier [95% CI]"));  // no interpolated line in the table
  CHECK(has(table, "the timing control"));
  const std::string sum = frost_train::format_study_csv(ss);
  CHECK(csv_cell(sum, "a", "vs_matched_mean") == "1");
  CHECK(csv_cell(sum, "a", "vs_matched_seeds") == "2");
  CHECK(csv_cell(sum, "c", "matched_outside_5pct") == "2");
  const std::string svg = frost_train::render_frontier_svg(ss);
  CHECK(count_of(svg, "class=\"matched\"") == 6);  // every strategy next to its own point
  CHECK(has(svg, "<g class=\"matched\" data-time=\"24.50\" data-accuracy=\"92.00\""));
  CHECK(has(svg, "a: vs matched +1.00 [-5.35, +7.35] (95 %)"));
  CHECK_FALSE(has(svg, "nan"));
}

TEST_CASE("train: peak memory: each run's CPU tensors count against its own meter") {
  REQUIRE(frost_train::install_memory_meters());
  CHECK(frost_train::install_memory_meters());  // once per process; again does nothing
  frost_train::MemoryMeter* a = frost_train::new_memory_meter();
  frost_train::MemoryMeter* b = frost_train::new_memory_meter();
  const std::int64_t mib = 1 << 20;
  {
    torch::Tensor x, y;
    {
      const frost_train::MeterScope scope(a);
      x = torch::empty({mib}, torch::kUInt8);  // 1 MiB
      y = torch::empty({1000}, torch::kFloat);  // 4000 bytes
    }
    CHECK(a->live_bytes() == mib + 4000);
    CHECK(a->peak_bytes() == mib + 4000);
    // another thread's run, at the same time: its own meter
    std::int64_t b_live_inside = -1;
    std::thread other([&] {
      const frost_train::MeterScope scope(b);
      const auto z = torch::empty({3000}, torch::kUInt8);
      b_live_inside = b->live_bytes();
    });
    other.join();
    CHECK(b_live_inside == 3000);
    CHECK(b->live_bytes() == 0);
    CHECK(b->peak_bytes() == 3000);
    // allocated outside any scope: nobody's
    const auto w = torch::empty({5000}, torch::kUInt8);
    CHECK(a->live_bytes() == mib + 4000);
    // freed outside the scope: still a's
    x = torch::Tensor();
    CHECK(a->live_bytes() == 4000);
    CHECK(a->peak_bytes() == mib + 4000);
    a->reset_peak();
    CHECK(a->peak_bytes() == 4000);
    // a scope of none inside a run's (the trainer's evaluation): nobody's
    {
      const frost_train::MeterScope scope(a);
      const frost_train::MeterScope off(nullptr);
      const auto e = torch::empty({7000}, torch::kUInt8);
      CHECK(a->live_bytes() == 4000);
    }
    CHECK(a->peak_bytes() == 4000);
  }
  CHECK(a->live_bytes() == 0);
  {
    // the data stays aligned as LibTorch's own allocator aligns it, and intact
    const frost_train::MeterScope scope(a);
    const auto t = torch::arange(10, torch::kFloat);
    CHECK(reinterpret_cast<std::uintptr_t>(t.data_ptr()) % 64 == 0);
    CHECK(t.sum().item<float>() == 45.0f);
  }
  CHECK(a->live_bytes() == 0);
}

TEST_CASE("train: a batch whose loss is not finite is skipped before the criterion or the "
          "optimizer sees it, the run completes, finite") {
  const std::string data = fashion_mnist_dir();
  if (data.empty()) return;
  const std::string dir = temp_dir();
  frost_train::TrainConfig cfg;
  frost_train::parse_args({"--compare", "full,autofreeze", "--data", data, "--out", dir + "/run",
                           "--cache", dir + "/cache", "--threads", "1", "--pretrain-limit", "300",
                           "--train-limit", "160", "--test-limit", "100", "--batch-size", "32",
                           "--epochs", "2", "--warmup", "1", "--set",
                           "autofreeze:criterion.interval=3", "--no-progress"},
                          cfg);
  cfg.nan_at = {2, 6};  // the first attempt of steps 2 and 6: a NaN loss and gradient
  std::ostringstream out;
  std::vector<frost_train::RunResult> rs;
  REQUIRE(frost_train::run_app(cfg, out, &rs) == 0);
  INFO(out.str());
  CHECK(has(out.str(), "step 2: the loss is not finite; the batch is skipped, nothing was applied"));
  for (const auto& r : rs) {
    CAPTURE(r.strategy);
    CHECK(r.completed);
    CHECK(r.skipped_batches == 2);
    CHECK(r.steps == r.planned_steps);  // every step ran, on the next batch
    CHECK(std::isfinite(r.test_accuracy));
    // every logged loss is finite: no NaN reached the optimizer
    std::ifstream log(r.out_dir + "/steps.jsonl");
    std::string line;
    int lines = 0;
    while (std::getline(log, line)) {
      if (!has(line, "\"loss\"")) continue;
      ++lines;
      CHECK_FALSE(has(line, "\"loss\":null"));
    }
    CHECK(lines == r.steps);
  }
}

TEST_CASE("train: a real run counts its catch-up passes, the validation its early stopping needs, "
          "and the frontier's budgets") {
  const std::string data = fashion_mnist_dir();
  if (data.empty()) return;
  const std::string dir = temp_dir();
  frost_train::TrainConfig cfg;
  frost_train::parse_args({"--compare", "full,full-early-stop,freezeout-linear-unscaled", "--data",
                           data, "--out", dir + "/run", "--cache", dir + "/cache", "--threads", "1",
                           "--pretrain-limit", "600", "--train-limit", "320", "--test-limit", "300",
                           "--val-limit", "100", "--batch-size", "32", "--epochs", "3", "--warmup",
                           "2", "--frontier", "1,5", "--seeds", "2", "--set",
                           "full-early-stop:stop.patience=50", "--matched-frontier", "on",
                           "--no-progress"},
                          cfg);
  std::ostringstream out;
  std::vector<frost_train::RunResult> rs;  // the last seed's
  REQUIRE(frost_train::run_app(cfg, out, &rs) == 0);
  INFO(out.str());
  // the frontier's 5-epoch budget is longer than the run: left out; after the
  // four runs, the matched runs the strategies need: how many depends on the
  // measured times (full-early-stop's may be full itself, FreezeOut's may be
  // full-1ep: CI's machine once needed none)
  REQUIRE(rs.size() >= 4);
  for (std::size_t i = 0; i < rs.size(); ++i) CHECK(rs[i].matched_only == (i >= 4));
  CHECK(has(out.str(), "frontier: a budget of 5ep is not shorter"));
  const auto* full = frost_train::find_strategy(rs, "full");
  const auto* early = frost_train::find_strategy(rs, "full-early-stop");
  const auto* fo = frost_train::find_strategy(rs, "freezeout-linear-unscaled");
  const auto* f1 = frost_train::find_strategy(rs, "full-1ep");
  REQUIRE((full && early && fo && f1));
  CHECK(full->seed == 1);
  // full listens to no validation: its time is its steps'
  CHECK(full->validation_s == 0.0);
  CHECK(full->measured_s == doctest::Approx(full->wall_s));
  // early stopping listens: 3 validation passes counted
  CHECK(early->validation_s > 0.0);
  CHECK(early->measured_s == doctest::Approx(early->wall_s + early->validation_s));
  CHECK(early->evals.back().time_s == doctest::Approx(early->measured_s));
  // FreezeOut's prefix grows while the cache holds entries: catch-up passes
  CHECK(fo->catch_up_share > 0.0);
  CHECK(fo->work_avoided_per_step > 0.0);
  CHECK(fo->steps_not_run == 0.0);
  // the frontier's point: full fine-tuning for one epoch, annealed to its end
  CHECK(f1->on_frontier);
  CHECK(f1->planned_steps == 10);
  CHECK(f1->steps == 10);
  CHECK(full->on_frontier);
  CHECK_FALSE(fo->on_frontier);
  // the progress lines (not a terminal), the study's table and files
  CHECK(has(out.str(), "[seed 1 "));
  CHECK(has(out.str(), "full-1ep: epoch 1/1"));
  CHECK(has(out.str(), "== over 2 seeds (seeds 0 1)"));
  CHECK(has(out.str(), "vs matched [95% CI]"));
  for (const char* f : {"/run/summary.csv", "/run/results.csv", "/run/frontier.svg",
                        "/run/seed0/results.csv", "/run/seed1/full-1ep/steps.jsonl"})
    CHECK_MESSAGE(frost_train::path_exists(dir + f), f);
  // each strategy's matched run: full fine-tuning at its cost in steps, run
  // and measured (full's step time from the same seed)
  for (const auto* r : {early, fo}) {
    CAPTURE(r->strategy);
    const auto* m = frost_train::find_strategy(rs, r->matched_run);
    REQUIRE(m != nullptr);
    CHECK(m->completed);
    CHECK(m->steps == r->matched_steps);
    CHECK(r->matched_steps == frost_train::matched_steps(r->measured_s, full->measured_s / 30.0, 30));
    CHECK(r->matched_s == m->measured_s);
    CHECK(frost_train::vs_matched(*r) == doctest::Approx(r->test_accuracy - m->test_accuracy));
    if (m->matched_only) CHECK(frost_train::path_exists(m->out_dir + "/steps.jsonl"));
  }
  CHECK(full->matched_run.empty());
  CHECK(f1->matched_run.empty());
  // every run's peak memory: its own CPU tensors, counted
  for (const auto& r : rs) {
    CAPTURE(r.strategy);
    CHECK(r.peak_mem_mib > 0.0);
    CHECK(r.peak_mem_kind == frost_train::kCpuPeakKind);
  }

  // --report: the same summary from the seeds' results.csv, read back
  const auto back = frost_train::read_results_csv(dir + "/run/seed1/results.csv");
  REQUIRE(back.size() == rs.size());
  for (std::size_t i = 0; i < rs.size(); ++i) {
    CAPTURE(rs[i].strategy);
    CHECK(back[i].strategy == rs[i].strategy);
    CHECK(back[i].matched_run == rs[i].matched_run);
    CHECK(back[i].matched_only == rs[i].matched_only);
    CHECK(back[i].seed == 1);
    CHECK(back[i].on_frontier == rs[i].on_frontier);
    CHECK(back[i].test_accuracy == doctest::Approx(rs[i].test_accuracy).epsilon(1e-5));
    CHECK(back[i].measured_s == doctest::Approx(rs[i].measured_s).epsilon(1e-5));
    CHECK(back[i].steps == rs[i].steps);
  }
  std::ostringstream rep;
  REQUIRE(frost_train::run_app(parsed({"--report", dir + "/run/seed0," + dir + "/run/seed1", "--out",
                                       dir + "/report"}),
                               rep) == 0);
  // (the CSV keeps 6 digits: the table's rows are the same but for a rounding)
  CHECK(has(rep.str(), "== over 2 seeds (seeds 0 1)"));
  CHECK(count_of(rep.str(), "is the frontier") == 2);  // full and full-1ep
  CHECK(has(rep.str(), "freezeout-linear-unscaled"));
  CHECK(frost_train::path_exists(dir + "/report/frontier.svg"));
  CHECK(frost_train::path_exists(dir + "/report/summary.csv"));
  // the same seed twice, or a directory without results: refused by name
  CHECK_THROWS_WITH(frost_train::run_app(parsed({"--report", dir + "/run/seed1," + dir + "/run/seed1"}), rep),
                    doctest::Contains("appears twice"));
  CHECK_THROWS_WITH(frost_train::run_app(parsed({"--report", dir + "/nothing"}), rep),
                    doctest::Contains(("cannot read " + dir + "/nothing/results.csv").c_str()));
}

TEST_CASE("train: effnet-lite0 fine-tunes from a weights file, frozen blocks keep their batch-norm "
          "statistics") {
  // The effnet path of frost-train without the real ImageNet weights: a
  // randomly initialised EfficientNet-Lite0 of the file's shape (1000
  // classes) written as safetensors, as scripts/effnet-weights.sh writes the
  // real one; 32x32 inputs and a few steps keep it to seconds.
  const std::string data = fashion_mnist_dir();
  if (data.empty()) return;
  const std::string dir = temp_dir();
  auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a{"--model", "effnet-lite0", "--data", data, "--out", dir + "/run",
                               "--cache", dir + "/cache", "--resolution", "32",
                               "--train-limit", "64", "--val-limit", "32", "--test-limit", "64",
                               "--batch-size", "16", "--epochs", "2", "--warmup", "1",
                               "--frontier", "none", "--no-progress", "--quiet"};
    a.insert(a.end(), extra.begin(), extra.end());
    frost_train::TrainConfig cfg;
    frost_train::parse_args(a, cfg);
    return cfg;
  };
  {  // no weights file: an error naming the set-up step, before anything runs
    std::ostringstream out;
    CHECK_THROWS_WITH_AS(frost_train::run_app(args({"--weights", dir + "/none.safetensors"}), out),
                         doctest::Contains("bash scripts/effnet-weights.sh"),
                         frost_train::UsageError);
  }
  torch::manual_seed(0);
  frost_examples::EfficientNet file_net(frost_examples::EfficientNetOptions::lite0());
  {
    // BN running statistics away from (0, 1), so that "unchanged" means something
    torch::NoGradGuard ng;
    for (auto& b : file_net->named_buffers())
      if (b.key().find("running_") != std::string::npos) b.value().uniform_(0.5, 1.5);
  }
  const std::string weights = dir + "/lite0.safetensors";
  frost::save_state_dict(*file_net, weights);

  // static: the stem and _blocks.0-7 frozen from step 0; dyf: freezes as it
  // goes, the activation cache serving the frozen prefix's feature maps;
  // simfreeze: the pooled head features as its "class token".
  std::ostringstream out;
  std::vector<frost_train::RunResult> rs;
  REQUIRE(frost_train::run_app(
              args({"--weights", weights, "--compare", "static,dyf,simfreeze", "--set",
                    "dyf:criterion.window=2", "--set", "dyf:criterion.threshold=1e9", "--set",
                    "dyf:criterion.relative=0", "--set", "simfreeze:criterion.record_steps=2",
                    "--set", "simfreeze:criterion.compare_steps=1"}),
              out, &rs) == 0);
  REQUIRE(rs.size() == 3);
  for (const auto& r : rs) {
    CAPTURE(r.strategy);
    CHECK(r.completed);
    REQUIRE(r.block_names.size() == 17);  // the stem and the 16 MBConv blocks
    CHECK(r.block_names[1] == "_blocks.0");
    CHECK(r.block_names[16] == "_blocks.15");
    CHECK(r.test_accuracy >= 0.0);
    CHECK(r.test_accuracy <= 100.0);
  }
  CHECK(rs[0].freeze_step[0] == 0);
  CHECK(rs[0].freeze_step[8] == 0);
  CHECK(rs[0].freeze_step[9] == -1);
  CHECK(rs[1].freeze_step[0] >= 0);  // DyF froze the stem ...
  CHECK(rs[1].cached);
  CHECK(rs[1].cache_samples > 0);    // ... and the cache kept feature maps

  // The static run's final weights: the frozen blocks' batch-norm statistics
  // are the file's, bit for bit (frozen blocks run in eval mode); a block that
  // trained moved its own.
  frost_examples::EfficientNet trained(frost_examples::EfficientNetOptions::lite0(10, 32));
  {
    torch::serialize::InputArchive ar, msub;
    frost::load_file(ar, rs[0].out_dir + "/checkpoint.pt", torch::kCPU);
    ar.read("model", msub);
    trained->load(msub);
  }
  const auto file_buffers = file_net->named_buffers();
  const auto trained_buffers = trained->named_buffers();
  int frozen_checked = 0, moved = 0;
  for (const auto& b : trained_buffers) {
    if (b.key().find("running_") == std::string::npos) continue;
    const bool frozen_block = b.key().rfind("_bn0.", 0) == 0 ||
                              (b.key().rfind("_blocks.", 0) == 0 && std::stoi(b.key().substr(8)) < 8);
    const at::Tensor before = file_buffers[b.key()];
    if (frozen_block) {
      CAPTURE(b.key());
      CHECK(at::equal(b.value(), before));
      ++frozen_checked;
    } else if (!at::equal(b.value(), before)) {
      ++moved;
    }
  }
  CHECK(frozen_checked == 2 * (1 + 8 * 3 - 1));  // the stem's BN; blocks 0-7 (block 0 has no expansion)
  CHECK(moved > 0);
}

TEST_CASE("train: the probe keeps the body bit for bit, batch-norm statistics included, LP-FT's "
          "second phase trains it") {
  // issue 32: the probe and LP-FT arms (strategies.hpp) on a randomly
  // initialised EfficientNet-Lite0 (batch norm in every block) at 32x32:
  // 4 steps per epoch, 2 epochs; lpft-50 unfreezes every block at step 4.
  const std::string data = fashion_mnist_dir();
  if (data.empty()) return;
  const std::string dir = temp_dir();
  torch::manual_seed(0);
  frost_examples::EfficientNet file_net(frost_examples::EfficientNetOptions::lite0());
  {
    // BN running statistics away from (0, 1), so that "unchanged" means something
    torch::NoGradGuard ng;
    for (auto& b : file_net->named_buffers())
      if (b.key().find("running_") != std::string::npos) b.value().uniform_(0.5, 1.5);
  }
  const std::string weights = dir + "/lite0.safetensors";
  frost::save_state_dict(*file_net, weights);
  std::vector<std::string> a{"--model", "effnet-lite0", "--data", data, "--out", dir + "/run",
                             "--cache", dir + "/cache", "--resolution", "32", "--weights", weights,
                             "--train-limit", "64", "--val-limit", "32", "--test-limit", "64",
                             "--batch-size", "16", "--epochs", "2", "--warmup", "1",
                             "--frontier", "none", "--compare", "probe,lpft-50", "--no-progress",
                             "--quiet"};
  frost_train::TrainConfig cfg;
  frost_train::parse_args(a, cfg);
  std::ostringstream out;
  std::vector<frost_train::RunResult> rs;
  REQUIRE(frost_train::run_app(cfg, out, &rs) == 0);
  REQUIRE(rs.size() == 2);
  const auto& probe = rs[0];
  const auto& lpft = rs[1];
  REQUIRE(probe.strategy == "probe");
  REQUIRE(lpft.strategy == "lpft-50");
  REQUIRE(probe.freeze_step.size() == 17);
  for (const auto s : probe.freeze_step) CHECK(s == 0);  // every block, from step 0
  CHECK(probe.completed);
  CHECK(probe.steps == 8);
  CHECK(probe.cache_hits > 0);  // the second epoch's features came from the cache
  // LP-FT: every block frozen at 0, unfrozen before step 4
  int unfrozen = 0;
  for (const auto& e : lpft.timeline)
    if (e.kind == frost::EventKind::unfreeze) {
      CHECK(e.step == 4);
      ++unfrozen;
    }
  CHECK(unfrozen == 17);
  CHECK(lpft.completed);

  auto trained = [&](const frost_train::RunResult& r) {
    frost_examples::EfficientNet m(frost_examples::EfficientNetOptions::lite0(10, 32));
    torch::serialize::InputArchive ar, msub;
    frost::load_file(ar, r.out_dir + "/checkpoint.pt", torch::kCPU);
    ar.read("model", msub);
    m->load(msub);
    return m;
  };
  auto in_head = [](const std::string& k) {
    return k.rfind("_conv_head.", 0) == 0 || k.rfind("_bn1.", 0) == 0 || k.rfind("_fc.", 0) == 0;
  };
  const auto file_params = file_net->named_parameters();
  const auto file_buffers = file_net->named_buffers();
  {
    // The probe: every body parameter and buffer (BN running statistics and
    // counts) bit-identical to the file's; the head trained.
    auto m = trained(probe);
    int body = 0, head_moved = 0;
    for (const auto& p : m->named_parameters()) {
      CAPTURE(p.key());
      if (in_head(p.key())) {
        if (p.key().rfind("_fc.", 0) == 0) CHECK(p.value().abs().sum().item<double>() > 0);
        head_moved += p.key().rfind("_fc.", 0) == 0 || !at::equal(p.value(), file_params[p.key()]);
      } else {
        CHECK(at::equal(p.value(), file_params[p.key()]));
        ++body;
      }
    }
    int buffers = 0;
    for (const auto& b : m->named_buffers()) {
      if (in_head(b.key())) continue;
      CAPTURE(b.key());
      CHECK(at::equal(b.value(), file_buffers[b.key()]));
      ++buffers;
    }
    CHECK(body > 100);
    CHECK(buffers > 100);
    CHECK(head_moved >= 4);  // _conv_head, _bn1's affine, _fc
  }
  {
    // LP-FT: the second phase moved every block.
    auto m = trained(lpft);
    std::set<std::string> blocks_moved;
    for (const auto& p : m->named_parameters()) {
      if (in_head(p.key()) || at::equal(p.value(), file_params[p.key()])) continue;
      const auto& k = p.key();
      blocks_moved.insert(k.rfind("_blocks.", 0) == 0 ? k.substr(0, k.find('.', 8)) : "stem");
    }
    CHECK(blocks_moved.size() == 17);
  }
}

TEST_CASE("train: --jobs 2 trains two runs side by side with the results of --jobs 1") {
  const std::string data = fashion_mnist_dir();
  if (data.empty()) return;
  const std::string dir = temp_dir();
  // Turns of 3 steps: the two runs alternate within each epoch (8 steps);
  // DyF's settings make it freeze within the run. Two seeds, each run with
  // its own cache: with --jobs 2 seed 1's body pre-trains beside seed 0's.
  auto args = [&](const std::string& jobs, const std::string& out_dir,
                  std::vector<std::string> more) {
    std::vector<std::string> a{"--compare", "full,dyf", "--jobs", jobs, "--threads", "1", "--data", data,
                               "--out", dir + "/" + out_dir, "--cache", dir + "/cache" + jobs,
                               "--pretrain-limit", "300", "--pretrain-epochs", "1", "--train-limit",
                               "256", "--test-limit", "200", "--val-limit", "100", "--batch-size", "32",
                               "--epochs", "2", "--warmup", "2", "--interleave", "3", "--set",
                               "dyf:criterion.window=3", "--set", "dyf:criterion.threshold=1", "--set",
                               "dyf:criterion.relative=0", "--no-progress"};
    a.insert(a.end(), more.begin(), more.end());
    return parsed(a);
  };
  auto run = [&](const std::string& jobs, std::vector<frost_train::RunResult>& rs) {
    std::ostringstream out;
    REQUIRE(frost_train::run_app(args(jobs, "jobs" + jobs, {"--seeds", "2"}), out, &rs) == 0);
    return out.str();
  };
  std::vector<frost_train::RunResult> one, two, resumed;
  const std::string out1 = run("1", one);
  const std::string out2 = run("2", two);
  // Seed 1 again, stopped after 5 steps of each run with --jobs 1, then
  // resumed with --jobs 2: --jobs may be given again, applies, and leaves
  // the results as they were (issue 30).
  {
    std::ostringstream out;
    std::vector<frost_train::RunResult> partial;
    REQUIRE(frost_train::run_app(args("1", "resumed", {"--seed", "1", "--max-steps", "5"}), out,
                                 &partial) == 3);
    std::ostringstream again;
    REQUIRE(frost_train::run_app(parsed({"--resume", dir + "/resumed", "--jobs", "2", "--no-progress"}),
                                 again, &resumed) == 0);
    CHECK_MESSAGE(has(again.str(), "2 runs at a time (--jobs)"), again.str());
  }
  CHECK_FALSE(has(out1, "at a time"));
  CHECK_MESSAGE(has(out2, "2 runs at a time (--jobs)"), out2);
  CHECK(count_of(out2, "pre-training done") == 2);  // both bodies trained, side by side
  CHECK(count_of(out2, "(cached)") == 2);           // and found by both seeds' runners
  REQUIRE(one.size() == 2);  // seed 1's runs, from the body pre-trained beside seed 0's
  REQUIRE(two.size() == 2);
  CHECK_FALSE(one[1].timeline.empty());  // DyF froze: there are decisions to compare
  REQUIRE(resumed.size() == 2);
  for (std::size_t i = 0; i < 2 * one.size(); ++i) {
    const auto& a = one[i % one.size()];
    const auto& b = i < one.size() ? two[i] : resumed[i - one.size()];
    CAPTURE(a.strategy);
    CAPTURE(i >= one.size());  // the resumed run
    CHECK(b.strategy == a.strategy);
    CHECK(b.completed);
    CHECK(b.steps == a.steps);
    CHECK(b.losses == a.losses);  // bit for bit: every step's loss
    CHECK(b.test_accuracy == a.test_accuracy);
    CHECK(b.val_accuracy == a.val_accuracy);
    CHECK(b.freeze_step == a.freeze_step);
    REQUIRE(b.evals.size() == a.evals.size());
    for (std::size_t e = 0; e < a.evals.size(); ++e) {
      CHECK(b.evals[e].step == a.evals[e].step);
      CHECK(b.evals[e].val_loss == a.evals[e].val_loss);
    }
    REQUIRE(b.timeline.size() == a.timeline.size());
    for (std::size_t e = 0; e < a.timeline.size(); ++e) {
      CHECK(b.timeline[e].step == a.timeline[e].step);
      CHECK(b.timeline[e].kind == a.timeline[e].kind);
      CHECK(b.timeline[e].block == a.timeline[e].block);
      CHECK(b.timeline[e].detail == a.timeline[e].detail);
    }
  }
}

TEST_CASE("train: --jobs: the cores on the CPU, one run at a time on a GPU, refused there") {
  const frost_train::World one_process;
  frost_train::TrainConfig cfg;
  cfg.threads = 1;
  const int cores = static_cast<int>(frost_train::allowed_cores().size());
  REQUIRE(cores >= 1);
  CHECK(frost_train::resolve_jobs(cfg, one_process, torch::kCPU) == cores);
  cfg.threads = 2 * cores;  // more threads than cores: one run at a time
  CHECK(frost_train::resolve_jobs(cfg, one_process, torch::kCPU) == 1);
  cfg.jobs = 3;
  CHECK(frost_train::resolve_jobs(cfg, one_process, torch::kCPU) == 3);
  // a GPU: the runs would share one device and its queue
  cfg.device = "cuda";
  CHECK_THROWS_WITH_AS(frost_train::resolve_jobs(cfg, one_process, torch::Device(torch::kCUDA)),
                       "--jobs 3: strategies train side by side only on the CPU of a single "
                       "process (this run trains on cuda); leave --jobs out or give --jobs 1",
                       frost_train::UsageError);
  cfg.jobs = 0;
  CHECK(frost_train::resolve_jobs(cfg, one_process, torch::Device(torch::kCUDA)) == 1);
}

TEST_CASE("train: set_threads leaves OpenBLAS one thread, whatever it had") {
  using SetThreads = void (*)(int);
  const auto set = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set == nullptr) {
    MESSAGE("LibTorch's BLAS is not OpenBLAS here; skipped");
    return;
  }
  set(2);  // its own pool, as OpenBLAS starts on a 2-core machine without OPENBLAS_NUM_THREADS
  REQUIRE(frost_train::blas_threads() == 2);
  frost_train::TrainConfig cfg;
  frost_train::set_threads(cfg, frost_train::World{}, torch::kCPU);
  CHECK(frost_train::blas_threads() == 1);
  CHECK(torch::get_num_threads() == 1);
}

// --- the text task of --model minilm-l6 (issue 33) ---------------------------------

namespace {

/// tests/data/wordnet/supersense.safetensors: scripts/wordnet_prepare.py on the
/// constructed excerpt tests/data/wordnet/data.noun (classes artifact, person,
/// plant; one gloss per class and split; L 16), tokenized by the `tokenizers`
/// package with all-MiniLM-L6-v2's tokenizer.json:
///   wordnet_prepare.py --wordnet tests/data/wordnet --tokenizer tokenizer.json
///     --out tests/data/wordnet/supersense.safetensors --per-class 1,1,1
///     --classes noun.artifact,noun.person,noun.plant --seq-len 16 The reference ids: the same package's Tokenizer.encode of each
/// definition alone (truncated to 16), made separately from the preparation:
///   tok = Tokenizer.from_file("tokenizer.json"); tok.no_padding()
///   tok.enable_truncation(16); tok.encode(text).ids
std::string text_fixture() { return std::string(FROST_TEST_DATA_DIR) + "/wordnet/supersense.safetensors"; }

const std::map<std::int64_t, std::vector<std::int64_t>>& reference_ids() {
  static const std::map<std::int64_t, std::vector<std::int64_t>> ids = {
      {194, {101, 1037, 2126, 1997, 5738, 2030, 2975, 102}},  // noun.artifact: a way of entering or leaving
      {356, {101, 1037, 2460, 2346, 3228, 3229, 2000, 2019, 11720, 102}},  // noun.artifact: a short road giving access to an expressway
      {520, {101, 2542, 7728, 3024, 2005, 2270, 15106, 102}},  // noun.artifact: living quarters provided for public convenience
      {669, {101, 1037, 6492, 2008, 2038, 2025, 2042, 5159, 2021, 2003, 1044, 22571, 14573, 2229, 3550, 102}},  // noun.person: a creature that has not been observed but is hypothesized to
      {821, {101, 1037, 2171, 2005, 1996, 2643, 1997, 1996, 2214, 9025, 2004, 28468, 16848, 2013, 1996, 102}},  // noun.person: a name for the God of the Old Testament as transliterated fr
      {1047, {101, 1037, 2711, 2040, 18675, 6368, 2000, 1037, 2591, 2724, 1006, 2107, 2004, 1037, 2283, 102}},  // noun.person: a person who invites guests to a social event (such as a par
      {1492, {101, 26396, 4264, 1025, 10327, 2024, 2411, 2641, 2000, 2022, 12702, 10258, 6525, 102}},  // noun.plant: microscopic plants; bacteria are often considered to be micr
      {1633, {101, 1037, 3526, 2008, 2003, 1037, 8332, 1998, 8360, 3131, 1997, 1037, 3269, 102}},  // noun.plant: a cell that is a structural and functional unit of a plant
      {1825, {101, 4264, 2383, 6248, 8079, 2025, 10837, 1999, 2019, 1051, 21639, 1025, 1999, 2070, 8079, 102}},  // noun.plant: plants having naked seeds not enclosed in an ovary; in some 
  };
  return ids;
}

std::string text_error_of(const std::string& path) {
  try {
    frost_train::load_text_task(path);
  } catch (const frost_examples::DataError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("train: the text task: token ids equal tokenizers' reference, labels, split rules") {
  const auto t = frost_train::load_text_task(text_fixture());
  CHECK(t.classes == std::vector<std::string>{"noun.artifact", "noun.person", "noun.plant"});
  CHECK(t.seq_len == 16);
  const auto st = frost::io::read_safetensors(text_fixture());
  auto tensor = [&](const std::string& name) {
    for (const auto& [k, v] : st.tensors)
      if (k == name) return v;
    FAIL("no tensor " << name);
    return at::Tensor();
  };
  std::set<std::int64_t> seen;
  for (const auto& [name, ds] : {std::make_pair(std::string("train"), t.data.train),
                                 std::make_pair(std::string("val"), t.data.val),
                                 std::make_pair(std::string("test"), t.data.test)}) {
    CAPTURE(name);
    REQUIRE(ds.size() == 3);  // one gloss per class, interleaved: labels 0, 1, 2
    CHECK(ds.labels.equal(at::arange(3, at::kLong)));
    const auto offsets = tensor(name + "_offsets");
    for (std::int64_t i = 0; i < 3; ++i) {
      const std::int64_t off = offsets[i].item<std::int64_t>();
      CAPTURE(off);
      seen.insert(off);
      REQUIRE(reference_ids().count(off) == 1);
      const auto& ref = reference_ids().at(off);
      std::vector<std::int64_t> got(ds.images.size(1));
      for (std::int64_t j = 0; j < ds.images.size(1); ++j) got[j] = ds.images[i][j].item<std::int64_t>();
      std::vector<std::int64_t> want(ref);
      want.resize(16, 0);  // [PAD] = 0 after [SEP]
      CHECK(got == want);
    }
  }
  // Every distinct, unambiguous gloss of the three classes once: the second
  // "host" (same definition, 1237) kept out, the "sprout" definition under
  // person and plant (1427, 1767) dropped, the animal (1966) not a class.
  CHECK(seen == std::set<std::int64_t>{194, 356, 520, 669, 821, 1047, 1492, 1633, 1825});
  // The long "host" gloss was cut to 16 tokens, [SEP] kept last.
  CHECK(reference_ids().at(1047).size() == 16);
  CHECK(reference_ids().at(1047).back() == 102);
  CHECK(t.mean_tokens > 3);
}

TEST_CASE("train: the text task refuses a file that is not the prepared task, naming it and the fix") {
  const std::string dir = temp_dir();
  const auto good = frost::io::read_safetensors(text_fixture());
  auto write = [&](const std::string& name, auto&& edit) {
    auto tensors = good.tensors;
    auto meta = good.metadata;
    meta.erase("frost.fnv1a64");
    edit(tensors, meta);
    const std::string p = dir + "/" + name + ".safetensors";
    frost::io::write_safetensors(p, tensors, meta);
    return p;
  };
  using Tensors = std::vector<std::pair<std::string, at::Tensor>>;
  using Meta = std::map<std::string, std::string>;
  auto replace = [](Tensors& ts, const std::string& name, at::Tensor v) {
    for (auto& [k, t] : ts)
      if (k == name) t = v;
  };
  SUBCASE("missing file") {
    const auto m = text_error_of(dir + "/none.safetensors");
    CHECK(has(m, "none.safetensors"));
    CHECK(has(m, "scripts/wordnet-data.sh"));
  }
  SUBCASE("a tensor missing") {
    const auto p = write("missing", [](Tensors& ts, Meta&) {
      ts.erase(std::remove_if(ts.begin(), ts.end(), [](auto& kv) { return kv.first == "val_labels"; }),
               ts.end());
    });
    const auto m = text_error_of(p);
    CHECK(has(m, p));
    CHECK(has(m, "no tensor val_labels"));
    CHECK(has(m, "scripts/wordnet-data.sh"));
  }
  SUBCASE("a label outside the classes") {
    const auto p = write("label", [&](Tensors& ts, Meta&) {
      replace(ts, "test_labels", at::tensor(std::vector<std::int64_t>{0, 1, 3}, at::kLong));
    });
    CHECK(has(text_error_of(p), "test_labels has a label outside 0..2"));
  }
  SUBCASE("a word piece after padding, a hole the mask would read as padding") {
    const auto p = write("hole", [&](Tensors& ts, Meta&) {
      auto ids = frost::io::read_safetensors(text_fixture()).tensors;  // a fresh copy to edit
      for (auto& [k, v] : ids)
        if (k == "train_ids") {
          v = v.clone();
          v[0][15] = 1037;
          replace(ts, "train_ids", v);
        }
    });
    CHECK(has(text_error_of(p), "train_ids has a word piece after padding"));
  }
  SUBCASE("ids of another length than frost.seq_len; another task") {
    auto p = write("len", [](Tensors&, Meta& m) { m["frost.seq_len"] = "12"; });
    CHECK(has(text_error_of(p), "train_ids has shape"));
    p = write("task", [](Tensors&, Meta& m) { m["frost.task"] = "imdb"; });
    CHECK(has(text_error_of(p), "frost.task is 'imdb'"));
    p = write("float", [&](Tensors& ts, Meta&) { replace(ts, "val_ids", at::zeros({3, 16})); });
    CHECK(has(text_error_of(p), "val_ids is not int64"));
  }
}
