// frost in an epoch loop over a torch::data loader, with the program's own
// step decay of the learning rate, a checkpoint at the end of every epoch
// that also keeps the program's own values, and a resume.
//
//   frost-epoch-loop [epochs] [checkpoint] [stop_after]
//
// e.g. `frost-epoch-loop 6 run.pt 3` stops after epoch 3 (as if killed) and
// `frost-epoch-loop 6 run.pt` resumes there. The data are synthetic, so the
// program needs no download (the README quotes it).
#include <frost/frost.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>

// 16 features; the label says which of 4 linear scores is largest.
struct Points : torch::data::datasets::Dataset<Points> {
  explicit Points(int64_t n) : x(torch::randn({n, 16})), y(x.matmul(torch::randn({16, 4})).argmax(1)) {}
  torch::data::Example<> get(size_t i) override {
    return {x[static_cast<int64_t>(i)], y[static_cast<int64_t>(i)]};
  }
  torch::optional<size_t> size() const override { return static_cast<size_t>(x.size(0)); }
  torch::Tensor x, y;
};

struct NetImpl : torch::nn::Module {  // the quick start's network
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

int main(int argc, char** argv) try {
  const int64_t epochs = argc > 1 ? std::stoll(argv[1]) : 6;
  const std::string checkpoint = argc > 2 ? argv[2] : "";
  const int64_t stop_after = argc > 3 ? std::stoll(argv[3]) : epochs;
  torch::manual_seed(0);
  Net model;
  auto blocks = frost::BlockMap::detect(*model);
  torch::optim::Adam optimizer(frost::param_groups(blocks, *model), torch::optim::AdamOptions(1e-3));
  const int64_t examples = 2048, batch_size = 64;
  auto loader = torch::data::make_data_loader(
      Points(examples).map(torch::data::transforms::Stack<>()),
      torch::data::DataLoaderOptions().batch_size(batch_size).drop_last(true));

  using Controller = frost::FreezeController<
      frost::criteria::GradientNormChange, frost::schedules::FreezeOut<frost::Cubic, frost::Scaled>,
      frost::stop::AllFrozen>;
  Controller ctl(model, optimizer, blocks,
                 Controller::Options().controller(
                     frost::ControllerOptions().epochs(epochs, examples / batch_size)));

  double lr = 1e-3;  // the program's own state: its step decay
  int64_t first_epoch = 0;
  if (!checkpoint.empty() && std::filesystem::exists(checkpoint)) {  // resume
    torch::serialize::InputArchive ar, model_ar, optimizer_ar, frost_ar;
    frost::load_file(ar, checkpoint);
    ar.read("frost", frost_ar);  // first: checked before the model and optimizer change
    frost::load(ctl, frost_ar, checkpoint);
    ar.read("model", model_ar);
    model->load(model_ar);
    ar.read("optimizer", optimizer_ar);
    optimizer.load(optimizer_ar);
    lr = frost::read_value(ar, "my.lr").toDouble();  // your values, next to frost's
    first_epoch = frost::next_epoch(ctl);            // ctl.step() / steps_per_epoch
    std::cout << "resumed at epoch " << first_epoch << ", lr " << lr << "\n";
    if (ctl.should_stop())  // its stop rule had ended the run: nothing to train
      std::cout << "the run had finished (its stop rule ended it); nothing to train\n";
  }

  // A finished run's controller refuses before_step(): the loop does not begin.
  for (int64_t epoch = first_epoch; epoch < epochs && !ctl.should_stop(); ++epoch) {
    at::Tensor loss_sum = torch::zeros({});
    for (auto& batch : *loader) {
      ctl.before_step();
      optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(batch.data), batch.target);
      loss.backward();
      ctl.after_backward();
      optimizer.step();
      ctl.after_step();
      loss_sum += loss.detach();
    }
    if (epoch % 2 == 1) {  // the tutorial's decay: one rate on every group
      lr *= 0.5;           // (or: ctl.set_base_lr(lr), or a torch::optim::StepLR)
      for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
    }
    std::cout << "epoch " << epoch << ": loss "
              << loss_sum.item<double>() / static_cast<double>(examples / batch_size)
              << ", frozen " << ctl.num_frozen() << " of " << blocks.size() << " blocks\n";
    if (!checkpoint.empty()) {  // at the end of the epoch
      torch::serialize::OutputArchive ar, model_ar, optimizer_ar, frost_ar;
      model->save(model_ar);
      optimizer.save(optimizer_ar);
      frost::save(ctl, frost_ar);
      ar.write("model", model_ar);
      ar.write("optimizer", optimizer_ar);
      ar.write("frost", frost_ar);
      ar.write("my.lr", c10::IValue(lr));
      frost::save_file(ar, checkpoint);
    }
    if (ctl.should_stop() || epoch + 1 == stop_after) break;  // honoured at the epoch's end
  }
  for (const auto& event : ctl.timeline()) std::cout << event << "\n";
  // frost's base rates and the optimizer's rates, to 17 digits: a resumed run
  // must end with the uninterrupted run's (tests/epoch_loop_check.cmake).
  std::cout.precision(17);
  std::cout << "frost bases:";
  for (std::size_t g = 0; g < ctl.lr_book().num_groups(); ++g) std::cout << ' ' << ctl.base_lr(g);
  std::cout << "\nrates:";
  for (auto& group : optimizer.param_groups()) std::cout << ' ' << group.options().get_lr();
  std::cout << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "frost-epoch-loop: " << e.what() << "\n";
  return 1;
}
