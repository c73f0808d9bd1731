// examples/keep_your_plan.cpp — the README's quick start, "Keeping your own
// learning-rate plan", quoted there as it is below these lines (ctest
// example.keep_your_plan_in_readme checks that); ctest example.keep_your_plan
// runs it and fails unless the head's rate is the program's own at the end.
#include <frost/frost.hpp>
#include <torch/torch.h>

#include <cmath>
#include <iostream>

int main() {
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(16, 64), torch::nn::ReLU(),
                              torch::nn::Linear(64, 64), torch::nn::ReLU(),
                              torch::nn::Linear(64, 4));
  auto blocks = frost::BlockMap::from_prefixes(*model, {"0", "2"});  // "4", the head, trains
  const double lr = 2e-3;
  torch::optim::Adam optimizer(frost::param_groups(blocks, *model), torch::optim::AdamOptions(lr));
  torch::optim::StepLR plan(optimizer, /*step_size=*/50, /*gamma=*/0.5);  // your own plan

  // The criterion decides when a block freezes; Constant leaves every rate
  // as you set it, Never leaves the length of the run to your loop.
  using Controller = frost::FreezeController<frost::criteria::GradientNormChange,
                                             frost::schedules::Constant, frost::stop::Never>;
  Controller ctl(model, optimizer, blocks,
                 Controller::Options().criterion(
                     frost::criteria::GradientNormChangeOptions().interval(10).min_epochs(0)));

  auto x = torch::randn({256, 16});
  auto y = torch::randint(0, 4, {256});
  for (int64_t step = 0; step < 200; ++step) {  // all 200 steps
    ctl.before_step();
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    ctl.after_backward();
    optimizer.step();
    ctl.after_step();
    plan.step();  // every group, the head's too: x 0.5 every 50 steps
  }
  const double head_lr = optimizer.param_groups().back().options().get_lr();
  std::cout << ctl.num_frozen() << " of " << blocks.size() << " blocks frozen, head lr "
            << head_lr << " (" << lr << " x 0.5^3)\n";
  return std::abs(head_lr - lr * 0.125) < 1e-12 ? 0 : 1;
}
