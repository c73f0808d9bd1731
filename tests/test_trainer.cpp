// frost-train (examples/train): the Fashion-MNIST IDX reader on constructed
// files, the trainer's checkpoint round trip (a resumed run makes the same
// freeze decisions as an uninterrupted one) and a tiny end-to-end run.
#include <zlib.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "app.hpp"
#include "support.hpp"
// last: after every LibTorch header (see doctest_torch.hpp)
#include "doctest_torch.hpp"

namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/frost-train-test-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  REQUIRE(d != nullptr);
  return d;
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
    CHECK(task.train.size() == 10);
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

template <class C, class F>
void check_resume_matches(const at::Device& device, F configure) {
  using S = frost::schedules::Cosine;
  using P = frost::stop::Never;
  torch::set_num_threads(1);
  const auto data = synthetic_task(192);
  const std::string dir = temp_dir();
  frost_train::TrainConfig cfg;
  cfg.batch_size = 16;
  cfg.epochs = 4;  // 12 steps per epoch: 48 steps
  cfg.warmup_steps = 4;
  cfg.progress = 0;
  cfg.quiet = true;
  cfg.cache_dir = dir + "/cache";
  cfg.pretrain_epochs = 0;  // the initialisation is the "pre-trained" model
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
                                           "frozen_fraction", "events"});
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
      {"--device", {"--device", "cuda:1"}, [](const Cfg& c) { return c.device == "cuda:1"; }},
      {"--threads", {"--threads", "3"}, [](const Cfg& c) { return c.threads == 3; }},
      {"--seed", {"--seed", "7"}, [](const Cfg& c) { return c.seed == 7; }},
      {"--epochs", {"--epochs", "2.5"}, [](const Cfg& c) { return c.epochs == 2.5; }},
      {"--batch-size", {"--batch-size", "32"}, [](const Cfg& c) { return c.batch_size == 32; }},
      {"--lr", {"--lr", "0.25"}, [](const Cfg& c) { return c.lr == 0.25; }},
      {"--weight-decay", {"--weight-decay", "0"}, [](const Cfg& c) { return c.weight_decay == 0; }},
      {"--warmup", {"--warmup", "0"}, [](const Cfg& c) { return c.warmup_steps == 0; }},
      {"--train-limit", {"--train-limit", "-1"}, [](const Cfg& c) { return c.train_limit == -1; }},
      {"--test-limit", {"--test-limit", "300"}, [](const Cfg& c) { return c.test_limit == 300; }},
      {"--pretrain-epochs", {"--pretrain-epochs", "0"},
       [](const Cfg& c) { return c.pretrain_epochs == 0; }},
      {"--pretrain-limit", {"--pretrain-limit", "600"},
       [](const Cfg& c) { return c.pretrain_limit == 600; }},
      {"--pretrain-lr", {"--pretrain-lr", "1e-4"},
       [](const Cfg& c) { return c.pretrain_lr == 1e-4; }},
      {"--checkpoint-every", {"--checkpoint-every", "0"},
       [](const Cfg& c) { return c.checkpoint_every == 0; }},
      {"--eval-every", {"--eval-every", "5"}, [](const Cfg& c) { return c.eval_every == 5; }},
      {"--max-steps", {"--max-steps", "19"}, [](const Cfg& c) { return c.max_steps == 19; }},
      {"--progress", {"--progress"}, [](const Cfg& c) { return c.progress == 1; }},
      {"--no-progress", {"--no-progress"}, [](const Cfg& c) { return c.progress == 0; }},
      {"--quiet", {"--quiet"}, [](const Cfg& c) { return c.quiet; }},
      {"--world-size", {"--world-size", "2"}, [](const Cfg& c) { return c.world_size == 2; }},
      {"--rank", {"--rank", "1"}, [](const Cfg& c) { return c.rank == 1; }},
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
  for (const char* d : {"--cache DIR=out/cache", "--model tiny|small=tiny", "--device cpu|cuda[:N]=cpu",
                        "--threads N=0", "--seed N=0", "--epochs X=6", "--batch-size N=128",
                        "--lr X=0.001", "--weight-decay X=0.05", "--warmup N=10",
                        "--train-limit N=5000", "--test-limit N=-1", "--pretrain-epochs X=1",
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
      {{"--set", "criterion.threshold"}, "--set"},
      {{"--set", "=1"}, "--set"},
      {{"--bogus"}, "--bogus"},
      {{"--strategy", "a", "b"}, "b"},  // one value per flag
      {{"positional"}, "positional"},
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
  const char* env = std::getenv("FROST_FASHION_MNIST");
  const std::string data = env && *env ? env : frost_examples::kDefaultFashionMnistDir;
  if (!frost_train::path_exists(data + "/train-images-idx3-ubyte.gz")) {
    MESSAGE("Fashion-MNIST not installed (dataset-fashion-mnist); skipped");
    return;
  }
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
    for (const char* f : {"/run/timeline.svg", "/run/results.csv", "/run/args.txt"})
      CHECK(frost_train::path_exists(dir + f));
  }
}
