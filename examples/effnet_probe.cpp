// frost-effnet-probe: did the ImageNet weights load meaningfully? A linear
// probe (multinomial logistic regression) on the frozen, globally pooled
// EfficientNet-Lite0 features of a Fashion-MNIST subset, once with the
// pretrained weights (scripts/effnet-weights.sh) and once with the same
// network randomly initialised; pretrained features should be far better.
//
//   frost-effnet-probe [--train 2000] [--test 1000] [--size 64] [--weights PATH] [--data DIR]
//
// Images: upsampled to size x size, gray repeated into RGB, Lite's normalisation
// (fashion_mnist_to_rgb). Features: class_token_from (the pooled 1280-d head
// features _fc reads), eval mode (batch-norm running statistics), no gradient.
// Probe: the features standardised with the training subset's mean and std, a
// 1280 -> 10 linear layer trained full-batch with Adam (lr 0.01, 300 steps,
// weight decay 1e-4), the same for both; accuracy on the first `test` test images.
#include <torch/nn/functional/loss.h>
#include <torch/optim/adam.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "efficientnet.hpp"
#include "idx.hpp"

namespace fx = frost_examples;

namespace {

at::Tensor features(fx::EfficientNet& m, const at::Tensor& images, int64_t size) {
  at::NoGradGuard ng;
  m->eval();
  std::vector<at::Tensor> out;
  for (int64_t b = 0; b < images.size(0); b += 200) {
    const auto x = fx::fashion_mnist_to_rgb(images.narrow(0, b, std::min<int64_t>(200, images.size(0) - b)), size);
    out.push_back(m->class_token_from(x, 0));
  }
  return at::cat(out);
}

double probe(const at::Tensor& ftrain, const at::Tensor& ytrain, const at::Tensor& ftest,
             const at::Tensor& ytest) {
  const auto mean = ftrain.mean(0, true), std = ftrain.std(0, true, true) + 1e-6;
  const auto xtr = (ftrain - mean) / std, xte = (ftest - mean) / std;
  torch::manual_seed(0);
  torch::nn::Linear lin(ftrain.size(1), 10);
  torch::optim::Adam opt(lin->parameters(), torch::optim::AdamOptions(0.01).weight_decay(1e-4));
  for (int i = 0; i < 300; ++i) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(lin->forward(xtr), ytrain);
    loss.backward();
    opt.step();
  }
  at::NoGradGuard ng;
  return lin->forward(xte).argmax(1).eq(ytest).to(at::kDouble).mean().item<double>();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t ntrain = 2000, ntest = 1000, size = 64;
  std::string weights = fx::effnet_weights_path(), data = fx::default_fashion_mnist_dir();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--train") ntrain = std::stoll(v);
    else if (a == "--test") ntest = std::stoll(v);
    else if (a == "--size") size = std::stoll(v);
    else if (a == "--weights") weights = v;
    else if (a == "--data") data = v;
    else {
      std::fprintf(stderr, "frost-effnet-probe: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const auto train = fx::load_fashion_mnist(data, true, ntrain);
  const auto test = fx::load_fashion_mnist(data, false, ntest);
  auto run = [&](bool pretrained) {
    torch::manual_seed(21);
    fx::EfficientNet m(fx::EfficientNetOptions().num_classes(10).image_size(size));
    if (pretrained) {
      const auto r = fx::load_pretrained(*m, weights);
      std::printf("%s\n", r.summary().c_str());
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto ftr = features(m, train.images, size), fte = features(m, test.images, size);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double acc = probe(ftr, train.labels, fte, test.labels);
    std::printf("%-22s linear-probe test accuracy %.2f %%  (features of %lld images in %.1f s)\n",
                pretrained ? "pretrained (ImageNet)" : "random initialisation", 100.0 * acc,
                static_cast<long long>(ntrain + ntest), secs);
    return acc;
  };
  std::printf("EfficientNet-Lite0 linear probe: Fashion-MNIST, %lld train / %lld test images at %lldx%lld\n",
              static_cast<long long>(ntrain), static_cast<long long>(ntest), static_cast<long long>(size),
              static_cast<long long>(size));
  const double pre = run(true), rnd = run(false);
  std::printf("difference: %+.2f points\n", 100.0 * (pre - rnd));
  return 0;
}
