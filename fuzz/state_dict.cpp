// libFuzzer entry point of target state_dict (scripts/fuzz.sh state_dict SECONDS); the body
// is targets/state_dict.hpp, which frost_fuzz_replay also runs over the corpus.
#include "targets/state_dict.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return frost_fuzz::state_dict::run(data, size);
}
