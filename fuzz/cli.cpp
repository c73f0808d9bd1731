// libFuzzer entry point of target cli (scripts/fuzz.sh cli SECONDS); the body
// is targets/cli.hpp, which frost_fuzz_replay also runs over the corpus.
#include "targets/cli.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return frost_fuzz::cli::run(data, size);
}
