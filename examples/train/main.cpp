// frost-train: fine-tune a small ViT on Fashion-MNIST with frost and compare
// freezing strategies. All the logic is in the headers next to this file.
#include <c10/util/Exception.h>

#include <iostream>
#include <string>
#include <vector>

#include "app.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    frost_train::TrainConfig cfg;
    frost_train::parse_args(args, cfg);
    return frost_train::run_app(cfg, std::cout);
  } catch (const frost_train::UsageError& e) {
    std::cerr << "frost-train: " << e.what() << "\n(see frost-train --help)\n";
    return 2;
  } catch (const frost_examples::DataError& e) {
    std::cerr << "frost-train: data error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {  // LibTorch's own: its message, not its stack
    std::cerr << "frost-train: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "frost-train: " << e.what() << "\n";
    return 1;
  }
}
