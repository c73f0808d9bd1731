// ctest lifecycle.extra_state, step 2: trains with a block state that a test
// added (issue 31). tests/extra_state/add_state.cmake copied include/frost and
// appended only the rows docs/README.md names for a new state: "cooling" (no
// gradient, optimizer state kept, not frozen for good, train mode), the
// request "cool" and its event. This program is built against that copy and
// checks that every part of frost treats the new state as its rows say,
// without a line of frost changed: gradients, the optimizer's state, the
// learning rate, the module mode, the views, the timeline, a checkpoint.
#include <frost/frost.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

int failures = 0;
#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::cerr << __FILE__ << ":" << __LINE__ << ": failed: " #cond "\n"; \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

/// Asks a scripted request before given steps: (step, block, request).
struct ScriptOptions {};
struct Asked {
  std::int64_t step, block;
  frost::Request request;
};
class Script {
 public:
  using Options = ScriptOptions;
  static constexpr const char* name = "Script";
  static constexpr bool stateless = true;
  explicit Script(const Options& = {}) {}
  static std::vector<Asked>& plan() {
    static std::vector<Asked> p;
    return p;
  }
  void setup(const frost::CriterionSetup&) {}
  void observe(const frost::StepState&) {}
  bool decision_point(const frost::StepState&) const { return false; }
  at::Tensor statistics(const frost::StepState&) { return at::zeros({1}); }
  void decide(const frost::StepState&, frost::HostValues, frost::Decisions&) {}
  void before_step(const frost::StepState& s, frost::Decisions& d) {
    for (const Asked& a : plan())
      if (a.step == s.step) d.ask(a.request, a.block, 0.0, "scripted");
  }
};

/// Block "b1" holds a dropout: whether it stays in train mode shows the
/// state's eval-mode column at work.
struct DropBlockImpl : torch::nn::Module {
  DropBlockImpl() : lin(register_module("lin", torch::nn::Linear(8, 8))),
                    drop(register_module("drop", torch::nn::Dropout(0.5))) {}
  at::Tensor forward(const at::Tensor& x) { return drop(lin(x)); }
  torch::nn::Linear lin;
  torch::nn::Dropout drop;
};
TORCH_MODULE(DropBlock);

struct NetImpl : torch::nn::Module {
  NetImpl() : b0(register_module("b0", torch::nn::Linear(8, 8))),
              b1(register_module("b1", DropBlock())),
              b2(register_module("b2", torch::nn::Linear(8, 8))),
              head(register_module("head", torch::nn::Linear(8, 3))) {}
  at::Tensor forward(const at::Tensor& x) { return head(b2(b1(b0(x)))); }
  torch::nn::Linear b0;
  DropBlock b1;
  torch::nn::Linear b2, head;
};
TORCH_MODULE(Net);

}  // namespace
FROST_REFLECT_NONE(ScriptOptions);

using Controller =
    frost::FreezeController<Script, frost::schedules::Constant, frost::stop::Never>;

int main() {
  using frost::BlockState;
  using frost::Request;
  // The rows the test added, as the library now reads them.
  static_assert(frost::kNumBlockStates == 4, "add_state.cmake appended the state's row");
  EXPECT(std::string(frost::to_string(BlockState::cooling)) == "cooling");
  BlockState parsed{};
  EXPECT(frost::from_string("cooling", parsed) && parsed == BlockState::cooling);
  EXPECT(frost::lifecycle(BlockState::training, Request::cool).to == BlockState::cooling);
  EXPECT(frost::lifecycle(BlockState::cooling, Request::trial).refused());  // not listed

  torch::manual_seed(0);
  Net model;
  auto blocks = frost::BlockMap::from_prefixes(*model, {"b0", "b1", "b2"});  // the head trains
  torch::optim::Adam optimizer(frost::param_groups(blocks, *model), torch::optim::AdamOptions(1e-2));
  Controller ctl(model, optimizer, blocks, Controller::Options().controller(
                                               frost::ControllerOptions().steps_per_epoch(4)));
  // Blocks 1 (with a dropout) and 2 cool at step 2; block 2 reverts at step
  // 5 and cools again at step 7.
  Script::plan() = {{2, 2, Request::cool}, {2, 1, Request::cool}, {5, 2, Request::revert},
                    {7, 2, Request::cool}};
  auto x = torch::randn({32, 8});
  auto y = torch::randint(0, 3, {32});
  const at::Tensor w2 = model->b2->weight;
  at::Tensor before;
  for (std::int64_t step = 0; step < 9; ++step) {
    model->train();
    ctl.before_step();
    if (step == 3) {  // cooling since step 2: as its row says
      EXPECT(ctl.block_state(2) == BlockState::cooling);
      EXPECT(!w2.requires_grad());                                       // trains: false
      EXPECT(frost::has_optimizer_state(optimizer, w2));                 // keeps its state
      EXPECT(optimizer.param_groups()[2].options().get_lr() == 0.0);     // no rate
      EXPECT(model->b1->is_training() && model->b1->drop->is_training());  // eval: false
      EXPECT(ctl.num_frozen() == 0 && ctl.frozen_prefix() == 0);         // not frozen for good
      EXPECT(ctl.no_grad_prefix() == 0);                                 // block 0 trains
      before = w2.detach().clone();
    }
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    ctl.after_backward();
    optimizer.step();
    ctl.after_step();
    if (step == 3) EXPECT(torch::equal(before, w2.detach()));  // no update while cooling
    if (step == 5) {  // reverted: it trains on from its optimizer state
      EXPECT(ctl.block_state(2) == BlockState::training);
      EXPECT(w2.requires_grad());
      EXPECT(optimizer.param_groups()[2].options().get_lr() > 0.0);
    }
  }
  EXPECT(ctl.block_state(1) == BlockState::cooling && ctl.block_state(2) == BlockState::cooling);
  // The timeline records the new event by its name.
  int cools = 0;
  for (const auto& e : ctl.timeline()) cools += std::string(frost::to_string(e.kind)) == "cool";
  EXPECT(cools == 3);

  // A checkpoint holds the new state and loads into a fresh controller.
  std::stringstream bytes;
  {
    torch::serialize::OutputArchive out;
    ctl.save(out);
    out.save_to(bytes);
  }
  torch::optim::Adam optimizer2(frost::param_groups(blocks, *model), torch::optim::AdamOptions(1e-2));
  Controller resumed(model, optimizer2, blocks, ctl.options());
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  resumed.load(in, "extra_state.frost");
  EXPECT(resumed.block_state(2) == BlockState::cooling);
  EXPECT(resumed.timeline().size() == ctl.timeline().size());
  EXPECT(!w2.requires_grad());

  for (const auto& e : ctl.timeline()) std::cout << e << "\n";
  std::cout << (failures ? "FAILED: " : "ok: ") << failures << " failed checks\n";
  return failures ? 1 : 0;
}
