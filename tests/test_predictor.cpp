// SmartFRZ's pieces: frost::cka against a plain double-precision computation
// and hand-computed values (both of its code paths), the layer tailoring
// (predictor::sample_indices, Tailor, encode), the FreezePredictor module
// (windows of a sequence, masking, its file format) and the
// criteria::AttentionPredictor criterion, driven directly (record counts, the
// ring's window order against an independent forward pass) and through a real
// controller with predictors whose answer is fixed (always / never freeze):
// when blocks freeze, host reads only at freezing stages, checkpoint resume,
// and errors.
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <ATen/ATen.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "frost/frost.hpp"
#include "frost/cka.hpp"
#include "frost/criteria/attention_predictor.hpp"
#include "frost/predictor/freeze_predictor.hpp"
#include "frost/predictor/tailor.hpp"
#include "support.hpp"
// last: after every LibTorch header (see doctest_torch.hpp)
#include "doctest_torch.hpp"
#include "frost_checks.hpp"

namespace fp = frost::predictor;
using frost::BlockState;
using frost::criteria::AttentionPredictor;
using frost::criteria::AttentionPredictorOptions;
using frost_test::contains;

namespace {

std::string temp_dir() { return frost_test::temp_dir("frost-predictor-test"); }
/// Removes a flat directory made by temp_dir() (POSIX: no std::filesystem).
void remove_dir(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") std::remove((dir + "/" + name).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(dir.c_str());
}
/// A temporary directory, removed with what it holds.
struct TempDir {
  TempDir() : path(temp_dir()) {}
  ~TempDir() { remove_dir(path); }
  TempDir(const TempDir&) = delete;
  std::string path;
};

// --- an independent linear CKA: plain loops in double ------------------------
using Mat = std::vector<std::vector<double>>;

Mat to_mat(const at::Tensor& t) {
  auto d = t.reshape({t.size(0), -1}).to(at::kDouble).contiguous();
  Mat m(static_cast<std::size_t>(d.size(0)), std::vector<double>(static_cast<std::size_t>(d.size(1))));
  auto a = d.accessor<double, 2>();
  for (std::int64_t i = 0; i < d.size(0); ++i)
    for (std::int64_t j = 0; j < d.size(1); ++j)
      m[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] = a[i][j];
  return m;
}
void center(Mat& m) {
  const std::size_t n = m.size(), p = m[0].size();
  for (std::size_t j = 0; j < p; ++j) {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += m[i][j];
    for (std::size_t i = 0; i < n; ++i) m[i][j] -= s / static_cast<double>(n);
  }
}
/// ||A^T B||_F^2 for A [n, p], B [n, q].
double cross2(const Mat& a, const Mat& b) {
  double f = 0;
  for (std::size_t j = 0; j < a[0].size(); ++j)
    for (std::size_t k = 0; k < b[0].size(); ++k) {
      double s = 0;
      for (std::size_t i = 0; i < a.size(); ++i) s += a[i][j] * b[i][k];
      f += s * s;
    }
  return f;
}
/// ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)
double cka_ref(const at::Tensor& x, const at::Tensor& y) {
  Mat xc = to_mat(x), yc = to_mat(y);
  center(xc);
  center(yc);
  return cross2(yc, xc) / (std::sqrt(cross2(xc, xc)) * std::sqrt(cross2(yc, yc)));
}
double cka(const at::Tensor& x, const at::Tensor& y) { return frost::cka(x, y).item<double>(); }

at::Tensor orthogonal(std::int64_t p) { return std::get<0>(at::linalg_qr(at::randn({p, p}, at::kDouble))); }

// --- the tailoring, computed by hand -----------------------------------------
/// Row b: block b's parameters, flattened and concatenated, at indices[b].
at::Tensor manual_gather(const frost::BlockMap& map, const at::Tensor& indices) {
  std::vector<at::Tensor> rows;
  for (std::size_t b = 0; b < map.size(); ++b) {
    std::vector<at::Tensor> flat;
    for (const auto& p : map[b].params) flat.push_back(p.detach().reshape({-1}));
    rows.push_back(at::cat(flat).index_select(0, indices[static_cast<std::int64_t>(b)]).to(at::kFloat));
  }
  return at::stack(rows);
}
/// (w - prev) / (rms(w) + 1e-12), one row at a time.
at::Tensor manual_encode(const at::Tensor& w, const at::Tensor& prev) {
  std::vector<at::Tensor> rows;
  for (std::int64_t b = 0; b < w.size(0); ++b) {
    const double rms = std::sqrt(w[b].to(at::kDouble).pow(2).mean().item<double>());
    rows.push_back(((w[b] - prev[b]) / (rms + 1e-12)).to(at::kFloat));
  }
  return at::stack(rows);
}

// --- small predictors ---------------------------------------------------------
fp::FreezePredictorOptions small() {
  return fp::FreezePredictorOptions().subset(8).hidden(16).embed(4).head_hidden(4).window(5).record_every(1);
}
/// A predictor whose decision ignores its input: logits (0, logit), so
/// P(freeze) = sigmoid(logit).
fp::FreezePredictor fixed(double logit) {
  torch::manual_seed(21);
  fp::FreezePredictor p(small());
  // the decision head's last Linear (by name: the file's layout)
  auto params = p->named_parameters();
  REQUIRE(params.contains("decision.4.weight"));
  REQUIRE(params.contains("decision.4.bias"));
  at::NoGradGuard ng;
  params["decision.4.weight"].zero_();
  params["decision.4.bias"].copy_(at::tensor({0.0f, static_cast<float>(logit)}));
  return p;
}

/// Predictor files: always freeze, never freeze, and a randomly initialised one.
struct Files {
  Files() {
    fp::save(fixed(20.0), always, "always");
    fp::save(fixed(-20.0), never, "never");
    torch::manual_seed(11);
    fp::FreezePredictor r(small());
    {
      at::NoGradGuard ng;
      r->input_scale.fill_(30.0);  // the weights' changes are small: make the windows matter
    }
    fp::save(r, random, "random");
  }
  TempDir tmp;
  std::string dir = tmp.path;
  std::string always = dir + "/always.pt";
  std::string never = dir + "/never.pt";
  std::string random = dir + "/random.pt";
};

// --- the criterion, driven directly -----------------------------------------
struct Direct {
  Direct(const AttentionPredictorOptions& o, std::int64_t steps_per_epoch = 4) : crit(o) {
    torch::manual_seed(3);
    net = frost_test::Net(8, 16, 3, 3);
    map = frost::BlockMap::detect(*net);
    states.assign(map.size(), BlockState::training);
    frost::CriterionSetup cs;
    cs.blocks = &map;
    cs.steps_per_epoch = steps_per_epoch;
    crit.setup(cs);
  }
  Direct(const Direct&) = delete;  // the criterion points at `map`
  frost::StepState state(std::int64_t step) const {
    frost::StepState s;
    s.step = step;
    s.states = &states;
    return s;
  }
  /// The criterion's call before step `step`'s forward.
  void before(std::int64_t step) {
    frost::Decisions d;
    crit.before_step(state(step), d);
    CHECK(d.empty());
  }
  /// Moves every parameter a little (a training step's worth).
  void perturb(std::int64_t k) {
    at::NoGradGuard ng;
    for (auto& p : net->parameters()) p.add_(at::randn(p.sizes()) * (0.01 * static_cast<double>(k + 1)));
  }
  std::vector<std::int64_t> counts() const { return crit.records_per_block(); }
  frost_test::Net net{nullptr};
  frost::BlockMap map;
  std::vector<BlockState> states;
  AttentionPredictor crit;
};

// --- the criterion through a controller ---------------------------------------
using Ctl = frost::FreezeController<AttentionPredictor, frost::schedules::Constant, frost::stop::Never>;

frost_test::Net seeded_net(std::uint64_t seed) {
  torch::manual_seed(seed);
  return frost_test::Net();
}

struct Rig {
  explicit Rig(const Ctl::Options& o, std::uint64_t seed = 5)
      : net(seeded_net(seed)),
        blocks(frost::BlockMap::detect(*net)),
        opt(frost::param_groups(blocks, *net), torch::optim::AdamWOptions(3e-3)),
        ctl(net, opt, blocks, o) {}
  frost_test::Net net;
  frost::BlockMap blocks;
  torch::optim::AdamW opt;
  Ctl ctl;
};

Ctl::Options ctl_options(const AttentionPredictorOptions& c, std::int64_t steps_per_epoch = 4) {
  Ctl::Options o;
  o.controller().steps_per_epoch(steps_per_epoch);
  o.criterion(c);
  return o;
}

/// One step of a user's loop, with the dropout seed fixed per step so that an
/// interrupted and an uninterrupted run draw the same masks.
void step(Rig& r, const frost_test::Task& t) {
  torch::manual_seed(1000 + static_cast<std::uint64_t>(r.ctl.step()));
  r.ctl.before_step();
  r.opt.zero_grad();
  torch::nn::functional::cross_entropy(r.net->forward(t.x), t.y).backward();
  r.ctl.after_backward();
  r.opt.step();
  r.ctl.after_step();
}

std::string show(const frost::Timeline& tl) {
  std::ostringstream os;
  for (const auto& e : tl)
    os << e.step << ":" << e.block << ":" << frost::to_string(e.kind) << ":" << e.detail << " | ";
  return os.str();
}
bool same(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!((std::isnan(a[i]) && std::isnan(b[i])) || a[i] == b[i])) return false;
  return true;
}

}  // namespace

TEST_SUITE("predictor") {
  // ===========================================================================
  TEST_CASE("cka: identity, invariances, and agreement with a plain double computation") {
    torch::manual_seed(1);
    for (auto shape : {std::vector<std::int64_t>{10, 4}, std::vector<std::int64_t>{3, 6}}) {
      CAPTURE(shape[0]);
      const auto x = at::randn(shape);
      const auto c = frost::cka(x, x);
      CHECK(c.dim() == 0);
      CHECK((c.scalar_type() == at::kDouble));
      CHECK(c.item<double>() == doctest::Approx(1.0).epsilon(1e-12));
    }
    // Y a noisy linear function of X: CKA strictly between 0 and 1.
    struct Shape {
      std::int64_t n, p, q;
    };
    // feature form; Gram form; p < n < q (feature form)
    for (const Shape sh : std::vector<Shape>{{20, 3, 4}, {6, 10, 8}, {5, 3, 8}}) {
      const std::int64_t n = sh.n, p = sh.p, q = sh.q;
      CAPTURE(n);
      CAPTURE(p);
      const auto x = at::randn({n, p}, at::kDouble);
      const auto y = at::matmul(x, at::randn({p, q}, at::kDouble)) + 0.5 * at::randn({n, q}, at::kDouble);
      const double ref = cka_ref(x, y);
      CHECK(ref > 0.05);
      CHECK(ref < 0.9999);
      CHECK(cka(x, y) == doctest::Approx(ref).epsilon(1e-10));
      CHECK(cka(y, x) == doctest::Approx(ref).epsilon(1e-10));  // symmetric
      // orthogonal transforms of either input
      CHECK(cka(at::matmul(x, orthogonal(p)), y) == doctest::Approx(ref).epsilon(1e-10));
      CHECK(cka(x, at::matmul(y, orthogonal(q))) == doctest::Approx(ref).epsilon(1e-10));
      // isotropic scaling of either input, and a shift (centring)
      CHECK(cka(3.5 * x, y) == doctest::Approx(ref).epsilon(1e-10));
      CHECK(cka(x, 0.02 * y + 7.0) == doctest::Approx(ref).epsilon(1e-10));
      // a non-isotropic scaling does change it
      auto xs = x.clone();
      xs.select(1, 0).mul_(10.0);
      CHECK(std::abs(cka(xs, y) - ref) > 1e-4);
    }
  }

  TEST_CASE("cka: hand-computed values on both code paths") {
    // Feature form (n = 4 > 2 features). X is centred; Y's second column is 0:
    //   Xc^T Xc = diag(2, 2) -> ||.||_F = 2 sqrt(2);  Yc^T Yc = diag(2, 0) -> 2
    //   Yc^T Xc = [[2, 0], [0, 0]] -> ||.||_F^2 = 4;  CKA = 4 / (2 sqrt(2) * 2) = 1/sqrt(2)
    // Offsets added to every row change nothing (centring).
    const auto x = at::tensor({1.0, 0.0, -1.0, 0.0, 0.0, 1.0, 0.0, -1.0}, at::kDouble).reshape({4, 2});
    const auto y = at::tensor({1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0}, at::kDouble).reshape({4, 2});
    const double inv_sqrt2 = 0.70710678118654752;
    CHECK(cka(x, y) == doctest::Approx(inv_sqrt2).epsilon(1e-12));
    CHECK(cka(x + at::tensor({5.0, -3.0}, at::kDouble), y + at::tensor({1.0, 2.0}, at::kDouble)) ==
          doctest::Approx(inv_sqrt2).epsilon(1e-12));
    CHECK(cka_ref(x, y) == doctest::Approx(inv_sqrt2).epsilon(1e-12));

    // Gram form (n = 3 <= 5 features). X = the first 3 unit rows, Y = rows e0,
    // e1, 0; H = I - J/3 centres. Kx = H, <Kx, Ky> = tr(Y Y^T H) = 2 - 2/3 = 4/3,
    // ||Kx||_F = sqrt(tr H) = sqrt(2). Yc (first two columns) has rows
    // (2/3, -1/3), (-1/3, 2/3), (-1/3, -1/3), so Ky = [[5, -4, -1], [-4, 5, -1],
    // [-1, -1, 2]] / 9 and ||Ky||_F = sqrt(90)/9 = sqrt(10)/3.
    // CKA = (4/3) / (sqrt(2) sqrt(10) / 3) = 4 / sqrt(20) = 2/sqrt(5).
    auto xg = at::zeros({3, 5}, at::kDouble);
    auto yg = at::zeros({3, 5}, at::kDouble);
    for (int i = 0; i < 3; ++i) xg[i][i] = 1.0;
    yg[0][0] = 1.0;
    yg[1][1] = 1.0;
    const double two_over_sqrt5 = 0.89442719099991588;
    CHECK(cka(xg, yg) == doctest::Approx(two_over_sqrt5).epsilon(1e-12));
    CHECK(cka(yg, xg) == doctest::Approx(two_over_sqrt5).epsilon(1e-12));
    CHECK(cka_ref(xg, yg) == doctest::Approx(two_over_sqrt5).epsilon(1e-12));
    // the same representations with the columns on the feature path: n = 3 > 2
    CHECK(cka(xg.narrow(1, 0, 3), yg.narrow(1, 0, 2)) == doctest::Approx(two_over_sqrt5).epsilon(1e-12));
  }

  TEST_CASE("cka: float32 inputs, extra dimensions, errors") {
    torch::manual_seed(2);
    const auto x = at::randn({50, 7});
    const auto y = at::tanh(at::matmul(x, at::randn({7, 9}))) + 0.3 * at::randn({50, 9});
    REQUIRE((x.scalar_type() == at::kFloat));
    const auto c = frost::cka(x, y);
    CHECK((c.scalar_type() == at::kDouble));
    CHECK(std::abs(c.item<double>() - cka_ref(x.to(at::kDouble), y.to(at::kDouble))) < 1e-6);

    // [n, 3, 4] is one row of 12 features per input
    const auto a = at::randn({6, 3, 4});
    const auto b = at::randn({6, 5});
    CHECK(cka(a, b) == doctest::Approx(cka(a.reshape({6, 12}), b)).epsilon(1e-12));
    CHECK(cka(a, b) == doctest::Approx(cka_ref(a, b)).epsilon(1e-10));
    const auto a20 = at::randn({20, 3, 4});
    const auto b20 = at::randn({20, 2, 2});
    CHECK(cka(a20, b20) == doctest::Approx(cka_ref(a20, b20)).epsilon(1e-10));  // feature form

    // a constant column among varying ones is fine; a constant input is not
    auto xc = at::randn({5, 3});
    xc.select(1, 2).fill_(4.0);
    CHECK(std::isfinite(cka(xc, at::randn({5, 2}))));

    CHECK_FROST_ERROR(frost::cka(at::randn({4, 3}), at::randn({5, 3})), "X has 4 rows and Y has 5");
    CHECK_FROST_ERROR(frost::cka(at::randn({4, 0}), at::randn({4, 3})), "no features");
    {  // a wide X against a narrow Y: the mixed path (Gram for X, features for Y)
      torch::manual_seed(12);
      auto x = at::randn({6, 40}, at::kDouble), y = at::randn({6, 3}, at::kDouble);
      auto xc = x - x.mean(0, true), yc = y - y.mean(0, true);
      const double want = at::mm(yc.t(), xc).pow(2).sum().item<double>() /
                          (at::mm(xc.t(), xc).norm().item<double>() * at::mm(yc.t(), yc).norm().item<double>());
      CHECK(frost::cka(x, y).item<double>() == doctest::Approx(want).epsilon(1e-12));
      CHECK(frost::cka(y, x).item<double>() == doctest::Approx(want).epsilon(1e-12));
    }
    CHECK_FROST_ERROR(frost::cka(at::randn({1, 3}), at::randn({1, 3})), "at least 2");
    CHECK_FROST_ERROR(frost::cka(at::full({4, 3}, 2.5), at::randn({4, 3})), "constant");
    CHECK_FROST_ERROR(frost::cka(at::randn({4, 3}), at::zeros({4, 8})), "constant");
    // constant values whose column mean is not exact in binary: centring leaves
    // round-off (1e-17), which must still count as constant
    CHECK_FROST_ERROR(frost::cka(at::full({3, 3}, 0.1, at::kDouble), at::randn({3, 3})), "X is constant");
    CHECK_FROST_ERROR(frost::cka(at::randn({10, 3}), at::full({10, 3}, 123.456, at::kDouble)),
                      "Y is constant");
    CHECK_FROST_ERROR(frost::cka(at::ones({4, 3}, at::kLong), at::randn({4, 3})), "floating point");
    const auto reads = frost::host::reads();
    (void)frost::cka(x, y);
    CHECK(frost::host::reads() == reads + 1);  // the denominator's check
  }

  // ===========================================================================
  TEST_CASE("sample_indices: deterministic, in range, distinct, cycled when the block is small") {
    const auto a = fp::sample_indices(1000, 50, 7);
    CHECK(a == fp::sample_indices(1000, 50, 7));
    CHECK(a != fp::sample_indices(1000, 50, 8));
    REQUIRE(a.size() == 50);
    CHECK(std::set<std::int64_t>(a.begin(), a.end()).size() == 50);
    for (auto v : a) CHECK((v >= 0 && v < 1000));

    // numel == count: a permutation
    auto perm = fp::sample_indices(64, 64, 3);
    CHECK(perm != fp::sample_indices(64, 64, 4));
    std::sort(perm.begin(), perm.end());
    for (std::int64_t i = 0; i < 64; ++i) CHECK(perm[static_cast<std::size_t>(i)] == i);

    // numel < count: a permutation of [0, 7) repeated
    const auto r = fp::sample_indices(7, 20, 5);
    REQUIRE(r.size() == 20);
    CHECK(std::set<std::int64_t>(r.begin(), r.begin() + 7).size() == 7);
    for (std::size_t i = 0; i < r.size(); ++i) {
      CHECK((r[i] >= 0 && r[i] < 7));
      CHECK(r[i] == r[i % 7]);
    }

    // not stuck on a few values: over many seeds, every index of a small block is drawn first
    std::set<std::int64_t> first;
    for (std::uint64_t s = 0; s < 200; ++s) first.insert(fp::sample_indices(10, 3, s)[0]);
    CHECK(first.size() == 10);

    CHECK_FROST_ERROR(fp::sample_indices(0, 4, 1), "cannot sample");
    CHECK_FROST_ERROR(fp::sample_indices(4, 0, 1), "cannot sample");
  }

  TEST_CASE("Tailor: gather() is the indexed weights, seeds, encode") {
    torch::manual_seed(4);
    frost_test::Net net(8, 4, 2, 3);  // blocks of 36 (embed) and 28 weights
    const auto map = frost::BlockMap::detect(*net);
    REQUIRE(map.size() == 3);
    for (std::int64_t subset : {16, 40}) {  // 40: more than any block holds
      CAPTURE(subset);
      fp::Tailor t(map, subset, 9);
      CHECK(t.subset() == subset);
      CHECK(t.seed() == 9);
      const auto& idx = t.indices();
      REQUIRE(idx.sizes() == at::IntArrayRef({3, subset}));
      CHECK((idx.scalar_type() == at::kLong));
      for (std::size_t b = 0; b < map.size(); ++b) {
        const auto row = idx[static_cast<std::int64_t>(b)];
        CHECK(row.min().item<std::int64_t>() >= 0);
        CHECK(row.max().item<std::int64_t>() < map[b].numel);
        const auto distinct = std::get<0>(at::_unique(row)).numel();
        CHECK(distinct == std::min<std::int64_t>(subset, map[b].numel));
        // the same draw as sample_indices with the documented per-block seed
        const auto want = fp::sample_indices(map[b].numel, subset,
                                             9 + 0x9E3779B97F4A7C15ULL * (static_cast<std::uint64_t>(b) + 1));
        CHECK(at::equal(row, at::tensor(want, at::kLong)));
      }
      const auto g = t.gather();
      {  // a Tailor outlives the block map it was built from (a moved controller)
        auto copy = std::make_unique<frost::BlockMap>(map);
        fp::Tailor moved(*copy, subset, 9);
        copy.reset();
        CHECK(at::equal(moved.gather(), g));
      }
      CHECK((g.scalar_type() == at::kFloat));
      CHECK(!g.requires_grad());
      CHECK(at::equal(g, manual_gather(map, idx)));
      // follows the weights as they change
      {
        at::NoGradGuard ng;
        for (auto& p : net->parameters()) p.mul_(-2.0).add_(0.5);
      }
      CHECK(at::equal(t.gather(), manual_gather(map, idx)));
      CHECK(!at::equal(t.gather(), g));
      // the same seed draws the same subset, another seed another
      CHECK(at::equal(fp::Tailor(map, subset, 9).gather(), t.gather()));
      CHECK(!at::equal(fp::Tailor(map, subset, 10).gather(), t.gather()));
    }
    CHECK_FROST_ERROR(fp::Tailor(map, 0, 1), "subset is 0");
    frost::BlockMap none;
    CHECK_FROST_ERROR(fp::Tailor(none, 4, 1), "empty");
    CHECK_FROST_ERROR(fp::Tailor().gather(), "before setup");

    const auto w = at::randn({3, 8});
    const auto prev = at::randn({3, 8});
    CHECK(at::allclose(fp::encode(w, prev), manual_encode(w, prev), 1e-6, 1e-6));
    CHECK(at::allclose(fp::encode(w * 4.0, prev * 4.0), fp::encode(w, prev), 1e-5, 1e-6));  // scale-free
  }

  // ===========================================================================
  TEST_CASE("FreezePredictor: forward_sequence is forward on each window, masking truncates") {
    torch::manual_seed(6);
    fp::FreezePredictor p(small().record_every(3));
    {
      at::NoGradGuard ng;
      p->input_scale.fill_(2.0);
    }
    const auto x = at::randn({9, 8});
    const auto seq = p->forward_sequence(x);
    REQUIRE(seq.sizes() == at::IntArrayRef({5, 2}));
    for (std::int64_t i = 0; i < 5; ++i) {
      CAPTURE(i);
      const auto one = p->forward(x.narrow(0, i, 5).unsqueeze(0));
      CHECK(at::allclose(seq[i], one[0], 1e-5, 1e-5));
    }
    // the windows differ (the test is not vacuous)
    CHECK(!at::allclose(seq[0], seq[4], 1e-5, 1e-5));

    // valid = the last k records: the same as the window of those k alone
    auto xb = at::randn({3, 5, 8});
    auto valid = at::zeros({3, 5}, at::kBool);
    valid[0].narrow(0, 2, 3).fill_(true);  // k = 3
    valid[1].fill_(true);                   // a full window
    valid[2][4] = true;                     // k = 1
    const auto out = p->forward(xb, valid);
    CHECK(at::allclose(out[0], p->forward(xb[0].narrow(0, 2, 3).unsqueeze(0))[0], 1e-5, 1e-5));
    CHECK(at::allclose(out[1], p->forward(xb[1].unsqueeze(0))[0], 1e-5, 1e-5));
    CHECK(at::allclose(out[2], p->forward(xb[2].narrow(0, 4, 1).unsqueeze(0))[0], 1e-5, 1e-5));
    // masked records do not matter; unmasked they would
    auto xb2 = xb.clone();
    xb2[0].narrow(0, 0, 2).fill_(100.0);
    CHECK(at::allclose(p->forward(xb2, valid)[0], out[0], 1e-5, 1e-5));
    CHECK(!at::allclose(p->forward(xb2)[0], p->forward(xb)[0], 1e-5, 1e-5));

    CHECK_FROST_ERROR(p->forward(at::randn({2, 5, 7})), "expected [B, T, 8]");
    CHECK_FROST_ERROR(p->forward_sequence(at::randn({4, 8})), "shorter than the window");
    CHECK_FROST_ERROR(fp::FreezePredictor(small().subset(0)), "every size must be positive");
  }

  TEST_CASE("FreezePredictor: the file format") {
    const TempDir tmp;
    const std::string dir = tmp.path;
    torch::manual_seed(8);
    fp::FreezePredictor p(small().record_every(3).head_hidden(6));
    {
      at::NoGradGuard ng;
      p->input_scale.fill_(2.5);
    }
    const std::string path = dir + "/p.pt";
    fp::save(p, path, "a test predictor");
    auto q = fp::load(path);
    CHECK(q->options.subset() == 8);
    CHECK(q->options.hidden() == 16);
    CHECK(q->options.embed() == 4);
    CHECK(q->options.head_hidden() == 6);
    CHECK(q->options.window() == 5);
    CHECK(q->options.record_every() == 3);
    CHECK(q->input_scale.item<double>() == 2.5);
    CHECK(!q->is_training());
    const auto x = at::randn({4, 5, 8});
    CHECK(at::equal(q->forward(x), p->forward(x)));
    const auto xs = at::randn({7, 8});
    CHECK(at::equal(q->forward_sequence(xs), p->forward_sequence(xs)));

    // a missing file names its path
    CHECK_FROST_ERROR(fp::load(dir + "/missing.pt"), dir + "/missing.pt");
    // an archive of something else
    {
      torch::serialize::OutputArchive ar;
      ar.write("weight", at::ones({3}));
      ar.save_to(dir + "/other.pt");
    }
    CHECK_FROST_ERROR(fp::load(dir + "/other.pt"), "not a frost predictor");
    CHECK_FROST_ERROR(fp::load(dir + "/other.pt"), "other.pt");
    // another format version
    {
      torch::serialize::OutputArchive ar;
      ar.write("frost_predictor_format", c10::IValue(std::int64_t{2}));
      ar.save_to(dir + "/future.pt");
    }
    CHECK_FROST_ERROR(fp::load(dir + "/future.pt"), "has format 2");
    // not an archive at all
    {
      std::ofstream f(dir + "/notes.txt");
      f << "not a predictor\n";
    }
    CHECK_FROST_ERROR(fp::load(dir + "/notes.txt"), "cannot read '" + dir + "/notes.txt'");
    // one flipped bit in a weight: LibTorch would load it; the CRC-32 check does not
    {
      fp::FreezePredictor r(small());
      {
        at::NoGradGuard ng;
        r->input_scale.fill_(1234.5);
      }
      fp::save(r, dir + "/flip.pt", "to be damaged");
      std::string b;
      {
        std::ifstream f(dir + "/flip.pt", std::ios::binary);
        b.assign(std::istreambuf_iterator<char>(f), {});
      }
      const float v = 1234.5f;
      const std::size_t at = b.find(std::string(reinterpret_cast<const char*>(&v), sizeof v));
      REQUIRE(at != std::string::npos);
      b[at + 1] ^= 0x01;
      std::ofstream(dir + "/flip.pt", std::ios::binary) << b;
      CHECK_FROST_ERROR(fp::load(dir + "/flip.pt"), "predictor " + dir + "/flip.pt is corrupt");
      CHECK_FROST_ERROR(fp::load(dir + "/flip.pt"), "regenerate the shipped one");
    }

    // $FROST_PREDICTOR names the default
    const char* old = std::getenv("FROST_PREDICTOR");
    const std::string saved = old ? old : "";
    ::setenv("FROST_PREDICTOR", path.c_str(), 1);
    CHECK(fp::default_path() == path);
    if (old) ::setenv("FROST_PREDICTOR", saved.c_str(), 1);
    else ::unsetenv("FROST_PREDICTOR");
  }

  TEST_CASE("FreezePredictor: the file records whether it learned from frost-train's main job") {
    const TempDir tmp;
    const std::string dir = tmp.path;
    fp::FreezePredictor p(small());
    fp::save(p, dir + "/clean.pt", "histories without the main job");
    fp::save(p, dir + "/main.pt", "an experiment", /*includes_main_job=*/true);
    CHECK_FALSE(fp::read_info(dir + "/clean.pt").includes_main_job);
    CHECK(fp::read_info(dir + "/clean.pt").about == "histories without the main job");
    CHECK(fp::read_info(dir + "/main.pt").includes_main_job);
    // the library still loads it: refusing it is frost-train's business
    CHECK(fp::load(dir + "/main.pt")->options.subset() == 8);
    // a format-1 file from before the key: its description decides
    auto old_file = [&](const std::string& name, const std::string& about) {
      torch::serialize::OutputArchive ar;
      ar.write("frost_predictor_format", c10::IValue(fp::kFileFormat));
      ar.write("about", c10::IValue(about));
      ar.save_to(dir + "/" + name);
      return dir + "/" + name;
    };
    CHECK_FALSE(fp::read_info(old_file("old.pt", "frost-train's main job (...) excluded")).includes_main_job);
    CHECK(fp::read_info(old_file("old-in.pt", "histories INCLUDES frost-train's main job (--allow-main-job)"))
              .includes_main_job);
    CHECK_FROST_ERROR(fp::read_info(dir + "/missing.pt"), "cannot open '" + dir + "/missing.pt'");
    {
      torch::serialize::OutputArchive ar;
      ar.write("weight", at::ones({3}));
      ar.save_to(dir + "/other.pt");
    }
    CHECK_FROST_ERROR(fp::read_info(dir + "/other.pt"), "not a frost predictor file");
    // the shipped predictor learned without the main job
    if (!fp::default_path().empty() && std::ifstream(fp::default_path()).good())
      CHECK_FALSE(fp::read_info(fp::default_path()).includes_main_job);
  }

  // ===========================================================================
  TEST_CASE("AttentionPredictor: record counts, stages, decide()") {
    const Files files;
    SUBCASE("record_every 2: 5 records in 9 steps, the first has no predecessor") {
      Direct d(AttentionPredictorOptions().predictor(files.never).record_every(2));
      CHECK(d.crit.record_every() == 2);
      CHECK(d.crit.window() == 5);
      CHECK(d.crit.predictor_path() == files.never);
      CHECK(d.crit.tailor().subset() == 8);
      for (std::int64_t s = 0; s < 3; ++s) d.before(s);
      CHECK(d.crit.records() == 2);  // steps 0, 2
      CHECK(d.counts() == std::vector<std::int64_t>(d.map.size(), 1));
      for (std::int64_t s = 3; s < 9; ++s) d.before(s);
      CHECK(d.crit.records() == 5);  // steps 0, 2, 4, 6, 8
      CHECK(d.counts() == std::vector<std::int64_t>(d.map.size(), 4));
      // default min_records = the window (5): nobody is judged yet
      CHECK_FALSE(d.crit.statistics(d.state(8)).defined());
      // per epoch (steps_per_epoch 4)
      auto s = d.state(3);
      s.epoch_end = true;
      CHECK(d.crit.decision_point(s));
      s.epoch_end = false;
      CHECK_FALSE(d.crit.decision_point(s));
    }
    SUBCASE("record_every 1: capped at the window; frozen blocks stop counting, unfrozen start afresh") {
      Direct d(AttentionPredictorOptions().predictor(files.never).every(3));
      CHECK(d.crit.record_every() == 1);  // the predictor's own cadence
      for (std::int64_t s = 0; s < 3; ++s) d.before(s);
      CHECK(d.counts() == std::vector<std::int64_t>(d.map.size(), 2));
      d.states[1] = BlockState::frozen;
      d.crit.on_state_change(1, BlockState::training, BlockState::frozen);
      d.before(3);
      d.before(4);
      std::vector<std::int64_t> want(d.map.size(), 4);
      want[1] = 2;
      CHECK(d.counts() == want);
      d.states[1] = BlockState::training;
      d.crit.on_state_change(1, BlockState::frozen, BlockState::training);
      want[1] = 0;
      CHECK(d.counts() == want);
      d.before(5);  // primes block 1 again; the others reach the window
      for (auto& w : want) w = 5;
      want[1] = 0;
      CHECK(d.counts() == want);
      for (std::int64_t s = 6; s < 9; ++s) d.before(s);
      want[1] = 3;
      CHECK(d.counts() == want);
      CHECK(d.crit.records() == 9);
      // every 3: stages after steps 2, 5, 8, whatever the epoch
      for (std::int64_t s = 0; s < 9; ++s) {
        auto st = d.state(s);
        st.epoch_end = (s == 3);
        CHECK(d.crit.decision_point(st) == (s % 3 == 2));
      }
    }
    SUBCASE("decide(): threshold, not judged, non-finite") {
      Direct d(AttentionPredictorOptions().predictor(files.never).threshold(0.6));
      REQUIRE(d.map.size() == 4);
      const double nan = std::numeric_limits<double>::quiet_NaN();
      const std::vector<double> p{0.7, -1.0, 0.6, nan};
      frost::Decisions out;
      d.crit.decide(d.state(3), frost::HostValues(p), out);
      REQUIRE(out.items().size() == 2);
      CHECK(out.items()[0].block == 0);
      CHECK(out.items()[0].request == frost::Request::freeze);
      CHECK(out.items()[0].statistic == 0.7);
      CHECK(contains(out.items()[0].detail, "P(freeze) 0.7 > 0.6"));
      CHECK(out.items()[1].block == 3);
      CHECK(out.items()[1].is_warning());
      CHECK(contains(out.items()[1].detail, "not finite"));
      const auto& pr = d.crit.probabilities();
      CHECK(pr[0] == 0.7);
      CHECK(std::isnan(pr[1]));  // -1: not judged
      CHECK(pr[2] == 0.6);       // judged, not above the threshold
      CHECK(std::isnan(pr[3]));
      CHECK(d.crit.stages() == 1);
      // a frozen block is not judged even when given a value
      d.states[0] = BlockState::frozen;
      frost::Decisions out2;
      d.crit.decide(d.state(7), frost::HostValues(p), out2);
      CHECK(out2.items().size() == 1);  // the warning only
      CHECK(std::isnan(d.crit.probabilities()[0]));
      // nothing to read: all NaN, still a stage
      frost::Decisions out3;
      d.crit.decide(d.state(11), frost::HostValues(), out3);
      CHECK(out3.empty());
      CHECK(std::isnan(d.crit.probabilities()[2]));
      CHECK(d.crit.stages() == 3);
      const std::vector<double> short_p{0.1};
      CHECK_FROST_ERROR(d.crit.decide(d.state(12), frost::HostValues(short_p), out3), "1 statistics for 4");
    }
  }

  TEST_CASE("AttentionPredictor: statistics() is the predictor on each block's latest window") {
    const Files files;
    Direct d(AttentionPredictorOptions().predictor(files.random).min_records(2));
    auto ref = fp::load(files.random);
    const auto& idx = d.crit.tailor().indices();
    std::vector<at::Tensor> enc;  // encoded records, oldest first (enc[k]: record k vs k-1)
    at::Tensor prev;
    auto expect = [&](std::int64_t count) {
      std::vector<double> out;
      for (std::int64_t b = 0; b < static_cast<std::int64_t>(d.map.size()); ++b) {
        if (d.states[static_cast<std::size_t>(b)] != BlockState::training) {
          out.push_back(-1.0);
          continue;
        }
        std::vector<at::Tensor> rows;
        for (auto k = static_cast<std::int64_t>(enc.size()) - count; k < static_cast<std::int64_t>(enc.size()); ++k)
          rows.push_back(enc[static_cast<std::size_t>(k)][b]);
        at::NoGradGuard ng;
        const auto logits = ref->forward(at::stack(rows).unsqueeze(0));
        out.push_back(at::softmax(logits, 1)[0][1].item<double>());
      }
      return out;
    };
    for (std::int64_t k = 0; k < 9; ++k) {
      const auto w = manual_gather(d.map, idx);
      if (prev.defined()) enc.push_back(manual_encode(w, prev));
      prev = w;
      d.before(k);
      d.perturb(k);  // the step's update
      if (k == 0) CHECK_FALSE(d.crit.statistics(d.state(k)).defined());  // nobody has 2 records
      if (k == 2 || k == 5 || k == 8) {
        CAPTURE(k);
        if (k == 8) d.states[0] = BlockState::frozen;  // not judged: -1
        const auto count = std::min<std::int64_t>(k, 5);
        const auto got = frost::host::read(d.crit.statistics(d.state(k)));
        const auto want = expect(count);
        REQUIRE(got.size() == want.size());
        for (std::size_t b = 0; b < got.size(); ++b) CHECK(got[b] == doctest::Approx(want[b]).epsilon(1e-5));
        // the windows differ between blocks and stages (not a constant predictor)
        CHECK(std::abs(got[1] - got[2]) > 1e-6);
      }
    }
  }

  // ===========================================================================
  TEST_CASE("AttentionPredictor through the controller: freezes at the first stage with enough records") {
    const Files files;
    const auto task = frost_test::make_task(32, at::kCPU);
    SUBCASE("always: every block at step 7, the first epoch end with a full window; reads only then") {
      Rig r(ctl_options(AttentionPredictorOptions().predictor(files.always)));
      const auto nb = static_cast<std::int64_t>(r.blocks.size());
      REQUIRE(nb == 5);
      for (std::int64_t s = 0; s < 12; ++s) {
        CAPTURE(s);
        const auto reads = frost::host::reads();
        step(r, task);
        // step 3 is a stage with nobody judged (3 records each): nothing to read
        CHECK(frost::host::reads() - reads == (s == 7 ? 1 : 0));
        CHECK(r.ctl.num_frozen() == (s < 7 ? 0 : nb));
      }
      REQUIRE(r.ctl.timeline().size() == 5);
      for (const auto& e : r.ctl.timeline()) {
        CHECK(e.step == 7);
        CHECK(e.kind == frost::EventKind::freeze);
        CHECK(contains(e.detail, "over 5 records"));
        CHECK(e.statistic > 0.999);
      }
      CHECK(r.ctl.criterion().stages() == 3);     // steps 3, 7, 11
      CHECK(r.ctl.criterion().records() == 12);   // record_every 1
      for (double p : r.ctl.criterion().probabilities()) CHECK(std::isnan(p));  // none left to judge
    }
    SUBCASE("always, min_records 2: at the first epoch end (step 3)") {
      Rig r(ctl_options(AttentionPredictorOptions().predictor(files.always).min_records(2)));
      for (std::int64_t s = 0; s < 4; ++s) {
        CHECK(r.ctl.num_frozen() == 0);
        step(r, task);
      }
      CHECK(r.ctl.num_frozen() == 5);
      for (const auto& e : r.ctl.timeline()) CHECK(e.step == 3);
    }
    SUBCASE("always, every 3 and min_records 2 without epochs: step 2") {
      Rig r(ctl_options(AttentionPredictorOptions().predictor(files.always).min_records(2).every(3), 0));
      step(r, task);
      step(r, task);
      CHECK(r.ctl.num_frozen() == 0);
      step(r, task);
      CHECK(r.ctl.num_frozen() == 5);
    }
    SUBCASE("never: nothing freezes; one read per stage with judged blocks") {
      Rig r(ctl_options(AttentionPredictorOptions().predictor(files.never)));
      for (std::int64_t s = 0; s < 12; ++s) {
        CAPTURE(s);
        const auto reads = frost::host::reads();
        step(r, task);
        CHECK(frost::host::reads() - reads == ((s == 7 || s == 11) ? 1 : 0));
      }
      CHECK(r.ctl.num_frozen() == 0);
      CHECK(r.ctl.timeline().empty());
      for (double p : r.ctl.criterion().probabilities()) {
        CHECK(std::isfinite(p));
        CHECK(p < 1e-6);
      }
    }
  }

  TEST_CASE("AttentionPredictor through the controller: a checkpoint resumes the same decisions") {
    const Files files;
    const auto task = frost_test::make_task(32, at::kCPU);
    const auto opts = ctl_options(AttentionPredictorOptions().predictor(files.random).seed(3));
    // uninterrupted: probabilities after the stages at steps 7 and 11
    Rig whole(opts);
    std::vector<std::vector<double>> want;
    for (std::int64_t s = 0; s < 12; ++s) {
      step(whole, task);
      if (s == 7 || s == 11) want.push_back(whole.ctl.criterion().probabilities());
    }
    REQUIRE(want.size() == 2);
    for (double p : want[0]) CHECK((std::isfinite(p) && p > 0.0 && p < 1.0));  // all judged at 7

    // cut before step 6 (the ring has wrapped): model, optimizer, controller
    Rig first(opts);
    for (std::int64_t s = 0; s < 6; ++s) step(first, task);
    torch::serialize::OutputArchive ar, m, o, f;
    first.net->save(m);
    first.opt.save(o);
    frost::save(first.ctl, f);
    ar.write("model", m);
    ar.write("optimizer", o);
    ar.write("frost", f);
    std::ostringstream os;
    ar.save_to(os);
    const std::string bytes = os.str();
    auto open = [&](torch::serialize::InputArchive& in, const char* key, torch::serialize::InputArchive& part) {
      std::istringstream is(bytes);
      in.load_from(is);
      in.read(key, part);
    };

    Rig resumed(opts, /*seed=*/99);  // another initialisation: all must come from the file
    {
      torch::serialize::InputArchive in1, in2, in3, mi, oi, fi;
      open(in1, "model", mi);
      resumed.net->load(mi);
      open(in2, "optimizer", oi);
      resumed.opt.load(oi);
      open(in3, "frost", fi);
      frost::load(resumed.ctl, fi, "run.ckpt");
    }
    CHECK(resumed.ctl.step() == 6);
    CHECK(resumed.ctl.criterion().records() == 6);
    CHECK(resumed.ctl.criterion().records_per_block() == first.ctl.criterion().records_per_block());
    std::vector<std::vector<double>> got;
    for (std::int64_t s = 6; s < 12; ++s) {
      step(resumed, task);
      if (s == 7 || s == 11) got.push_back(resumed.ctl.criterion().probabilities());
    }
    REQUIRE(got.size() == 2);
    CHECK(same(got[0], want[0]));
    CHECK(same(got[1], want[1]));
    CHECK(show(resumed.ctl.timeline()) == show(whole.ctl.timeline()));
    CHECK(resumed.ctl.num_frozen() == whole.ctl.num_frozen());

    // another criterion.seed samples other weights: refused, naming the seed
    Rig other(ctl_options(AttentionPredictorOptions().predictor(files.random).seed(4)));
    torch::serialize::InputArchive in, fi;
    open(in, "frost", fi);
    CHECK_FROST_ERROR(frost::load(other.ctl, fi, "run.ckpt"), "seed");
    CHECK(other.ctl.step() == 0);
    CHECK(other.ctl.criterion().records() == 0);
    // another recording cadence would mix histories: refused, naming the option
    Rig cadence(ctl_options(AttentionPredictorOptions().predictor(files.random).record_every(3)));
    torch::serialize::InputArchive in2, fi2;
    open(in2, "frost", fi2);
    CHECK_FROST_ERROR(frost::load(cadence.ctl, fi2, "run.ckpt"), "criterion.record_every");
    CHECK(cadence.ctl.step() == 0);
  }

  TEST_CASE("AttentionPredictor: bad options and missing predictors are clear errors") {
    const Files files;
    using O = AttentionPredictorOptions;
    CHECK_FROST_ERROR(AttentionPredictor(O().threshold(1.5)), "criterion.threshold is 1.5");
    CHECK_FROST_ERROR(AttentionPredictor(O().threshold(0.0)), "criterion.threshold");
    CHECK_FROST_ERROR(AttentionPredictor(O().threshold(std::nan(""))), "criterion.threshold");
    CHECK_FROST_ERROR(AttentionPredictor(O().every(-1)), "criterion.every is -1");
    CHECK_FROST_ERROR(AttentionPredictor(O().record_every(-2)), "criterion.record_every is -2");
    CHECK_FROST_ERROR(AttentionPredictor(O().min_records(-1)), "criterion.min_records is -1");

    // at the controller's construction
    const std::string missing = files.dir + "/no-such-predictor.pt";
    CHECK_FROST_ERROR(Rig(ctl_options(O().predictor(missing))), missing);
    CHECK_FROST_ERROR(Rig(ctl_options(O().predictor(files.always).min_records(6))),
                      "min_records is 6 but the predictor's window holds 5");
    CHECK_FROST_ERROR(Rig(ctl_options(O().predictor(files.always), /*steps_per_epoch=*/0)),
                      "steps_per_epoch");
    CHECK_FROST_ERROR(Rig(ctl_options(O().predictor(files.always).threshold(1.5))), "threshold");

    // no path: $FROST_PREDICTOR
    const char* old = std::getenv("FROST_PREDICTOR");
    const std::string saved = old ? old : "";
    ::setenv("FROST_PREDICTOR", files.always.c_str(), 1);
    {
      Rig r(ctl_options(O()));
      CHECK(r.ctl.criterion().predictor_path() == files.always);
    }
    ::setenv("FROST_PREDICTOR", missing.c_str(), 1);
    CHECK_FROST_ERROR(Rig(ctl_options(O())), missing);
    if (old) ::setenv("FROST_PREDICTOR", saved.c_str(), 1);
    else ::unsetenv("FROST_PREDICTOR");
  }
}
