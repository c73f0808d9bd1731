#pragma once
// examples/train/model.hpp — the network frost-train fine-tunes: the one seam
// between the trainer and a model family. The trainer talks to a TaskNet
// (the module, the forward pass, the activation cache's forward_range, the
// features the head reads, each block's cost) and never to a ViT or an
// EfficientNet itself.
//
// Which family a run gets is chosen here, once, from --model:
//   tiny | small   the example ViT (examples/common/vit.hpp), pre-trained by
//                  frost-train itself on classes 0-4 (pretraining.hpp,
//                  cached), its head started from zero for classes 5-9;
//   effnet-lite0   ImageNet-pretrained EfficientNet-Lite0
//                  (effnet_net.hpp): no pre-training, the weights file of
//                  scripts/effnet-weights.sh replaces it; the 28x28 grey
//                  images upsampled to --resolution and repeated to three
//                  channels; a new 10-class head started from zero;
//   minilm-l6      sentence-transformers' all-MiniLM-L6-v2, a pretrained
//                  BERT (minilm_net.hpp, examples/common/bert.hpp): the file
//                  of scripts/minilm-weights.sh, token ids in, a new head on
//                  the pooled feature started from zero.
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/serialize.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "vit.hpp"

namespace frost_train {

/// The network one strategy fine-tunes, whatever its family. Block b is the
/// b-th block of BlockMap::detect(module()) (the stem first).
class TaskNet {
 public:
  virtual ~TaskNet() = default;
  /// What frost sees: BlockMap::detect, the optimizer's groups, the
  /// controller, the checkpoint's "model" entry.
  virtual torch::nn::Module& module() = 0;
  /// Logits [B, 10] of a batch of Fashion-MNIST images [B, 1, 28, 28].
  virtual at::Tensor forward(const at::Tensor& images) = 0;
  /// The activation cache's protocol (frost/cache/activation_cache.hpp):
  /// blocks [from, to) on `in` (the images when from == 0); to == -1: on to
  /// the logits.
  virtual at::Tensor forward_range(const at::Tensor& in, std::int64_t from, std::int64_t to) = 0;
  /// What the head reads, from the output of block from-1 (the images when
  /// from == 0): the class token after the final norm (ViT), the globally
  /// pooled output of the head convolution (CNN). The criteria that compare
  /// features (SimFreeze) observe it.
  virtual at::Tensor features_from(const at::Tensor& in, std::int64_t from) = 0;
  /// The classifier on those features.
  virtual at::Tensor head(const at::Tensor& features) = 0;
  /// Forward multiply-adds per sample of each block (accounting.hpp).
  virtual std::vector<double> block_macs() const = 0;
};

// --- the ViT family (tiny, small) ------------------------------------------------

inline bool is_vit_model(const std::string& name) { return name == "tiny" || name == "small"; }

inline frost_examples::ViTOptions model_options(const std::string& name) {
  if (name == "small") return frost_examples::ViTOptions::small_fmnist().dropout(0.0);
  if (name == "tiny") return frost_examples::ViTOptions::tiny().num_classes(10).dropout(0.0);
  throw UsageError("unknown model '" + name + "' (tiny or small)");
}

/// The example ViT behind the seam; its names and checkpoints are the ViT's own.
class ViTNet final : public TaskNet {
 public:
  explicit ViTNet(frost_examples::ViT vit) : vit_(std::move(vit)) {}
  torch::nn::Module& module() override { return *vit_; }
  at::Tensor forward(const at::Tensor& images) override { return vit_->forward(images); }
  at::Tensor forward_range(const at::Tensor& in, std::int64_t from, std::int64_t to) override {
    return vit_->forward_range(in, from, to);
  }
  at::Tensor features_from(const at::Tensor& in, std::int64_t from) override {
    return vit_->class_token_from(in, from);
  }
  at::Tensor head(const at::Tensor& features) override { return vit_->head->forward(features); }
  std::vector<double> block_macs() const override { return vit_->block_macs(); }
  frost_examples::ViT& vit() { return vit_; }

 private:
  frost_examples::ViT vit_;
};

/// The ViT from frost-train's pre-trained weights (`weights`), with a new
/// classifier for the new classes: the pre-trained head only ever saw
/// classes 0-4 and pushed the logits of 5-9 down; it starts from zero (loss
/// ln 10) and the body keeps its features.
inline std::unique_ptr<TaskNet> make_vit_net(const TrainConfig& cfg, const std::string& weights) {
  frost_examples::ViT model(model_options(cfg.model));
  torch::load(model, weights);
  torch::NoGradGuard ng;
  model->head->weight.zero_();
  model->head->bias.zero_();
  return std::make_unique<ViTNet>(std::move(model));
}

}  // namespace frost_train

#include "effnet_net.hpp"
#include "minilm_defaults.hpp"
#include "minilm_net.hpp"

namespace frost_train {

// --- the choice, in one place -----------------------------------------------------

/// Whether frost-train pre-trains this family itself (classes 0-4, cached);
/// otherwise its starting weights come from a file (model_weights_path).
inline bool pretrains_itself(const std::string& model) { return is_vit_model(model); }

/// The network of --model from its starting weights, on the CPU, in train mode.
inline std::unique_ptr<TaskNet> make_task_net(const TrainConfig& cfg, const std::string& weights) {
  if (is_vit_model(cfg.model)) return make_vit_net(cfg, weights);
  if (is_effnet_model(cfg.model)) return make_effnet_net(cfg, weights);
  if (is_minilm_model(cfg.model))
    return make_minilm_net(weights, minilm_num_classes(cfg), minilm_pooling(cfg), minilm_tokens(cfg));
  throw UsageError("unknown model '" + cfg.model + "' (" + model_names() + ")");
}

/// The run header's words for the model.
inline std::string describe_model(const TrainConfig& cfg) {
  if (is_effnet_model(cfg.model)) return describe_effnet(cfg);
  if (is_minilm_model(cfg.model)) return describe_minilm(minilm_pooling(cfg));
  const auto mo = model_options(cfg.model);
  return "ViT-" + cfg.model + " (" + std::to_string(mo.depth()) + " blocks, width " +
         std::to_string(mo.dim()) + ", patch " + std::to_string(mo.patch_size()) + ")";
}

/// The speed-up the verdict under the study table asks for (at most 0.3
/// points lost, above the frontier): 2x on the ViT (the main job's evidence
/// issue), 1.5x on the pretrained CNN (issue 21) and on MiniLM-L6 (issue 33).
inline double target_speedup(const std::string& model) {
  return is_effnet_model(model) || is_minilm_model(model) ? 1.5 : 2.0;
}

/// The family's own budget and strategy settings where the command line left
/// them out (the ViT's are TrainConfig's and strategies.hpp's defaults);
/// `default_strategies`: the strategies are the default or the study's set.
inline void apply_model_defaults(TrainConfig& cfg, bool default_strategies) {
  if (is_effnet_model(cfg.model)) apply_effnet_defaults(cfg, default_strategies);
  if (is_minilm_model(cfg.model)) apply_minilm_defaults(cfg, default_strategies);
}

}  // namespace frost_train
