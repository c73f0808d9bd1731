// scripts/block_costs.cpp — the measured share f of the forward work held by
// each block prefix of frost-train's two models (docs/where-frost-pays.md, the
// cost model of issue 32). One thread, random weights (the cost of a block does
// not depend on its values), frost-train's batch and input sizes:
//
//   ViT-tiny      batch 128, 28x28x1 (stem = patch conv, 6 encoder blocks)
//   EffNet-Lite0  batch 32, 64x64x3 (stem incl. the upsampling, 16 MBConv blocks)
//
// For each prefix depth k (blocks [0, k) frozen, their output served as the
// activation cache serves it: a stored tensor), the median time of one
// training step (forward of [k, end) + head, loss, backward, AdamW over what
// trains; the frozen blocks in eval mode) and of the prefix's no-grad forward
// (what the cache's fill costs in the first epoch). Prints CSV.
//
//   bash scripts/block-costs.sh            # builds with the flags of build/ and runs
#include <torch/nn/functional/loss.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "efficientnet.hpp"
#include "frost/block_map.hpp"
#include "vit.hpp"

namespace fx = frost_examples;
namespace F = torch::nn::functional;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double time_of(const std::function<void()>& f, int reps) {
  f();  // warm
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(t);
}

// fr(in, from, to): the model's forward_range (to = -1: the logits).
template <class M, class Fr>
void measure(const char* name, M& model, Fr fr, const at::Tensor& x, const std::vector<double>& macs,
             const std::vector<int64_t>& ks, int reps) {
  auto blocks = frost::BlockMap::detect(*model);
  const auto labels = torch::randint(0, 10, {x.size(0)}, torch::kLong);
  const int64_t n = static_cast<int64_t>(macs.size());
  double total_macs = 0;
  for (double m : macs) total_macs += m;
  double full_step = 0;
  for (const int64_t k : ks) {
    model->train();
    for (auto& p : model->parameters()) p.set_requires_grad(true);
    for (int64_t b = 0; b < k; ++b) {
      for (auto& p : blocks[static_cast<size_t>(b)].params) p.set_requires_grad(false);
      for (auto& m : blocks[static_cast<size_t>(b)].modules) m->eval();
    }
    at::Tensor h;
    {
      torch::NoGradGuard ng;
      h = k == 0 ? x : fr(x, 0, k);
    }
    std::vector<at::Tensor> train_params;
    for (auto& p : model->parameters())
      if (p.requires_grad()) train_params.push_back(p);
    torch::optim::AdamW opt(train_params, torch::optim::AdamWOptions(1e-4));
    const double step = time_of(
        [&] {
          opt.zero_grad();
          auto loss = F::cross_entropy(fr(h, k, -1), labels);
          loss.backward();
          opt.step();
        },
        reps);
    const double fill = k == 0 ? 0.0 : time_of([&] {
      torch::NoGradGuard ng;
      (void)fr(x, 0, k);
    }, reps);
    if (k == 0) full_step = step;
    double prefix_macs = 0;
    for (int64_t b = 0; b < k; ++b) prefix_macs += macs[static_cast<size_t>(b)];
    std::printf("%s,%lld,%lld,%.4f,%.2f,%.2f,%.4f,%.4f\n", name, static_cast<long long>(k),
                static_cast<long long>(n), prefix_macs / total_macs, step * 1e3, fill * 1e3,
                full_step > 0 ? 1.0 - step / full_step : 0.0, full_step > 0 ? fill / full_step : 0.0);
    std::fflush(stdout);
  }
}

}  // namespace

int main() {
  at::set_num_threads(1);
  torch::manual_seed(0);
  std::printf("model,k,blocks,f_macs,step_ms,prefix_fwd_ms,f_time,fill_over_full_step\n");
  {
    fx::ViT vit(fx::ViTOptions::tiny().num_classes(10).dropout(0.0));
    const auto x = torch::randn({128, 1, 28, 28});
    measure("vit-tiny", vit,
            [&](const at::Tensor& in, int64_t a, int64_t b) { return vit->forward_range(in, a, b); },
            x, vit->block_macs(), {0, 1, 2, 3, 4, 5, 6, 7}, 15);
  }
  {
    const int64_t r = 64;
    fx::EfficientNet net(fx::EfficientNetOptions::lite0(10, r).dropout(0.0).drop_connect(0.0).bn_momentum(0.1));
    const auto x = torch::randn({32, 1, 28, 28});
    auto up = [&](const at::Tensor& in) {
      return F::interpolate(in, F::InterpolateFuncOptions()
                                    .size(std::vector<int64_t>{r, r})
                                    .mode(torch::kBilinear)
                                    .align_corners(false))
          .expand({-1, 3, -1, -1});
    };
    measure("effnet-lite0", net,
            [&](const at::Tensor& in, int64_t a, int64_t b) {
              return net->forward_range(a == 0 ? up(in) : in, a, b);
            },
            x, net->block_macs(), {0, 1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 17}, 5);
  }
  return 0;
}
