#pragma once
// Target options: `key=value` lines (frost-train's --set, a configuration
// file) against a controller's Options, which hold every kind of option
// (integers, doubles, bools, enums, lists, nested and combined policies'
// options under dotted keys); then from_text for every option type.
// Accepted options must describe() and read back to the same description
// (apart from its first lines, which name the policies).
#include <sstream>

#include "common.hpp"
#include "frost/controller.hpp"
#include "frost/criteria/any_of.hpp"
#include "frost/criteria/at_steps.hpp"
#include "frost/criteria/gradient_norm_change.hpp"
#include "frost/criteria/gradient_threshold.hpp"
#include "frost/schedules/freezeout.hpp"
#include "frost/stop/any_of.hpp"
#include "frost/stop/max_steps.hpp"
#include "frost/stop/patience.hpp"

namespace frost_fuzz::options {

using Controller = frost::FreezeController<
    frost::criteria::AnyOf<frost::criteria::GradientThreshold,
                           frost::criteria::GradientNormChange, frost::criteria::AtSteps>,
    frost::schedules::FreezeOut<frost::Cubic, frost::Scaled>,
    frost::stop::AnyOf<frost::stop::Patience, frost::stop::MaxSteps>>;

/// from_text of every option type on `text`: a value or a frost::Error.
inline void every_type(const std::string& text) {
  using frost::detail::from_text;
  const std::string k = "fuzz";
  try { from_text<bool>(k, text); } catch (const frost::Error&) {}
  try { from_text<int>(k, text); } catch (const frost::Error&) {}
  try { from_text<std::int64_t>(k, text); } catch (const frost::Error&) {}
  try { from_text<double>(k, text); } catch (const frost::Error&) {}
  try { from_text<std::string>(k, text); } catch (const frost::Error&) {}
  try { from_text<std::vector<std::int64_t>>(k, text); } catch (const frost::Error&) {}
  try { from_text<std::vector<std::string>>(k, text); } catch (const frost::Error&) {}
  try { from_text<frost::LrChanges>(k, text); } catch (const frost::Error&) {}
  try { from_text<frost::criteria::FreezeMode>(k, text); } catch (const frost::Error&) {}
}

inline int run(const std::uint8_t* data, std::size_t size) {
  std::istringstream lines(bytes(data, size));
  Controller::Options o;
  std::string line;
  while (std::getline(lines, line)) {
    every_type(line);
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    try {
      Controller::set_option(o, line.substr(0, eq), line.substr(eq + 1));
    } catch (const frost::Error&) {
    }
  }
  try {
    frost::validate(o.controller());
  } catch (const frost::Error&) {
  }
  // What describe() writes, set_option reads back to the same options.
  const frost::OptionList said = Controller::describe(o);
  Controller::Options again;
  for (const auto& [key, value] : said) {
    // "criterion=AnyOf<...>", "schedule=...": the policies' names, not options.
    if (key.find('.') == std::string::npos) continue;
    try {
      Controller::set_option(again, key, value);
    } catch (const frost::Error& e) {
      broken("options", "describe() wrote " + key + "=" + value + ", which set_option refuses: " +
                            e.what());
    }
  }
  if (Controller::describe(again) != said)
    broken("options", "describe() does not read back to the same options");
  return 0;
}

}  // namespace frost_fuzz::options
