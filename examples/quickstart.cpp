// examples/quickstart.cpp — the README's "Quick start", quoted there as it is
// below these lines (ctest example.quickstart_in_readme checks that). ctest
// example.quickstart runs it; scripts/test.sh also builds it against the
// installed package and the source tree (tests/package).
#include <frost/frost.hpp>
#include <torch/torch.h>

#include <iostream>

// Any model whose blocks sit in a ModuleList or Sequential works with
// BlockMap::detect; name them with BlockMap::from_prefixes otherwise.
struct NetImpl : torch::nn::Module {
  NetImpl() {
    embed = register_module("embed", torch::nn::Linear(16, 64));
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int i = 0; i < 6; ++i) blocks->push_back(torch::nn::Linear(64, 64));
    head = register_module("head", torch::nn::Linear(64, 4));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = embed(x);
    for (auto& b : *blocks) x = x + torch::relu(b->as<torch::nn::Linear>()->forward(x));
    return head(x);
  }
  torch::nn::Linear embed{nullptr}, head{nullptr};
  torch::nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(Net);

int main() {
  torch::manual_seed(0);
  Net model;
  auto blocks = frost::BlockMap::detect(*model);  // stem (embed), blocks.0 .. blocks.5
  torch::optim::AdamW optimizer(frost::param_groups(blocks, *model),  // one group per block
                                torch::optim::AdamWOptions(1e-3));

  // This composition takes over your loop's learning rates (every group's,
  // the head's too) and its length: see "What the quick start changes in
  // your loop"; examples/keep_your_plan.cpp keeps your own.
  using Controller = frost::FreezeController<
      frost::criteria::GradientNormChange,                     // AutoFreeze's gradient-norm test
      frost::schedules::FreezeOut<frost::Cubic, frost::Scaled>,  // FreezeOut's per-block rates
      frost::stop::AllFrozen>;                                 // stop when every block is frozen
  const int64_t steps = 200;
  Controller ctl(model, optimizer, blocks,
                 Controller::Options()
                     .controller(frost::ControllerOptions().total_steps(steps).warmup_steps(10))
                     .criterion(frost::criteria::GradientNormChangeOptions()
                                    .interval(20)     // judge every 20 steps
                                    .min_epochs(0))   // no epochs in this loop: from the start
                     .schedule(frost::schedules::FreezeOutOptions().t0(0.5)));
  for (const auto& [key, value] : ctl.describe()) std::cout << key << " = " << value << "\n";

  auto x = torch::randn({256, 16});
  auto y = torch::randint(0, 4, {256});
  for (int64_t step = 0; step < steps && !ctl.should_stop(); ++step) {
    ctl.before_step();   // this step's learning rates; schedule-driven freezing
    optimizer.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    ctl.after_backward();  // right after backward(), before any clipping: the raw gradients
    optimizer.step();
    ctl.after_step();      // decisions, freezing, the stop check
  }
  for (const auto& event : ctl.timeline()) std::cout << event << "\n";
  std::cout << "frozen prefix: " << ctl.frozen_prefix() << " of " << blocks.size() << " blocks\n";
  return ctl.num_frozen() > 0 ? 0 : 1;
}
