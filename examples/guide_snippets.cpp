// examples/guide_snippets.cpp — the code of docs/guide.md, compiled. Each
// snippet of the guide sits here, as it is, inside a function that declares
// what the snippet uses (ctest docs.code_blocks_compiled checks that the guide
// quotes this file). ctest example.guide_snippets runs the snippets that need
// nothing from outside (no predictor file, no second process) and fails when
// one of them does not do what the guide says.
//
// One translation unit on purpose: every snippet costs one more compile of
// frost's headers otherwise.
#include <frost/frost.hpp>
#include <frost/predictor.hpp>   // criteria::AttentionPredictor and its network

#include <frost/cache/activation_cache.hpp>
#include <frost/state_dict.hpp>
#if FROST_GUIDE_DISTRIBUTED
#include <frost/distributed.hpp>
#endif
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <unistd.h>  // rmdir
#include <string>
#include <vector>

namespace {

// The quick start's network, with the activation cache's forward_range:
// block 0 is the stem (embed), block k the k-th of `blocks`.
struct NetImpl : torch::nn::Module {
  NetImpl() {
    embed = register_module("embed", torch::nn::Linear(16, 32));
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int i = 0; i < 4; ++i) blocks->push_back(torch::nn::Linear(32, 32));
    head = register_module("head", torch::nn::Linear(32, 4));
  }
  at::Tensor forward(const at::Tensor& x) { return forward_range(x, 0, frost::cache::kOutput); }
  at::Tensor forward_range(const at::Tensor& input, int64_t from, int64_t to) {
    const int64_t n = 1 + static_cast<int64_t>(blocks->size());
    const int64_t end = to == frost::cache::kOutput ? n : to;
    at::Tensor x = input;
    for (int64_t k = from; k < end; ++k)
      x = k == 0 ? embed(x) : x + torch::relu(blocks[k - 1]->as<torch::nn::Linear>()->forward(x));
    return to == frost::cache::kOutput ? head(x) : x;
  }
  torch::nn::Linear embed{nullptr}, head{nullptr};
  torch::nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(Net);

using Controller = frost::FreezeController<frost::criteria::GradientNormChange,
                                           frost::schedules::Constant, frost::stop::Never>;

Controller::Options judge_every(int64_t interval) {
  return Controller::Options().criterion(
      frost::criteria::GradientNormChangeOptions().interval(interval).min_epochs(0));
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("guide snippet: " + what);
}

// "Your own loop": every call frost asks of a trainer, with clipping and validation.
void own_loop() {
  Net model;
  auto blocks = frost::BlockMap::detect(*model);
  torch::optim::AdamW optimizer(frost::param_groups(blocks, *model), torch::optim::AdamWOptions(1e-3));
  Controller ctl(model, optimizer, blocks, judge_every(10));
  auto x = torch::randn({64, 16});
  auto y = torch::randint(0, 4, {64});
  const int64_t steps = 40;
  for (int64_t step = 0; step < steps && !ctl.should_stop(); ++step) {
    ctl.before_step();
    try {
      optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
      if (!std::isfinite(loss.item<double>())) throw std::runtime_error("loss is not finite");
      loss.backward();
      ctl.after_backward();                                       // the raw gradients
      torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);  // then clip
      optimizer.step();
      ctl.after_step();
    } catch (const std::exception& e) {
      ctl.abort_step();  // no decision; the next before_step() begins this step again
      std::cerr << "step " << step << " skipped: " << e.what() << "\n";
    }
    if ((step + 1) % 10 == 0) {
      torch::NoGradGuard no_grad;
      ctl.report_validation(torch::nn::functional::cross_entropy(model->forward(x), y));
    }
  }
  check(ctl.step() == steps, "the loop ran every step");
}

// "Param groups": a block spread over several groups (weight decay or not).
void own_param_groups() {
  Net model;
  auto blocks = frost::BlockMap::detect(*model);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (const auto& b : blocks) {  // per block: decayed weights, then biases and norms
    std::vector<at::Tensor> decay, no_decay;
    for (const auto& p : b.params) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    for (auto* part : {&decay, &no_decay})
      if (!part->empty())
        groups.emplace_back(*part, std::make_unique<torch::optim::AdamWOptions>(
                                       torch::optim::AdamWOptions(1e-3)
                                           .weight_decay(part == &decay ? 0.05 : 0.0)));
  }
  groups.emplace_back(model->head->parameters());  // the rest: the optimizer's defaults
  torch::optim::AdamW optimizer(std::move(groups), torch::optim::AdamWOptions(1e-3));
  Controller ctl(model, optimizer, blocks, judge_every(10));  // accepts the groups
  check(optimizer.param_groups().size() == 2 * blocks.size() + 1, "two groups per block");
}

// "Learning rates": the five ways a loop changes rates, each followed by a step.
void learning_rates() {
  Net model;
  auto blocks = frost::BlockMap::detect(*model);
  torch::optim::SGD optimizer(frost::param_groups(blocks, *model), torch::optim::SGDOptions(0.1));
  Controller ctl(model, optimizer, blocks, judge_every(1000));
  const double lr = 0.05;
  const std::size_t group = 0;
  ctl.before_step();  // every multiplier is 1 (Constant, no warm-up): both readings agree
  ctl.abort_step();

  torch::optim::StepLR sched(optimizer, /*step_size=*/2, /*gamma=*/0.5);
  sched.step();                                   // 1. a torch::optim scheduler: every base x 0.5

  for (auto& g : optimizer.param_groups())        // 2. one factor on every group: every base x 0.5
    g.options().set_lr(g.options().get_lr() * 0.5);

  for (auto& g : optimizer.param_groups())        // 3. one rate on every group: every base = lr
    g.options().set_lr(lr);

  ctl.set_base_lr(lr);                            // 4. frost's own: every base = lr
  ctl.set_base_lr(group, lr);                     //    one group's base, on purpose

  optimizer.param_groups().front().options().set_lr(lr);  // 5. only some groups: a WARNING

  ctl.before_step();
  check(ctl.base_lr(blocks.size()) == lr, "the head's base is lr");
}

// "Warnings": frost's warnings go where LibTorch's go.
// The guide quotes the LibTorch 1.x spelling; 2.x builds compile the same
// handler in its 2.x spelling (the #else branch).
void warnings() {
#if TORCH_VERSION_MAJOR < 2
  struct ToLog : c10::WarningHandler {  // LibTorch 2.x: process(const c10::Warning& w), w.msg()
    void process(const c10::SourceLocation&, const std::string& msg, bool) override {
      std::clog << "[warning] " << msg << "\n";
    }
  };
  ToLog handler;
  c10::Warning::WarningHandlerGuard guard(&handler);  // 2.x: c10::WarningUtils::WarningHandlerGuard
#else
  struct ToLog : c10::WarningHandler {
    void process(const c10::Warning& w) override { std::clog << "[warning] " << w.msg() << "\n"; }
  };
  ToLog handler;
  c10::WarningUtils::WarningHandlerGuard guard(&handler);
#endif
  TORCH_WARN("guide: this line goes through ToLog");
}

template <class Ctl, class Model, class Optimizer>
void save_between_steps(Ctl& ctl, Model& model, Optimizer& optimizer) {
  // between steps
  torch::serialize::OutputArchive ar, model_ar, optimizer_ar, frost_ar;
  model->save(model_ar);
  optimizer.save(optimizer_ar);
  frost::save(ctl, frost_ar);
  ar.write("model", model_ar);
  ar.write("optimizer", optimizer_ar);
  ar.write("frost", frost_ar);
  frost::save_file(ar, "run/checkpoint.pt");  // atomic: temporary file + rename
}

template <class Ctl, class Model, class Optimizer>
int64_t resume(Ctl& ctl, Model& model, Optimizer& optimizer, int64_t steps) {
  // resume: build the model, block map, optimizer and controller as in the first run, then
  torch::serialize::InputArchive ar, model_ar, optimizer_ar, frost_ar;
  frost::load_file(ar, "run/checkpoint.pt");  // optional third argument: the device
  ar.read("frost", frost_ar);                 // frost's part first: it checks the strategy, the
  frost::load(ctl, frost_ar, "run/checkpoint.pt");  // blocks (by name) and the step before your
  ar.read("model", model_ar);                       // model and optimizer change (the name is
  model->load(model_ar);                            // for error messages)
  ar.read("optimizer", optimizer_ar);
  optimizer.load(optimizer_ar);
  for (int64_t step = ctl.step(); step < steps && !ctl.should_stop(); ++step) {
    // the loop of the first run (it does not begin when the run had finished)
  }
  return ctl.step();
}

// "Checkpoints": save after 5 steps, resume into a fresh controller at step 5.
void checkpoints() {
  std::filesystem::create_directories("run");
  torch::manual_seed(0);
  Net model;
  auto blocks = frost::BlockMap::detect(*model);
  torch::optim::Adam optimizer(frost::param_groups(blocks, *model), torch::optim::AdamOptions(1e-3));
  Controller ctl(model, optimizer, blocks, judge_every(10));
  auto x = torch::randn({32, 16});
  auto y = torch::randint(0, 4, {32});
  for (int64_t step = 0; step < 5; ++step) {
    ctl.before_step();
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    ctl.after_backward();
    optimizer.step();
    ctl.after_step();
  }
  save_between_steps(ctl, model, optimizer);
  Net model2;
  auto blocks2 = frost::BlockMap::detect(*model2);
  torch::optim::Adam optimizer2(frost::param_groups(blocks2, *model2), torch::optim::AdamOptions(1e-3));
  Controller ctl2(model2, optimizer2, blocks2, judge_every(10));
  check(resume(ctl2, model2, optimizer2, /*steps=*/5) == 5, "resumed at step 5");
  // std::remove and rmdir, not std::filesystem::remove_all: pip's torch 2.x
  // exports its own std::filesystem symbols, and remove_all resolved to them
  // crashes (the torch2 leg's example.guide_snippets).
  std::remove("run/checkpoint.pt");
  ::rmdir("run");
}

struct Batch {
  at::Tensor index, images, labels;
};

// "The activation cache": the loop runs later forwards from the frozen prefix.
void activation_cache() {
  torch::manual_seed(0);
  Net model;
  auto blocks = frost::BlockMap::detect(*model);
  torch::optim::Adam optimizer(frost::param_groups(blocks, *model), torch::optim::AdamOptions(1e-3));
  using Controller = frost::FreezeController<frost::criteria::AtSteps, frost::schedules::Constant,
                                             frost::stop::Never>;
  Controller ctl(model, optimizer, blocks,
                 Controller::Options().criterion(frost::criteria::AtStepsOptions::prefix(2, 2)));
  const int64_t train_size = 64;
  std::vector<Batch> loader;
  for (int64_t b = 0; b < 4; ++b)
    loader.push_back({torch::arange(b * 16, (b + 1) * 16), torch::randn({16, 16}),
                      torch::randint(0, 4, {16})});
  auto loss_fn = [](const at::Tensor& logits, const at::Tensor& labels) {
    return torch::nn::functional::cross_entropy(logits, labels);
  };
  frost::cache::ActivationCache cache(train_size,                 // sample indices are 0..train_size-1
      frost::cache::ActivationCacheOptions().budget_mb(512));    // .storage(Storage::host): pinned host memory
  for (auto& batch : loader) {                                   // batch.index: the samples' indices (CPU)
    ctl.before_step();
    optimizer.zero_grad();
    const int64_t k = ctl.frozen_prefix();
    at::Tensor h = cache.activations(model, batch.index, batch.images, k);  // output of block k-1
    auto loss = loss_fn(model->forward_range(h, k, frost::cache::kOutput), batch.labels);
    loss.backward();
    ctl.after_backward();
    optimizer.step();
    ctl.after_step();
  }
  check(ctl.frozen_prefix() == 2 && cache.stats().cached_samples > 0, "the cache holds the prefix");
}

// "Pretrained weights": a file without the head, loaded into a model with a new one.
struct ClassifierImpl : torch::nn::Module {
  ClassifierImpl() {
    body = register_module("body", torch::nn::Linear(8, 8));
    fc = register_module("_fc", torch::nn::Linear(8, 3));
  }
  torch::nn::Linear body{nullptr}, fc{nullptr};
};
TORCH_MODULE(Classifier);

void pretrained_weights() {
  torch::nn::Sequential pretrained;  // what someone else trained: the body only
  pretrained->push_back("body", torch::nn::Linear(8, 8));
  frost::save_state_dict(*pretrained, "weights.safetensors");
  Classifier model;
  auto report = frost::load_state_dict(*model, "weights.safetensors",
      frost::LoadOptions()
          .rename([](const std::string& k) {            // file name -> module name; "" skips it
            return k.rfind("_fc.", 0) == 0 ? std::string() : k; })
          .allow_missing({"_fc"})                        // module parts that keep their own values
          .strict(true));                                // false: missing/unexpected only reported
  std::cout << report.summary() << "\n";                 // loaded / missing / unexpected / skipped
  check(torch::equal(model->body->weight, pretrained[0]->as<torch::nn::Linear>()->weight),
        "the body's weights loaded");
  std::remove("weights.safetensors");  // not std::filesystem (see checkpoints())
}

// "The learned predictor": compiled only (running it needs the shipped predictor file).
[[maybe_unused]] void learned_predictor(Net& model, torch::optim::Optimizer& optimizer,
                                        const frost::BlockMap& blocks, int64_t steps,
                                        int64_t steps_per_epoch) {
  using Ctl = frost::FreezeController<frost::criteria::AttentionPredictor,
                                      frost::schedules::Cosine, frost::stop::Patience>;
  Ctl ctl(model, optimizer, blocks,
          Ctl::Options().controller(frost::ControllerOptions()
                                        .total_steps(steps).steps_per_epoch(steps_per_epoch)));
  // the loop as in the quick start: before_step / after_backward / after_step;
  // at each epoch's end every training block is judged, in any order
}

#if FROST_GUIDE_DISTRIBUTED
// "Data-parallel training": compiled only (it needs torchrun's environment and other ranks).
[[maybe_unused]] void data_parallel(Net& model, torch::optim::Optimizer& optimizer,
                                    const frost::BlockMap& blocks, const at::Tensor& x,
                                    const at::Tensor& y, int64_t steps) {
  auto loss_fn = [](const at::Tensor& logits, const at::Tensor& labels) {
    return torch::nn::functional::cross_entropy(logits, labels);
  };
  const auto options = frost::ControllerOptions().total_steps(steps);
  auto group = frost::dist::init();             // RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (torchrun's)
  frost::dist::GradientSync sync(*model);       // rank 0's parameters and buffers on every rank
  using Ctl = frost::FreezeController<frost::criteria::GradientNormChange,
                                      frost::schedules::Cosine, frost::stop::Never,
                                      frost::with_reducer<frost::reducers::AllReduceMean>>;
  Ctl ctl(model, optimizer, blocks, Ctl::Options().controller(options));  // every rank decides alike
  for (int64_t step = 0; step < steps; ++step) {  // each step, on this rank's shard of the data
    ctl.before_step();
    optimizer.zero_grad();
    loss_fn(model->forward(x), y).backward();
    sync.synchronize();                         // averaged gradients, before the criterion reads them
    ctl.after_backward();
    optimizer.step();
    ctl.after_step();
  }
}
#endif

}  // namespace

int main() try {
  own_loop();
  own_param_groups();
  learning_rates();
  warnings();
  checkpoints();
  activation_cache();
  pretrained_weights();
  std::cout << "every guide snippet ran as the guide says\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "frost-guide-snippets: " << e.what() << "\n";
  return 1;
}
