// frost-from-scratch: the gradient criteria's defaults on a network trained
// from scratch (docs/from-scratch.md). A ResNet of the shape public LibTorch
// tutorials train (a stem conv + batch norm, three stages of two residual
// blocks with batch norm in Sequential stages, global pooling, a linear head),
// Adam, a step decay of the learning rate, an epoch loop over torch::data
// loaders, on Fashion-MNIST. Each run prints one CSV line:
//
//   strategy,seed,epochs,steps,accuracy,seconds,frozen_blocks,frozen_at
//
// frozen_at lists, per block, the epoch (fractional: step / steps per epoch)
// at which it froze, '-' for never. Runs of one seed follow each other in the
// order given, so a slow spell of the machine hits every strategy alike.
//
//   frost-from-scratch --strategies control,autofreeze,dyf,freezeout --seeds 0,1,2
#include <frost/frost.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "idx.hpp"

namespace {

// --- the model: conv3x3-BN-ReLU stem, 3 stages x 2 basic blocks ------------
struct BasicBlockImpl : torch::nn::Module {
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride) {
    namespace nn = torch::nn;
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)));
    bn1 = register_module("bn1", nn::BatchNorm2d(out));
    conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
    bn2 = register_module("bn2", nn::BatchNorm2d(out));
    if (stride != 1 || in != out)
      down = register_module("down", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)),
                                                   nn::BatchNorm2d(out)));
  }
  torch::Tensor forward(torch::Tensor x) {
    auto y = torch::relu(bn1(conv1(x)));
    y = bn2(conv2(y));
    return torch::relu(y + (down ? down->forward(x) : x));
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential down{nullptr};
};
TORCH_MODULE(BasicBlock);

struct ResNetImpl : torch::nn::Module {
  explicit ResNetImpl(int64_t w) {
    namespace nn = torch::nn;
    conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(1, w, 3).padding(1).bias(false)));
    bn = register_module("bn", nn::BatchNorm2d(w));
    layer1 = register_module("layer1", nn::Sequential(BasicBlock(w, w, 1), BasicBlock(w, w, 1)));
    layer2 = register_module("layer2", nn::Sequential(BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 2 * w, 1)));
    layer3 = register_module("layer3", nn::Sequential(BasicBlock(2 * w, 4 * w, 2), BasicBlock(4 * w, 4 * w, 1)));
    fc = register_module("fc", nn::Linear(4 * w, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(bn(conv(x)));
    x = layer3->forward(layer2->forward(layer1->forward(x)));
    return fc(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet);

// --- torch::data over the IDX tensors ----------------------------------------
struct Images : torch::data::datasets::Dataset<Images> {
  explicit Images(frost_examples::Dataset d) : d_(std::move(d)) {}
  torch::data::Example<> get(size_t i) override {
    const auto k = static_cast<int64_t>(i);
    return {d_.images[k], d_.labels[k]};
  }
  torch::optional<size_t> size() const override { return static_cast<size_t>(d_.size()); }
  frost_examples::Dataset d_;
};

struct Config {
  std::vector<std::string> strategies{"control", "autofreeze", "dyf", "freezeout"};
  std::vector<uint64_t> seeds{0, 1, 2};
  int64_t epochs = 3, train = 12000, test = 5000, width = 8, batch = 64, decay_every = 2,
          threads = 1;
  double lr = 1e-3, decay = 1.0 / 3.0;
  std::vector<std::string> sets;  // criterion.key=value for the gradient criteria
  std::string data = frost_examples::default_fashion_mnist_dir();
};

template <class T>
std::vector<T> split(const std::string& s) {
  std::vector<T> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    std::istringstream is(item);
    T v;
    is >> v;
    out.push_back(v);
  }
  return out;
}

struct Result {
  double accuracy = 0, seconds = 0;
  int64_t steps = 0, frozen = 0;
  std::string frozen_at;
};

double evaluate(ResNet& model, const frost_examples::Dataset& test) {
  torch::NoGradGuard ng;
  model->eval();
  int64_t correct = 0;
  for (int64_t i = 0; i < test.size(); i += 500) {
    const int64_t n = std::min<int64_t>(500, test.size() - i);
    auto pred = model->forward(test.images.narrow(0, i, n)).argmax(1);
    correct += pred.eq(test.labels.narrow(0, i, n)).sum().item<int64_t>();
  }
  model->train();
  return static_cast<double>(correct) / static_cast<double>(test.size());
}

// One run of the tutorial's loop with a controller of type Ctl.
template <class Ctl>
Result run(const Config& c, uint64_t seed, const frost_examples::Dataset& train,
           const frost_examples::Dataset& test, typename Ctl::Options opts, bool gradient_criterion) {
  torch::manual_seed(seed);
  ResNet model(c.width);
  auto blocks = frost::BlockMap::detect(*model);
  torch::optim::Adam optimizer(frost::param_groups(blocks, *model), torch::optim::AdamOptions(c.lr));
  auto loader = torch::data::make_data_loader(
      Images(train).map(torch::data::transforms::Stack<>()),
      torch::data::samplers::RandomSampler(static_cast<size_t>(train.size())),
      torch::data::DataLoaderOptions().batch_size(static_cast<size_t>(c.batch)).drop_last(true));
  const int64_t spe = train.size() / c.batch;
  opts.controller().total_steps(spe * c.epochs).steps_per_epoch(spe);
  if (gradient_criterion)
    for (const auto& kv : c.sets) {
      const auto eq = kv.find('=');
      Ctl::set_option(opts, kv.substr(0, eq), kv.substr(eq + 1));
    }
  Ctl ctl(model, optimizer, blocks, opts);
  double lr = c.lr;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t epoch = 0; epoch < c.epochs; ++epoch) {
    for (auto& batch : *loader) {
      ctl.before_step();
      optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(batch.data), batch.target);
      loss.backward();
      ctl.after_backward();
      optimizer.step();
      ctl.after_step();
    }
    if ((epoch + 1) % c.decay_every == 0) {  // the tutorial's step decay
      lr *= c.decay;
      ctl.set_base_lr(lr);
    }
  }
  Result r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.accuracy = evaluate(model, test);
  r.steps = ctl.step();
  r.frozen = ctl.num_frozen();
  std::vector<std::string> at(blocks.size(), "-");
  for (const auto& e : ctl.timeline())
    if (e.kind == frost::EventKind::freeze && e.block >= 0) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(e.step) / static_cast<double>(spe));
      at[static_cast<std::size_t>(e.block)] = buf;
    }
  for (std::size_t b = 0; b < at.size(); ++b) r.frozen_at += (b ? " " : "") + at[b];
  return r;
}

struct Options {
  std::string min_epochs;
};

Result run_strategy(const std::string& s, const Config& c, uint64_t seed,
                    const frost_examples::Dataset& train, const frost_examples::Dataset& test) {
  namespace cr = frost::criteria;
  namespace sc = frost::schedules;
  if (s == "control") {
    using Ctl = frost::FreezeController<cr::Never, sc::Constant, frost::stop::Never>;
    return run<Ctl>(c, seed, train, test, {}, false);
  }
  // "<criterion>" with the options as compiled; "-e<k>": min_epochs k (0: the paper's)
  const auto dash = s.find("-e");
  const std::string base = s.substr(0, dash);
  Options guard;
  if (dash != std::string::npos) guard.min_epochs = s.substr(dash + 2);
  if (base == "autofreeze") {  // AutoFreeze: percentile 50, 4 evaluations per epoch
    using Ctl = frost::FreezeController<cr::GradientNormChange, sc::Constant, frost::stop::Never>;
    Ctl::Options o;
    if (!guard.min_epochs.empty()) Ctl::set_option(o, "criterion.min_epochs", guard.min_epochs);
    return run<Ctl>(c, seed, train, test, o, true);
  }
  if (base == "dyf") {  // DyF: threshold 0.001, one window per epoch
    using Ctl = frost::FreezeController<cr::GradientThreshold, sc::Constant, frost::stop::Never>;
    Ctl::Options o;
    if (!guard.min_epochs.empty()) Ctl::set_option(o, "criterion.min_epochs", guard.min_epochs);
    return run<Ctl>(c, seed, train, test, o, true);
  }
  if (s == "freezeout") {  // FreezeOut, cubic, scaled, t0 = 0.8
    using Ctl = frost::FreezeController<cr::Never, sc::FreezeOut<frost::Cubic, frost::Scaled>,
                                        frost::stop::Never>;
    return run<Ctl>(c, seed, train, test, {}, false);
  }
  throw std::invalid_argument("unknown strategy '" + s +
                              "' (control, autofreeze, dyf, freezeout; autofreeze-e<k>, dyf-e<k>: min_epochs k)");
}

}  // namespace

int main(int argc, char** argv) try {
  Config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--strategies") c.strategies = split<std::string>(v);
    else if (k == "--seeds") c.seeds = split<uint64_t>(v);
    else if (k == "--epochs") c.epochs = std::stoll(v);
    else if (k == "--train") c.train = std::stoll(v);
    else if (k == "--test") c.test = std::stoll(v);
    else if (k == "--width") c.width = std::stoll(v);
    else if (k == "--batch") c.batch = std::stoll(v);
    else if (k == "--lr") c.lr = std::stod(v);
    else if (k == "--decay-every") c.decay_every = std::stoll(v);
    else if (k == "--threads") c.threads = std::stoll(v);
    else if (k == "--set") c.sets.push_back(v);
    else if (k == "--data") c.data = v;
    else throw std::invalid_argument("unknown option " + k);
  }
  torch::set_num_threads(static_cast<int>(c.threads));
  const auto train = frost_examples::load_fashion_mnist(c.data, true, c.train);
  const auto test = frost_examples::load_fashion_mnist(c.data, false, c.test);
  std::cout << "strategy,seed,epochs,steps,accuracy,seconds,frozen_blocks,frozen_at" << std::endl;
  for (const auto seed : c.seeds)
    for (const auto& s : c.strategies) {
      const Result r = run_strategy(s, c, seed, train, test);
      std::printf("%s,%llu,%lld,%lld,%.4f,%.2f,%lld,%s\n", s.c_str(),
                  static_cast<unsigned long long>(seed), static_cast<long long>(c.epochs),
                  static_cast<long long>(r.steps), r.accuracy, r.seconds,
                  static_cast<long long>(r.frozen), r.frozen_at.c_str());
      std::fflush(stdout);
    }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "frost-from-scratch: " << e.what() << "\n";
  return 1;
}
