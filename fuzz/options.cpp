// libFuzzer entry point of target options (scripts/fuzz.sh options SECONDS); the body
// is targets/options.hpp, which frost_fuzz_replay also runs over the corpus.
#include "targets/options.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return frost_fuzz::options::run(data, size);
}
