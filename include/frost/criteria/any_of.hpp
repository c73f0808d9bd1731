#pragma once
// criteria::AnyOf<Cs...> — a block freezes as soon as any member criterion
// asks for it, e.g. AnyOf<GradientThreshold, GradientNormChange>: freeze a
// block whose gradient is tiny *or* has stopped changing.
//
// Every member hears every call (setup, observe, decide, before_step,
// on_state_change, on_validation, observe_activations, observe_features), in
// order, so each keeps its own statistics and decision points (the calls it
// hears unchanged come from criteria::Forwarding, with the members'
// capabilities: AnyOf<GradientThreshold, GradientNormChange> wants no features). At a decision
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
class AnyOf : public Forwarding<Cs...> {
  using Base = Forwarding<Cs...>;
  using Base::m_;

 public:
  using Options = typename Base::Options;
  static std::string name() { return Base::M::names("AnyOf"); }
  explicit AnyOf(const Options& o = {}) : Base(o) {}

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

 private:
  template <class C, class F>
  static void run(C& c, Decisions& out, F&& f) {
    const std::size_t first = out.items().size();
    f(c);
    out.tag(first, concepts::name_of<C>());
  }
};

}  // namespace frost::criteria
