#pragma once
// Shared helpers for frost's tests: a small real model with the layout frost
// expects (an input-side embedding, a list of blocks, a head), a synthetic but
// learnable classification task, and the list of devices to run on.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/cuda.h>
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <string>
#include <vector>

#include "frost/concepts/criterion.hpp"
#include "frost/host.hpp"

namespace frost_test {

/// What the controller does after a step, for tests that drive a criterion
/// alone: at a decision point, its statistics -> one host read -> decide().
template <class C>
void decide_as_controller(C& crit, const frost::StepState& s, frost::Decisions& out) {
  frost::concepts::commit_step(crit, s);  // the step completed: what it observed joins the statistics
  if (!crit.decision_point(s)) return;
  const at::Tensor t = frost::concepts::statistics_of(crit, s);
  const std::vector<double> v = t.defined() ? frost::host::read(t) : std::vector<double>{};
  crit.decide(s, frost::HostValues(v), out);
}

struct MlpBlockImpl : torch::nn::Module {
  explicit MlpBlockImpl(int64_t dim)
      : norm(register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})))),
        fc(register_module("fc", torch::nn::Linear(dim, dim))),
        drop(register_module("drop", torch::nn::Dropout(0.1))) {}
  at::Tensor forward(const at::Tensor& x) { return x + drop(at::gelu(fc(norm(x)))); }
  torch::nn::LayerNorm norm;
  torch::nn::Linear fc;
  torch::nn::Dropout drop;
};
TORCH_MODULE(MlpBlock);

/// embed -> blocks.0 .. blocks.{depth-1} -> head. Residual blocks, so every
/// block trains; `forward_collect` exposes each block's output for the tests
/// that check which parts of the graph autograd recorded.
struct NetImpl : torch::nn::Module {
  NetImpl(int64_t in = 8, int64_t dim = 32, int64_t depth = 4, int64_t classes = 3)
      : embed(register_module("embed", torch::nn::Linear(in, dim))),
        blocks(register_module("blocks", torch::nn::ModuleList())),
        head(register_module("head", torch::nn::Linear(dim, classes))) {
    for (int64_t i = 0; i < depth; ++i) blocks->push_back(MlpBlock(dim));
  }
  at::Tensor forward(const at::Tensor& x) { return forward_collect(x, nullptr); }
  at::Tensor forward_collect(const at::Tensor& x, std::vector<at::Tensor>* outs) {
    at::Tensor h = embed(x);
    if (outs) outs->push_back(h);
    for (const auto& b : *blocks) {
      h = b->as<MlpBlock>()->forward(h);
      if (outs) outs->push_back(h);
    }
    return head(h);
  }
  torch::nn::Linear embed;
  torch::nn::ModuleList blocks;
  torch::nn::Linear head;
};
TORCH_MODULE(Net);

/// A learnable task: labels from a fixed random linear teacher.
struct Task {
  at::Tensor x, y;
};
inline Task make_task(int64_t n, const at::Device& device, int64_t in = 8, int64_t classes = 3,
                      uint64_t seed = 7) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto x = at::randn({n, in}, gen);
  auto w = at::randn({in, classes}, gen);
  auto y = at::argmax(at::matmul(x, w), 1);
  return {x.to(device), y.to(device)};
}

/// Every device this build can train on: CPU always, CUDA when available.
inline std::vector<at::Device> devices() {
  std::vector<at::Device> d{at::kCPU};
  if (torch::cuda::is_available()) d.emplace_back(at::kCUDA);
  return d;
}

inline double accuracy(Net& net, const Task& t) {
  at::NoGradGuard ng;
  net->eval();
  auto acc = (net->forward(t.x).argmax(1) == t.y).to(at::kFloat).mean().item<double>();
  net->train();
  return acc;
}

/// A c10 warning handler that keeps what it is given (LibTorch 1.x and 2.x
/// differ in its signature and in where the guard lives).
struct KeepWarnings : c10::WarningHandler {
#if TORCH_VERSION_MAJOR >= 2
  void process(const c10::Warning& w) override { messages.push_back(w.msg()); }
#else
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override {
    messages.push_back(msg);
  }
#endif
  std::vector<std::string> messages;
};
#if TORCH_VERSION_MAJOR >= 2
using WarningGuard = c10::WarningUtils::WarningHandlerGuard;
#else
using WarningGuard = c10::Warning::WarningHandlerGuard;
#endif

}  // namespace frost_test
