#pragma once
// criteria::AllOf<Cs...> — a block freezes only once every member criterion
// has asked for it, e.g. AllOf<GradientThreshold, GradientNormChange>: freeze a
// block whose gradient is small *and* has stopped changing.
//
// Votes are sticky ("at any time so far", not "at the same decision"): the
// members usually evaluate on different clocks (DyF once per epoch, the
// gradient-norm test four times per epoch), so requiring their requests to
// coincide in one call would almost never fire. A member's request for a block
// is remembered from the decision at which it was made until the block
// freezes (by any policy; then all its votes are dropped); the block freezes
// at the decision where the last missing vote arrives. Members report only
// requests, never "do not freeze", so a vote cannot be withdrawn.
//
// The statistic given to the controller (and the timeline) is that of the
// vote that completed the set, i.e. the last member to ask (ties within one
// call: the later member in the list); the detail lists every member's latest
// request. Warnings from members are passed on, prefixed with the member's
// name. A request with a non-finite statistic is not a vote (it is passed on
// as a warning), matching the controller's rule.
#include <ATen/core/Tensor.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "frost/concepts/criterion.hpp"

namespace frost::criteria {

template <class... Cs>
class AllOf {
  static_assert(sizeof...(Cs) >= 1, "frost: criteria::AllOf needs at least one criterion");
  static_assert((concepts::check_criterion<Cs>() && ...), "see the message above");
  static constexpr std::size_t K = sizeof...(Cs);

 public:
  /// The options of each member, in order (set them with std::get<I>).
  using Options = std::tuple<typename Cs::Options...>;
  static std::string name() {
    std::string n = "AllOf<";
    std::size_t i = 0;
    ((n += (i++ ? "," : "") + concepts::name_of<Cs>()), ...);
    return n + ">";
  }
  explicit AllOf(const Options& o = {}) : cs_(make(o, std::index_sequence_for<Cs...>{})) {}

  void setup(const CriterionSetup& s) {
    std::apply([&](auto&... c) { (c.setup(s), ...); }, cs_);
    votes_.assign(s.blocks->size(), std::vector<Vote>(K));
  }
  void observe(const StepState& s) {
    std::apply([&](auto&... c) { (c.observe(s), ...); }, cs_);
  }
  void decide(const StepState& s, Decisions& out) {
    collect(s, out, [&](auto& m, Decisions& d) { m.decide(s, d); });
  }
  void before_step(const StepState& s, Decisions& out) {
    collect(s, out, [&](auto& m, Decisions& d) { concepts::decide_before_step(m, s, d); });
  }
  void on_frozen(std::int64_t block) {
    if (block >= 0 && static_cast<std::size_t>(block) < votes_.size())
      for (auto& v : votes_[static_cast<std::size_t>(block)]) v = Vote{};
    std::apply([&](auto&... c) { (concepts::notify_frozen(c, block), ...); }, cs_);
  }
  void on_validation(double loss, const StepState& s) {
    std::apply([&](auto&... c) { (concepts::notify_validation(c, loss, s), ...); }, cs_);
  }
  void observe_activations(std::int64_t block, const at::Tensor& t) {
    std::apply([&](auto&... c) { (concepts::notify_activations(c, block, t), ...); }, cs_);
  }

  /// Whether member `k` currently votes to freeze `block`.
  bool voted(std::size_t k, std::int64_t block) const {
    return votes_.at(static_cast<std::size_t>(block)).at(k).seq > 0;
  }
  template <std::size_t I>
  auto& get() noexcept { return std::get<I>(cs_); }

 private:
  struct Vote {
    std::uint64_t seq = 0;  // 0: no vote
    double statistic = 0.0;
    std::string detail;
  };
  static const std::vector<std::string>& names() {
    static const std::vector<std::string> n{concepts::name_of<Cs>()...};
    return n;
  }

  template <class F>
  void collect(const StepState& s, Decisions& out, F&& f) {
    bool any = false;
    std::size_t k = 0;
    std::apply(
        [&](auto&... c) {
          (
              [&](auto& m) {
                Decisions mine;
                f(m, mine);
                for (const auto& it : mine.items()) {
                  const std::string who = names()[k] + ": ";
                  if (!it.freeze) {
                    out.warn(it.block, it.statistic, who + it.detail);
                  } else if (!std::isfinite(it.statistic)) {
                    out.warn(it.block, it.statistic,
                             who + "freeze request with a non-finite statistic is not a vote" +
                                 (it.detail.empty() ? "" : " (" + it.detail + ")"));
                  } else if (it.block >= 0 && static_cast<std::size_t>(it.block) < votes_.size()) {
                    votes_[static_cast<std::size_t>(it.block)][k] =
                        Vote{++seq_, it.statistic, it.detail};
                    any = true;
                  } else {
                    out.freeze(it.block, it.statistic, who + it.detail);  // let the controller refuse it
                  }
                }
                ++k;
              }(c),
              ...);
        },
        cs_);
    if (!any) return;
    for (std::size_t b = 0; b < votes_.size(); ++b) {
      if (s.frozen != nullptr && s.is_frozen(static_cast<std::int64_t>(b))) continue;
      const auto& v = votes_[b];
      std::size_t last = 0;
      bool all = true;
      for (std::size_t j = 0; j < K; ++j) {
        if (v[j].seq == 0) all = false;
        else if (v[j].seq > v[last].seq) last = j;
      }
      if (!all) continue;
      std::ostringstream d;
      d << "all of " << K << " criteria asked; last " << names()[last];
      for (std::size_t j = 0; j < K; ++j)
        d << "; " << names()[j] << ": " << v[j].detail << " [" << v[j].statistic << "]";
      out.freeze(static_cast<std::int64_t>(b), v[last].statistic, d.str());
    }
  }

  template <std::size_t... I>
  static std::tuple<Cs...> make(const Options& o, std::index_sequence<I...>) {
    return std::tuple<Cs...>(Cs(std::get<I>(o))...);
  }
  std::tuple<Cs...> cs_;
  std::vector<std::vector<Vote>> votes_;  // [block][member]
  std::uint64_t seq_ = 0;
};

}  // namespace frost::criteria
