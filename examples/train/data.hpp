#pragma once
// examples/train/data.hpp — frost-train's data: Fashion-MNIST split into a
// pre-training task (classes 0-4) and a fine-tuning task (classes 5-9, with
// its validation and test sets), a rank's shard of it, its epochs in steps,
// and a model's accuracy and loss on a split.
#include <torch/nn/functional/loss.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "idx.hpp"

#include "model.hpp"
#include "world.hpp"

namespace frost_train {

namespace fx = frost_examples;

// --- data ---------------------------------------------------------------------

struct TaskData {
  fx::Dataset pretrain;  ///< train split, classes 0-4
  fx::Dataset train;     ///< train split, classes 5-9 (labels kept: 5..9)
  fx::Dataset val;       ///< train split, classes 5-9, the images after `train`'s: validation
  fx::Dataset test;      ///< t10k split, classes 5-9
  /// train split, classes 5-9, the images after `val`'s: neither fine-tuned on
  /// nor validated on; --pretrain-data all pre-trains on them too (issue 32)
  fx::Dataset pretrain_more;
};

/// Adds the package hint to every data error (the reader's "file not found"
/// already has it; a corrupt file's message does not).
inline fx::DataError with_package_hint(const fx::DataError& e) {
  std::string m = e.what();
  if (m.find("dataset-fashion-mnist") == std::string::npos)
    m += "\n  (the Fashion-MNIST files come from the Debian package dataset-fashion-mnist: "
         "apt-get install --reinstall dataset-fashion-mnist, or pass --data DIR with the four "
         "*-ubyte.gz files)";
  return fx::DataError(m);
}

inline TaskData load_task_data(const std::string& dir, std::int64_t pretrain_limit,
                               std::int64_t train_limit, std::int64_t test_limit,
                               std::int64_t val_limit = 1000) {
  try {
    const auto train = fx::load_fashion_mnist(dir, /*train=*/true);
    const auto test = fx::load_fashion_mnist(dir, /*train=*/false);
    TaskData d;
    d.pretrain = fx::filter_classes(train, {0, 1, 2, 3, 4}, /*relabel=*/false);
    d.train = fx::filter_classes(train, {5, 6, 7, 8, 9}, /*relabel=*/false);
    {
      // Validation: held-out training images of classes 5-9 (never trained
      // on), the ones after the fine-tuning set; early stopping and the
      // time-to-accuracy picture read them, the test set stays untouched.
      const std::int64_t n = d.train.size();
      const std::int64_t n_val = std::max<std::int64_t>(0, std::min(val_limit, n / 2));
      const std::int64_t n_train =
          train_limit >= 0 ? std::min(train_limit, n - n_val) : n - n_val;
      d.val = {d.train.images.narrow(0, n_train, n_val), d.train.labels.narrow(0, n_train, n_val)};
      const std::int64_t n_more = n - n_train - n_val;
      d.pretrain_more = {d.train.images.narrow(0, n_train + n_val, n_more),
                         d.train.labels.narrow(0, n_train + n_val, n_more)};
      d.train = fx::take_first(d.train, n_train);
    }
    d.test = fx::filter_classes(test, {5, 6, 7, 8, 9}, /*relabel=*/false);
    if (pretrain_limit >= 0) d.pretrain = fx::take_first(d.pretrain, pretrain_limit);
    if (test_limit >= 0) d.test = fx::take_first(d.test, test_limit);
    if (d.pretrain.size() == 0 || d.train.size() == 0 || d.test.size() == 0 || d.val.size() == 0)
      throw fx::DataError("Fashion-MNIST in " + dir + " has no images for one of the tasks");
    return d;
  } catch (const fx::DataError& e) {
    throw with_package_hint(e);
  }
}

/// Steps in an epoch of `n` samples in batches of `batch` (the last one may be short).
inline std::int64_t steps_per_epoch(std::int64_t n, std::int64_t batch) {
  return std::max<std::int64_t>(1, (n + batch - 1) / batch);
}

/// Rank r's fixed shard of `ds`: samples r, r + W, r + 2W, ... The same number
/// on every rank (the last size % W samples are left out), so that every rank
/// runs the same number of steps; fixed, so that a sample stays on its rank
/// for the whole run (what a per-rank activation cache needs).
inline fx::Dataset shard(const fx::Dataset& ds, const World& world) {
  if (!world.parallel()) return ds;
  const std::int64_t per = ds.size() / world.size;
  const auto idx = at::arange(world.rank, per * world.size, world.size, at::kLong);
  return {ds.images.index_select(0, idx), ds.labels.index_select(0, idx)};
}

// --- a model's accuracy on a split ---------------------------------------------

namespace detail {

/// Accuracy (%) and mean cross-entropy of `model` on `ds`. With several ranks
/// each takes its contiguous part and the sums are added (every rank gets
/// the result).
inline std::pair<double, double> validate(TaskNet& model, const fx::Dataset& ds,
                                          const torch::Device& device, const World& world,
                                          std::int64_t batch = 500) {
  torch::NoGradGuard ng;
  const bool was_training = model.module().is_training();
  model.module().eval();
  const std::int64_t begin = ds.size() * world.rank / world.size;
  const std::int64_t end = ds.size() * (world.rank + 1) / world.size;
  at::Tensor sums = at::zeros({2}, at::TensorOptions().dtype(at::kDouble).device(device));
  for (std::int64_t i = begin; i < end; i += batch) {
    const auto n = std::min(batch, end - i);
    auto x = ds.images.narrow(0, i, n).to(device);
    auto y = ds.labels.narrow(0, i, n).to(device);
    const auto logits = model.forward(x);
    sums[0] += logits.argmax(1).eq(y).sum().to(at::kDouble);
    sums[1] += torch::nn::functional::cross_entropy(
                   logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                   .to(at::kDouble);
  }
  if (was_training) model.module().train();
  world.sum_(sums);
  const auto h = sums.cpu();
  const double n = static_cast<double>(std::max<std::int64_t>(1, ds.size()));
  return {100.0 * h[0].item<double>() / n, h[1].item<double>() / n};
}

}  // namespace detail

/// Top-1 accuracy (in %) of `model` on `ds` (see detail::validate).
inline double evaluate(TaskNet& model, const fx::Dataset& ds, const torch::Device& device,
                       const World& world = World{}, std::int64_t batch = 500) {
  return detail::validate(model, ds, device, world, batch).first;
}

}  // namespace frost_train
