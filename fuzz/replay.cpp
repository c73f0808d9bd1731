// frost_fuzz_replay: every fuzz target's body (targets/*.hpp) in one program
// built by the normal compiler, so that CI replays the corpora and every
// crash ever found (regressions/) without clang or libFuzzer.
//
//   frost_fuzz_replay TARGET DIR...           every file of every DIR through TARGET
//   frost_fuzz_replay --write-seeds checkpoint DIR   the checkpoint target's seeds
//
// A file passes when the target returns (frost accepted or refused it with its
// own error); an escaping exception fails the run, an invariant broken aborts.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "targets/checkpoint.hpp"
#include "targets/cli.hpp"
#include "targets/idx.hpp"
#include "targets/options.hpp"
#include "targets/safetensors.hpp"
#include "targets/state_dict.hpp"

namespace {

using Target = int (*)(const std::uint8_t*, std::size_t);

const std::map<std::string, Target>& targets() {
  static const std::map<std::string, Target> t = {
      {"checkpoint", frost_fuzz::checkpoint::run}, {"cli", frost_fuzz::cli::run},
      {"idx", frost_fuzz::idx::run},               {"options", frost_fuzz::options::run},
      {"safetensors", frost_fuzz::safetensors::run}, {"state_dict", frost_fuzz::state_dict::run}};
  return t;
}

/// The regular files of `dir`, sorted (a missing directory has none).
std::vector<std::filesystem::path> files_of(const std::string& dir) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().filename().string().front() != '.') out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

/// Runs `target` over the files of `dirs`; the number of failures.
int replay(Target target, const std::vector<std::string>& dirs) {
  int failed = 0, total = 0;
  for (const auto& dir : dirs)
    for (const auto& file : files_of(dir)) {
      std::ifstream in(file, std::ios::binary);
      const std::string data{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      std::fprintf(stderr, "%s (%zu bytes)\n", file.c_str(), data.size());
      ++total;
      try {
        target(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "  FAILED: an exception escaped: %s\n", e.what());
        ++failed;
      }
    }
  std::printf("%d files replayed, %d failed\n", total, failed);
  return failed;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 3 && args[0] == "--write-seeds" && args[1] == "checkpoint") {
    frost_fuzz::checkpoint::write_seeds(args[2]);
    return 0;
  }
  const auto it = args.empty() ? targets().end() : targets().find(args[0]);
  if (it == targets().end()) {
    std::fprintf(stderr, "usage: frost_fuzz_replay TARGET DIR... (targets:");
    for (const auto& [name, f] : targets()) std::fprintf(stderr, " %s", name.c_str());
    std::fprintf(stderr, ")\n       frost_fuzz_replay --write-seeds checkpoint DIR\n");
    return 2;
  }
  return replay(it->second, {args.begin() + 1, args.end()}) == 0 ? 0 : 1;
}
