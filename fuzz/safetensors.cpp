// libFuzzer entry point of target safetensors (scripts/fuzz.sh safetensors SECONDS); the body
// is targets/safetensors.hpp, which frost_fuzz_replay also runs over the corpus.
#include "targets/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return frost_fuzz::safetensors::run(data, size);
}
