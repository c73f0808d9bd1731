// Pretrained weights (issue 21): frost::load_state_dict / save_state_dict on
// safetensors files the tests write themselves (each refusal names the file,
// the key and the fix, and leaves the module unchanged; renamed keys through
// the hook; the non-strict report), the example EfficientNet-Lite0 (its names
// and sizes are the pretrained file's; a bit-exact round trip; the real
// converted weights when scripts/effnet-weights.sh has made them: bit for bit
// against the .pth's hashes and the package's own Python forward), what every
// criterion reads on this CNN, frozen blocks' batch-norm statistics, and the
// activation cache on its feature maps. Small inputs (32x32) keep it fast.
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bert.hpp"
#include "efficientnet.hpp"
#include "frost/cache/activation_cache.hpp"
#include "frost/frost.hpp"
#include "frost/predictor.hpp"
#include "frost/state_dict.hpp"
// last: after every LibTorch header (see doctest_torch.hpp)
#include "doctest_torch.hpp"
#include "frost_checks.hpp"

namespace {

namespace fx = frost_examples;
namespace fs = std::filesystem;
using Named = std::vector<std::pair<std::string, at::Tensor>>;

// conv -> bn -> fc: parameters and batch-norm buffers (num_batches_tracked is int64).
struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3).bias(false)));
    bn = register_module("bn", torch::nn::BatchNorm2d(4));
    fc = register_module("fc", torch::nn::Linear(4, 2));
    at::NoGradGuard ng;
    bn->running_mean.normal_();
    bn->running_var.uniform_(0.5, 2.0);
    bn->num_batches_tracked.fill_(7);
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(Tiny);

Named snapshot(const torch::nn::Module& m) {
  Named out;
  for (const auto& [k, v] : frost::detail::named_state(m)) out.emplace_back(k, v.detach().clone());
  return out;
}

// Bit-for-bit equality of every parameter and buffer with a snapshot.
bool same_state(const torch::nn::Module& m, const Named& snap) {
  const auto now = frost::detail::named_state(m);
  if (now.size() != snap.size()) return false;
  for (std::size_t i = 0; i < now.size(); ++i) {
    const auto& a = now[i].second;
    const auto& b = snap[i].second;
    if (now[i].first != snap[i].first || a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type())
      return false;
    const auto n = static_cast<std::size_t>(a.numel() * a.element_size());
    if (std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(), n) != 0) return false;
  }
  return true;
}

std::string temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "frost_test_pretrained";
  fs::create_directories(dir);
  return (dir / name).string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors image from a header written by hand and a data buffer.
std::string image(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return out + header + data;
}

// The module's state as the file would hold it, with edits.
Named state_of(const torch::nn::Module& m) {
  Named out;
  for (const auto& [k, v] : frost::detail::named_state(m)) out.emplace_back(k, v.detach().clone());
  return out;
}

std::string fnv_hex(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kCPU).contiguous();
  return frost::io::detail::hex64(frost::io::detail::fnv1a64(
      static_cast<const unsigned char*>(c.data_ptr()), static_cast<std::size_t>(c.numel() * c.element_size())));
}

// A module changed by a failed load is the bug these tests look for: every
// refusal is checked for its message *and* for the module left as it was.
#define CHECK_REFUSED(module, snap, expr, ...)                                   \
  do {                                                                           \
    for (const char* part_ : {__VA_ARGS__}) CHECK_FROST_ERROR(expr, part_);      \
    DOCTEST_CHECK(same_state(*(module), snap));                                  \
  } while (0)

fx::EfficientNetOptions small_effnet(int64_t classes = 10) {
  return fx::EfficientNetOptions().num_classes(classes).image_size(32);
}

// max |a - b| / max |b|: the normwise relative difference.
double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  const double scale = b.abs().max().item<double>();
  return (a - b).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
}

// The tiny BERT of scripts/minilm_reference.py's fixture (tests/data/minilm-tiny*.safetensors).
fx::BertOptions tiny_bert() {
  return fx::BertOptions().vocab_size(40).hidden(16).layers(2).heads(4).intermediate(32).max_positions(24);
}
std::string bert_fixture(const std::string& name) { return std::string(FROST_TEST_DATA_DIR) + "/" + name; }

void fill_grads(const frost::Block& b, double value) {
  for (const auto& p : b.params)
    if (p.requires_grad()) p.mutable_grad() = at::full_like(p, value);
}

}  // namespace

TEST_SUITE("pretrained") {
  // --- the importer -----------------------------------------------------------
  TEST_CASE("safetensors: frost's files round-trip every dtype, bit for bit") {
    Named t{{"f64", at::randn({2, 3}, at::kDouble)}, {"f32", at::randn({4})},
            {"f16", at::randn({3}).to(at::kHalf)}, {"bf16", at::randn({3}).to(at::kBFloat16)},
            {"i64", at::arange(5, at::kLong)}, {"i32", at::arange(3, at::kInt)},
            {"u8", at::arange(4, at::kByte)}, {"b", at::arange(2, at::kByte).to(at::kBool)},
            {"scalar", at::scalar_tensor(7, at::kLong)}, {"empty", at::zeros({0, 3})},
            {"name \"with\" quotes\\", at::ones({1})}};
    const std::string path = temp_path("dtypes.safetensors");
    frost::io::write_safetensors(path, t, {{"note", "caf\xC3\xA9 \"x\""}});
    const auto back = frost::io::read_safetensors(path);
    REQUIRE(back.tensors.size() == t.size());
    for (std::size_t i = 0; i < t.size(); ++i) {
      CAPTURE(t[i].first);
      CHECK(back.tensors[i].first == t[i].first);  // data order = the order written
      CHECK((back.tensors[i].second.scalar_type() == t[i].second.scalar_type()));
      CHECK(back.tensors[i].second.sizes() == t[i].second.sizes());
      CHECK(fnv_hex(back.tensors[i].second) == fnv_hex(t[i].second));
    }
    CHECK(back.metadata.at("note") == "caf\xC3\xA9 \"x\"");
    CHECK(back.metadata.count(frost::io::kChecksumKey) == 1);
    // a header as other writers make it: escapes, spaces, metadata first, no checksum
    const std::string h =
        "{ \"__metadata__\" : {\"format\":\"pt\"},\n \"a\\u00e9\\/b\": {\"dtype\":\"I32\", \"shape\":[2],"
        " \"data_offsets\":[0,8]}}   ";
    const std::string data("\x01\x00\x00\x00\xff\xff\xff\xff", 8);
    const auto other = frost::io::parse_safetensors(image(h, data), "other.safetensors");
    REQUIRE(other.tensors.size() == 1);
    CHECK(other.tensors[0].first == "a\xC3\xA9/b");
    CHECK(other.tensors[0].second[0].item<int>() == 1);
    CHECK(other.tensors[0].second[1].item<int>() == -1);
  }

  TEST_CASE("load_state_dict: parameters and batch-norm buffers, bit for bit, renamed keys through the hook") {
    torch::manual_seed(1);
    Tiny src, dst;
    const std::string path = temp_path("tiny.safetensors");
    frost::save_state_dict(*src, path);
    const auto report = frost::load_state_dict(*dst, path);
    CHECK(report.loaded.size() == 8);  // conv.weight, bn.{weight,bias}, fc.{weight,bias}, 3 buffers
    CHECK(report.missing.empty());
    CHECK(report.unexpected.empty());
    CHECK(same_state(*dst, snapshot(*src)));
    CHECK(dst->bn->num_batches_tracked.item<int64_t>() == 7);

    // the file names the modules otherwise ("backbone.*", "classifier.*"): the hook maps them
    Named renamed;
    for (const auto& [k, v] : state_of(*src))
      renamed.emplace_back(k.rfind("fc.", 0) == 0 ? "classifier." + k.substr(3) : "backbone." + k, v);
    const std::string rpath = temp_path("renamed.safetensors");
    frost::io::write_safetensors(rpath, renamed);
    Tiny fresh;
    const Named before = snapshot(*fresh);
    CHECK_REFUSED(fresh, before, frost::load_state_dict(*fresh, rpath), "renamed.safetensors",
                  "'conv.weight'", "rename");
    auto hook = [](const std::string& k) -> std::string {
      if (k.rfind("backbone.", 0) == 0) return k.substr(9);
      if (k.rfind("classifier.", 0) == 0) return "fc." + k.substr(11);
      return k;
    };
    const auto r2 = frost::load_state_dict(*fresh, rpath, frost::LoadOptions().rename(hook));
    CHECK(r2.loaded.size() == 8);
    CHECK(same_state(*fresh, snapshot(*src)));
  }

  TEST_CASE("load_state_dict: non-strict reports missing, unexpected and skipped, allow_missing") {
    torch::manual_seed(2);
    Tiny src, dst;
    Named file;
    for (const auto& [k, v] : state_of(*src))
      if (k != "bn.running_var") file.emplace_back(k, v);
    file.emplace_back("extra.weight", at::ones({2}));
    file.emplace_back("fc.old", at::ones({2}));
    const std::string path = temp_path("partial.safetensors");
    frost::io::write_safetensors(path, file);
    const at::Tensor var_before = dst->bn->running_var.clone();
    auto skip_old = [](const std::string& k) { return k == "fc.old" ? std::string() : k; };
    const auto r = frost::load_state_dict(*dst, path, frost::LoadOptions().strict(false).rename(skip_old));
    CHECK(r.loaded.size() == 7);
    CHECK(r.missing == std::vector<std::string>{"bn.running_var"});
    CHECK(r.unexpected == std::vector<std::string>{"extra.weight"});
    CHECK(r.skipped == std::vector<std::string>{"fc.old"});
    CHECK(r.loaded_numel == 3 * 4 * 9 + 4 + 4 + 2 * 4 + 2 + 4 + 1);
    CHECK(frost_test::contains(r.summary(), "7 tensors loaded"));
    CHECK(dst->conv->weight.equal(src->conv->weight));
    CHECK(dst->bn->running_var.equal(var_before));  // kept its own
    // strict, with the missing part declared as the user's own
    Named no_fc;
    for (const auto& [k, v] : state_of(*src))
      if (k.rfind("fc.", 0) != 0) no_fc.emplace_back(k, v);
    frost::io::write_safetensors(path, no_fc);
    Tiny other;
    const auto r3 = frost::load_state_dict(*other, path, frost::LoadOptions().allow_missing({"fc"}));
    CHECK(r3.loaded.size() == 6);
    CHECK(r3.missing.empty());
  }

  TEST_CASE("load_state_dict refuses, naming the file, the key and the fix, the module is unchanged") {
    torch::manual_seed(3);
    Tiny src, dst;
    const Named before = snapshot(*dst);
    const std::string path = temp_path("bad.safetensors");
    const std::string good = frost::io::serialize_safetensors(state_of(*src));
    auto with = [&](const std::function<void(Named&)>& edit) {
      Named n = state_of(*src);
      edit(n);
      frost::io::write_safetensors(path, n);
      return path;
    };
    SUBCASE("a missing key (strict)") {
      with([](Named& n) { n.erase(n.begin() + 5); });  // a batch-norm buffer
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "bad.safetensors",
                    "'bn.running_mean'", "have no entry", "allow_missing", "strict(false)");
    }
    SUBCASE("an unexpected key (strict)") {
      with([](Named& n) { n.emplace_back("head.weight", at::ones({3})); });
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "bad.safetensors",
                    "'head.weight'", "match no module tensor", "rename");
    }
    SUBCASE("a shape mismatch (also when not strict)") {
      with([](Named& n) { n[3].second = at::ones({3, 4}); });  // fc.weight is [2, 4]
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path, frost::LoadOptions().strict(false)),
                    "bad.safetensors", "'fc.weight'", "[3, 4]", "[2, 4]", "skip the entry");
    }
    SUBCASE("a dtype mismatch") {
      with([](Named& n) { n[3].second = n[3].second.to(at::kDouble); });
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "bad.safetensors", "'fc.weight'",
                    "Double", "Float", "convert");
    }
    SUBCASE("two file keys mapped onto one module tensor") {
      with([](Named&) {});
      auto both = [](const std::string& k) { return k == "fc.bias" ? std::string("bn.bias") : k; };
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path, frost::LoadOptions().rename(both)),
                    "'bn.bias'", "'fc.bias'", "both map");
    }
    SUBCASE("a truncated file") {
      write_bytes(path, good.substr(0, good.size() - 10));
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "bad.safetensors", "out of range",
                    "truncated", "write it again");
      write_bytes(path, good.substr(0, 100));  // inside the header
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "bad.safetensors",
                    "bytes of JSON but the file has only", "truncated");
      write_bytes(path, good.substr(0, 5));
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "fewer than the 8");
    }
    SUBCASE("a corrupt data buffer (the checksum)") {
      std::string bad = good;
      bad[bad.size() - 3] = static_cast<char>(bad[bad.size() - 3] ^ 0x10);
      write_bytes(path, bad);
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "bad.safetensors", "checksum");
      write_bytes(path, good + "xx");
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "2 bytes after the last tensor");
    }
    SUBCASE("a malformed JSON header") {
      for (const std::string& h :
           {std::string("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}"),
            std::string("{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}"),
            std::string("{\"a\": {\"dtype\": F32, \"shape\": [1], \"data_offsets\": [0, 4]}}"),
            std::string("{\"a\": 1, \"a\": 2}"), std::string("{\"a\\q\": 1}"),
            std::string("{} trailing")}) {
        CAPTURE(h);
        write_bytes(path, image(h, std::string(4, '\0')));
        CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "bad.safetensors",
                      "JSON header is malformed", "write it again");
      }
      write_bytes(path, image("[1, 2]", ""));
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "not a JSON object");
      write_bytes(path, image("{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", std::string(4, '\0')));
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "tensor 'a'", "lacks data_offsets");
      write_bytes(path, image("{\"a\": {\"dtype\": \"C64\", \"shape\": [1], \"data_offsets\": [0, 8]}}",
                              std::string(8, '\0')));
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "tensor 'a'", "'C64'", "convert");
      std::string huge = good;
      huge[7] = 0x7f;  // a header length of petabytes
      write_bytes(path, huge);
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "over the format's limit");
    }
    SUBCASE("offsets out of range, not matching the shape, overlapping") {
      const std::string data(16, '\0');
      write_bytes(path, image("{\"fc.bias\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 24]}}", data));
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "bad.safetensors", "'fc.bias'",
                    "out of range", "16 bytes");
      write_bytes(path, image("{\"fc.bias\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 16]}}", data));
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "'fc.bias'", "hold 16 bytes",
                    "need 8");
      write_bytes(path, image("{\"fc.bias\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", data));
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "'fc.bias'", "run backwards");
      write_bytes(path, image("{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 12]},"
                              " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
                              std::string(12, '\0')));
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, path), "overlap");
    }
    SUBCASE("no such file") {
      CHECK_REFUSED(dst, before, frost::load_state_dict(*dst, temp_path("absent.safetensors")),
                    "absent.safetensors", "cannot open");
    }
  }

  // The format indexes every byte of the data buffer: bytes that belong to no
  // tensor are where a polyglot file (one that is also a zip, a PDF, ...) keeps
  // its other content, so the reference reader refuses them and so does frost.
  TEST_CASE("safetensors: the tensors must tile the data buffer, a hole before or between them is refused") {
    const std::string path = temp_path("holes.safetensors");
    auto f32 = [](const std::string& name, int begin, int end) {
      return "\"" + name + "\": {\"dtype\": \"F32\", \"shape\": [" + std::to_string((end - begin) / 4) +
             "], \"data_offsets\": [" + std::to_string(begin) + ", " + std::to_string(end) + "]}";
    };
    const std::string one("\x00\x00\x80\x3f", 4), two("\x00\x00\x00\x40", 4);  // 1.0f, 2.0f
    const std::string other("%PDF", 4);  // what a hole could hide
    auto read = [&](const std::string& header, const std::string& data) {
      write_bytes(path, image(header, data));
      return frost::io::read_safetensors(path);
    };
    auto refused = [&](const std::string& header, const std::string& data,
                       std::initializer_list<const char*> parts) {
      for (const char* part : parts) CHECK_FROST_ERROR(read(header, data), part);
    };
    SUBCASE("tiled: each tensor begins where the previous ends, in any header order") {
      const auto st = read("{" + f32("b", 4, 12) + ", " + f32("a", 0, 4) + "}", one + two + two);
      REQUIRE(st.tensors.size() == 2);
      CHECK(st.tensors[0].first == "a");
      CHECK(st.tensors[0].second[0].item<float>() == 1.0f);
      CHECK(st.tensors[1].second[1].item<float>() == 2.0f);
    }
    SUBCASE("a hole between two tensors") {
      refused("{" + f32("b", 8, 12) + ", " + f32("a", 0, 4) + "}", one + other + two,
              {"holes.safetensors", "bytes [4, 8) between tensor 'a' and tensor 'b'",
               "belong to no tensor", "tile the data buffer", "write it again"});
    }
    SUBCASE("a hole at the start") {
      refused("{" + f32("a", 4, 8) + "}", other + one,
              {"holes.safetensors", "bytes [0, 4) before the first tensor 'a'",
               "belong to no tensor", "the first begins at 0"});
    }
    SUBCASE("an empty tensor inside another (it belongs at a boundary)") {
      refused("{" + f32("a", 0, 8) + ", " + f32("e", 4, 4) + "}", one + two,
              {"holes.safetensors", "tensor 'e' at [4, 4) overlaps tensor 'a' at [0, 8)"});
    }
  }

  // --- the model ----------------------------------------------------------------
  TEST_CASE("EfficientNet-Lite0: the pretrained file's 296 names and 4,694,073 values, 17 blocks") {
    fx::EfficientNet m;  // 1000 classes, 3 channels: the file's shapes
    const auto state = frost::detail::named_state(*m);
    CHECK(state.size() == 296);
    int64_t n = 0;
    std::set<std::string> names;
    for (const auto& [k, v] : state) {
      n += v.numel();
      names.insert(k);
    }
    CHECK(n == 4694073);
    for (const char* k : {"_conv_stem.weight", "_bn0.num_batches_tracked", "_blocks.0._depthwise_conv.weight",
                          "_blocks.0._bn2.running_var", "_blocks.15._expand_conv.weight",
                          "_blocks.3._depthwise_conv.weight", "_conv_head.weight", "_bn1.running_mean",
                          "_fc.bias"})
      CHECK_MESSAGE(names.count(k) == 1, k);
    CHECK(names.count("_blocks.0._expand_conv.weight") == 0);  // expansion 1: none
    CHECK(m->block(3)->depthwise_conv->weight.sizes() == at::IntArrayRef({144, 1, 5, 5}));
    const auto blocks = frost::BlockMap::detect(*m);
    REQUIRE(blocks.size() == 17);
    CHECK(blocks[0].name == "stem");
    CHECK(blocks[1].name == "_blocks.0");
    CHECK(blocks[16].name == "_blocks.15");
    CHECK(blocks[0].param_names == std::vector<std::string>{"_conv_stem.weight", "_bn0.weight", "_bn0.bias"});
    for (const auto& b : blocks)  // the head trains outside the map
      for (const auto& p : b.param_names) CHECK(p.rfind("_fc", 0) != 0);
    const auto stages = frost::BlockMap::from_specs(*m, fx::EfficientNetImpl::stage_specs());
    CHECK(stages.size() == 8);
    CHECK(stages[6].prefixes.size() == 4);  // stage 6: four blocks of 192
    CHECK(m->block_macs().size() == 17);
    // any input size: "SAME" padding gives ceil(size / 32) at the end
    at::NoGradGuard ng;
    m->eval();
    CHECK(m->forward_features(at::zeros({1, 3, 33, 47})).sizes() == at::IntArrayRef({1, 320, 2, 2}));
  }

  TEST_CASE("EfficientNet: a file written from one model loads into another bit for bit, new head kept") {
    torch::manual_seed(4);
    fx::EfficientNet a{fx::EfficientNetOptions()}, b{fx::EfficientNetOptions()};
    {  // batch-norm statistics that are not the defaults
      at::NoGradGuard ng;
      a->train();
      a->forward(at::randn({2, 3, 32, 32}));
    }
    const std::string path = temp_path("effnet.safetensors");
    frost::save_state_dict(*a, path);
    const auto r = frost::load_state_dict(*b, path);
    CHECK(r.loaded.size() == 296);
    CHECK(same_state(*b, snapshot(*a)));
    a->eval();
    b->eval();
    at::NoGradGuard ng;
    const auto x = at::randn({2, 3, 32, 32});
    CHECK(a->forward(x).equal(b->forward(x)));
    // a 10-class head and a 1-channel stem: those keep their own values
    fx::EfficientNet c(fx::EfficientNetOptions().num_classes(10).in_channels(1));
    const at::Tensor fc_before = c->fc->weight.clone(), stem_before = c->conv_stem->weight.clone();
    const auto rc = fx::load_pretrained(*c, path);
    CHECK(rc.loaded.size() == 293);
    CHECK(rc.skipped.size() == 3);
    CHECK(c->fc->weight.equal(fc_before));
    CHECK(c->conv_stem->weight.equal(stem_before));
    CHECK(c->block(15)->project_conv->weight.equal(a->block(15)->project_conv->weight));
  }

  TEST_CASE("EfficientNet-Lite0: the converted ImageNet weights, bit for bit, and the Python model's forward") {
    const std::string path = fx::effnet_weights_path();
    const std::string dir = fs::path(path).parent_path().string();
    if (!fs::exists(path) || !fs::exists(dir + "/efficientnet-lite0.tensors.tsv")) {
      MESSAGE("skipped: no converted weights at " << path
                                                   << " (run scripts/effnet-weights.sh, or set FROST_EFFNET_WEIGHTS)");
      return;
    }
    fx::EfficientNet m;
    const auto r = frost::load_state_dict(*m, path);
    CHECK(r.loaded.size() == 296);
    // every tensor's bytes against the FNV-1a 64 of the .pth's, from effnet_convert.py
    std::map<std::string, at::Tensor> state;
    for (const auto& [k, v] : frost::detail::named_state(*m)) state.emplace(k, v);
    std::ifstream tsv(dir + "/efficientnet-lite0.tensors.tsv");
    std::string line;
    int compared = 0;
    while (std::getline(tsv, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream fields(line);
      std::string name, dtype, shape, hash;
      std::getline(fields, name, '\t');
      std::getline(fields, dtype, '\t');
      std::getline(fields, shape, '\t');
      std::getline(fields, hash, '\t');
      CAPTURE(name);
      REQUIRE(state.count(name) == 1);
      CHECK(fnv_hex(state.at(name)) == hash);
      ++compared;
    }
    CHECK(compared == 296);
    // the package's own Python model (efficientnet-lite-pytorch) on two fixed inputs, eval mode
    const std::string ref = dir + "/efficientnet-lite0.reference.safetensors";
    if (!fs::exists(ref)) return;
    std::map<std::string, at::Tensor> want;
    for (auto& [k, v] : frost::io::read_safetensors(ref).tensors) want.emplace(k, v);
    m->eval();
    at::NoGradGuard ng;
    const at::Tensor feats = m->class_token_from(want.at("input"), 0);
    const at::Tensor logits = m->classify(feats);
    const double dfeat = (feats - want.at("features")).abs().max().item<double>();
    const double dlogit = (logits - want.at("logits")).abs().max().item<double>();
    MESSAGE("C++ vs Python EfficientNet-Lite0: max |diff| features " << dfeat << ", logits " << dlogit
                                                                     << " (logits up to "
                                                                     << want.at("logits").abs().max().item<double>() << ")");
    CHECK(dfeat < 1e-3);
    CHECK(dlogit < 1e-3);
    CHECK(logits.argmax(1).equal(want.at("logits").argmax(1)));
  }

  // --- the criteria on the CNN ------------------------------------------------------
  TEST_CASE("criteria on the CNN: GradientThreshold and GradientNormChange read its blocks' gradients") {
    torch::manual_seed(5);
    fx::EfficientNet m(small_effnet());
    const auto blocks = frost::BlockMap::detect(*m);
    torch::optim::SGD opt(frost::param_groups(blocks, *m), torch::optim::SGDOptions(0.0));
    SUBCASE("GradientThreshold: mean |grad| <= 0.25 freezes the stem and the first four MBConv blocks") {
      using Ctl = frost::FreezeController<frost::criteria::GradientThreshold, frost::schedules::Constant,
                                          frost::stop::Never>;
      Ctl::Options o;
      o.controller().total_steps(4);
      o.criterion().threshold(0.25).window(1);
      Ctl ctl(m, opt, blocks, o);
      ctl.before_step();
      for (std::size_t b = 0; b < blocks.size(); ++b) fill_grads(blocks[b], b < 5 ? -0.1 : 1.0);
      ctl.after_backward();
      ctl.after_step();
      for (std::size_t b = 0; b < blocks.size(); ++b)
        CHECK(ctl.block_state(b) == (b < 5 ? frost::BlockState::frozen : frost::BlockState::training));
      CHECK(ctl.frozen_prefix() == 5);
    }
    SUBCASE("GradientNormChange: the leading blocks whose norm stopped changing") {
      using Ctl = frost::FreezeController<frost::criteria::GradientNormChange, frost::schedules::Constant,
                                          frost::stop::Never>;
      Ctl::Options o;
      o.controller().total_steps(4);
      o.criterion().interval(1).min_epochs(0.0);
      Ctl ctl(m, opt, blocks, o);
      for (int step = 0; step < 2; ++step) {
        ctl.before_step();
        // step 1: blocks 0-2 keep their gradient (eta 0), the rest halve (eta 0.5 = the median)
        for (std::size_t b = 0; b < blocks.size(); ++b) fill_grads(blocks[b], step == 0 || b < 3 ? 1.0 : 0.5);
        ctl.after_backward();
        ctl.after_step();
      }
      CHECK(ctl.frozen_prefix() == 3);
      CHECK(ctl.block_state(3) == frost::BlockState::training);
    }
  }

  TEST_CASE("criteria on the CNN: FreezeOut freezes its 17 blocks front to back, AttentionPredictor judges them") {
    torch::manual_seed(6);
    fx::EfficientNet m(small_effnet());
    const auto blocks = frost::BlockMap::detect(*m);
    torch::optim::SGD opt(frost::param_groups(blocks, *m), torch::optim::SGDOptions(0.01));
    SUBCASE("FreezeOut (cubic, scaled)") {
      using Ctl = frost::FreezeController<frost::criteria::Never,
                                          frost::schedules::FreezeOut<frost::Cubic, frost::Scaled>,
                                          frost::stop::Never>;
      Ctl::Options o;
      o.controller().total_steps(40);
      Ctl ctl(m, opt, blocks, o);
      std::vector<int64_t> frozen_at(blocks.size(), -1);
      for (int step = 0; step < 40; ++step) {
        ctl.before_step();
        for (std::size_t b = 0; b < blocks.size(); ++b)
          if (frozen_at[b] < 0 && ctl.block_state(b) == frost::BlockState::frozen) frozen_at[b] = step;
        ctl.after_step();
      }
      // every block but the last (FreezeOut's t = 1: it anneals to the run's end) froze, in order
      for (std::size_t b = 0; b + 1 < blocks.size(); ++b) {
        CAPTURE(b);
        CHECK(frozen_at[b] >= 0);
        if (b > 0) CHECK(frozen_at[b] >= frozen_at[b - 1]);
      }
      CHECK(frozen_at[0] < frozen_at[15]);
      CHECK(m->fc->weight.requires_grad());  // the head trains on
    }
    SUBCASE("AttentionPredictor: the shipped predictor on the conv and BN weights of every block") {
      using Ctl = frost::FreezeController<frost::criteria::AttentionPredictor, frost::schedules::Constant,
                                          frost::stop::Never>;
      Ctl::Options o;
      o.controller().total_steps(8);
      o.criterion().record_every(1).every(4).min_records(3);
      Ctl ctl(m, opt, blocks, o);
      for (int step = 0; step < 4; ++step) {
        ctl.before_step();
        opt.zero_grad();
        for (std::size_t b = 0; b < blocks.size(); ++b) fill_grads(blocks[b], 0.01 * static_cast<double>(b + 1));
        ctl.after_backward();
        opt.step();
        ctl.after_step();
      }
      const auto& crit = ctl.criterion();
      CHECK(crit.stages() == 1);
      REQUIRE(crit.probabilities().size() == 17);
      for (std::size_t b = 0; b < 17; ++b) {
        CAPTURE(b);
        CHECK(crit.records_per_block()[b] == 3);  // 4 records: the first has no predecessor
        const double p = crit.probabilities()[b];
        CHECK((std::isfinite(p) && p >= 0.0 && p <= 1.0));
      }
    }
  }

  TEST_CASE("criteria on the CNN: TokenSimilarity reads the pooled head features that _fc reads") {
    torch::manual_seed(7);
    fx::EfficientNet m(small_effnet());
    {  // the reading: [B, 1280], what the classifier sees
      at::NoGradGuard ng;
      m->eval();
      const auto x = at::randn({3, 3, 32, 32});
      const at::Tensor cls = m->class_token_from(x, 0);
      CHECK(cls.sizes() == at::IntArrayRef({3, 1280}));
      CHECK(cls.min().item<double>() >= 0.0);  // after ReLU6
      CHECK(cls.max().item<double>() <= 6.0);
      CHECK(at::allclose(m->classify(cls), m->forward(x)));
      const at::Tensor h = m->forward_range(x, 0, 5);
      CHECK(at::allclose(m->class_token_from(h, 5), cls, 1e-5, 1e-6));
      std::vector<at::Tensor> per_block;
      m->forward_features(x, &per_block);
      REQUIRE(per_block.size() == 17);
      CHECK(per_block[0].sizes() == at::IntArrayRef({3, 32}));
      CHECK(per_block[16].sizes() == at::IntArrayRef({3, 320}));
      m->train();
    }
    // the criterion's decision on constructed readings: class means along e0 / e1;
    // comparing phases at similarity 1.0, then 1/sqrt(2): the second is not higher -> frozen
    const auto blocks = frost::BlockMap::detect(*m);
    torch::optim::SGD opt(frost::param_groups(blocks, *m), torch::optim::SGDOptions(0.0));
    using Ctl = frost::FreezeController<frost::criteria::TokenSimilarity, frost::schedules::Constant,
                                        frost::stop::Never>;
    Ctl::Options o;
    o.controller().total_steps(12);
    o.criterion().num_classes(2).record_steps(2).compare_steps(1);
    Ctl ctl(m, opt, blocks, o);
    const at::Tensor labels = at::tensor({0, 1, 0, 1}, at::kLong);
    auto features = [&](double off) {
      at::Tensor f = at::zeros({4, 1280});
      for (int i = 0; i < 4; ++i) {
        f[i][i % 2] = 1.0;
        f[i][2] = off;  // off the class mean: cosine 1 / sqrt(1 + off^2)
      }
      return f;
    };
    const std::vector<double> offs{0, 0, 0, 0, 0, 1.0};  // record, record, compare; record, record, compare
    for (std::size_t step = 0; step < offs.size(); ++step) {
      ctl.before_step();
      ctl.observe_features(features(offs[step]), labels);
      ctl.after_step();
      if (step == 2) CHECK(ctl.block_state(0) == frost::BlockState::training);  // the first phase never freezes
    }
    CHECK(ctl.block_state(0) == frost::BlockState::frozen);
    CHECK(ctl.block_state(1) == frost::BlockState::training);
  }

  // --- batch norm and the activation cache ----------------------------------------------
  TEST_CASE("EfficientNet: a frozen block's batch-norm statistics stay bit-identical while the rest trains") {
    torch::manual_seed(8);
    fx::EfficientNet m(small_effnet());
    const auto blocks = frost::BlockMap::detect(*m);
    torch::optim::SGD opt(frost::param_groups(blocks, *m), torch::optim::SGDOptions(0.05).momentum(0.9));
    using Ctl = frost::FreezeController<frost::criteria::AtSteps, frost::schedules::Constant, frost::stop::Never>;
    Ctl::Options o;
    o.controller().total_steps(8);
    o.criterion().blocks({0, 1, 2, 3}).steps({2, 2, 2, 2});
    Ctl ctl(m, opt, blocks, o);
    const auto x = at::randn({4, 3, 32, 32});
    const auto y = at::tensor({0, 1, 2, 3}, at::kLong);
    auto buffers_of = [&](const std::string& prefix) {
      Named out;
      for (const auto& b : m->named_buffers())
        if (frost::detail::has_prefix(b.key(), prefix)) out.emplace_back(b.key(), b.value().clone());
      return out;
    };
    Named frozen_stats, training_stats;
    for (int step = 0; step < 8; ++step) {
      m->train();  // a trainer that puts the model in train mode every step
      ctl.before_step();
      if (step == 3) {  // blocks 0-3 froze at the end of step 2
        for (const char* p : {"_bn0", "_blocks.0", "_blocks.2"})
          for (auto& kv : buffers_of(p)) frozen_stats.push_back(kv);
        training_stats = buffers_of("_blocks.10");
      }
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(m->forward(x), y);
      loss.backward();
      ctl.after_backward();
      opt.step();
      ctl.after_step();
    }
    REQUIRE(ctl.frozen_prefix() == 4);
    REQUIRE(frozen_stats.size() == 3 + 6 + 9);  // stem BN; block 0: 2 BNs; block 2: 3 BNs
    for (const auto& [k, v] : frozen_stats) {
      CAPTURE(k);
      at::Tensor now;
      for (const auto& b : m->named_buffers())
        if (b.key() == k) now = b.value();
      CHECK(fnv_hex(now) == fnv_hex(v));
    }
    CHECK_FALSE(training_stats[1].second.equal(buffers_of("_blocks.10")[1].second));  // still moving
    CHECK(m->block(10)->bn0->num_batches_tracked.item<int64_t>() == 8);
  }

  TEST_CASE("EfficientNet and the activation cache: each step from cached feature maps equals the plain step") {
    // One run with the cache; before each real (cached) step the same step is
    // taken without the cache from the same state (weights, batch-norm buffers,
    // random generator), and its loss and gradients are compared. In float64:
    // the cached feature maps were computed on other batch shapes, so their sums
    // run in another order, and in float32 that rounding (~1e-5 relative after
    // six blocks) flips the odd ReLU6 near its kink on these 2x2 maps, moving a
    // weight gradient by a few per cent; float64 takes rounding out of the
    // comparison, a stale or misplaced entry still shows as ~1.
    torch::manual_seed(9);
    fx::EfficientNet m(small_effnet());  // dropout and drop connect on, as in fine-tuning
    m->to(at::kDouble);
    const auto blocks = frost::BlockMap::detect(*m);
    torch::optim::SGD opt(frost::param_groups(blocks, *m), torch::optim::SGDOptions(0.05));
    using Ctl = frost::FreezeController<frost::criteria::AtSteps, frost::schedules::Constant,
                                        frost::stop::Never>;
    Ctl::Options o;
    o.controller().total_steps(12).steps_per_epoch(4);
    o.criterion().blocks({0, 1, 2, 3, 4, 5}).steps({2, 2, 2, 5, 5, 5});  // mid-epoch
    Ctl ctl(m, opt, blocks, o);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(12);
    const auto images = at::randn({16, 3, 32, 32}, gen).to(at::kDouble);
    const auto labels = at::randint(10, {16}, gen);
    frost::cache::ActivationCache cache(16, frost::cache::ActivationCacheOptions().budget_mb(64));
    auto rng = at::detail::getDefaultCPUGenerator();
    const at::Tensor& probe = m->block(5)->project_conv->weight;  // _blocks.5: trains throughout
    for (int s = 0; s < 12; ++s) {
      CAPTURE(s);
      const auto perm = at::randperm(16, at::make_generator<at::CPUGeneratorImpl>(200 + s / 4));
      const auto idx = perm.narrow(0, (s % 4) * 4, 4);
      const auto x = images.index_select(0, idx);
      const auto y = labels.index_select(0, idx);
      ctl.before_step();
      const int64_t k = ctl.frozen_prefix();
      // the plain step, then the state put back
      const auto rng_state = rng.get_state();
      Named buffers;
      for (const auto& b : m->named_buffers()) buffers.emplace_back(b.key(), b.value().clone());
      opt.zero_grad();
      auto plain = torch::nn::functional::cross_entropy(m->forward(x), y);
      plain.backward();
      const at::Tensor head_grad = m->fc->weight.grad().clone(), probe_grad = probe.grad().clone();
      {
        at::NoGradGuard ng;
        std::size_t i = 0;
        for (const auto& b : m->named_buffers()) b.value().copy_(buffers[i++].second);
      }
      rng.set_state(rng_state);
      // the real step, from the cache
      opt.zero_grad();
      const at::Tensor h = cache.activations(m, idx, x, k);
      // normwise relative differences (float64 rounding: ~1e-15)
      if (k > 0) {
        at::NoGradGuard ng;
        CHECK(rel_diff(h, m->forward_range(x, 0, k)) < 1e-10);
      }
      auto loss = torch::nn::functional::cross_entropy(m->forward_range(h, k, frost::cache::kOutput), y);
      loss.backward();
      CHECK(loss.item<double>() == doctest::Approx(plain.item<double>()).epsilon(1e-10));
      CHECK(rel_diff(m->fc->weight.grad(), head_grad) < 1e-8);
      CHECK(rel_diff(probe.grad(), probe_grad) < 1e-8);
      ctl.after_backward();
      opt.step();
      ctl.after_step();
    }
    const auto& st = cache.stats();
    CHECK(st.depth == 6);
    CHECK(st.cached_samples == 16);
    CHECK(st.bytes == 16 * 40 * 4 * 4 * 8);  // after _blocks.4: 40 channels at 4x4, float64
    CHECK(st.advanced > 0);
    CHECK(st.hits > 0);

    m->eval();
    at::NoGradGuard ng;
    const auto x = at::randn({2, 3, 32, 32}).to(at::kDouble);  // the model is float64 here
    const at::Tensor whole = m->forward(x);
    for (int64_t k : {0, 1, 6, 17}) {
      CAPTURE(k);
      CHECK(at::allclose(m->forward_range(m->forward_range(x, 0, k), k, frost::cache::kOutput), whole, 1e-5, 1e-6));
    }
    CHECK_THROWS_AS(m->forward_range(x, 3, 19), std::invalid_argument);
  }

  // --- BERT / MiniLM-L6 (issue 33): examples/common/bert.hpp ---------------------------
  // The fixtures are made by scripts/minilm_reference.py (pip's torch, plain
  // functional ops, float64): a tiny BERT under the real checkpoint's names and
  // its outputs on three inputs padded to one length.
  TEST_CASE("BERT: the tiny fixture loads by the real names, outputs equal the independent Python reference") {
    fx::BertModel m(tiny_bert());
    const auto r = fx::load_bert(*m, bert_fixture("minilm-tiny.safetensors"));
    CHECK(r.loaded.size() == 38);  // 5 embedding tensors + position_ids + 16 per layer
    CHECK(std::set<std::string>(r.skipped.begin(), r.skipped.end()) ==
          std::set<std::string>{"pooler.dense.bias", "pooler.dense.weight"});
    std::map<std::string, at::Tensor> want;
    for (auto& [k, v] : frost::io::read_safetensors(bert_fixture("minilm-tiny.reference.safetensors")).tensors)
      want.emplace(k, v);
    const at::Tensor ids = want.at("input_ids");  // lengths 10, 6, 3, padded with 0 to 10
    m->eval();
    at::NoGradGuard ng;
    // every position, padding included (transformers' last_hidden_state)
    CHECK((m->last_hidden_state(ids) - want.at("last_hidden_state")).abs().max().item<double>() < 2e-5);
    CHECK((m->forward(ids) - want.at("mean_pooled")).abs().max().item<double>() < 2e-5);  // no head: the feature
    fx::BertModel c(tiny_bert().pooling(fx::BertPooling::cls));
    fx::load_bert(*c, bert_fixture("minilm-tiny.safetensors"));
    c->eval();
    CHECK((c->forward(ids) - want.at("cls")).abs().max().item<double>() < 2e-5);
    // Padding does not change the real tokens: each row alone, unpadded, and
    // with ten more padding positions, trimmed or not.
    for (bool trim : {true, false}) {
      fx::BertModel t(tiny_bert().trim_padding(trim));
      fx::load_bert(*t, bert_fixture("minilm-tiny.safetensors"));
      t->eval();
      const at::Tensor longer = at::constant_pad_nd(ids, {0, 10});
      CHECK((t->forward(longer) - want.at("mean_pooled")).abs().max().item<double>() < 2e-5);
      for (int64_t row = 0; row < 3; ++row) {
        CAPTURE(row);
        const int64_t len = ids[row].ne(0).sum().item<int64_t>();
        const at::Tensor alone = ids.narrow(0, row, 1).narrow(1, 0, len);
        CHECK((t->forward(alone) - want.at("mean_pooled").narrow(0, row, 1)).abs().max().item<double>() < 2e-5);
        CHECK((t->last_hidden_state(alone) - want.at("last_hidden_state").narrow(0, row, 1).narrow(1, 0, len))
                  .abs().max().item<double>() < 2e-5);
      }
    }
  }

  TEST_CASE("BERT: a random tiny BERT round-trips through safetensors bit for bit, blocks = embeddings + layers") {
    torch::manual_seed(33);
    fx::BertModel a(tiny_bert().num_classes(5)), b(tiny_bert().num_classes(5));
    const std::string path = temp_path("bert-roundtrip.safetensors");
    frost::save_state_dict(*a, path);
    const auto r = fx::load_bert(*b, path);
    CHECK(r.loaded.size() == 40);  // the head too: the file has it
    CHECK(same_state(*b, snapshot(*a)));
    const at::Tensor ids = at::randint(1, 40, {4, 9}, at::kLong);
    CHECK(a->forward(ids).equal(b->forward(ids)));
    std::set<std::string> names;
    for (const auto& [k, v] : frost::detail::named_state(*a)) names.insert(k);
    for (const char* k : {"embeddings.word_embeddings.weight", "embeddings.position_ids",
                          "encoder.layer.1.attention.self.query.bias", "encoder.layer.1.attention.output.LayerNorm.weight",
                          "encoder.layer.0.intermediate.dense.weight", "encoder.layer.0.output.dense.weight",
                          "encoder.layer.0.output.LayerNorm.bias", "head.weight"})
      CHECK_MESSAGE(names.count(k) == 1, k);

    const auto blocks = frost::BlockMap::detect(*a);
    REQUIRE(blocks.size() == 3);
    CHECK(blocks[0].name == "stem");
    CHECK(blocks[1].name == "encoder.layer.0");
    CHECK(blocks[2].name == "encoder.layer.1");
    CHECK(blocks[0].param_names.size() == 5);  // the embeddings; position_ids is a buffer
    for (const auto& n : blocks[0].param_names) CHECK(n.rfind("embeddings.", 0) == 0);
    for (const auto& blk : blocks)
      for (const auto& n : blk.param_names) CHECK(n.rfind("head.", 0) != 0);  // the head trains, outside

    // The full MiniLM-L6 without its file: 22,565,376 parameters (the file's
    // 22,713,216 less the pooler's 147,840), 7 blocks, the stem 11,918,592.
    fx::BertModel full(fx::BertOptions::minilm_l6());
    int64_t numel = 0;
    for (const auto& p : full->parameters()) numel += p.numel();
    CHECK(numel == 22565376);
    const auto fb = frost::BlockMap::detect(*full);
    CHECK(fb.size() == 7);
    CHECK(fb[0].numel == 11918592);
    const auto macs = full->block_macs(16.0);
    REQUIRE(macs.size() == 7);
    CHECK(macs[1] == doctest::Approx(16.0 * (4 * 384.0 * 384 + 2 * 384.0 * 1536) + 2 * 16.0 * 16 * 384));
  }

  TEST_CASE("BERT: forward_range carries the padding mask in the state, the activation cache's steps equal the plain ones") {
    torch::manual_seed(7);
    fx::BertModel m(tiny_bert().num_classes(3));
    m->eval();
    at::Tensor ids = at::randint(1, 40, {6, 12}, at::kLong);
    for (int64_t row = 0; row < 6; ++row) ids[row].narrow(0, 3 + row, 9 - row).fill_(0);  // lengths 3..8
    at::NoGradGuard ng;
    const at::Tensor whole = m->forward(ids);
    for (int64_t k : {0, 1, 2, 3}) {
      CAPTURE(k);
      const at::Tensor s = m->forward_range(ids, 0, k);
      if (k > 0) {
        CHECK(s.sizes().vec() == std::vector<int64_t>{6, 12, 17});               // L kept: the cache's rows stay one shape
        CHECK(s.select(-1, 16).equal(ids.ne(0).to(at::kFloat)));         // the mask, channel H
        CHECK(s.narrow(1, 8, 4).abs().sum().item<double>() == 0.0);      // trimmed positions: zeros
      }
      CHECK((m->forward_range(s, k, -1) - whole).abs().max().item<double>() < 1e-5);
      CHECK((m->features_from(s, k) - m->features_from(ids, 0)).abs().max().item<double>() < 1e-5);
    }
    CHECK_THROWS_AS(m->forward_range(ids, 1, 2), std::invalid_argument);  // ids where a state belongs
    CHECK_THROWS_AS(m->forward_range(ids, 0, 5), std::invalid_argument);
    // The cache: depth 1, then 3 (entries advanced, never recomputed from ids).
    frost::cache::ActivationCache cache(6);
    const at::Tensor idx = at::arange(6, at::kLong);
    for (int64_t k : {1, 1, 3, 3}) {
      const at::Tensor h = cache.activations(*m, idx, ids, k);
      CHECK((m->forward_range(h, k, -1) - whole).abs().max().item<double>() < 1e-5);
    }
    CHECK(cache.stats().bytes == 6 * 12 * 17 * 4);  // N * L * (H + 1) * 4 bytes
    CHECK(cache.stats().hits > 0);
    CHECK(cache.stats().advanced == 6);
  }

  TEST_CASE("BERT: load_bert refuses another BERT size, another vocabulary, a truncated file, the model is unchanged") {
    torch::manual_seed(5);
    fx::BertModel dst(tiny_bert());
    const Named before = snapshot(*dst);
    const std::string path = temp_path("other-bert.safetensors");
    auto write = [&](const fx::BertOptions& o) {
      fx::BertModel src(o);
      frost::save_state_dict(*src, path);
      return path;
    };
    SUBCASE("another width") {
      write(tiny_bert().hidden(32).heads(4));
      CHECK_REFUSED(dst, before, fx::load_bert(*dst, path), "other-bert.safetensors",
                    "'embeddings.word_embeddings.weight' has shape [40, 32]", "expects [40, 16]", "width 32");
    }
    SUBCASE("another number of layers") {
      write(tiny_bert().layers(3));
      CHECK_REFUSED(dst, before, fx::load_bert(*dst, path), "other-bert.safetensors", "3 encoder layers",
                    "expects 2", "'encoder.layer.1.attention.self.query.weight' of shape [16, 16]");
    }
    SUBCASE("another feed-forward width") {
      write(tiny_bert().intermediate(48));
      CHECK_REFUSED(dst, before, fx::load_bert(*dst, path), "'encoder.layer.0.intermediate.dense.weight'",
                    "[48, 16]", "expects [32, 16]");
    }
    SUBCASE("another vocabulary") {
      write(tiny_bert().vocab_size(50));
      CHECK_REFUSED(dst, before, fx::load_bert(*dst, path), "other-bert.safetensors",
                    "'embeddings.word_embeddings.weight' has shape [50, 16]", "expects [40, 16]",
                    "vocabulary of 50 tokens");
      const std::string vocab = temp_path("vocab.txt");
      {
        std::ofstream v(vocab);
        for (int i = 0; i < 41; ++i) v << "tok" << i << "\n";
      }
      CHECK_FROST_ERROR(fx::check_vocab_file(vocab, tiny_bert()), "vocab.txt' has 41 tokens");
      CHECK_FROST_ERROR(fx::check_vocab_file(vocab, tiny_bert()), "[40, 16]");
    }
    SUBCASE("not a BERT") {
      Tiny other;
      frost::save_state_dict(*other, path);
      CHECK_REFUSED(dst, before, fx::load_bert(*dst, path), "no 'embeddings.word_embeddings.weight'",
                    "expected shape [40, 16]");
    }
    SUBCASE("a truncated file") {
      write(tiny_bert());
      std::ifstream in(path, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      write_bytes(path, bytes.substr(0, bytes.size() - 100));
      CHECK_REFUSED(dst, before, fx::load_bert(*dst, path), "other-bert.safetensors", "truncated",
                    "100 bytes short", "shape [");
    }
  }

  // The real all-MiniLM-L6-v2 weights when scripts/minilm-weights.sh has put
  // them in the cache: every name and size, and two sentences' embeddings
  // against tests/data/minilm-l6-real-reference.safetensors (scripts/
  // minilm_reference.py --real: the same file through plain torch ops).
  TEST_CASE("MiniLM-L6: the real weights load as they are, embeddings equal the Python reference") {
    const std::string path = fx::minilm_weights_path();
    if (!fs::exists(path)) {
      MESSAGE("skipped: no MiniLM-L6 weights at " << path
                                                 << " (run scripts/minilm-weights.sh, or set FROST_MINILM_DIR)");
      return;
    }
    fx::BertModel m(fx::BertOptions::minilm_l6());
    const auto r = fx::load_bert(*m, path);
    CHECK(r.loaded.size() == 102);  // 101 parameters and position_ids
    CHECK(r.loaded_numel == 22565376 + 512);
    CHECK(r.skipped.size() == 2);  // the pooler
    if (fs::exists(fx::minilm_vocab_path())) fx::check_vocab_file(fx::minilm_vocab_path(), m->options());
    std::map<std::string, at::Tensor> want;
    for (auto& [k, v] : frost::io::read_safetensors(bert_fixture("minilm-l6-real-reference.safetensors")).tensors)
      want.emplace(k, v);
    m->eval();
    at::NoGradGuard ng;
    const at::Tensor mean = m->forward(want.at("input_ids"));
    const at::Tensor cls = m->last_hidden_state(want.at("input_ids")).select(1, 0);
    const double dm = (mean - want.at("mean_pooled")).abs().max().item<double>();
    const double dc = (cls - want.at("cls")).abs().max().item<double>();
    MESSAGE("C++ vs Python MiniLM-L6: max |diff| mean-pooled " << dm << ", [CLS] " << dc);
    CHECK(dm < 1e-4);
    CHECK(dc < 1e-4);
  }
}
