// BlockMap on real model layouts: what detect finds on a torchvision-style
// ResNet (stages of residual blocks), a ViT, tests/support.hpp's Net and a
// torch::nn::TransformerEncoder and recurrent models (an LSTM language model:
// one block per layer); stage granularity; coverage; the errors for duplicate
// prefixes and block names; where warnings go.
#include <torch/nn/functional/loss.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/rnn.h>
#include <torch/nn/modules/transformercoder.h>
#include <torch/nn/modules/transformerlayer.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "frost/frost.hpp"
#include "support.hpp"
#include "vit.hpp"  // examples/common (on the test include path)
// last: after every LibTorch header (see doctest_torch.hpp)
#include "doctest_torch.hpp"
#include "frost_checks.hpp"

using frost_test::Net;

namespace {

namespace nn = torch::nn;

// A torchvision-style ResNet as in the public LibTorch ResNet tutorials:
// conv1 3x3 + bn1 stem, stages layer1..layer3 (Sequentials of BasicBlocks),
// average pooling, fc.
struct BasicBlockImpl : nn::Module {
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride)
      : conv1(register_module(
            "conv1", nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)))),
        bn1(register_module("bn1", nn::BatchNorm2d(out))),
        conv2(register_module(
            "conv2", nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)))),
        bn2(register_module("bn2", nn::BatchNorm2d(out))) {
    if (stride != 1 || in != out)
      downsample = register_module(
          "downsample",
          nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)),
                         nn::BatchNorm2d(out)));
  }
  at::Tensor forward(const at::Tensor& x) {
    auto out = at::relu(bn1(conv1(x)));
    out = bn2(conv2(out));
    return at::relu(out + (downsample ? downsample->forward(x) : x));
  }
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

struct ResNetImpl : nn::Module {
  /// `transition`: a BatchNorm2d "mid" registered between layer1 and layer2
  /// (parameters between stages that belong to no stage).
  explicit ResNetImpl(std::vector<int64_t> depths = {2, 2, 2}, int64_t classes = 10,
                      bool transition = false)
      : conv1(register_module("conv1",
                              nn::Conv2d(nn::Conv2dOptions(3, 16, 3).padding(1).bias(false)))),
        bn1(register_module("bn1", nn::BatchNorm2d(16))) {
    layer1 = register_module("layer1", make_layer(16, depths[0], 1));
    if (transition) mid = register_module("mid", nn::BatchNorm2d(channels_));
    layer2 = register_module("layer2", make_layer(32, depths[1], 2));
    layer3 = register_module("layer3", make_layer(64, depths[2], 2));
    fc = register_module("fc", nn::Linear(64, classes));
  }
  at::Tensor forward(const at::Tensor& x) {
    auto h = at::relu(bn1(conv1(x)));
    h = layer1->forward(h);
    if (mid) h = mid(h);
    h = layer3->forward(layer2->forward(h));
    h = at::adaptive_avg_pool2d(h, {1, 1}).flatten(1);
    return fc(h);
  }
  nn::Sequential make_layer(int64_t out, int64_t blocks, int64_t stride) {
    nn::Sequential layer;
    for (int64_t i = 0; i < blocks; ++i) {
      layer->push_back(BasicBlock(channels_, out, i == 0 ? stride : 1));
      channels_ = out;
    }
    return layer;
  }
  int64_t channels_ = 16;
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr};
  nn::BatchNorm2d mid{nullptr};
  nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet);

/// A model around a ResNet: the stages sit one level down ("backbone.layer1").
struct WrappedImpl : nn::Module {
  WrappedImpl()
      : backbone(register_module("backbone", ResNet())),
        head(register_module("head", nn::Linear(10, 2))) {}
  ResNet backbone;
  nn::Linear head;
};
TORCH_MODULE(Wrapped);

/// VGG-like: a `features` Sequential and an unnumbered `classifier` Sequential.
struct VggLikeImpl : nn::Module {
  VggLikeImpl()
      : features(register_module(
            "features", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(1)),
                                       nn::ReLU(), nn::Conv2d(nn::Conv2dOptions(8, 8, 3).padding(1)),
                                       nn::ReLU()))),
        classifier(register_module("classifier",
                                   nn::Sequential(nn::Linear(8, 16), nn::ReLU(), nn::Linear(16, 3)))) {}
  nn::Sequential features, classifier;
};
TORCH_MODULE(VggLike);

/// embed -> torch::nn::TransformerEncoder (its "layers" ModuleList, a final
/// norm) -> head.
struct TextEncoderImpl : nn::Module {
  explicit TextEncoderImpl(int64_t layers = 3, int64_t dim = 16)
      : embed(register_module("embed", nn::Linear(8, dim))),
        encoder(register_module(
            "encoder",
            nn::TransformerEncoder(
                nn::TransformerEncoderOptions(
                    nn::TransformerEncoderLayerOptions(dim, 2).dim_feedforward(32).dropout(0.0),
                    layers)
                    .norm(nn::AnyModule(nn::LayerNorm(nn::LayerNormOptions({dim}))))))),
        head(register_module("head", nn::Linear(dim, 4))) {}
  at::Tensor forward(const at::Tensor& x) {  // x: [seq, batch, 8]
    return head(encoder(embed(x)).mean(0));
  }
  nn::Linear embed;
  nn::TransformerEncoder encoder;
  nn::Linear head;
};
TORCH_MODULE(TextEncoder);

/// An LSTM language model as the public LibTorch tutorials write it: an
/// embedding, a torch::nn::LSTM holding every layer in one module, a head
/// over the vocabulary.
struct LstmLmImpl : nn::Module {
  explicit LstmLmImpl(int64_t layers, bool bidirectional = false)
      : embed(register_module("embed", nn::Embedding(20, 8))),
        lstm(register_module("lstm", nn::LSTM(nn::LSTMOptions(8, 12)
                                                  .num_layers(layers)
                                                  .batch_first(true)
                                                  .bidirectional(bidirectional)))),
        head(register_module("head", nn::Linear(bidirectional ? 24 : 12, 20))) {}
  at::Tensor forward(const at::Tensor& tokens) {  // [batch, time] -> [batch, time, 20]
    return head(std::get<0>(lstm(embed(tokens))));
  }
  nn::Embedding embed;
  nn::LSTM lstm;
  nn::Linear head;
};
TORCH_MODULE(LstmLm);

using KeptWarnings = frost_test::KeepWarnings;  // tests/support.hpp
using frost_test::WarningGuard;

/// std::cerr into a string while it lives.
struct CaptureCerr {
  CaptureCerr() : old(std::cerr.rdbuf(text.rdbuf())) {}
  ~CaptureCerr() { std::cerr.rdbuf(old); }
  std::ostringstream text;
  std::streambuf* old;
};

std::vector<std::string> names_of(const frost::BlockMap& map) {
  std::vector<std::string> out;
  for (const auto& b : map) out.push_back(b.name);
  return out;
}

std::int64_t numel_of(const nn::Module& m) {
  std::int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

/// Every parameter of the model is in exactly one block or, when it is not,
/// its name starts with one of `outside`.
void check_partition(const nn::Module& model, const frost::BlockMap& map,
                     const std::vector<std::string>& outside) {
  std::vector<std::string> in_blocks;
  for (const auto& b : map) in_blocks.insert(in_blocks.end(), b.param_names.begin(), b.param_names.end());
  for (const auto& item : model.named_parameters()) {
    const auto n = std::count(in_blocks.begin(), in_blocks.end(), item.key());
    bool out = false;
    for (const auto& o : outside)  // `o` itself or a dotted descendant of it
      out = out || item.key() == o || item.key().rfind(o + ".", 0) == 0;
    DOCTEST_INFO("parameter " << item.key());
    CHECK(n == (out ? 0 : 1));
  }
}

}  // namespace

TEST_SUITE("block map") {
  TEST_CASE("BlockMap: detect finds every residual block of every ResNet stage, in order") {
    ResNet net;
    const auto map = frost::BlockMap::detect(*net);
    const std::vector<std::string> names{"stem",     "layer1.0", "layer1.1", "layer2.0",
                                         "layer2.1", "layer3.0", "layer3.1"};
    CHECK(names_of(map) == names);
    const std::vector<int> stages{1, 1, 1, 2, 2, 3, 3};  // the stem shares stage 1
    CHECK(map.stages() == stages);
    const std::vector<std::string> stem_prefixes{"conv1", "bn1"};
    CHECK(map[0].prefixes == stem_prefixes);
    const std::vector<std::string> stem_params{"conv1.weight", "bn1.weight", "bn1.bias"};
    CHECK(map[0].param_names == stem_params);
    // The first block of layer2 holds its downsample; blocks know their modules.
    CHECK(std::count(map[3].param_names.begin(), map[3].param_names.end(),
                     "layer2.0.downsample.0.weight") == 1);
    REQUIRE(map[3].modules.size() == 1);
    CHECK(map[3].modules[0].get() == net->layer2[0].get());
    check_partition(*net, map, {"fc"});
    // Only fc is outside.
    const double fc = static_cast<double>(64 * 10 + 10) / static_cast<double>(numel_of(*net));
    CHECK(map.coverage(*net) == doctest::Approx(1.0 - fc));
    CHECK(map.coverage(*net) > 0.99);
    CHECK(map.numel() + 64 * 10 + 10 == numel_of(*net));

    // The map drives a real step: one param group per block plus the head.
    auto groups = frost::param_groups(map, *net);
    CHECK(groups.size() == map.size() + 1);
    auto x = at::randn({4, 3, 8, 8});
    auto y = at::tensor(std::vector<int64_t>{0, 1, 2, 3});
    // Freeze the stem and layer1 the way the controller does.
    for (std::size_t i = 0; i < 3; ++i)
      for (auto p : map[i].params) p.requires_grad_(false);
    auto loss = nn::functional::cross_entropy(net->forward(x), y);
    loss.backward();
    for (std::size_t i = 0; i < map.size(); ++i)
      for (const auto& p : map[i].params) {
        DOCTEST_INFO("block " << map[i].name);
        CHECK(p.grad().defined() == (i >= 3));
      }
    CHECK(net->fc->weight.grad().defined());
    // coverage counts every parameter, frozen or not.
    CHECK(map.coverage(*net) > 0.99);
  }

  TEST_CASE("BlockMap: detect with stage granularity makes one block per ResNet stage") {
    ResNet net;
    const auto map =
        frost::BlockMap::detect(*net, frost::DetectOptions().granularity(frost::Granularity::stages));
    const std::vector<std::string> names{"stem", "layer1", "layer2", "layer3"};
    CHECK(names_of(map) == names);
    const std::vector<int> stages{1, 1, 2, 3};
    CHECK(map.stages() == stages);
    REQUIRE(map[2].modules.size() == 1);
    CHECK(map[2].modules[0].get() == net->layer2.ptr().get());
    check_partition(*net, map, {"fc"});
    const auto by_block = frost::BlockMap::detect(*net);
    CHECK(map.numel() == by_block.numel());
    CHECK(map.coverage(*net) == doctest::Approx(by_block.coverage(*net)));
  }

  TEST_CASE("BlockMap: detect: stages of one block count, and so do parameters between stages") {
    SUBCASE("single-block stages") {
      ResNet net(std::vector<int64_t>{1, 1, 1});
      const auto map = frost::BlockMap::detect(*net);
      const std::vector<std::string> names{"stem", "layer1.0", "layer2.0", "layer3.0"};
      CHECK(names_of(map) == names);
      const std::vector<int> stages{1, 1, 2, 3};
      CHECK(map.stages() == stages);
      check_partition(*net, map, {"fc"});
    }
    SUBCASE("only the first stage has two blocks") {
      ResNet net(std::vector<int64_t>{2, 1, 1});
      const std::vector<std::string> names{"stem", "layer1.0", "layer1.1", "layer2.0",
                                           "layer3.0"};
      CHECK(names_of(frost::BlockMap::detect(*net)) == names);
    }
    SUBCASE("a module between two stages joins the following block") {
      ResNet net(std::vector<int64_t>{2, 2, 2}, 10, /*transition=*/true);
      const auto map = frost::BlockMap::detect(*net);
      const std::vector<std::string> names{"stem",     "layer1.0", "layer1.1", "layer2.0",
                                           "layer2.1", "layer3.0", "layer3.1"};
      REQUIRE(names_of(map) == names);
      const std::vector<std::string> prefixes{"mid", "layer2.0"};
      CHECK(map[3].prefixes == prefixes);
      CHECK(map[3].param_names.front() == "mid.weight");
      check_partition(*net, map, {"fc"});
      const auto staged = frost::BlockMap::detect(
          *net, frost::DetectOptions().granularity(frost::Granularity::stages));
      const std::vector<std::string> staged_prefixes{"mid", "layer2"};
      CHECK(staged[2].prefixes == staged_prefixes);
      check_partition(*net, staged, {"fc"});
    }
    SUBCASE("stages one level down: a model around a ResNet") {
      Wrapped net;
      const auto map = frost::BlockMap::detect(*net);
      const std::vector<std::string> names{
          "stem",            "backbone.layer1.0", "backbone.layer1.1", "backbone.layer2.0",
          "backbone.layer2.1", "backbone.layer3.0", "backbone.layer3.1"};
      CHECK(names_of(map) == names);
      const std::vector<std::string> stem_prefixes{"backbone.conv1", "backbone.bn1"};
      CHECK(map[0].prefixes == stem_prefixes);
      check_partition(*net, map, {"backbone.fc", "head"});
    }
  }

  TEST_CASE("BlockMap: detect keeps its blocks on the ViT, the test Net and an unnumbered head") {
    SUBCASE("ViT: stem = class token, positional embedding, patch embedding") {
      frost_examples::ViT vit(frost_examples::ViTOptions::tiny().depth(4));
      const auto map = frost::BlockMap::detect(*vit);
      const std::vector<std::string> names{"stem", "blocks.0", "blocks.1", "blocks.2",
                                           "blocks.3"};
      CHECK(names_of(map) == names);
      const std::vector<std::string> stem_prefixes{"cls_token", "pos_embed", "patch_embed"};
      CHECK(map[0].prefixes == stem_prefixes);
      CHECK(map.stages() == std::vector<int>(5, 0));  // one stage: left unset
      check_partition(*vit, map, {"norm", "head"});
      const auto staged = frost::BlockMap::detect(
          *vit, frost::DetectOptions().granularity(frost::Granularity::stages));
      const std::vector<std::string> staged_names{"stem", "blocks"};
      CHECK(names_of(staged) == staged_names);
      CHECK(staged.numel() == map.numel());
    }
    SUBCASE("tests/support.hpp's Net") {
      Net net;
      const auto map = frost::BlockMap::detect(*net);
      const std::vector<std::string> names{"stem", "blocks.0", "blocks.1", "blocks.2",
                                           "blocks.3"};
      CHECK(names_of(map) == names);
      CHECK(map[0].prefixes == std::vector<std::string>{"embed"});
      CHECK(map[1].prefixes == std::vector<std::string>{"blocks.0"});
      CHECK(map.numel() == (8 * 32 + 32) + 4 * (32 * 32 + 32 + 2 * 32));
      CHECK(map.stages() == std::vector<int>(5, 0));
      check_partition(*net, map, {"head"});
    }
    SUBCASE("an unnumbered Sequential next to the body is not a stage") {
      VggLike net;
      const auto map = frost::BlockMap::detect(*net);
      // Children without parameters (ReLU) make no block.
      const std::vector<std::string> vgg_names{"features.0", "features.2"};
      CHECK(names_of(map) == vgg_names);
      CHECK(map.stages() == std::vector<int>(2, 0));
      check_partition(*net, map, {"classifier"});
      CHECK(map.coverage(*net) == doctest::Approx(static_cast<double>(numel_of(*net->features)) /
                                                  static_cast<double>(numel_of(*net))));
    }
  }

  TEST_CASE("BlockMap: detect on a torch::nn::TransformerEncoder finds its layers") {
    TextEncoder net;
    const auto map = frost::BlockMap::detect(*net);
    const std::vector<std::string> names{"stem", "encoder.layers.0", "encoder.layers.1",
                                         "encoder.layers.2"};
    CHECK(names_of(map) == names);
    CHECK(map[0].prefixes == std::vector<std::string>{"embed"});
    // The final norm and the head stay outside and train.
    check_partition(*net, map, {"encoder.norm", "head"});
    CHECK(map.coverage(*net) > 0.9);
    auto x = at::randn({5, 2, 8});
    net->forward(x).sum().backward();
    for (const auto& b : map)
      for (const auto& p : b.params) CHECK(p.grad().defined());
  }

  TEST_CASE("BlockMap: coverage is the fraction of the model's parameters in the map") {
    Net net;  // embed 288, blocks 4 x 1120, head 99
    const double total = static_cast<double>(numel_of(*net));
    const auto part = frost::BlockMap::from_prefixes(*net, {"blocks.0", "blocks.1"});
    CHECK(part.coverage(*net) == doctest::Approx(2.0 * 1120.0 / total));
    auto all = frost::BlockMap::from_prefixes(*net, {"embed", "blocks", "head"});
    CHECK(all.coverage(*net) == doctest::Approx(1.0));
    // Frozen parameters still count (coverage must not move as blocks freeze).
    for (auto p : net->parameters()) p.requires_grad_(false);
    CHECK(part.coverage(*net) == doctest::Approx(2.0 * 1120.0 / total));
    // A map of another model owns nothing of this one.
    Net other;
    CHECK(part.coverage(*other) == 0.0);
    CHECK(frost::BlockMap().coverage(*net) == 0.0);
  }

  TEST_CASE("BlockMap: a duplicate prefix or block name is refused and named") {
    Net net;
    CHECK_FROST_ERROR(frost::BlockMap::from_prefixes(*net, {"embed", "blocks.0", "embed"}),
                      "prefix 'embed' is given twice");
    CHECK_FROST_ERROR(frost::BlockMap::from_specs(*net, {{"a", {"blocks.0", "blocks.0"}}}),
                      "block 'a' lists prefix 'blocks.0' twice");
    CHECK_FROST_ERROR(
        frost::BlockMap::from_specs(*net, {{"a", {"blocks.0"}}, {"b", {"blocks.1", "blocks.0"}}}),
        "prefix 'blocks.0' is given to two blocks, 'a' and 'b'");
    CHECK_FROST_ERROR(frost::BlockMap::from_specs(*net, {{"a", {"blocks.0"}}, {"a", {"blocks.1"}}}),
                      "two blocks are named 'a'");
    CHECK_FROST_ERROR(frost::BlockMap::from_prefixes(*net, {"embed"})
                          .append(frost::BlockMap::from_specs(*net, {{"embed", {"blocks.0"}}})),
                      "two blocks are named 'embed'");
    // A failed append leaves the map as it was.
    auto map = frost::BlockMap::from_prefixes(*net, {"embed"});
    CHECK_FROST_ERROR(
        map.append(frost::BlockMap::from_specs(*net, {{"b0", {"blocks.0"}}, {"e", {"embed"}}})),
        "blocks 'embed' and 'e' overlap");
    CHECK(map.size() == 1);
    // The existing checks still hold: nested prefixes of one block are fine,
    // overlapping blocks and unknown prefixes are not.
    const auto nested = frost::BlockMap::from_specs(*net, {{"body", {"blocks", "blocks.1"}}});
    CHECK(nested[0].numel == 4 * (32 * 32 + 32 + 2 * 32));
    CHECK_FROST_ERROR(frost::BlockMap::from_specs(*net, {{"a", {"blocks"}}, {"b", {"blocks.1"}}}),
                      "blocks 'a' and 'b' overlap");
    CHECK_FROST_ERROR(frost::BlockMap::from_prefixes(*net, {"blokcs.1"}), "'blocks.1'");
  }

  TEST_CASE("BlockMap: detect refuses a model without a ModuleList or Sequential") {
    nn::Linear lin(4, 4);
    CHECK_FROST_ERROR(frost::BlockMap::detect(*lin), "from_children");
    CHECK_FROST_ERROR(frost::BlockMap::detect(*lin), "nor a recurrent torch::nn::LSTM, GRU or RNN");
  }

  TEST_CASE("BlockMap: a recurrent module's layers are blocks (detect, from_children)") {
    const auto layer = [](int k, bool reverse) {
      std::vector<std::string> names;
      for (const char* kind : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"})
        names.push_back(std::string("lstm.") + kind + "_l" + std::to_string(k));
      if (reverse)
        for (const char* kind : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"})
          names.push_back(std::string("lstm.") + kind + "_l" + std::to_string(k) + "_reverse");
      return names;
    };
    SUBCASE("embedding + 2-layer LSTM + head: stem, lstm.l0, lstm.l1; the head trains") {
      LstmLm net(2);
      const auto map = frost::BlockMap::detect(*net);
      CHECK(names_of(map) == std::vector<std::string>{"stem", "lstm.l0", "lstm.l1"});
      CHECK(map[0].param_names == std::vector<std::string>{"embed.weight"});
      CHECK(map[1].param_names == layer(0, false));
      CHECK(map[2].param_names == layer(1, false));
      CHECK(map[1].numel == 4 * 12 * 8 + 4 * 12 * 12 + 2 * 4 * 12);
      check_partition(*net, map, {"head"});
      const auto by_hand = frost::BlockMap::from_children(*net, "lstm");
      CHECK(names_of(by_hand) == std::vector<std::string>{"lstm.l0", "lstm.l1"});
      CHECK(by_hand[1].param_names == layer(1, false));
      const auto staged = frost::BlockMap::detect(
          *net, frost::DetectOptions().granularity(frost::Granularity::stages));
      CHECK(names_of(staged) == std::vector<std::string>{"stem", "lstm"});
      CHECK(staged.numel() == map.numel());
    }
    SUBCASE("bidirectional: a layer's _reverse parameters are in its block") {
      LstmLm net(2, /*bidirectional=*/true);
      const auto map = frost::BlockMap::detect(*net);
      CHECK(names_of(map) == std::vector<std::string>{"stem", "lstm.l0", "lstm.l1"});
      CHECK(map[1].param_names == layer(0, true));
      CHECK(map[2].param_names == layer(1, true));
      check_partition(*net, map, {"head"});
    }
    SUBCASE("one layer (the tutorials' LSTM): stem and lstm.l0, which holds the module") {
      LstmLm net(1);
      const auto map = frost::BlockMap::detect(*net);
      CHECK(names_of(map) == std::vector<std::string>{"stem", "lstm.l0"});
      CHECK(map[1].param_names == layer(0, false));
      CHECK(map[1].prefixes == std::vector<std::string>{"lstm"});
      CHECK(map[1].modules.size() == 1);  // eval_frozen reaches the whole module
    }
    SUBCASE("a GRU and an RNN split the same way; numbered siblings are stages") {
      nn::GRU gru(nn::GRUOptions(4, 6).num_layers(3));
      nn::RNN rnn(nn::RNNOptions(6, 6).num_layers(2));
      // Sequential names its children "0", "1", "2": the GRU and the RNN are
      // a numbered series, as a ResNet's layer1, layer2 (never run here).
      nn::Sequential model(nn::Embedding(10, 4), gru, rnn);
      const auto map = frost::BlockMap::detect(*model);
      CHECK(names_of(map) ==
            std::vector<std::string>{"stem", "1.l0", "1.l1", "1.l2", "2.l0", "2.l1"});
      CHECK(map[3].param_names == std::vector<std::string>{"1.weight_ih_l2", "1.weight_hh_l2",
                                                           "1.bias_ih_l2", "1.bias_hh_l2"});
      CHECK(map.stages() == std::vector<int>{1, 1, 1, 1, 2, 2});
      CHECK(names_of(frost::BlockMap::from_children(*model, "2")) ==
            std::vector<std::string>{"2.l0", "2.l1"});
    }
  }

  TEST_CASE("an LSTM language model under the controller: a frozen layer stays, the next trains") {
    torch::manual_seed(5);
    LstmLm net(2);
    auto blocks = frost::BlockMap::detect(*net);
    REQUIRE(blocks.size() == 3);
    torch::optim::AdamW opt(frost::param_groups(blocks, *net), torch::optim::AdamWOptions(1e-2));
    using Ctl = frost::FreezeController<frost::criteria::Never, frost::schedules::Constant,
                                        frost::stop::Never>;
    Ctl ctl(net, opt, blocks);
    ctl.freeze("lstm.l0");
    const auto copies = [&](std::size_t b) {
      std::vector<at::Tensor> out;
      for (const auto& p : blocks[b].params) out.push_back(p.detach().clone());
      return out;
    };
    const auto stem = copies(0), layer0 = copies(1), layer1 = copies(2);
    const auto tokens = at::randint(0, 20, {4, 6});
    const auto targets = at::randint(0, 20, {4 * 6});
    for (int step = 0; step < 3; ++step) {
      ctl.before_step();
      opt.zero_grad();
      const auto logits = net->forward(tokens).reshape({-1, 20});
      torch::nn::functional::cross_entropy(logits, targets).backward();
      ctl.after_backward();
      opt.step();
      ctl.after_step();
    }
    for (std::size_t i = 0; i < layer0.size(); ++i) {
      CAPTURE(blocks[1].param_names[i]);
      CHECK(at::equal(blocks[1].params[i], layer0[i]));
      CHECK_FALSE(blocks[1].params[i].grad().defined());  // autograd left it out
    }
    for (std::size_t i = 0; i < layer1.size(); ++i) {
      CAPTURE(blocks[2].param_names[i]);
      CHECK_FALSE(at::equal(blocks[2].params[i], layer1[i]));
    }
    // The gradient still flows through the frozen layer to the embedding.
    CHECK_FALSE(at::equal(blocks[0].params[0], stem[0]));
  }

  TEST_CASE("warnings: with c10's default handler on std::cerr (not glog), else to the handler") {
    Net net;
    // blocks.0 alone holds little of the model: the coverage warning at construction
    auto blocks = frost::BlockMap::from_prefixes(*net, {"blocks.0"});
    torch::optim::SGD opt(frost::param_groups(blocks, *net), torch::optim::SGDOptions(0.1));
    using Ctl = frost::FreezeController<frost::criteria::Never, frost::schedules::Constant,
                                        frost::stop::Never>;
    {
      CaptureCerr err;
      Ctl ctl(net, opt, blocks);
      // glog would write to file descriptor 2 with its own header, past std::cerr
      CHECK(frost_test::contains(err.text.str(), "Warning: frost: step 0, controller: the block "
                                                 "map holds"));
    }
    KeptWarnings kept;
    WarningGuard guard(&kept);
    CaptureCerr err;
    Ctl ctl(net, opt, blocks);
    CHECK(err.text.str().empty());
    REQUIRE(kept.messages.size() == 1);
    CHECK(frost_test::contains(kept.messages[0], "frost: step 0, controller: the block map holds"));
  }

  TEST_CASE("a ResNet under the controller: every stage is judged, frozen batch norms stop moving") {
    torch::manual_seed(3);
    ResNet net(std::vector<int64_t>{2, 2, 2});
    auto blocks = frost::BlockMap::detect(*net);
    REQUIRE(blocks.size() == 7);
    torch::optim::AdamW opt(frost::param_groups(blocks, *net), torch::optim::AdamWOptions(1e-3));
    using Ctl = frost::FreezeController<frost::criteria::GradientNormChange,
                                        frost::schedules::Constant, frost::stop::Never>;
    Ctl ctl(net, opt, blocks,
            Ctl::Options().criterion(frost::criteria::GradientNormChangeOptions()
                                         .interval(2)
                                         .min_epochs(0)  // no epochs in this loop
                                         .mode(frost::criteria::FreezeMode::any_order)));
    CHECK(ctl.timeline().empty());  // the map holds the model: no coverage warning
    const auto x = at::randn({8, 3, 12, 12});
    const auto y = at::randint(0, 10, {8});
    auto train_step = [&] {
      net->train();  // the user's loop; before_step() re-applies eval to frozen blocks
      ctl.before_step();
      opt.zero_grad();
      torch::nn::functional::cross_entropy(net->forward(x), y).backward();
      ctl.after_backward();
      opt.step();
      ctl.after_step();
    };
    for (int i = 0; i < 2; ++i) train_step();
    // every block of every stage got a gradient and a norm
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      CAPTURE(blocks[b].name);
      CHECK(std::isfinite(ctl.criterion().norms()[b]));
    }
    for (int i = 0; i < 2; ++i) train_step();
    REQUIRE(ctl.num_frozen() > 0);  // any_order: the blocks below the median froze
    std::size_t frozen_bn = blocks.size();
    for (std::size_t b = 1; b < blocks.size(); ++b)
      if (ctl.is_frozen(b)) frozen_bn = b;
    REQUIRE(frozen_bn < blocks.size());
    auto* block = blocks[frozen_bn].modules.front()->as<BasicBlock>();
    REQUIRE(block != nullptr);
    const at::Tensor mean_before = block->bn1->running_mean.clone();
    for (int i = 0; i < 2; ++i) train_step();
    CHECK_FALSE(block->is_training());
    CHECK(at::equal(block->bn1->running_mean, mean_before));  // statistics frozen too
  }
}
