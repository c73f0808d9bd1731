#pragma once
// stop::AnyOf<Rules...> — stop as soon as any rule says so, e.g.
// AnyOf<AllFrozen, Patience, MaxSteps>. Every rule hears every validation report.
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <string>
#include <tuple>

#include "frost/concepts/state_io.hpp"
#include "frost/concepts/stop_rule.hpp"
#include "frost/error.hpp"

namespace frost::stop {

template <class... Rules>
class AnyOf {
  static_assert(sizeof...(Rules) >= 1, "frost: stop::AnyOf needs at least one stop rule");
  static_assert((concepts::check_stop_rule<Rules>() && ...), "see the message above");

 public:
  /// The options of each rule, in order (set them with std::get<I>).
  using Options = std::tuple<typename Rules::Options...>;
  static std::string name() {
    std::string n = "AnyOf<";
    std::size_t i = 0;
    ((n += (i++ ? "," : "") + concepts::name_of<Rules>()), ...);
    return n + ">";
  }
  explicit AnyOf(const Options& o = {}) : rules_(make(o, std::index_sequence_for<Rules...>{})) {}

  /// Every rule is asked (no short-circuit), so each keeps its own count.
  bool should_stop(const StopState& s) {
    return std::apply([&](auto&... r) { return (static_cast<int>(r.should_stop(s)) | ...) != 0; },
                      rules_);
  }
  /// Each stateful rule's state in a nested archive named by its index.
  void save(torch::serialize::OutputArchive& ar) const {
    std::size_t k = 0;
    std::apply([&](const auto&... r) { (concepts::save_state(r, ar, std::to_string(k++)), ...); },
               rules_);
  }
  void load(torch::serialize::InputArchive& ar) {
    std::size_t k = 0;
    std::apply(
        [&](auto&... r) {
          ((detail::require(concepts::load_state(r, ar, std::to_string(k)), "no state for rule ",
                            k, " (", concepts::name_of<Rules>(), ")"),
            ++k),
           ...);
        },
        rules_);
  }
  void setup(const StopSetup& s) {
    std::apply([&](auto&... r) { (concepts::setup_stop(r, s), ...); }, rules_);
  }
  void on_validation(double loss, const StopState& s) {
    std::apply([&](auto&... r) { (concepts::notify_validation(r, loss, s), ...); }, rules_);
  }
  template <std::size_t I>
  auto& get() noexcept { return std::get<I>(rules_); }
  template <std::size_t I>
  const auto& get() const noexcept { return std::get<I>(rules_); }

 private:
  template <std::size_t... I>
  static std::tuple<Rules...> make(const Options& o, std::index_sequence<I...>) {
    return std::tuple<Rules...>(Rules(std::get<I>(o))...);
  }
  std::tuple<Rules...> rules_;
};

}  // namespace frost::stop
