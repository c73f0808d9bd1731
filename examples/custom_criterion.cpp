// examples/custom_criterion.cpp — the guide's "Writing your own policy"
// (docs/guide.md), quoted there as it is (ctest docs.code_blocks_compiled).
// ctest example.custom_criterion runs it: it fails unless the criterion froze
// a block and describe() lists its options.
#include <frost/frost.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <iostream>
#include <vector>

// Every `every` steps, freeze the first training block if its gradient norm
// at that step is below `threshold`. It keeps nothing between steps.
struct SmallGradientOptions {
  FROST_OPTIONS(
      (std::int64_t, every, 100),
      (double, threshold, 1e-3));
};

class SmallGradient {
 public:
  using Options = SmallGradientOptions;
  static constexpr const char* name = "SmallGradient";
  static constexpr bool stateless = true;       // else save() and load()
  static constexpr bool uses_gradients = true;  // ctl.after_backward() in every step
  explicit SmallGradient(const Options& o) : o_(o) {}

  void setup(const frost::CriterionSetup& s) { blocks_ = s.blocks; }
  void observe(const frost::StepState&) {}  // after every backward; never reads the host
  bool decision_point(const frost::StepState& s) const { return (s.step + 1) % o_.every() == 0; }
  // At a decision point, on the device: one L2 norm per block (0 without a gradient).
  at::Tensor statistics(const frost::StepState& s) {
    std::vector<at::Tensor> norms;
    for (std::size_t b = 0; b < blocks_->size(); ++b) {
      const auto& params = (*blocks_)[b].params;
      auto sq = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(params[0].device()));
      if (s.trains(static_cast<std::int64_t>(b)))
        for (const auto& p : params)
          if (p.grad().defined()) sq = sq + p.grad().to(at::kFloat).pow(2).sum();
      norms.push_back(sq.sqrt());
    }
    return at::stack(norms);
  }
  // The same values on the host, after the reducer.
  void decide(const frost::StepState& s, frost::HostValues norm, frost::Decisions& out) {
    for (std::int64_t b = 0; b < static_cast<std::int64_t>(norm.size()); ++b)
      if (s.trains(b)) {
        if (norm[b] < o_.threshold()) out.freeze(b, norm[b], "gradient norm below threshold");
        return;
      }
  }

 private:
  Options o_;
  const frost::BlockMap* blocks_ = nullptr;
};

using Controller = frost::FreezeController<SmallGradient, frost::schedules::Constant,
                                           frost::stop::AllFrozen>;

int main() {
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(16, 32), torch::nn::ReLU(),
                              torch::nn::Linear(32, 32), torch::nn::ReLU(),
                              torch::nn::Linear(32, 4));
  auto blocks = frost::BlockMap::from_prefixes(*model, {"0", "2"});  // "4", the head, trains
  torch::optim::SGD optimizer(frost::param_groups(blocks, *model), torch::optim::SGDOptions(0.05));
  // A threshold no gradient norm here exceeds: every decision point freezes a block.
  Controller ctl(model, optimizer, blocks,
                 Controller::Options().criterion(SmallGradientOptions().every(10).threshold(1e3)));
  for (const auto& [key, value] : ctl.describe()) std::cout << key << " = " << value << "\n";

  auto x = torch::randn({128, 16});
  auto y = torch::randint(0, 4, {128});
  int64_t steps = 0;
  for (; steps < 100 && !ctl.should_stop(); ++steps) {
    ctl.before_step();
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    ctl.after_backward();
    optimizer.step();
    ctl.after_step();
  }
  for (const auto& event : ctl.timeline()) std::cout << event << "\n";
  // Blocks 0 and 1 freeze at the first two decision points (steps 9 and 19),
  // then AllFrozen ends the run.
  const bool froze = ctl.num_frozen() == 2 && steps == 20;
  std::cout << ctl.num_frozen() << " of " << blocks.size() << " blocks frozen after " << steps
            << " steps\n";
  return froze ? 0 : 1;
}
