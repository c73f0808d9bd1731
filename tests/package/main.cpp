// Packaging check: compiles against frost::frost and LibTorch and runs.
#if __has_include(<frost/frost.hpp>)
#include <frost/frost.hpp>
#else
#include <frost/error.hpp>
#endif
// Narrow ATen headers: enough to prove the LibTorch link works, cheap to compile.
#include <ATen/core/Tensor.h>
#include <ATen/ops/ones.h>

#include <iostream>

int main() {
  try {
    frost::detail::fail("packaging check ", 42);
  } catch (const frost::Error& e) {
    std::cout << "frost_consumer ok: " << e.what() << ", torch "
              << at::ones({2}).sum().item<float>() << "\n";
    return 0;
  }
  return 1;
}
