#pragma once
// criteria::AnyOf<Cs...> — a block freezes as soon as any member criterion
// asks for it, e.g. AnyOf<GradientThreshold, GradientNormChange>: freeze a
// block whose gradient is tiny *or* has stopped changing.
//
// Every member hears every call (setup, observe, decide, before_step,
// on_frozen, on_validation, observe_activations), in order, so each keeps its
// own statistics and decision points. Each member's requests and warnings go
// to the controller unchanged but for their detail, which is prefixed with the
// member's name ("GradientThreshold: mean |grad| ..."). When two members ask
// for the same block at one decision, the first (in member order) freezes it
// and the controller ignores the second.
//
//   using C = frost::criteria::AnyOf<frost::criteria::GradientThreshold,
//                                    frost::criteria::GradientNormChange>;
//   C::Options o;                         // std::tuple of the members' options
//   std::get<0>(o).threshold(1e-4);       // or set_option(o, "0.threshold", "1e-4")
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <utility>

#include "frost/concepts/criterion.hpp"

namespace frost::criteria {

template <class... Cs>
class AnyOf {
  static_assert(sizeof...(Cs) >= 1, "frost: criteria::AnyOf needs at least one criterion");
  static_assert((concepts::check_criterion<Cs>() && ...), "see the message above");

 public:
  /// The options of each member, in order (set them with std::get<I>).
  using Options = std::tuple<typename Cs::Options...>;
  static std::string name() {
    std::string n = "AnyOf<";
    std::size_t i = 0;
    ((n += (i++ ? "," : "") + concepts::name_of<Cs>()), ...);
    return n + ">";
  }
  explicit AnyOf(const Options& o = {}) : cs_(make(o, std::index_sequence_for<Cs...>{})) {}

  void setup(const CriterionSetup& s) {
    std::apply([&](auto&... c) { (c.setup(s), ...); }, cs_);
  }
  void observe(const StepState& s) {
    std::apply([&](auto&... c) { (c.observe(s), ...); }, cs_);
  }
  void decide(const StepState& s, Decisions& out) {
    std::apply([&](auto&... c) { (run(c, out, [&](auto& m) { m.decide(s, out); }), ...); }, cs_);
  }
  void before_step(const StepState& s, Decisions& out) {
    std::apply(
        [&](auto&... c) {
          (run(c, out, [&](auto& m) { concepts::decide_before_step(m, s, out); }), ...);
        },
        cs_);
  }
  void on_frozen(std::int64_t block) {
    std::apply([&](auto&... c) { (concepts::notify_frozen(c, block), ...); }, cs_);
  }
  void on_validation(double loss, const StepState& s) {
    std::apply([&](auto&... c) { (concepts::notify_validation(c, loss, s), ...); }, cs_);
  }
  void observe_activations(std::int64_t block, const at::Tensor& t) {
    std::apply([&](auto&... c) { (concepts::notify_activations(c, block, t), ...); }, cs_);
  }

  template <std::size_t I>
  auto& get() noexcept { return std::get<I>(cs_); }

 private:
  template <class C, class F>
  static void run(C& c, Decisions& out, F&& f) {
    const std::size_t first = out.items().size();
    f(c);
    out.tag(first, concepts::name_of<C>());
  }
  template <std::size_t... I>
  static std::tuple<Cs...> make(const Options& o, std::index_sequence<I...>) {
    return std::tuple<Cs...>(Cs(std::get<I>(o))...);
  }
  std::tuple<Cs...> cs_;
};

}  // namespace frost::criteria
