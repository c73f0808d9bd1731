#pragma once
// frost::predictor::FreezePredictor — SmartFRZ's attention-based freezing
// predictor (../shared/papers/smartfrz-attention-predictor-freezing.txt, §3.3
// and appendix C), a LibTorch module; and its file format.
//
// Input: one block's history, a window of T records (T = 30 in the paper), each
// the block's tailored subset (S = 1024 weights, predictor/tailor.hpp):
// x : [B, T, S], oldest record first, the last one (index T-1) the current t.
//
//   K_j = MLP_k(x_j), Q_j = MLP_q(x_j), V_j = MLP_v(x_j)      eq. 1, each [B, T, 64]
//   a_j = Q_t . K_j                                            eq. 2 (no 1/sqrt(d) scaling)
//   alpha = softmax_j(a_j)  over the window's valid records   eq. 2
//   C_t = sum_j alpha_j V_j                                    eq. 3, [B, 64]
//   logits = MLP_z(C_t), P = softmax(logits)                   eq. 4, [B, 2]
//   freeze when P[1] > P[0] (argmax; a threshold other than 0.5 is the criterion's option)
//
// MLP_k/q/v: Linear(S, 256)-ReLU-Linear(256, 256)-ReLU-Linear(256, 64);
// MLP_z: Linear(64, 32)-ReLU-Linear(32, 32)-ReLU-Linear(32, 2) (appendix C's
// sizes; the paper names no activation: ReLU is our reading). About 1.04 M
// parameters, 4.2 MB in float32.
//
// Where the paper is ambiguous, our reading:
// * "W_l^j" is fed as the *change* of the tailored weights since the previous
//   record relative to the block's weight scale, (w_j - w_{j-1}) / rms(w_j)
//   (predictor::encode), times a fixed input_scale found when the predictor was
//   trained (a buffer saved with it). Raw weights of different blocks and
//   models differ in scale and offset by orders of magnitude and hardly move
//   in fine-tuning, so one predictor could not serve them; the changes are a
//   linear function of the same window of weights and carry what the paper's
//   Figure 2 is about (which steps moved the layer, and how much).
// * Each record is encoded independently (eq. 1), so a history of N records
//   costs N encodings however many windows are judged: forward_sequence()
//   judges every window of a sequence at once (training, the dataset's
//   accuracy), forward() the latest window of each block (the criterion).
// * A window with fewer than T records (a block that just started recording)
//   is masked: softmax over the valid records only.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "frost/detail/zip_check.hpp"
#include "frost/error.hpp"

namespace frost::predictor {

/// A three-layer perceptron, Linear-ReLU-Linear-ReLU-Linear (eq. 1's MLP_k/q/v
/// and eq. 4's MLP_z).
class Mlp3Impl : public torch::nn::Module {
 public:
  Mlp3Impl(std::int64_t in, std::int64_t hidden, std::int64_t out)
      : fc1(register_module("0", torch::nn::Linear(in, hidden))),
        fc2(register_module("2", torch::nn::Linear(hidden, hidden))),
        fc3(register_module("4", torch::nn::Linear(hidden, out))) {}
  at::Tensor forward(const at::Tensor& x) {
    return fc3->forward(at::relu(fc2->forward(at::relu(fc1->forward(x)))));
  }
  torch::nn::Linear fc1, fc2, fc3;
};
TORCH_MODULE(Mlp3);

/// The predictor's shape (appendix C) and what it was trained with.
struct FreezePredictorOptions {
  TORCH_ARG(std::int64_t, subset) = 1024;      ///< tailored weights per record (S)
  TORCH_ARG(std::int64_t, hidden) = 256;       ///< MLP_k/q/v hidden width
  TORCH_ARG(std::int64_t, embed) = 64;         ///< key/query/value width
  TORCH_ARG(std::int64_t, head_hidden) = 32;   ///< MLP_z hidden width
  TORCH_ARG(std::int64_t, window) = 30;        ///< records per window (T)
  TORCH_ARG(std::int64_t, record_every) = 2;   ///< steps between records it was trained on
 public:
};

class FreezePredictorImpl : public torch::nn::Module {
 public:
  explicit FreezePredictorImpl(const FreezePredictorOptions& o = {}) : options(o) {
    frost::detail::require(o.subset() > 0 && o.hidden() > 0 && o.embed() > 0 &&
                               o.head_hidden() > 0 && o.window() > 0 && o.record_every() > 0,
                           "FreezePredictor: every size must be positive");
    auto mlp = [](std::int64_t in, std::int64_t hid, std::int64_t out) { return Mlp3(in, hid, out); };
    key = register_module("key", mlp(o.subset(), o.hidden(), o.embed()));
    query = register_module("query", mlp(o.subset(), o.hidden(), o.embed()));
    value = register_module("value", mlp(o.subset(), o.hidden(), o.embed()));
    decision = register_module("decision", mlp(o.embed(), o.head_hidden(), 2));
    input_scale = register_buffer("input_scale", at::ones({}));
  }

  /// Logits [B, 2] of the latest record of each window. x: [B, T, S] encoded
  /// records (oldest first); valid: optional [B, T] bool, true for records
  /// that exist (each row needs its last entry valid).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& valid = {}) {
    check_input(x, 3);
    auto z = x * input_scale;
    auto k = key->forward(z);                       // [B, T, E]
    auto v = value->forward(z);                     // [B, T, E]
    auto q = query->forward(z.select(1, -1));       // [B, E]
    auto a = at::matmul(k, q.unsqueeze(-1)).squeeze(-1);  // [B, T], eq. 2
    if (valid.defined()) a = a.masked_fill(valid.logical_not(), -std::numeric_limits<float>::infinity());
    auto alpha = at::softmax(a, 1);
    auto c = (alpha.unsqueeze(-1) * v).sum(1);      // eq. 3
    return decision->forward(c);                    // eq. 4 (logits)
  }

  /// Logits [N - T + 1, 2] of every full window of one sequence of N >= T
  /// encoded records x: [N, S] (window i ends at record i + T - 1). Each record
  /// is encoded once.
  at::Tensor forward_sequence(const at::Tensor& x) {
    check_input(x, 2);
    const auto T = options.window();
    frost::detail::require(x.size(0) >= T, "FreezePredictor: a sequence of ", x.size(0),
                           " records is shorter than the window (", T, ")");
    auto z = x * input_scale;
    auto k = key->forward(z).unfold(0, T, 1).transpose(1, 2);    // [W, T, E]
    auto v = value->forward(z).unfold(0, T, 1).transpose(1, 2);  // [W, T, E]
    auto q = query->forward(z).narrow(0, T - 1, x.size(0) - T + 1);  // [W, E]
    auto a = at::matmul(k, q.unsqueeze(-1)).squeeze(-1);
    auto alpha = at::softmax(a, 1);
    return decision->forward((alpha.unsqueeze(-1) * v).sum(1));
  }

  FreezePredictorOptions options;
  Mlp3 key{nullptr}, query{nullptr}, value{nullptr}, decision{nullptr};
  at::Tensor input_scale;

 private:
  void check_input(const at::Tensor& x, std::int64_t dims) const {
    frost::detail::require(x.dim() == dims && x.size(-1) == options.subset(),
                           "FreezePredictor: expected ", dims == 3 ? "[B, T, " : "[N, ",
                           options.subset(), "] records, got ", x.sizes());
  }
};
TORCH_MODULE(FreezePredictor);

/// The file format's version; a file of another version is refused.
inline constexpr std::int64_t kFileFormat = 1;

/// The description an older file (before "includes_main_job" was written)
/// carries when its histories included frost-train's main job.
inline constexpr const char* kMainJobMark = "INCLUDES frost-train's main job";

/// Writes the predictor (weights, input scale, shape, training cadence), a
/// free-text description and whether the histories it learned from included
/// frost-train's main job (frost-predictor's --allow-main-job: frost-train
/// refuses such a file, its smartfrz rows would be scored in-sample) to
/// `path` (torch::serialize archive).
inline void save(const FreezePredictor& p, const std::string& path, const std::string& about = {},
                 bool includes_main_job = false) {
  torch::serialize::OutputArchive ar;
  ar.write("frost_predictor_format", c10::IValue(kFileFormat));
  const auto& o = p->options;
  ar.write("subset", c10::IValue(o.subset()));
  ar.write("hidden", c10::IValue(o.hidden()));
  ar.write("embed", c10::IValue(o.embed()));
  ar.write("head_hidden", c10::IValue(o.head_hidden()));
  ar.write("window", c10::IValue(o.window()));
  ar.write("record_every", c10::IValue(o.record_every()));
  ar.write("encoding", c10::IValue(std::string("delta-rms-v1")));
  ar.write("about", c10::IValue(about));
  // An optional key: format 1 files without it still load (read_info: false,
  // unless their description says INCLUDES).
  ar.write("includes_main_job", c10::IValue(includes_main_job));
  torch::serialize::OutputArchive weights;
  p->save(weights);
  ar.write("weights", weights);
  ar.save_to(path);
}

/// frost::detail::check_archive on a predictor file (before LibTorch's reader
/// sees it), its refusal worded as the other unreadable files' here.
inline void check_predictor_file(const std::string& path, const std::string& fix) {
  try {
    frost::detail::check_archive(path, "predictor", fix);
  } catch (const frost::Error& e) {
    frost::detail::fail("predictor: cannot read '", path, "': ", e.what());
  }
}

/// Reads a predictor written by save(). A missing, unreadable or incompatible
/// file is a frost::Error that names it and says how to get a good one.
inline FreezePredictor load(const std::string& path) {
  const std::string fix =
      "; give criterion.predictor the path of a file written by `frost-predictor train`, or "
      "regenerate the shipped one (docs/predictor.md)";
  {
    std::ifstream f(path, std::ios::binary);
    frost::detail::require(f.good(), "predictor: cannot open '", path, "'", fix);
  }
  // frost's checks first: LibTorch's reader compiles what the file holds.
  check_predictor_file(path, fix.substr(2));
  try {
    torch::serialize::InputArchive ar;
    ar.load_from(path);
    auto get = [&](const char* key) {
      c10::IValue v;
      frost::detail::require(ar.try_read(key, v), "predictor: '", path, "' has no '", key,
                             "' (not a frost predictor file)", fix);
      return v;
    };
    const auto format = get("frost_predictor_format").toInt();
    frost::detail::require(format == kFileFormat, "predictor: '", path, "' has format ", format,
                           ", this frost reads format ", kFileFormat, fix);
    const auto encoding = get("encoding").toStringRef();
    frost::detail::require(encoding == "delta-rms-v1", "predictor: '", path, "' encodes records as '",
                           encoding, "', this frost as 'delta-rms-v1'", fix);
    FreezePredictorOptions o;
    o.subset(get("subset").toInt())
        .hidden(get("hidden").toInt())
        .embed(get("embed").toInt())
        .head_hidden(get("head_hidden").toInt())
        .window(get("window").toInt())
        .record_every(get("record_every").toInt());
    FreezePredictor p(o);
    torch::serialize::InputArchive weights;
    frost::detail::require(ar.try_read("weights", weights), "predictor: '", path,
                           "' has no weights", fix);
    p->load(weights);
    p->eval();
    return p;
  } catch (const frost::Error&) {
    throw;
  } catch (const c10::Error& e) {
    frost::detail::fail("predictor: cannot read '", path, "': ", e.what_without_backtrace(), fix);
  }
}

/// What a predictor file says about itself, read without building the net.
struct FileInfo {
  std::string about;               ///< the description save() was given
  bool includes_main_job = false;  ///< trained on histories of frost-train's main job
};

/// The description and the main-job flag of the predictor file at `path`: a
/// file from before the flag counts as including the main job when its
/// description says so (kMainJobMark). An unreadable file or one without
/// frost's format key is a frost::Error, as in load().
inline FileInfo read_info(const std::string& path) {
  {
    std::ifstream f(path, std::ios::binary);
    frost::detail::require(f.good(), "predictor: cannot open '", path,
                           "'; give the path of a file written by `frost-predictor train`");
  }
  check_predictor_file(path, "give the path of a file written by `frost-predictor train`");
  try {
    torch::serialize::InputArchive ar;
    ar.load_from(path);
    c10::IValue v;
    frost::detail::require(ar.try_read("frost_predictor_format", v), "predictor: '", path,
                           "' is not a frost predictor file; give one written by `frost-predictor train`");
    FileInfo info;
    if (ar.try_read("about", v)) info.about = v.toStringRef();
    info.includes_main_job = ar.try_read("includes_main_job", v)
                                 ? v.toBool()
                                 : info.about.find(kMainJobMark) != std::string::npos;
    return info;
  } catch (const frost::Error&) {
    throw;
  } catch (const c10::Error& e) {
    frost::detail::fail("predictor: cannot read '", path, "': ", e.what_without_backtrace());
  }
}

/// The shipped predictor's path: $FROST_PREDICTOR when set, else the file the
/// build put in FROST_PREDICTOR_FILE (the source tree's data/ in a build tree
/// or add_subdirectory, <prefix>/share/frost/ in an installed package).
inline std::string default_path() {
  if (const char* env = std::getenv("FROST_PREDICTOR"); env != nullptr && *env != '\0') return env;
#ifdef FROST_PREDICTOR_FILE
  return FROST_PREDICTOR_FILE;
#else
  return {};
#endif
}

}  // namespace frost::predictor
