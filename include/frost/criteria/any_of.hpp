#pragma once
// criteria::AnyOf<Cs...> — a block freezes as soon as any member criterion
// asks for it, e.g. AnyOf<GradientThreshold, GradientNormChange>: freeze a
// block whose gradient is tiny *or* has stopped changing.
//
// Every member hears every call (setup, observe, decide, before_step,
// on_state_change, on_validation, observe_activations, observe_features), in
// order, so each keeps its own statistics and decision points. At a decision
// point the statistics of every member deciding there travel as one tensor
// (one host read), and each member gets its own slice back. Each member's requests and warnings go
// to the controller unchanged but for their detail, which is prefixed with the
// member's name ("GradientThreshold: mean |grad| ..."). When two members ask
// for the same block at one decision, the first (in member order) freezes it
// and the controller ignores the second. Trial, revert and commit requests
// pass through like freezes. Its state is its members' (saved one by one).
//
//   using C = frost::criteria::AnyOf<frost::criteria::GradientThreshold,
//                                    frost::criteria::GradientNormChange>;
//   C::Options o;                         // std::tuple of the members' options
//   std::get<0>(o).threshold(1e-4);       // or set_option(o, "0.threshold", "1e-4")
#include <ATen/core/Tensor.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <utility>

#include "frost/concepts/criterion.hpp"
#include "frost/criteria/members.hpp"

namespace frost::criteria {

template <class... Cs>
class AnyOf {
 public:
  using Options = typename Members<Cs...>::Options;
  static constexpr bool uses_gradients = Members<Cs...>::uses_gradients;
  static std::string name() { return Members<Cs...>::names("AnyOf"); }
  explicit AnyOf(const Options& o = {}) : m_(o) {}

  void setup(const CriterionSetup& s) { m_.setup(s); }
  void observe(const StepState& s) { m_.observe(s); }
  /// Any member's decision point; only the members at theirs decide.
  bool decision_point(const StepState& s) const { return m_.decision_point(s); }
  /// The members' statistics in one tensor: one host read per decision point.
  at::Tensor statistics(const StepState& s) { return m_.statistics(s); }
  void decide(const StepState& s, HostValues values, Decisions& out) {
    m_.decide_each(s, values, [&](auto& c, std::size_t, HostValues mine) {
      run(c, out, [&](auto& m) { m.decide(s, mine, out); });
    });
  }
  void before_step(const StepState& s, Decisions& out) {
    m_.each([&](auto& c, std::size_t) {
      run(c, out, [&](auto& m) { concepts::decide_before_step(m, s, out); });
    });
  }
  void on_state_change(std::int64_t block, BlockState from, BlockState to) {
    m_.on_state_change(block, from, to);
  }
  void on_validation(double loss, const StepState& s) { m_.on_validation(loss, s); }
  void observe_activations(std::int64_t block, const at::Tensor& t) {
    m_.observe_activations(block, t);
  }
  void observe_features(const StepState& s, const at::Tensor& features, const at::Tensor& labels) {
    m_.observe_features(s, features, labels);
  }
  void save(torch::serialize::OutputArchive& ar) const { m_.save(ar); }
  void load(torch::serialize::InputArchive& ar) { m_.load(ar); }

  template <std::size_t I>
  auto& get() noexcept { return m_.template get<I>(); }
  template <std::size_t I>
  const auto& get() const noexcept { return m_.template get<I>(); }

 private:
  template <class C, class F>
  static void run(C& c, Decisions& out, F&& f) {
    const std::size_t first = out.items().size();
    f(c);
    out.tag(first, concepts::name_of<C>());
  }
  Members<Cs...> m_;
};

}  // namespace frost::criteria
