// criteria::TokenSimilarity (SimFreeze's ATSF): the exact step of every
// trial, revert and freeze on constructed class-token streams whose
// similarities are known (both history modes), classes that never appear, a
// non-finite feature, bad input, a resume mid-phase, and the trial cycle on a
// real model trained with AdamW through the controller.
#include <torch/nn/functional/loss.h>
#include <torch/optim/adamw.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "frost/frost.hpp"
#include "support.hpp"
// last: after every LibTorch header (see doctest_torch.hpp)
#include "doctest_torch.hpp"
#include "frost_checks.hpp"

using frost::BlockState;
using frost::criteria::History;
using frost::criteria::TokenSimilarity;
using frost::criteria::TokenSimilarityOptions;
using frost_test::contains;

namespace {

constexpr std::int64_t D = 8;  // feature width
constexpr std::int64_t K = 3;  // classes

/// Unit prototypes p_c and unit directions q_c orthogonal to them: a feature
/// cos(t) p_c + sin(t) q_c has cosine similarity exactly cos(t) with p_c.
at::Tensor unit(std::int64_t i) {
  auto e = at::zeros({D});
  e[i] = 1.0;
  return e;
}
at::Tensor feature(std::int64_t c, double sim) {
  return unit(c) * sim + unit(c + K) * std::sqrt(std::max(0.0, 1.0 - sim * sim));
}

/// What happened, as the controller would record it: (step, block, action).
using Act = std::tuple<std::int64_t, std::int64_t, std::string>;

std::string show(const std::vector<Act>& acts) {
  std::ostringstream os;
  for (const auto& [step, block, what] : acts) os << step << ":" << block << ":" << what << " ";
  return os.str();
}

/// Drives the criterion as the controller does, over `blocks` training
/// blocks, applying its requests to the block states.
struct Sim {
  Sim(const TokenSimilarityOptions& o, std::int64_t blocks)
      : crit(o), states(static_cast<std::size_t>(blocks), BlockState::training) {
    for (std::int64_t b = 0; b < blocks; ++b) names.push_back("b" + std::to_string(b));
    model = std::make_shared<torch::nn::Module>();
    for (const auto& n : names) model->register_parameter(n, at::zeros({1}));
    map = frost::BlockMap::from_prefixes(*model, names);
    frost::CriterionSetup cs;
    cs.blocks = &map;
    crit.setup(cs);
  }
  frost::StepState state() const {
    frost::StepState s;
    s.step = step;
    s.states = &states;
    return s;
  }
  /// One step with these features (rows) and labels.
  void run(const at::Tensor& f, const at::Tensor& y) {
    crit.observe_features(state(), f, y);
    crit.observe(state());
    frost::Decisions d;
    frost_test::decide_as_controller(crit, state(), d);
    {
      using R = frost::Request;
      for (const auto& it : d.items()) {
        auto& st = states[static_cast<std::size_t>(it.block)];
        if (it.request == R::trial) st = BlockState::trial;
        if (it.request == R::revert) st = BlockState::training;
        if (it.request == R::commit) st = BlockState::frozen;
        acts.emplace_back(step, it.block, it.what());
        details.push_back(it.detail);
      }
    }
    ++step;
  }
  /// One step of samples of classes `cls`, each at similarity `sim` to its
  /// class prototype (1: the prototype itself).
  void run(const std::vector<std::int64_t>& cls, double sim) {
    std::vector<at::Tensor> rows;
    for (auto c : cls) rows.push_back(feature(c, sim));
    run(at::stack(rows), at::tensor(cls, at::kLong));
  }
  TokenSimilarity crit;
  std::vector<BlockState> states;
  std::vector<std::string> names;
  std::shared_ptr<torch::nn::Module> model;
  frost::BlockMap map;
  std::vector<Act> acts;
  std::vector<std::string> details;
  std::int64_t step = 0;
};

/// R = C = 2: recording on steps 4k, 4k+1 (prototypes exactly), comparing on
/// 4k+2, 4k+3 at similarity eta[k]; the k-th decision falls on step 4k+3.
void drive(Sim& sim, const std::vector<double>& etas, const std::vector<std::int64_t>& rec = {0, 1, 2},
           const std::vector<std::int64_t>& cmp = {0, 1, 2}) {
  for (double eta : etas) {
    sim.run(rec, 1.0);
    sim.run(rec, 1.0);
    sim.run(cmp, eta);
    sim.run(cmp, eta);
  }
}

TokenSimilarityOptions opts(History h = History::global) {
  return TokenSimilarityOptions().record_steps(2).compare_steps(2).num_classes(K).history(h);
}

}  // namespace

TEST_SUITE("token similarity") {
  TEST_CASE("TokenSimilarity: global history, the printed algorithm, step by step") {
    Sim sim(opts(), 3);
    drive(sim, {0.9, 0.95, 0.95, 0.9, 0.99, 0.98});
    const std::vector<Act> want{
        {1, 0, "trial"},  {3, 0, "revert"},   // first comparison never freezes
        {5, 0, "trial"},  {7, 0, "revert"},   // 0.95 > 0.9
        {9, 0, "trial"},  {11, 0, "commit"},  // 0.95 <= 0.95: frozen, on to block 1
        {13, 1, "trial"}, {15, 1, "commit"},  // 0.9 <= 0.95 (the previous phase's, block 0's)
        {17, 2, "trial"}, {19, 2, "revert"},  // 0.99 > 0.9
        {21, 2, "trial"}, {23, 2, "commit"},  // 0.98 <= 0.99
    };
    CHECK(show(sim.acts) == show(want));
    CHECK(sim.crit.done());  // no block left
    CHECK(sim.crit.eta() == doctest::Approx(0.98));
    CHECK(contains(sim.details[11], "eta 0.98"));
    CHECK(contains(sim.details[11], "eta_prev 0.99"));
    // nothing more happens
    drive(sim, {0.5});
    CHECK(sim.acts.size() == want.size());
  }

  TEST_CASE("TokenSimilarity: per-block history, rising then flat similarity") {
    SUBCASE("per_block: each block's first comparison never freezes") {
      Sim sim(opts(History::per_block), 2);
      drive(sim, {0.9, 0.95, 0.95, 0.9, 0.99, 0.98});
      const std::vector<Act> want{
          {1, 0, "trial"},  {3, 0, "revert"},  {5, 0, "trial"},  {7, 0, "revert"},
          {9, 0, "trial"},  {11, 0, "commit"},                 // 0.95 <= 0.95
          {13, 1, "trial"}, {15, 1, "revert"},                 // block 1's first
          {17, 1, "trial"}, {19, 1, "revert"},                 // 0.99 > 0.9
          {21, 1, "trial"}, {23, 1, "commit"},                 // 0.98 <= 0.99
      };
      CHECK(show(sim.acts) == show(want));
    }
    SUBCASE("similarity rising, then flat: frozen when it stops rising") {
      for (auto h : {History::global, History::per_block}) {
        CAPTURE(frost::criteria::to_string(h));
        Sim sim(opts(h), 3);
        drive(sim, {0.5, 0.6, 0.7, 0.8, 0.8, 0.8});
        std::vector<Act> want{{1, 0, "trial"},  {3, 0, "revert"},  {5, 0, "trial"},
                              {7, 0, "revert"}, {9, 0, "trial"},   {11, 0, "revert"},
                              {13, 0, "trial"}, {15, 0, "revert"}, {17, 0, "trial"},
                              {19, 0, "commit"},                   // 0.8 <= 0.8
                              {21, 1, "trial"}};
        // global: block 1 is compared with block 0's last eta and freezes at once;
        // per_block: its first comparison
        want.emplace_back(23, 1, h == History::global ? "commit" : "revert");
        CHECK(show(sim.acts) == show(want));
      }
    }
  }

  TEST_CASE("TokenSimilarity: classes never seen, no compared sample, a non-finite feature") {
    SUBCASE("a class that never appears, and one seen only while comparing") {
      Sim sim(opts(), 2);
      // class 2 is never recorded; comparing samples of class 2 are skipped, so
      // eta is that of classes 0 and 1 only
      drive(sim, {0.9, 0.8}, {0, 1}, {0, 1, 2});
      const std::vector<Act> want{{1, 0, "trial"}, {3, 0, "revert"}, {5, 0, "trial"}, {7, 0, "commit"}};
      CHECK(show(sim.acts) == show(want));
      CHECK(sim.crit.eta() == doctest::Approx(0.8));
    }
    SUBCASE("a comparing phase with no sample of a recorded class: warning, revert, eta_prev kept") {
      Sim sim(opts(), 2);
      drive(sim, {0.9});
      drive(sim, {0.1}, {0, 1}, {2});  // only class 2, never recorded in this phase
      drive(sim, {0.85});
      const std::vector<Act> want{{1, 0, "trial"}, {3, 0, "revert"}, {5, 0, "trial"},
                                  {7, 0, "warn"},  {7, 0, "revert"}, {9, 0, "trial"},
                                  {11, 0, "commit"}};  // 0.85 <= 0.9: eta_prev was kept
      CHECK(show(sim.acts) == show(want));
      CHECK(contains(sim.details[3], "no sample"));
    }
    SUBCASE("a NaN feature: warning, revert, eta_prev kept") {
      Sim sim(opts(), 2);
      drive(sim, {0.9});
      sim.run({0, 1, 2}, 1.0);
      sim.run({0, 1, 2}, 1.0);
      auto f = at::stack({feature(0, 0.5), feature(1, 0.5)});
      f[0][0] = std::numeric_limits<double>::quiet_NaN();
      sim.run(f, at::tensor(std::vector<std::int64_t>{0, 1}, at::kLong));
      sim.run({0, 1}, 0.5);
      drive(sim, {0.88});
      const std::vector<Act> want{{1, 0, "trial"}, {3, 0, "revert"}, {5, 0, "trial"},
                                  {7, 0, "warn"},  {7, 0, "revert"}, {9, 0, "trial"},
                                  {11, 0, "commit"}};
      CHECK(show(sim.acts) == show(want));
      CHECK(contains(sim.details[3], "not finite"));
    }
  }

  TEST_CASE("TokenSimilarity: bad input is a clear error") {
    Sim sim(opts(), 2);
    const auto y = at::tensor(std::vector<std::int64_t>{0, 1}, at::kLong);
    CHECK_FROST_ERROR(sim.crit.observe_features(sim.state(), at::zeros({2, D, 1}), y), "[N, D]");
    CHECK_FROST_ERROR(sim.crit.observe_features(sim.state(), at::zeros({3, D}), y), "labels must be [N]");
    CHECK_FROST_ERROR(sim.crit.observe_features(sim.state(), at::zeros({0, D}),
                                                at::zeros({0}, at::kLong)),
                      "empty batch");
    CHECK_FROST_ERROR(sim.crit.observe_features(sim.state(), at::zeros({2, D}), y.to(at::kFloat)),
                      "labels must be integers");
    CHECK_FROST_ERROR(sim.crit.observe_features(
                          sim.state(), at::zeros({2, D}),
                          at::tensor(std::vector<std::int64_t>{0, K}, at::kLong)),
                      "out of range");
    sim.run({0, 1}, 1.0);
    CHECK_FROST_ERROR(sim.crit.observe_features(sim.state(), at::zeros({2, D + 1}), y), "D = 9");
    CHECK_FROST_ERROR(TokenSimilarity(TokenSimilarityOptions()), "num_classes");
    CHECK_FROST_ERROR(TokenSimilarity(TokenSimilarityOptions().num_classes(2).record_steps(0)),
                      "record_steps");
    // epochs need steps_per_epoch
    TokenSimilarity t(TokenSimilarityOptions().num_classes(2).record_epochs(0.5));
    frost::CriterionSetup cs;
    cs.blocks = &sim.map;
    CHECK_FROST_ERROR(t.setup(cs), "steps_per_epoch");
    cs.steps_per_epoch = 40;
    t.setup(cs);
    CHECK(t.record_steps() == 20);  // 0.5 of a 40-step epoch
    // C untouched: the default, 20 steps since it was chosen on the validation
    // split (was 10, chosen on test; token_similarity.hpp, docs/main-job.md)
    CHECK(t.compare_steps() == 20);
    CHECK(TokenSimilarityOptions().record_steps() == 20);
  }

  TEST_CASE("TokenSimilarity: a checkpoint mid-phase resumes the same decisions") {
    const std::vector<double> etas{0.9, 0.95, 0.93, 0.97, 0.96, 0.99};
    Sim whole(opts(), 3);
    drive(whole, etas);
    for (std::int64_t cut : {5, 6, 14}) {
      CAPTURE(cut);
      Sim first(opts(), 3);
      Sim second(opts(), 3);
      // steps before the cut in `first`, then its state into `second`
      auto step_of = [&](Sim& s, std::int64_t i) {
        const std::int64_t k = i / 4, in = i % 4;
        if (in < 2) s.run({0, 1, 2}, 1.0);
        else s.run({0, 1, 2}, etas[static_cast<std::size_t>(k)]);
      };
      for (std::int64_t i = 0; i < cut; ++i) step_of(first, i);
      torch::serialize::OutputArchive out;
      first.crit.save(out);
      std::ostringstream os;
      out.save_to(os);
      torch::serialize::InputArchive in;
      std::istringstream is(os.str());
      in.load_from(is);
      second.crit.load(in);
      second.states = first.states;
      second.step = first.step;
      second.acts = first.acts;
      for (std::int64_t i = cut; i < 24; ++i) step_of(second, i);
      CHECK(show(second.acts) == show(whole.acts));
    }
  }

  TEST_CASE("TokenSimilarity through the controller: a trial keeps Adam's moments, a commit frees them") {
    torch::manual_seed(4);
    const auto task = frost_test::make_task(96, at::kCPU);
    frost_test::Net net;
    auto blocks = frost::BlockMap::detect(*net);
    torch::optim::AdamW opt(frost::param_groups(blocks, *net), torch::optim::AdamWOptions(3e-3));
    using Ctl = frost::FreezeController<TokenSimilarity, frost::schedules::Constant,
                                        frost::stop::AllFrozen>;
    Ctl ctl(net, opt, blocks,
            Ctl::Options().criterion(
                TokenSimilarityOptions().record_steps(3).compare_steps(3).num_classes(3)));
    auto step = [&](bool features = true) {
      ctl.before_step();
      opt.zero_grad();
      std::vector<at::Tensor> outs;
      auto logits = net->forward_collect(task.x, &outs);
      if (features) ctl.observe_features(outs.back(), task.y);  // what the head sees
      torch::nn::functional::cross_entropy(logits, task.y).backward();
      ctl.after_backward();
      opt.step();
      ctl.after_step();
    };
    for (int i = 0; i < 3; ++i) step();
    REQUIRE(ctl.block_state(0) == BlockState::trial);  // end of the first recording (step 2)
    const auto& p = blocks[0].params[0];
    const auto* st = frost::optimizer_state(opt, p);
    REQUIRE(st != nullptr);
    const at::Tensor m = static_cast<const torch::optim::AdamWParamState&>(*st).exp_avg().clone();
    for (int i = 0; i < 2; ++i) step();
    CHECK(at::equal(static_cast<const torch::optim::AdamWParamState&>(*frost::optimizer_state(opt, p))
                        .exp_avg(),
                    m));  // untouched during the trial
    step();  // end of comparing: the first comparison always reverts
    CHECK(ctl.block_state(0) == BlockState::training);
    step();
    CHECK_FALSE(at::equal(static_cast<const torch::optim::AdamWParamState&>(*frost::optimizer_state(opt, p))
                              .exp_avg(),
                          m));  // trains on from the kept moments
    // Run until something commits: its state is released.
    for (int i = 0; i < 120 && ctl.num_frozen() == 0; ++i) step();
    REQUIRE(ctl.num_frozen() > 0);
    for (std::size_t b = 0; b < blocks.size(); ++b)
      if (ctl.is_frozen(b))
        for (const auto& q : blocks[b].params) CHECK_FALSE(frost::has_optimizer_state(opt, q));
    bool trial = false, revert = false, commit = false;
    for (const auto& e : ctl.timeline()) {
      trial = trial || e.kind == frost::EventKind::trial;
      revert = revert || e.kind == frost::EventKind::revert;
      commit = commit || e.kind == frost::EventKind::commit;
      if (e.kind == frost::EventKind::commit) CHECK(contains(e.detail, "eta_prev"));
    }
    CHECK((trial && revert && commit));

    // Forgetting observe_features is an error at the first decision point.
    frost_test::Net net2;
    auto blocks2 = frost::BlockMap::detect(*net2);
    torch::optim::AdamW opt2(frost::param_groups(blocks2, *net2), torch::optim::AdamWOptions(3e-3));
    Ctl ctl2(net2, opt2, blocks2,
             Ctl::Options().criterion(TokenSimilarityOptions().num_classes(3).record_steps(2)));
    ctl2.before_step();
    ctl2.after_step();
    ctl2.before_step();
    CHECK_FROST_ERROR(ctl2.after_step(), "ctl.observe_features(class_token, labels)");
    CHECK_FROST_ERROR(ctl.observe_features(at::zeros({2, 32}), at::zeros({2}, at::kLong)),
                      "outside a step");
  }
}
