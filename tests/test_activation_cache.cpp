// frost::cache::ActivationCache on the example ViT: training with the cache
// gives the losses and gradients of training without it while the frozen
// prefix grows mid-epoch (entries advanced, never recomputed from the input);
// its budget (how many samples, how many bytes, the rest are misses); the
// refusal on augmented inputs; a shrinking prefix empties it; bad indices.
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdint>
#include <set>
#include <vector>

#include "frost/cache/activation_cache.hpp"
#include "frost/frost.hpp"
#include "vit.hpp"
// last: after every LibTorch header (see doctest_torch.hpp)
#include "doctest_torch.hpp"

namespace {

using frost::cache::ActivationCache;
using frost::cache::ActivationCacheOptions;
namespace fx = frost_examples;

fx::ViTOptions small_vit() { return fx::ViTOptions().depth(4).dim(32).heads(2).mlp_ratio(2.0); }

struct Trace {
  std::vector<double> losses;
  std::vector<at::Tensor> head_grads;  // the head's weight gradient, every step
  frost::cache::CacheStats stats;
};

// 40 images, batch 8 (5 steps per epoch), 3 epochs; the stem and block 1 are
// frozen at step 3, blocks 2 and 3 at step 7: both mid-epoch.
Trace train(bool with_cache, double budget_mb = 64.0) {
  torch::manual_seed(3);
  fx::ViT model(small_vit());
  auto blocks = frost::BlockMap::detect(*model);
  torch::optim::SGD opt(frost::param_groups(blocks, *model), torch::optim::SGDOptions(0.05));
  using Ctl = frost::FreezeController<frost::criteria::AtSteps, frost::schedules::Constant,
                                      frost::stop::Never>;
  Ctl::Options o;
  o.controller().total_steps(15).steps_per_epoch(5);
  o.criterion().blocks({0, 1, 2, 3}).steps({3, 3, 7, 7});
  Ctl ctl(model, opt, blocks, o);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  const auto images = at::randn({40, 1, 28, 28}, gen);
  const auto labels = at::randint(10, {40}, gen);
  ActivationCache cache(40, ActivationCacheOptions().budget_mb(budget_mb));
  Trace t;
  for (int s = 0; s < 15; ++s) {
    // a different order every epoch, as a shuffling loader gives
    const auto perm = at::randperm(40, at::make_generator<at::CPUGeneratorImpl>(100 + s / 5));
    const auto idx = perm.narrow(0, (s % 5) * 8, 8);
    const auto x = images.index_select(0, idx);
    const auto y = labels.index_select(0, idx);
    ctl.before_step();
    opt.zero_grad();
    at::Tensor logits;
    if (with_cache) {
      const std::int64_t k = ctl.frozen_prefix();
      logits = model->forward_range(cache.activations(model, idx, x, k), k, frost::cache::kOutput);
    } else {
      logits = model->forward(x);
    }
    auto loss = torch::nn::functional::cross_entropy(logits, y);
    loss.backward();
    ctl.after_backward();
    opt.step();
    ctl.after_step();
    t.losses.push_back(loss.item<double>());
    t.head_grads.push_back(model->head->weight.grad().clone());
  }
  t.stats = cache.stats();
  return t;
}

}  // namespace

TEST_CASE("activation cache: same losses and gradients, prefix grown mid-epoch") {
  const Trace plain = train(false);
  const Trace cached = train(true);
  REQUIRE(cached.losses.size() == plain.losses.size());
  for (std::size_t s = 0; s < plain.losses.size(); ++s) {
    CAPTURE(s);
    CHECK(cached.losses[s] == doctest::Approx(plain.losses[s]).epsilon(1e-5));
    CHECK(at::allclose(cached.head_grads[s], plain.head_grads[s], 1e-4, 1e-6));
  }
  const auto& st = cached.stats;
  CHECK(st.depth == 4);             // stem + blocks 1..3 frozen for good
  CHECK(st.cached_samples == 40);   // every sample seen since step 3
  // Steps 3-6 run at depth 2, steps 7-14 at depth 4. At step 7 the samples
  // cached at depth 2 were advanced to depth 4, not recomputed.
  std::set<std::int64_t> seen;
  for (int s = 3; s < 7; ++s) {
    const auto perm = at::randperm(40, at::make_generator<at::CPUGeneratorImpl>(100 + s / 5));
    for (std::int64_t i = 0; i < 8; ++i) seen.insert(perm[(s % 5) * 8 + i].item<std::int64_t>());
  }
  CHECK(st.advanced == static_cast<std::int64_t>(seen.size()));
  CHECK(st.hits + st.misses == 12 * 8);
  CHECK(st.misses == 40);           // each sample's prefix ran once, at first sight
  CHECK(st.bytes == 40 * 17 * 32 * 4);  // 17 tokens of width 32, float
}

TEST_CASE("activation cache: the budget bounds the entries, the rest run the prefix") {
  const std::int64_t per_sample = 17 * 32 * 4;
  const double budget_mb = 10.0 * static_cast<double>(per_sample) / (1024.0 * 1024.0);
  const Trace plain = train(false);
  const Trace cached = train(true, budget_mb);
  for (std::size_t s = 0; s < plain.losses.size(); ++s)
    CHECK(cached.losses[s] == doctest::Approx(plain.losses[s]).epsilon(1e-5));
  CHECK(cached.stats.capacity == 10);
  CHECK(cached.stats.cached_samples == 10);
  CHECK(cached.stats.bytes == 10 * per_sample);
  CHECK(cached.stats.misses > 40);  // the 30 samples over the budget miss every time
  const Trace none = train(true, 0.0);  // a budget of 0: nothing is kept, all still right
  CHECK(none.stats.cached_samples == 0);
  CHECK(none.stats.hits == 0);
  CHECK(none.losses.back() == doctest::Approx(plain.losses.back()).epsilon(1e-5));
}

TEST_CASE("activation cache: refuses augmented inputs, bad indices, a shrinking prefix clears") {
  CHECK_THROWS_WITH_AS(ActivationCache(10, ActivationCacheOptions().augmented_inputs(true)),
                       doctest::Contains("one random view"), frost::Error);
  CHECK_THROWS_WITH_AS(ActivationCache(0), doctest::Contains("num_samples is 0"), frost::Error);
  torch::manual_seed(1);
  fx::ViT model(small_vit());
  model->eval();
  ActivationCache cache(4);
  const auto x = at::randn({2, 1, 28, 28});
  CHECK_THROWS_WITH_AS(cache.activations(model, at::tensor({0, 4}), x, 2),
                       doctest::Contains("sample index 4 is outside [0, 4)"), frost::Error);
  CHECK_THROWS_WITH_AS(cache.activations(model, at::tensor({0}), x, 2),
                       doctest::Contains("one sample index per input row"), frost::Error);
  CHECK(at::equal(cache.activations(model, at::tensor({0, 1}), x, 0), x));  // depth 0: the input
  const auto h2 = cache.activations(model, at::tensor({0, 1}), x, 2);
  CHECK(at::allclose(h2, model->forward_range(x, 0, 2)));
  const auto h3 = cache.activations(model, at::tensor({1, 0}), x.flip(0), 3);  // advanced
  CHECK(at::allclose(h3, model->forward_range(x.flip(0), 0, 3), 1e-5, 1e-6));
  CHECK(cache.stats().advanced == 2);
  cache.activations(model, at::tensor({0, 1}), x, 1);  // a block was unfrozen
  CHECK(cache.stats().cleared == 1);
  CHECK(cache.stats().depth == 1);
  CHECK(cache.stats().cached_samples == 2);
}
