// frost-predictor: the SmartFRZ predictor's data and training
// (../shared/papers/smartfrz-attention-predictor-freezing.txt, §3.4; docs/predictor.md).
//
//   frost-predictor generate   # CKA-labelled weight histories on Fashion-MNIST -> out/predictor-data/
//   frost-predictor train      # held-out accuracy per architecture, then the shipped weights
//
// generate: for every architecture and seed, a model is built from the seed
// (and, for odd seeds, pre-trained on some classes, --pretrain-classes: a
// fine-tuning pattern; even seeds train from scratch), then from that same start
//   1. the reference: trained 2E epochs on the run's task (--classes for even
//      seeds, --finetune-classes for odd ones; its own data order),
//   2. the recorded run: trained E epochs on the same images in another order,
//      recording every R steps each block's tailored weights
//      (frost::predictor::Tailor, as the criterion records them) and the linear
//      CKA (frost::cka) between the block's output and the reference's same
//      block on a fixed probe batch of 256 held-out images.
// One file per run: <out>/<arch>-s<seed>.pt. Only Fashion-MNIST train images
// of classes 0-4, and neither frost-train's model nor its lr and epochs: its
// main job stays out of the predictor's data (predictor_cli.hpp's check).
//
// train: the label of record j of a block is "freeze" when its CKA from j on
// stays within epsilon of its final value (the mean of the last 5 records):
// the paper's "the CKA value of a layer stabilizes", as a number. Windows of
// the predictor's T records end at every record from T on. With --holdout
// (default) the predictor is trained once per architecture on the others and
// scored on the held-out one (how it transfers), then once on everything and
// written to --out.
#include <dirent.h>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/cka.hpp"
#include "frost/predictor/freeze_predictor.hpp"
#include "frost/predictor/tailor.hpp"
#include "cli_checks.hpp"
#include "idx.hpp"
#include "predictor_cli.hpp"
#include "progress.hpp"
#include "system.hpp"
#include "vit.hpp"

namespace fx = frost_examples;
namespace fp = frost::predictor;
namespace fpc = frost_predictor;
using frost_examples::make_dirs;
using frost_examples::single_threaded_blas;

namespace {

// ---------------------------------------------------------------------------
// The architectures: each gives its blocks' outputs (for CKA) and its logits.
// ---------------------------------------------------------------------------
struct Net : torch::nn::Module {
  /// Logits; when `outs` is given, every block's output (input side first).
  virtual at::Tensor run(const at::Tensor& x, std::vector<at::Tensor>* outs) = 0;
  virtual frost::BlockMap block_map() = 0;
};

struct VitNet : Net {
  explicit VitNet(const fx::ViTOptions& o) { vit = register_module("vit", fx::ViT(o)); }
  at::Tensor run(const at::Tensor& x, std::vector<at::Tensor>* outs) override {
    if (!outs) return vit->forward(x);
    const auto nb = vit->options().depth() + 1;  // stem + blocks
    at::Tensor t = x;
    for (std::int64_t b = 0; b < nb; ++b) {
      t = vit->forward_range(t, b, b + 1);
      outs->push_back(t);
    }
    return vit->forward_range(t, nb, -1);
  }
  frost::BlockMap block_map() override { return frost::BlockMap::detect(*vit); }
  fx::ViT vit{nullptr};
};

/// A plain MLP: no residual connections, so later blocks wait on earlier ones.
struct MlpNet : Net {
  MlpNet() {
    blocks = register_module("blocks", torch::nn::ModuleList());
    blocks->push_back(torch::nn::Linear(784, 256));
    for (int i = 0; i < 3; ++i) blocks->push_back(torch::nn::Linear(256, 256));
    head = register_module("head", torch::nn::Linear(256, 10));
  }
  at::Tensor run(const at::Tensor& x, std::vector<at::Tensor>* outs) override {
    auto t = x.flatten(1);
    for (const auto& m : *blocks) {
      t = at::relu(m->as<torch::nn::Linear>()->forward(t));
      if (outs) outs->push_back(t);
    }
    return head->forward(t);
  }
  frost::BlockMap block_map() override { return frost::BlockMap::detect(*this); }
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::Linear head{nullptr};
};

/// A small CNN: three conv stages, global average pooling, a linear head.
struct CnnNet : Net {
  CnnNet() {
    blocks = register_module("blocks", torch::nn::ModuleList());
    blocks->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1)));
    blocks->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).padding(1)));
    blocks->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3).padding(1)));
    blocks->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(64, 64, 3).padding(1)));
    head = register_module("head", torch::nn::Linear(64, 10));
  }
  at::Tensor run(const at::Tensor& x, std::vector<at::Tensor>* outs) override {
    auto t = x;
    std::int64_t i = 0;
    for (const auto& m : *blocks) {
      t = at::relu(m->as<torch::nn::Conv2d>()->forward(t));
      if (i == 0 || i == 1) t = at::max_pool2d(t, 2);  // 28 -> 14 -> 7
      if (outs) outs->push_back(t);
      ++i;
    }
    return head->forward(t.mean({2, 3}));
  }
  frost::BlockMap block_map() override { return frost::BlockMap::detect(*this); }
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::Linear head{nullptr};
};

std::shared_ptr<Net> make_net(const std::string& name) {
  const auto arch = fpc::parse_arch(name);
  if (arch.kind == "vit") return std::make_shared<VitNet>(arch.vit_options());
  if (arch.kind == "mlp") return std::make_shared<MlpNet>();
  return std::make_shared<CnnNet>();
}

void copy_state(Net& dst, Net& src) {
  torch::NoGradGuard ng;
  auto d = dst.named_parameters(), s = src.named_parameters();
  for (const auto& kv : s) d[kv.key()].copy_(kv.value());
  auto db = dst.named_buffers(), sb = src.named_buffers();
  for (const auto& kv : sb) db[kv.key()].copy_(kv.value());
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// ---------------------------------------------------------------------------
// generate
// ---------------------------------------------------------------------------
using fpc::GenConfig;

void train_epochs(Net& net, const fx::Dataset& ds, std::int64_t epochs, const GenConfig& cfg,
                  double lr, std::uint64_t order_seed, const std::string& label,
                  const std::function<void(std::int64_t)>& before_step = nullptr) {
  const auto batch = cfg.batch;
  const auto warmup = cfg.warmup;
  torch::optim::AdamW opt(net.parameters(),
                          torch::optim::AdamWOptions(lr).weight_decay(cfg.weight_decay));
  const auto spe = (ds.size() + batch - 1) / batch;
  const auto total = spe * epochs;
  frost_train::Progress bar(label, total);
  std::int64_t step = 0;
  net.train();
  for (std::int64_t e = 0; e < epochs; ++e) {
    fx::Batches bs(ds, batch, order_seed * 7919 + static_cast<std::uint64_t>(e));
    for (const auto& b : bs) {
      if (before_step) before_step(step);
      // Cosine to zero after linear warm-up (10 steps), frost-train's schedule shape.
      const double w = step < warmup ? (step + 1) / static_cast<double>(warmup)
                                     : 0.5 * (1 + std::cos(M_PI * (step - warmup) /
                                                           std::max<double>(1, total - warmup)));
      for (auto& g : opt.param_groups()) g.options().set_lr(lr * w);
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net.run(b.images, nullptr), b.labels);
      loss.backward();
      opt.step();
      ++step;
      // The loss is read (a host sync on a GPU) only for a bar someone sees.
      if (bar.enabled()) bar.update(step, "loss " + std::to_string(loss.item<double>()).substr(0, 6));
    }
  }
  bar.finish();
}

double accuracy(Net& net, const fx::Dataset& ds) {
  torch::NoGradGuard ng;
  net.eval();
  auto pred = net.run(ds.images, nullptr).argmax(1);
  net.train();
  return pred.eq(ds.labels).to(at::kDouble).mean().item<double>() * 100.0;
}

/// A run's task: its training images and the probe, held-out images of the
/// same classes (the ones after the training images), fixed for every run.
struct Task {
  fx::Dataset train, probe;
  std::vector<std::int64_t> classes;
};

Task make_task(const fx::Dataset& all, const std::vector<std::int64_t>& classes, const GenConfig& cfg,
               std::int64_t probe) {
  const auto ds = fx::filter_classes(all, classes, false);
  if (ds.size() < cfg.images + probe)
    throw std::runtime_error("classes " + fpc::join(classes) + " have " + std::to_string(ds.size()) +
                             " training images, fewer than --images (" + std::to_string(cfg.images) +
                             ") + " + std::to_string(probe) + " probe images");
  return {fx::take_first(ds, cfg.images),
          fx::Dataset{ds.images.narrow(0, cfg.images, probe), ds.labels.narrow(0, cfg.images, probe)},
          classes};
}

int generate(const GenConfig& cfg) {
  at::set_num_threads(cfg.threads);
  single_threaded_blas();
  const auto about = fpc::describe(cfg);
  std::cout << about << "\n";
  // Only the train split is read; the main job's classes never are (unless
  // --allow-main-job let them through).
  const auto train = fx::load_fashion_mnist(cfg.data_dir, true);
  const auto scratch = make_task(train, cfg.classes, cfg, cfg.probe);
  const bool any_finetune = cfg.seeds > 1;
  const auto pre = any_finetune ? make_task(train, cfg.pretrain_classes, cfg, 0) : Task{};
  const auto tuned = any_finetune ? make_task(train, cfg.finetune_classes, cfg, cfg.probe) : Task{};
  make_dirs(cfg.out);
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& arch : cfg.archs) {
    for (std::int64_t seed = 0; seed < cfg.seeds; ++seed) {
      const bool finetune = seed % 2 == 1;
      const double lr = cfg.lr_of(seed);
      const auto& run_task = finetune ? tuned : scratch;
      const auto& task = run_task.train;
      const auto& probe = run_task.probe;
      torch::manual_seed(1000 + seed);
      auto start = make_net(arch);
      const std::string tag = arch + "-s" + std::to_string(seed);
      if (finetune)
        train_epochs(*start, pre.train, cfg.pretrain_epochs, cfg, cfg.pretrain_lr, 77 + seed,
                     tag + " pre-train");
      auto reference = make_net(arch);
      copy_state(*reference, *start);
      train_epochs(*reference, task, 2 * cfg.epochs, cfg, lr, 101 + seed, tag + " reference");
      std::vector<at::Tensor> ref_out;
      {
        torch::NoGradGuard ng;
        reference->eval();
        reference->run(probe.images, &ref_out);
      }
      auto net = make_net(arch);
      copy_state(*net, *start);
      const auto blocks = net->block_map();
      fp::Tailor tailor(blocks, cfg.subset, static_cast<std::uint64_t>(seed));
      std::vector<at::Tensor> weights, ckas;
      std::vector<std::int64_t> steps;
      auto record = [&](std::int64_t step) {
        if (step % cfg.record_every != 0) return;
        weights.push_back(tailor.gather());
        std::vector<at::Tensor> outs;
        torch::NoGradGuard ng;
        net->eval();
        net->run(probe.images, &outs);
        net->train();
        std::vector<at::Tensor> c;
        for (std::size_t b = 0; b < outs.size(); ++b) c.push_back(frost::cka(outs[b], ref_out[b]));
        ckas.push_back(at::stack(c));
        steps.push_back(step);
      };
      train_epochs(*net, task, cfg.epochs, cfg, lr, 202 + seed, tag + " recorded", record);
      record(((task.size() + cfg.batch - 1) / cfg.batch) * cfg.epochs);  // the final weights
      torch::serialize::OutputArchive ar;
      ar.write("arch", c10::IValue(arch));
      ar.write("seed", c10::IValue(seed));
      ar.write("finetune", c10::IValue(finetune));
      ar.write("record_every", c10::IValue(cfg.record_every));
      ar.write("lr", c10::IValue(lr));
      ar.write("classes", c10::IValue(run_task.classes));
      ar.write("generated_from", c10::IValue(about));
      // train refuses histories with the flag (and frost-train the predictor)
      ar.write("includes_main_job", c10::IValue(fpc::includes_main_job(cfg)));
      ar.write("weights", at::stack(weights), true);  // [N, blocks, subset]
      ar.write("cka", at::stack(ckas), true);         // [N, blocks]
      ar.write("steps", c10::IValue(steps));
      ar.write("test_accuracy", c10::IValue(accuracy(*net, probe)));
      ar.write("reference_accuracy", c10::IValue(accuracy(*reference, probe)));
      const auto path = cfg.out + "/" + tag + ".pt";
      ar.save_to(path);
      auto last = ckas.back();
      std::cout << tag << ": " << weights.size() << " records x " << blocks.size()
                << " blocks; final CKA per block " << std::fixed << std::setprecision(3);
      for (std::int64_t b = 0; b < last.size(0); ++b) std::cout << " " << last[b].item<double>();
      std::cout << "; probe accuracy " << std::setprecision(1) << accuracy(*net, probe)
                << " % (reference " << accuracy(*reference, probe) << " %), lr " << std::defaultfloat
                << lr << ", classes " << fpc::join(run_task.classes) << " -> " << path << "\n";
    }
  }
  std::cout << "generated in " << std::fixed << std::setprecision(0)
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s\n";
  return 0;
}

// ---------------------------------------------------------------------------
// train
// ---------------------------------------------------------------------------
struct Sequence {
  std::string arch;
  std::int64_t run = 0, block = 0, nblocks = 0;
  at::Tensor x;       // [N-1, subset] encoded records (record j+1 against j)
  at::Tensor cka;     // [N-1] the CKA at each encoded record
  std::vector<std::int64_t> steps;  // [N-1]
};

using fpc::TrainConfig;

/// Labels of one sequence: 1 from the first record whose CKA, and every later
/// one, is within epsilon of the final value (mean of the last 5).
at::Tensor labels_of(const at::Tensor& cka, double eps) {
  const auto n = cka.size(0);
  const double final_value = cka.narrow(0, n - std::min<std::int64_t>(5, n), std::min<std::int64_t>(5, n)).mean().item<double>();
  auto dev = (cka - final_value).abs();
  // max over the suffix: reversed cumulative max
  auto suffix = std::get<0>(dev.flip(0).cummax(0)).flip(0);
  return suffix.le(eps).to(at::kLong);
}

/// What is held out together: "family" (vit2, vit4, vit6 as one) or "model".
std::string g_holdout_by = "family";

std::string family_of(const std::string& arch) {
  if (g_holdout_by == "model") return arch;
  return arch.compare(0, 3, "vit") == 0 ? "vit" : arch;  // vit2, vit4, vit6: one family
}

std::vector<Sequence> load_sequences(const std::string& dir, std::int64_t* record_every,
                                     std::vector<std::string>* generated_from,
                                     std::vector<fpc::HistoryOrigin>* origins) {
  // Every <arch>-s<seed>.pt in the directory, in name order.
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.size() > 3 && n.compare(n.size() - 3, 3, ".pt") == 0 && n.find("-s") != std::string::npos)
        names.push_back(n);
    }
    ::closedir(d);
  }
  // The generator's order (its architectures as listed, then by seed), so
  // that a rerun trains on the histories in the same order: the same bits.
  auto key = [](const std::string& n) {
    static const std::vector<std::string> known = GenConfig().archs;  // others: after, by name
    const auto dash = n.rfind("-s");
    const std::string arch = n.substr(0, dash);
    const auto it = std::find(known.begin(), known.end(), arch);
    return std::make_tuple(static_cast<std::size_t>(it - known.begin()), arch,
                           std::atoll(n.c_str() + dash + 2));
  };
  std::sort(names.begin(), names.end(),
            [&](const std::string& a, const std::string& b) { return key(a) < key(b); });
  std::vector<Sequence> out;
  std::int64_t run = 0;
  *record_every = 0;
  for (const auto& name : names) {
    const auto path = dir + "/" + name;
    torch::serialize::InputArchive ar;
    ar.load_from(path);
    at::Tensor w, c;
    ar.read("weights", w, true);
    ar.read("cka", c, true);
    c10::IValue re, st, ar_arch;
    ar.read("record_every", re);
    ar.read("steps", st);
    ar.read("arch", ar_arch);
    origins->push_back(fpc::history_origin(path, ar));
    {
      c10::IValue from;
      const std::string what = ar.try_read("generated_from", from)
                                   ? from.toStringRef()
                                   : "an unrecorded configuration (a file from before it was recorded)";
      if (std::find(generated_from->begin(), generated_from->end(), what) == generated_from->end())
        generated_from->push_back(what);
    }
    if (*record_every != 0 && re.toInt() != *record_every)
      throw std::runtime_error(path + " records every " + std::to_string(re.toInt()) +
                               " steps, the runs before it every " + std::to_string(*record_every) +
                               "; generate every run with the same --record-every");
    *record_every = re.toInt();
    const auto steps = st.toIntVector();
    for (std::int64_t b = 0; b < w.size(1); ++b) {
      Sequence s;
      s.arch = ar_arch.toStringRef();
      s.run = run;
      s.block = b;
      s.nblocks = w.size(1);
      auto wb = w.select(1, b);
      s.x = fp::encode(wb.narrow(0, 1, wb.size(0) - 1), wb.narrow(0, 0, wb.size(0) - 1));
      s.cka = c.select(1, b).narrow(0, 1, c.size(0) - 1).to(at::kDouble);
      s.steps.assign(steps.begin() + 1, steps.end());
      out.push_back(std::move(s));
    }
    ++run;
  }
  if (out.empty())
    throw std::runtime_error("no runs in " + dir + "; run `frost-predictor generate` first");
  return out;
}

struct Score {
  std::int64_t windows = 0, correct = 0, pos = 0, tp = 0, neg = 0, tn = 0;
  double step_error = 0;  // sum over blocks of |first predicted freeze - first label| in steps
  std::int64_t blocks = 0, never_predicted = 0, never_labelled = 0;
  double accuracy() const { return windows ? 100.0 * correct / windows : NAN; }
  double balanced() const {
    if (!pos || !neg) return accuracy();
    return 50.0 * (static_cast<double>(tp) / pos + static_cast<double>(tn) / neg);
  }
};

Score score(fp::FreezePredictor& net, const std::vector<const Sequence*>& seqs, double eps) {
  torch::NoGradGuard ng;
  net->eval();
  Score s;
  const auto T = net->options.window();
  for (const auto* q : seqs) {
    if (q->x.size(0) < T) continue;
    auto pred = net->forward_sequence(q->x.to(at::kFloat)).argmax(1);
    auto y = labels_of(q->cka, eps).narrow(0, T - 1, q->x.size(0) - T + 1);
    s.windows += y.size(0);
    s.correct += pred.eq(y).sum().item<std::int64_t>();
    s.pos += y.sum().item<std::int64_t>();
    s.neg += y.size(0) - y.sum().item<std::int64_t>();
    s.tp += (pred.eq(1) & y.eq(1)).sum().item<std::int64_t>();
    s.tn += (pred.eq(0) & y.eq(0)).sum().item<std::int64_t>();
    // When would it have frozen, against when the label says so.
    auto first = [&](const at::Tensor& v) -> std::int64_t {
      auto nz = v.nonzero();
      return nz.size(0) ? nz[0][0].item<std::int64_t>() : -1;
    };
    const auto fp_ = first(pred), fl = first(y);
    ++s.blocks;
    if (fp_ < 0) ++s.never_predicted;
    if (fl < 0) ++s.never_labelled;
    const auto last = static_cast<std::int64_t>(q->steps.size()) - 1;
    const auto sp = q->steps[static_cast<std::size_t>(fp_ < 0 ? last : fp_ + T - 1)];
    const auto sl = q->steps[static_cast<std::size_t>(fl < 0 ? last : fl + T - 1)];
    s.step_error += std::abs(static_cast<double>(sp - sl));
  }
  net->train();
  return s;
}

fp::FreezePredictor fit(const std::vector<const Sequence*>& seqs, const TrainConfig& cfg,
                        std::int64_t record_every, const std::string& label) {
  torch::manual_seed(cfg.seed);
  fp::FreezePredictor net(fp::FreezePredictorOptions()
                              .subset(seqs.front()->x.size(1))
                              .window(cfg.window)
                              .record_every(record_every));
  {  // input scale: 1 / std of the training records
    std::vector<at::Tensor> all;
    for (const auto* q : seqs) all.push_back(q->x);
    const double sd = at::cat(all).to(at::kDouble).std().item<double>();
    torch::NoGradGuard ng;
    net->input_scale.fill_(sd > 0 ? 1.0 / sd : 1.0);
  }
  std::vector<at::Tensor> ys;
  std::int64_t pos = 0, tot = 0;
  for (const auto* q : seqs) {
    auto y = labels_of(q->cka, cfg.epsilon).narrow(0, cfg.window - 1, q->x.size(0) - cfg.window + 1);
    pos += y.sum().item<std::int64_t>();
    tot += y.size(0);
    ys.push_back(y);
  }
  // Class weights: both decisions count equally, whatever the share of "freeze".
  const double pf = std::clamp(static_cast<double>(pos) / std::max<std::int64_t>(1, tot), 0.05, 0.95);
  auto weight = at::tensor({0.5 / (1 - pf), 0.5 / pf}, at::kFloat);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
  std::vector<std::size_t> order(seqs.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 g(static_cast<std::uint64_t>(cfg.seed));
  frost_train::Progress bar(label, cfg.epochs);
  const std::size_t per_step = 8;  // sequences per optimizer step
  for (std::int64_t e = 0; e < cfg.epochs; ++e) {
    std::shuffle(order.begin(), order.end(), g);
    double total = 0;
    for (std::size_t i = 0; i < order.size(); i += per_step) {
      opt.zero_grad();
      at::Tensor loss = at::zeros({});
      for (std::size_t k = i; k < std::min(order.size(), i + per_step); ++k) {
        const auto j = order[k];
        // The tailored subset is a random sample of the block's weights, in no
        // order and with no meaningful sign: any permutation of its entries,
        // and flipping any entry's sign in every record alike, is an equally
        // valid history. Drawing one per sequence and epoch keeps the
        // predictor from memorising particular weights (1 M parameters, a few
        // dozen histories) and makes it look at how the block moves.
        const auto S = seqs[j]->x.size(1);
        auto perm = at::randperm(S, at::kLong);
        auto sign = at::randint(0, 2, {S}, at::kFloat).mul_(2).sub_(1);
        auto logits = net->forward_sequence(seqs[j]->x.to(at::kFloat).index_select(1, perm) * sign);
        loss = loss + torch::nn::functional::cross_entropy(
                          logits, ys[j], torch::nn::functional::CrossEntropyFuncOptions().weight(weight));
      }
      loss.backward();
      opt.step();
      if (bar.enabled()) total += loss.item<double>();
    }
    bar.update(e + 1, "loss " + std::to_string(total / order.size() * per_step).substr(0, 6));
  }
  bar.finish();
  return net;
}

int train(const TrainConfig& cfg) {
  at::set_num_threads(cfg.threads);
  single_threaded_blas();
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t record_every = 1;
  g_holdout_by = cfg.holdout_by;
  std::vector<std::string> generated_from;
  std::vector<fpc::HistoryOrigin> origins;
  auto seqs = load_sequences(cfg.data, &record_every, &generated_from, &origins);
  // before any fitting: a predictor of the main job's histories is refused
  if (const auto m = fpc::train_refusal(origins, cfg); !m.empty()) throw std::runtime_error(m);
  bool includes_main_job = false;
  for (const auto& o : origins) includes_main_job = includes_main_job || o.includes_main_job;
  std::vector<std::string> archs;
  for (const auto& s : seqs)
    if (std::find(archs.begin(), archs.end(), s.arch) == archs.end()) archs.push_back(s.arch);
  std::vector<const Sequence*> all;
  std::int64_t longest = 0;
  for (const auto& s : seqs) {
    longest = std::max<std::int64_t>(longest, s.x.size(0));
    if (s.x.size(0) >= cfg.window) all.push_back(&s);
  }
  if (all.empty())
    throw std::runtime_error(
        "no block history in " + cfg.data + " has --window (" + std::to_string(cfg.window) +
        ") records (the longest has " + std::to_string(longest) +
        "); generate longer runs (--epochs, --images, --record-every) or give a smaller --window");
  std::cout << all.size() << " block histories from " << archs.size() << " architectures, "
            << "record every " << record_every << " steps, window " << cfg.window << "\n";

  // The labelling rule's effect: share of windows labelled "freeze" and the
  // median step at which a block's label turns, per epsilon.
  std::cout << "\nlabelling rule: freeze from the first record whose CKA stays within epsilon of "
               "its final value\n"
            << std::setw(9) << "epsilon" << std::setw(14) << "freeze share" << std::setw(22)
            << "median label step" << std::setw(18) << "never labelled" << "\n";
  for (const auto& es : split(cfg.sweep)) {
    const double eps = std::stod(es);
    std::int64_t pos = 0, tot = 0, never = 0;
    std::vector<std::int64_t> first_steps;
    for (const auto* q : all) {
      const auto labels = labels_of(q->cka, eps);
      auto y = labels.narrow(0, cfg.window - 1, q->x.size(0) - cfg.window + 1);
      pos += y.sum().item<std::int64_t>();
      tot += y.size(0);
      auto nz = labels.nonzero();
      if (nz.size(0) == 0) ++never;
      else first_steps.push_back(q->steps[static_cast<std::size_t>(nz[0][0].item<std::int64_t>())]);
    }
    std::sort(first_steps.begin(), first_steps.end());
    std::cout << std::setw(9) << std::defaultfloat << eps << std::setw(13) << std::fixed
              << std::setprecision(1)
              << 100.0 * pos / std::max<std::int64_t>(1, tot) << "%" << std::setw(22)
              << (first_steps.empty() ? -1 : first_steps[first_steps.size() / 2]) << std::setw(18)
              << never << "\n";
  }

  std::vector<std::string> families;
  for (const auto& a : archs)
    if (std::find(families.begin(), families.end(), family_of(a)) == families.end())
      families.push_back(family_of(a));
  if (cfg.holdout && families.size() > 1) {
    // A whole family out at a time (the three ViTs together): the score says
    // how the predictor does on a kind of model it never saw.
    std::cout << "\nheld-out accuracy (trained on the other " << (g_holdout_by == "model" ? "models" : "families") << ", epsilon "
              << std::defaultfloat << cfg.epsilon << ")\n"
              << std::setw(8) << "family" << std::setw(8) << "model" << std::setw(10) << "windows"
              << std::setw(11) << "accuracy" << std::setw(11) << "balanced" << std::setw(14)
              << "freeze share" << std::setw(24) << "|freeze step error|" << "\n";
    for (const auto& f : families) {
      std::vector<const Sequence*> tr;
      for (const auto* q : all)
        if (family_of(q->arch) != f) tr.push_back(q);
      auto net = fit(tr, cfg, record_every, "held out " + f);
      for (const auto& a : archs) {
        if (family_of(a) != f) continue;
        std::vector<const Sequence*> te;
        for (const auto* q : all)
          if (q->arch == a) te.push_back(q);
        const auto sc = score(net, te, cfg.epsilon);
        std::cout << std::setw(8) << f << std::setw(8) << a << std::setw(10) << sc.windows
                  << std::setw(10) << std::fixed << std::setprecision(1) << sc.accuracy() << "%"
                  << std::setw(10) << sc.balanced() << "%" << std::setw(13)
                  << 100.0 * sc.pos / std::max<std::int64_t>(1, sc.windows) << "%" << std::setw(16)
                  << std::setprecision(0) << sc.step_error / std::max<std::int64_t>(1, sc.blocks)
                  << " steps mean" << "\n";
      }
    }
  }
  auto net = fit(all, cfg, record_every, "all architectures");
  const auto sc = score(net, all, cfg.epsilon);
  std::ostringstream about;
  about << "SmartFRZ predictor trained by frost-predictor on " << all.size()
        << " block histories (" << cfg.data << "), epsilon " << cfg.epsilon << ", " << cfg.epochs
        << " epochs; training accuracy " << sc.accuracy() << " % (balanced " << sc.balanced()
        << " %); histories from "
        << (generated_from.size() == 1 ? generated_from.front()
                                       : std::to_string(generated_from.size()) + " configurations: " +
                                             [&] {
                                               std::string j;
                                               for (const auto& g : generated_from) j += (j.empty() ? "" : " | ") + g;
                                               return j;
                                             }());
  {
    const auto slash = cfg.out.rfind('/');
    if (slash != std::string::npos) make_dirs(cfg.out.substr(0, slash));
  }
  fp::save(net, cfg.out, about.str(), includes_main_job);
  std::cout << "\ntraining accuracy (all architectures): " << std::fixed << std::setprecision(1)
            << sc.accuracy()
            << "% (balanced " << sc.balanced() << "%)\nwrote " << cfg.out << " in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fpc::Command cmd;
  if (const int rc = fpc::parse_command_line(argc, argv, cmd); rc >= 0) return rc;
  try {
    if (cmd.generate) return generate(cmd.gen);
    return train(cmd.train);
  } catch (const c10::Error& e) {  // LibTorch's own: its message, not its stack
    std::cerr << "frost-predictor: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "frost-predictor: " << e.what() << "\n";
    return 1;
  }
}
