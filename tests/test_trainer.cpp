// frost-train (examples/train): the Fashion-MNIST IDX reader on constructed
// files, the trainer's checkpoint round trip (a resumed run makes the same
// freeze decisions as an uninterrupted one) and a tiny end-to-end run.
#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
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
  std::function<void(typename frost::FreezeController<C, S, P>::Options&, const frost_train::Plan&,
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
  // the step log has one line per step, none duplicated by the resume
  std::ifstream log(dir + "/split/steps.jsonl");
  int lines = 0;
  for (std::string l; std::getline(log, l);) lines += has(l, "\"loss\"");
  CHECK(lines == 48);
}

}  // namespace

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
