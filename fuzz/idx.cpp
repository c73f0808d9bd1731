// libFuzzer entry point of target idx (scripts/fuzz.sh idx SECONDS); the body
// is targets/idx.hpp, which frost_fuzz_replay also runs over the corpus.
#include "targets/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return frost_fuzz::idx::run(data, size);
}
