// examples/common/vit.hpp
//
// A small, self-contained Vision Transformer (ViT) for frost's examples and
// benchmarks.  This header is *example-side* code: it is not part of frost's
// public API and frost itself never includes it.
//
// Works unchanged with LibTorch 1.13 and 2.x: attention is written by hand
// (fused qkv Linear + matmul + softmax), so it does not depend on
// scaled_dot_product_attention (2.x only) or on torch::nn::MultiheadAttention,
// whose C++ behaviour differs between versions.
//
// ---------------------------------------------------------------------------
// Why the parameter *names* matter
// ---------------------------------------------------------------------------
// frost's BlockMap groups parameters into freezable units by their names, as
// produced by torch::nn::Module::named_parameters().  It looks for
//
//     patch_embed.*        the stem (embedding) unit
//     blocks.<N>.*         one unit per transformer block, N = 0..depth-1
//
// and treats everything else (cls_token, pos_embed, norm.*, head.*) as
// belonging to the stem or head.  The layout here mirrors timm's
// VisionTransformer so the same BlockMap rules would apply to a ported timm
// model.  In LibTorch, named_parameters() lists a module's own parameters
// first and then its children in registration order, so the order is:
//
//     cls_token, pos_embed,
//     patch_embed.weight, patch_embed.bias,
//     blocks.0.norm1.{weight,bias}, blocks.0.attn.qkv.{weight,bias},
//     blocks.0.attn.proj.{weight,bias}, blocks.0.norm2.{weight,bias},
//     blocks.0.mlp.fc1.{weight,bias}, blocks.0.mlp.fc2.{weight,bias},
//     blocks.1. ...,
//     norm.{weight,bias}, head.{weight,bias}
//
// (i.e. input-to-output order, which is what progressive front-to-back
// freezing schedules rely on).  Do not rename or reorder registrations
// without updating frost's BlockMap tests.
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace frost_examples {

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------
struct ViTOptions {
  TORCH_ARG(int64_t, image_size) = 28;  // square input, H == W
  TORCH_ARG(int64_t, patch_size) = 7;   // kernel == stride of the patch conv
  TORCH_ARG(int64_t, in_channels) = 1;
  TORCH_ARG(int64_t, num_classes) = 10;
  TORCH_ARG(int64_t, dim) = 64;         // embedding width
  TORCH_ARG(int64_t, depth) = 6;        // number of encoder blocks
  TORCH_ARG(int64_t, heads) = 4;        // dim % heads == 0
  TORCH_ARG(double, mlp_ratio) = 4.0;   // MLP hidden = round(dim * mlp_ratio)
  TORCH_ARG(double, dropout) = 0.0;     // applied after pos-embed, attn
                                        // weights, attn proj and MLP
  TORCH_ARG(double, init_std) = 0.02;   // std of the (truncated) normal init

 public:  // TORCH_ARG leaves the access specifier at private

  // 28x28 Fashion-MNIST, patch 7 -> 16 patches + cls = 17 tokens,
  // dim 64, depth 6, heads 4: ~0.30M parameters.  Trains in minutes on 2
  // CPU cores.
  static ViTOptions tiny() { return ViTOptions(); }

  // ViT-S/16 (dim 384, depth 12, heads 6, mlp 4): 224x224x3, 1000 classes,
  // ~22M parameters.  Chain setters to change the input, e.g.
  //   ViTOptions::small().image_size(28).patch_size(4).in_channels(1)
  //                      .num_classes(10)
  // (see small_fmnist()).
  static ViTOptions small() {
    return ViTOptions()
        .image_size(224)
        .patch_size(16)
        .in_channels(3)
        .num_classes(1000)
        .dim(384)
        .depth(12)
        .heads(6)
        .mlp_ratio(4.0);
  }

  // ViT-S body on 28x28x1 Fashion-MNIST with patch 4 (49 patches + cls),
  // 10 classes: ~21M parameters.
  static ViTOptions small_fmnist() {
    return small().image_size(28).patch_size(4).in_channels(1).num_classes(10);
  }

  // ViT-B/16: 224x224x3, patch 16, dim 768, depth 12, heads 12, mlp 4,
  // 1000 classes: ~86.6M parameters.
  static ViTOptions base() {
    return small().dim(768).heads(12);
  }

  int64_t grid() const { return image_size_ / patch_size_; }
  int64_t num_patches() const { return grid() * grid(); }
  int64_t num_tokens() const { return num_patches() + 1; }  // + cls
  int64_t mlp_hidden() const {
    return static_cast<int64_t>(std::llround(static_cast<double>(dim_) * mlp_ratio_));
  }

  // Throws std::invalid_argument describing the first inconsistency.
  void validate() const {
    auto fail = [](const std::string& m) {
      throw std::invalid_argument("frost_examples::ViTOptions: " + m);
    };
    if (image_size_ <= 0 || patch_size_ <= 0 || in_channels_ <= 0 ||
        num_classes_ <= 0 || dim_ <= 0 || depth_ < 0 || heads_ <= 0)
      fail("sizes must be positive (depth may be 0)");
    if (image_size_ % patch_size_ != 0)
      fail("image_size (" + std::to_string(image_size_) +
           ") must be divisible by patch_size (" + std::to_string(patch_size_) + ")");
    if (dim_ % heads_ != 0)
      fail("dim (" + std::to_string(dim_) + ") must be divisible by heads (" +
           std::to_string(heads_) + ")");
    if (!(mlp_ratio_ > 0.0) || mlp_hidden() <= 0) fail("mlp_ratio must be > 0");
    if (!(dropout_ >= 0.0 && dropout_ < 1.0)) fail("dropout must be in [0, 1)");
    if (!(init_std_ >= 0.0)) fail("init_std must be >= 0");
  }
};

namespace detail {

// Truncated-normal-ish init: N(0, std) clamped to [-2 std, 2 std]
// (the same truncation bounds timm uses, in units of std).
inline void trunc_normal_(at::Tensor t, double std) {
  at::NoGradGuard guard;
  t.normal_(0.0, std);
  if (std > 0.0) t.clamp_(-2.0 * std, 2.0 * std);
}

inline void init_linear(torch::nn::LinearImpl& l, double std) {
  trunc_normal_(l.weight, std);
  if (l.bias.defined()) {
    at::NoGradGuard guard;
    l.bias.zero_();
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Multi-head self-attention: fused qkv projection, (B, heads, T, d) layout.
// Parameters: qkv.{weight,bias}, proj.{weight,bias}.
// ---------------------------------------------------------------------------
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t dim, int64_t heads, double dropout)
      : dim_(dim), heads_(heads), head_dim_(dim / heads),
        scale_(1.0 / std::sqrt(static_cast<double>(dim / heads))), p_(dropout) {
    qkv = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
    proj = register_module("proj", torch::nn::Linear(dim, dim));
  }

  // x: [B, T, dim] -> [B, T, dim]
  at::Tensor forward(const at::Tensor& x) {
    const int64_t B = x.size(0), T = x.size(1);
    // [B, T, 3*dim] -> [B, T, 3, H, d] -> [3, B, H, T, d]
    auto qkv_ = qkv->forward(x).reshape({B, T, 3, heads_, head_dim_}).permute({2, 0, 3, 1, 4});
    auto q = qkv_[0], k = qkv_[1], v = qkv_[2];
    auto attn = at::matmul(q * scale_, k.transpose(-2, -1)).softmax(-1);  // [B,H,T,T]
    if (p_ > 0.0) attn = at::dropout(attn, p_, is_training());
    auto out = at::matmul(attn, v)                 // [B, H, T, d]
                   .transpose(1, 2)                // [B, T, H, d]
                   .reshape({B, T, dim_});
    out = proj->forward(out);
    if (p_ > 0.0) out = at::dropout(out, p_, is_training());
    return out;
  }

  torch::nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int64_t dim_, heads_, head_dim_;
  double scale_, p_;
};
TORCH_MODULE(Attention);

// ---------------------------------------------------------------------------
// GELU MLP. Parameters: fc1.{weight,bias}, fc2.{weight,bias}.
// ---------------------------------------------------------------------------
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden, double dropout) : p_(dropout) {
    fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
  }

  at::Tensor forward(const at::Tensor& x) {
    auto h = at::gelu(fc1->forward(x));
    if (p_ > 0.0) h = at::dropout(h, p_, is_training());
    h = fc2->forward(h);
    if (p_ > 0.0) h = at::dropout(h, p_, is_training());
    return h;
  }

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};

 private:
  double p_;
};
TORCH_MODULE(Mlp);

// ---------------------------------------------------------------------------
// Pre-norm encoder block:  x = x + attn(norm1(x));  x = x + mlp(norm2(x))
// Parameters: norm1.*, attn.qkv.*, attn.proj.*, norm2.*, mlp.fc1.*, mlp.fc2.*
// ---------------------------------------------------------------------------
class EncoderBlockImpl : public torch::nn::Module {
 public:
  explicit EncoderBlockImpl(const ViTOptions& o) {
    norm1 = register_module(
        "norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim()}).eps(1e-6)));
    attn = register_module("attn", Attention(o.dim(), o.heads(), o.dropout()));
    norm2 = register_module(
        "norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim()}).eps(1e-6)));
    mlp = register_module("mlp", Mlp(o.dim(), o.mlp_hidden(), o.dropout()));
  }

  at::Tensor forward(const at::Tensor& x) {
    auto y = x + attn->forward(norm1->forward(x));
    return y + mlp->forward(norm2->forward(y));
  }

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(EncoderBlock);

// ---------------------------------------------------------------------------
// Vision Transformer.
// Input  x: float [B, in_channels, image_size, image_size]
// Output   : logits [B, num_classes] (class-token readout)
// ---------------------------------------------------------------------------
class ViTImpl : public torch::nn::Module {
 public:
  explicit ViTImpl(const ViTOptions& options = ViTOptions::tiny()) : options_(options) {
    options_.validate();
    const auto& o = options_;
    // Own parameters first: named_parameters() lists them before children.
    cls_token = register_parameter("cls_token", at::zeros({1, 1, o.dim()}));
    pos_embed = register_parameter("pos_embed", at::zeros({1, o.num_tokens(), o.dim()}));
    // Children in input-to-output order (see header comment).
    patch_embed = register_module(
        "patch_embed",
        torch::nn::Conv2d(torch::nn::Conv2dOptions(o.in_channels(), o.dim(), o.patch_size())
                              .stride(o.patch_size())));
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < o.depth(); ++i) blocks->push_back(EncoderBlock(o));
    norm = register_module(
        "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim()}).eps(1e-6)));
    head = register_module("head", torch::nn::Linear(o.dim(), o.num_classes()));
    reset_parameters();
  }

  // normal(0, init_std) truncated at 2 std for cls/pos and every Linear
  // weight, zeros for Linear biases, LayerNorm = (1, 0).  The patch conv
  // keeps LibTorch's default (Kaiming-uniform) init, like timm.
  void reset_parameters() {
    const double s = options_.init_std();
    detail::trunc_normal_(cls_token, s);
    detail::trunc_normal_(pos_embed, s);
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* l = m->as<torch::nn::Linear>()) detail::init_linear(*l, s);
      if (auto* ln = m->as<torch::nn::LayerNorm>()) ln->reset_parameters();
    }
  }

  // Embedding: [B, C, H, W] -> tokens [B, 1 + num_patches, dim]
  at::Tensor embed(const at::Tensor& x) {
    check_input(x);
    auto t = patch_embed->forward(x).flatten(2).transpose(1, 2);  // [B, N, dim]
    auto cls = cls_token.expand({t.size(0), -1, -1});
    t = at::cat({cls, t}, 1) + pos_embed;
    if (options_.dropout() > 0.0) t = at::dropout(t, options_.dropout(), is_training());
    return t;
  }

  // Runs embedding + all blocks + final norm.  Returns the normalised token
  // sequence [B, T, dim] (token 0 is the class token).
  // If cls_per_block is non-null it is cleared and receives, after each
  // block i, the class token x[:, 0, :] ([B, dim], *before* the final norm),
  // detached from the autograd graph (for similarity-based criteria).
  at::Tensor forward_features(const at::Tensor& x,
                              std::vector<at::Tensor>* cls_per_block = nullptr) {
    auto t = embed(x);
    if (cls_per_block) {
      cls_per_block->clear();
      cls_per_block->reserve(blocks->size());
    }
    for (size_t i = 0; i < blocks->size(); ++i) {
      t = blocks->ptr<EncoderBlockImpl>(i)->forward(t);
      if (cls_per_block) cls_per_block->push_back(t.select(1, 0).detach());
    }
    return norm->forward(t);
  }

  // Logits [B, num_classes].
  at::Tensor forward(const at::Tensor& x) {
    return head->forward(forward_features(x).select(1, 0));
  }

  // frost's activation-cache protocol (frost/cache/activation_cache.hpp):
  // runs blocks [from, to) in the BlockMap's order -- block 0 is the
  // embedding (patch conv, class token, position embedding: the "stem"),
  // block i the encoder block i-1 -- on `in` (the images when from == 0, else
  // the tokens after block from-1). to == -1: on through the final norm and
  // the head, to the logits.
  at::Tensor forward_range(const at::Tensor& in, int64_t from, int64_t to) {
    const int64_t end = to < 0 ? depth() + 1 : to;
    if (from < 0 || from > end || end > depth() + 1)
      throw std::invalid_argument("frost_examples::ViT::forward_range: blocks [" +
                                  std::to_string(from) + ", " + std::to_string(to) +
                                  ") of 0.." + std::to_string(depth() + 1));
    at::Tensor t = in;
    for (int64_t b = from; b < end; ++b)
      t = b == 0 ? embed(t) : blocks->ptr<EncoderBlockImpl>(static_cast<size_t>(b - 1))->forward(t);
    return to < 0 ? head->forward(norm->forward(t).select(1, 0)) : t;
  }
  // The class token the head sees (after the final norm), from the tokens
  // after block from-1 (the images when from == 0).
  at::Tensor class_token_from(const at::Tensor& in, int64_t from) {
    return norm->forward(forward_range(in, from, depth() + 1)).select(1, 0);
  }

  // Forward multiply-adds per sample of each block in the BlockMap's order
  // (the stem, then the encoder blocks): the weights of a FLOP-weighted work
  // account (examples/train/accounting.hpp). Matrix products only; norms,
  // softmax and additions are a few per cent and left out alike everywhere.
  std::vector<double> block_macs() const {
    const auto& o = options_;
    const double d = static_cast<double>(o.dim()), h = static_cast<double>(o.mlp_hidden());
    const double patches = static_cast<double>(o.num_tokens() - 1);
    const double t = static_cast<double>(o.num_tokens());
    const double k = static_cast<double>(o.in_channels() * o.patch_size() * o.patch_size());
    std::vector<double> macs{patches * k * d};  // the patch convolution
    // qkv and output projections, the T x T scores and their weighted sum, the MLP
    const double block = t * 3 * d * d + t * d * d + 2 * t * t * d + 2 * t * d * h;
    macs.insert(macs.end(), static_cast<std::size_t>(o.depth()), block);
    return macs;
  }

  const ViTOptions& options() const { return options_; }
  int64_t depth() const { return static_cast<int64_t>(blocks->size()); }
  EncoderBlock block(int64_t i) const {
    return EncoderBlock(blocks->ptr<EncoderBlockImpl>(static_cast<size_t>(i)));
  }

  at::Tensor cls_token, pos_embed;
  torch::nn::Conv2d patch_embed{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear head{nullptr};

 private:
  void check_input(const at::Tensor& x) const {
    const auto& o = options_;
    if (x.dim() != 4 || x.size(1) != o.in_channels() || x.size(2) != o.image_size() ||
        x.size(3) != o.image_size()) {
      std::string got = "[";
      for (int64_t i = 0; i < x.dim(); ++i) got += (i ? ", " : "") + std::to_string(x.size(i));
      got += "]";
      throw std::invalid_argument(
          "frost_examples::ViT: expected input [B, " + std::to_string(o.in_channels()) + ", " +
          std::to_string(o.image_size()) + ", " + std::to_string(o.image_size()) + "], got " + got);
    }
  }

  ViTOptions options_;
};
TORCH_MODULE(ViT);

// Number of scalar parameters of a module (optionally only those with
// requires_grad, i.e. not frozen).
inline int64_t count_parameters(const torch::nn::Module& m, bool trainable_only = false) {
  int64_t n = 0;
  for (const auto& p : m.parameters(/*recurse=*/true))
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

}  // namespace frost_examples
