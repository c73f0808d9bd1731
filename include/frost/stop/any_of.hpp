#pragma once
// stop::AnyOf<Rules...> — stop as soon as any rule says so, e.g.
// AnyOf<AllFrozen, Patience, MaxSteps>. Every rule hears every validation report.
#include <string>
#include <tuple>

#include "frost/concepts/stop_rule.hpp"

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

  bool should_stop(const StopState& s) {
    return std::apply([&](auto&... r) { return (r.should_stop(s) || ...); }, rules_);
  }
  void on_validation(double loss, const StopState& s) {
    std::apply([&](auto&... r) { (concepts::notify_validation(r, loss, s), ...); }, rules_);
  }
  template <std::size_t I>
  auto& get() noexcept { return std::get<I>(rules_); }

 private:
  template <std::size_t... I>
  static std::tuple<Rules...> make(const Options& o, std::index_sequence<I...>) {
    return std::tuple<Rules...>(Rules(std::get<I>(o))...);
  }
  std::tuple<Rules...> rules_;
};

}  // namespace frost::stop
