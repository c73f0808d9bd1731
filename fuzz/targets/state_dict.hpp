#pragma once
// Target state_dict: a safetensors file loaded into a tiny fixed module by
// name, shape and dtype (strict, then non-strict with a rename hook), and the
// promise that a refused file leaves the module unchanged.
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/module.h>

#include <cstring>
#include <memory>
#include <vector>

#include "common.hpp"
#include "frost/state_dict.hpp"

namespace frost_fuzz::state_dict {

/// "fc.weight" [2, 3], "fc.bias" [2], "bn.weight", "bn.bias", "bn.running_mean",
/// "bn.running_var" [2] (float) and "bn.num_batches_tracked" [] (int64).
struct Tiny : torch::nn::Module {
  Tiny() {
    fc = register_module("fc", torch::nn::Linear(3, 2));
    bn = register_module("bn", torch::nn::BatchNorm1d(2));
  }
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
};

inline std::vector<at::Tensor> snapshot(Tiny& m) {
  std::vector<at::Tensor> out;
  for (const auto& [name, t] : frost::detail::named_state(m)) out.push_back(t.clone());
  return out;
}

/// Bit for bit (a NaN the file loaded before equals itself here, unlike at::equal).
inline void same_or_broken(Tiny& m, const std::vector<at::Tensor>& before) {
  const auto now = frost::detail::named_state(m);
  for (std::size_t i = 0; i < now.size(); ++i) {
    const at::Tensor& a = now[i].second;
    if (a.nbytes() != before[i].nbytes() ||
        std::memcmp(a.data_ptr(), before[i].data_ptr(), a.nbytes()) != 0)
      broken("state_dict", "a refused file changed module tensor '" + now[i].first + "'");
  }
}

inline int run(const std::uint8_t* data, std::size_t size) {
  // A fresh module per input: what one input loaded must not decide the next.
  const auto module = std::make_shared<Tiny>();
  frost::io::SafeTensors st;
  try {
    st = frost::io::parse_safetensors(bytes(data, size), "fuzz.safetensors");
  } catch (const frost::Error&) {
    return 0;
  }
  const auto before = snapshot(*module);
  try {
    frost::load_state_dict(*module, st, "fuzz.safetensors");
  } catch (const frost::Error&) {
    same_or_broken(*module, before);
  }
  // Non-strict, with the renaming a user writes for a checkpoint of a wrapper
  // ("model.fc.weight" -> "fc.weight") and a skipped head.
  const auto rename = [](const std::string& k) {
    if (k.rfind("head.", 0) == 0) return std::string();
    return k.rfind("model.", 0) == 0 ? k.substr(6) : k;
  };
  const auto before2 = snapshot(*module);
  try {
    frost::load_state_dict(*module, st, "fuzz.safetensors",
                           frost::LoadOptions().strict(false).rename(rename));
  } catch (const frost::Error&) {
    same_or_broken(*module, before2);
  }
  return 0;
}

}  // namespace frost_fuzz::state_dict
