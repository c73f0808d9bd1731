#pragma once
// examples/common/cli_checks.hpp — the CLI11 checks frost-train and
// frost-predictor share: a number within a rule, with a message that says the
// rule and the value given ("must be positive, got '0'").
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <string>

namespace frost_examples::cli {

/// A CLI11 check: the number satisfies `ok`, or "must be `rule`, got '...'".
template <class F>
CLI::Validator bound(F ok, const std::string& rule) {
  return CLI::Validator(
      [ok, rule](std::string& s) -> std::string {
        if (!ok(std::strtod(s.c_str(), nullptr))) return "must be " + rule + ", got '" + s + "'";
        return {};
      },
      "");
}
inline CLI::Validator positive() {
  return bound([](double v) { return v > 0; }, "positive");
}
inline CLI::Validator non_negative(const std::string& rule = "0 or more") {
  return bound([](double v) { return v >= 0; }, rule);
}

}  // namespace frost_examples::cli
