#pragma once
// Target cli: frost-train's command line (examples/train/cli.hpp). The input
// is split into arguments at NUL and newline bytes; the parser either fills
// the configuration or throws UsageError naming the flag.
#include <vector>

#include "common.hpp"
#include "train/cli.hpp"

namespace frost_fuzz::cli {

inline std::vector<std::string> split_args(const std::string& in) {
  std::vector<std::string> args;
  std::string cur;
  for (const char c : in) {
    if (c == '\0' || c == '\n') {
      args.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) args.push_back(cur);
  return args;
}

inline int run(const std::uint8_t* data, std::size_t size) {
  frost_train::TrainConfig cfg;
  try {
    frost_train::parse_args(split_args(bytes(data, size)), cfg);
  } catch (const frost_train::UsageError&) {
  }
  return 0;
}

}  // namespace frost_fuzz::cli
