// libFuzzer entry point of target checkpoint (scripts/fuzz.sh checkpoint SECONDS); the body
// is targets/checkpoint.hpp, which frost_fuzz_replay also runs over the corpus.
#include "targets/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return frost_fuzz::checkpoint::run(data, size);
}
