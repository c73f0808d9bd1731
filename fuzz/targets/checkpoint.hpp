#pragma once
// Target checkpoint: a checkpoint file (LibTorch's zip archive, frost's
// envelope, its CRCs, the composition, the block names, the parameter shapes,
// the run shape and every part's state) loaded into a freshly built tiny
// controller, and the promise that a refused file leaves it unchanged.
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include <memory>

#include "common.hpp"
#include "frost/checkpoint.hpp"
#include "frost/controller.hpp"
#include "frost/criteria/gradient_norm_change.hpp"
#include "frost/param_groups.hpp"
#include "frost/schedules/freezeout.hpp"
#include "frost/stop/all_frozen.hpp"

namespace frost_fuzz::checkpoint {

/// The quick start's model, smaller: a stem, three blocks and a head.
struct Net : torch::nn::Module {
  Net() {
    embed = register_module("embed", torch::nn::Linear(4, 8));
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int i = 0; i < 3; ++i) blocks->push_back(torch::nn::Linear(8, 8));
    head = register_module("head", torch::nn::Linear(8, 2));
  }
  at::Tensor forward(at::Tensor x) {
    x = embed(x);
    for (auto& b : *blocks) x = x + at::relu(b->as<torch::nn::Linear>()->forward(x));
    return head(x);
  }
  torch::nn::Linear embed{nullptr}, head{nullptr};
  torch::nn::ModuleList blocks{nullptr};
};

/// The quick start's composition.
using Controller =
    frost::FreezeController<frost::criteria::GradientNormChange,
                            frost::schedules::FreezeOut<frost::Cubic, frost::Scaled>,
                            frost::stop::AllFrozen>;

inline Controller::Options options() {
  return Controller::Options()
      .controller(frost::ControllerOptions().total_steps(24).warmup_steps(2).steps_per_epoch(8))
      .criterion(frost::criteria::GradientNormChangeOptions().interval(4).min_epochs(0))
      .schedule(frost::schedules::FreezeOutOptions().t0(0.5));
}

/// The model, its block map and optimizer: built once, never changed by a load.
struct Fixture {
  std::shared_ptr<Net> model = std::make_shared<Net>();
  frost::BlockMap blocks = frost::BlockMap::detect(*model);
  torch::optim::AdamW optimizer{frost::param_groups(blocks, *model),
                                torch::optim::AdamWOptions(1e-3)};
};

inline Fixture& fixture() {
  static Fixture f;
  return f;
}

inline int run(const std::uint8_t* data, std::size_t size) {
  static MemFile file("frost-fuzz-checkpoint");
  const std::string& path = file.write(data, size);
  Fixture f;  // fresh: a checkpoint loaded before (frozen blocks) must not decide this one
  Controller ctl(*f.model, f.optimizer, f.blocks, options());
  const auto step = ctl.step();
  const auto frozen = ctl.num_frozen();
  try {
    frost::load_checkpoint(ctl, path);
  } catch (const frost::Error& e) {
    if (ctl.step() != step || ctl.num_frozen() != frozen)
      broken("checkpoint", std::string("a refused checkpoint changed the controller: ") + e.what());
  }
  return 0;
}

/// Seeds: a checkpoint of this controller at step 0 and after `steps` steps
/// (some blocks frozen by then), written to `dir`.
inline void write_seeds(const std::string& dir) {
  at::manual_seed(0);
  Fixture& f = fixture();
  Controller ctl(*f.model, f.optimizer, f.blocks, options());
  frost::save_checkpoint(ctl, dir + "/step0.frost");
  const auto x = at::randn({16, 4});
  const auto y = at::randint(0, 2, {16});
  for (int step = 0; step < 18 && !ctl.should_stop(); ++step) {
    ctl.before_step();
    f.optimizer.zero_grad();
    at::cross_entropy_loss(f.model->forward(x), y).backward();
    ctl.after_backward();
    f.optimizer.step();
    ctl.after_step();
  }
  frost::save_checkpoint(ctl, dir + "/step18.frost");
}

}  // namespace frost_fuzz::checkpoint
