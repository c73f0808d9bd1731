#pragma once
// examples/train/pretraining.hpp — the body every strategy fine-tunes:
// frost-train's own pre-training of the ViT on classes 0-4, run once and
// cached by its settings, or the family's pretrained file (effnet-lite0).
#include <torch/nn/functional/loss.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>

#include "frost/frost.hpp"

#include "cli.hpp"
#include "data.hpp"
#include "files.hpp"
#include "model.hpp"
#include "progress.hpp"

namespace frost_train {

namespace fx = frost_examples;

inline std::string pretrain_key(const TrainConfig& cfg, std::int64_t n) {
  std::ostringstream k;
  k << "pretrain-" << cfg.model << "-seed" << cfg.seed << "-n" << n << "-ep" << cfg.pretrain_epochs
    << "-lr" << cfg.pretrain_lr << "-bs" << cfg.batch_size
    << (cfg.pretrain_data == "0-4" ? "" : "-data" + cfg.pretrain_data) << ".pt";
  return k.str();
}

/// Held while LibTorch's default generator is seeded and drawn from.
inline std::mutex& default_generator_mutex() {
  static std::mutex m;
  return m;
}
/// `make()` with LibTorch's default generator seeded with `seed`. The
/// generator is the process'; two pre-trainings at once (runner.hpp, --jobs
/// with several seeds) take it one after the other, so each model starts
/// from its seed's weights whatever runs beside it.
template <class Make>
auto seeded(Make make, std::uint64_t seed) {
  std::lock_guard<std::mutex> l(default_generator_mutex());
  torch::manual_seed(seed);
  return make();
}

/// The images the body pre-trains on: classes 0-4; with --pretrain-data all
/// also the classes 5-9 training images that neither fine-tuning nor
/// validation uses (TaskData::pretrain_more; the test split is never read).
inline fx::Dataset pretraining_set(const TrainConfig& cfg, const TaskData& d) {
  if (cfg.pretrain_data != "all" || d.pretrain_more.size() == 0) return d.pretrain;
  return {at::cat({d.pretrain.images, d.pretrain_more.images}),
          at::cat({d.pretrain.labels, d.pretrain_more.labels})};
}

namespace detail {

/// Trains `model` on classes 0-4 (and more: pretraining_set) for cfg.pretrain_epochs: AdamW under frost
/// with nothing to freeze (a warm-up + cosine schedule). `path` is where the
/// weights will be cached (for the log line).
inline void pretrain(fx::ViT& model, const TrainConfig& cfg, const TaskData& data,
                     const torch::Device& device, const std::string& path,
                     const std::function<void(const std::string&)>& log) {
  const fx::Dataset images = pretraining_set(cfg, data);
  const auto spe = steps_per_epoch(images.size(), cfg.batch_size);
  const auto total = std::max<std::int64_t>(
      1, static_cast<std::int64_t>(std::llround(cfg.pretrain_epochs * static_cast<double>(spe))));
  auto blocks = frost::BlockMap::detect(*model);
  torch::optim::AdamW opt(frost::param_groups(blocks, *model),
                          torch::optim::AdamWOptions(cfg.pretrain_lr).weight_decay(cfg.weight_decay));
  // frost with nothing to freeze is just a warm-up + cosine schedule.
  using Ctl = frost::FreezeController<frost::criteria::Never, frost::schedules::Cosine,
                                      frost::stop::Never>;
  Ctl::Options o;
  o.controller().total_steps(total).warmup_steps(std::min<std::int64_t>(total / 10, 50));
  Ctl ctl(model, opt, blocks, o);
  log(std::string("pre-training on classes ") + (images.size() > data.pretrain.size() ? "0-9" : "0-4") +
      ": " + std::to_string(images.size()) + " images, " +
      std::to_string(total) + " steps (once; cached in " + path + ")");
  Progress bar("pre-train", total, cfg.quiet ? 0 : cfg.progress);
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t step = 0;
  for (std::int64_t epoch = 0; step < total; ++epoch) {
    fx::Batches bs(images, cfg.batch_size, cfg.seed * 1000003ULL + 17 + epoch);
    for (std::int64_t b = 0; b < bs.size() && step < total; ++b, ++step) {
      auto batch = bs[b];
      ctl.before_step();
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(batch.images.to(device)),
                                                       batch.labels.to(device));
      loss.backward();
      ctl.after_backward();
      opt.step();
      ctl.after_step();
      if (bar.enabled() && (step % 10 == 0 || step + 1 == total)) {
        std::ostringstream e;
        e << "loss " << std::fixed << std::setprecision(3) << loss.item<double>();
        bar.update(step + 1, e.str());
      }
    }
  }
  bar.finish();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::ostringstream m;
  m << "pre-training done in " << std::fixed << std::setprecision(1) << secs << " s";
  log(m.str());
}

}  // namespace detail

/// Returns the path of the pre-trained weights, training them first when the
/// cache has none for this configuration. `log` gets one-line messages.
inline std::string ensure_pretrained(const TrainConfig& cfg, const TaskData& data,
                                     const torch::Device& device,
                                     const std::function<void(const std::string&)>& log) {
  make_dirs(cfg.cache_dir);
  const std::string path = join(cfg.cache_dir, pretrain_key(cfg, data.pretrain.size()));
  if (path_exists(path)) {
    log("pre-trained model: " + path + " (cached)");
    return path;
  }
  fx::ViT model = seeded([&] { return fx::ViT(model_options(cfg.model)); }, cfg.seed);
  model->to(device);
  if (cfg.pretrain_epochs > 0) detail::pretrain(model, cfg, data, device, path, log);
  model->to(torch::kCPU);
  const std::string tmp = path + ".tmp";
  torch::save(model, tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot move " + tmp + " to " + path);
  return path;
}

/// The weights a fine-tuning run starts from: frost-train's own pre-training
/// (the ViT, cached) or the family's file (effnet-lite0, minilm-l6; a missing
/// file is an error naming the set-up step). Rank 0 calls it.
inline std::string starting_weights(const TrainConfig& cfg, const TaskData& data,
                                    const torch::Device& device,
                                    const std::function<void(const std::string&)>& log) {
  if (pretrains_itself(cfg.model)) return ensure_pretrained(cfg, data, device, log);
  if (is_minilm_model(cfg.model)) {
    const std::string path = minilm_weights_path(cfg);
    log("pretrained model: " + path + " (all-MiniLM-L6-v2; no pre-training)");
    return path;
  }
  const std::string path = effnet_weights_path(cfg);
  log("pretrained model: " + path + " (ImageNet weights; no pre-training)");
  return path;
}

}  // namespace frost_train
