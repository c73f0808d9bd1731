#pragma once
// What the criterion combinators (AnyOf, AllOf) share: a tuple of member
// criteria, each hearing every call in order; their decision-point statistics
// gathered into one tensor (so a decision point costs one host read however
// many members decide there) and split back for each member's decide(); their
// state saved and loaded member by member. Forwarding<Cs...> is the
// combinators' base: every call a member hears unchanged, and the members'
// capabilities, written once here (a combinator only adds how it decides).
#include <ATen/ATen.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <array>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "frost/concepts/criterion.hpp"
#include "frost/concepts/state_io.hpp"
#include "frost/error.hpp"

namespace frost::criteria {

template <class... Cs>
class Members {
  static_assert(sizeof...(Cs) >= 1, "frost: a criterion combinator needs at least one criterion");
  static_assert((concepts::check_criterion<Cs>() && ...), "see the message above");

 public:
  static constexpr std::size_t K = sizeof...(Cs);
  static constexpr bool uses_gradients = (concepts::uses_gradients<Cs>() || ...);
  static constexpr bool uses_features = (concepts::uses_features<Cs>() || ...);
  /// The options of each member, in order (set them with std::get<I>).
  using Options = std::tuple<typename Cs::Options...>;

  static std::string names(const char* combinator) {
    std::string n = std::string(combinator) + "<";
    std::size_t i = 0;
    ((n += (i++ ? "," : "") + concepts::name_of<Cs>()), ...);
    return n + ">";
  }
  static const std::vector<std::string>& member_names() {
    static const std::vector<std::string> n{concepts::name_of<Cs>()...};
    return n;
  }

  explicit Members(const Options& o) : cs_(make(o, std::index_sequence_for<Cs...>{})) {}

  void setup(const CriterionSetup& s) {
    std::apply([&](auto&... c) { (c.setup(s), ...); }, cs_);
  }
  void observe(const StepState& s) {
    std::apply([&](auto&... c) { (c.observe(s), ...); }, cs_);
  }
  bool decision_point(const StepState& s) const {
    return std::apply([&](const auto&... c) { return (c.decision_point(s) || ...); }, cs_);
  }
  /// The statistics of the members at a decision point, flattened and
  /// concatenated (float64); undefined when none has any.
  at::Tensor statistics(const StepState& s) {
    std::vector<at::Tensor> parts;
    std::size_t k = 0;
    std::apply(
        [&](auto&... c) {
          (
              [&](auto& m) {
                lengths_[k] = 0;
                if (m.decision_point(s)) {
                  at::Tensor t = concepts::statistics_of(m, s);
                  if (t.defined()) {
                    parts.push_back(t.detach().reshape({-1}).to(at::kDouble));
                    lengths_[k] = static_cast<std::size_t>(t.numel());
                  }
                }
                ++k;
              }(c),
              ...);
        },
        cs_);
    if (parts.empty()) return at::Tensor();
    return parts.size() == 1 ? parts.front() : at::cat(parts);
  }
  /// Calls `f(member, its values)` for every member at its decision point.
  template <class F>
  void decide_each(const StepState& s, HostValues values, F&& f) {
    std::size_t total = 0;
    for (auto n : lengths_) total += n;
    if (values.empty()) lengths_.fill(0);
    else
      detail::require(values.size() == total, "criterion combinator: got ", values.size(),
                      " statistics, its members gave ", total);
    std::size_t k = 0, offset = 0;
    std::apply(
        [&](auto&... c) {
          (
              [&](auto& m) {
                if (m.decision_point(s)) f(m, k, values.slice(offset, lengths_[k]));
                offset += lengths_[k];
                ++k;
              }(c),
              ...);
        },
        cs_);
    lengths_.fill(0);
  }
  template <class F>
  void each(F&& f) {
    std::size_t k = 0;
    std::apply([&](auto&... c) { ((f(c, k), ++k), ...); }, cs_);
  }
  void on_state_change(std::int64_t block, BlockState from, BlockState to) {
    std::apply([&](auto&... c) { (concepts::notify_state(c, block, from, to), ...); }, cs_);
  }
  void on_validation(double loss, const StepState& s) {
    std::apply([&](auto&... c) { (concepts::notify_validation(c, loss, s), ...); }, cs_);
  }
  void commit_step(const StepState& s) {
    std::apply([&](auto&... c) { (concepts::commit_step(c, s), ...); }, cs_);
  }
  void abort_step(const StepState& s) {
    std::apply([&](auto&... c) { (concepts::abort_step(c, s), ...); }, cs_);
  }
  void observe_activations(std::int64_t block, const at::Tensor& t) {
    std::apply([&](auto&... c) { (concepts::notify_activations(c, block, t), ...); }, cs_);
  }
  void observe_features(const StepState& s, const at::Tensor& features, const at::Tensor& labels) {
    std::apply([&](auto&... c) { (concepts::notify_features(c, s, features, labels), ...); }, cs_);
  }
  /// Each stateful member's state in a nested archive named by its index.
  void save(torch::serialize::OutputArchive& ar) const {
    std::size_t k = 0;
    std::apply([&](const auto&... c) { ((concepts::save_state(c, ar, std::to_string(k++))), ...); },
               cs_);
  }
  void load(torch::serialize::InputArchive& ar) {
    std::size_t k = 0;
    std::apply(
        [&](auto&... c) {
          ((detail::require(concepts::load_state(c, ar, std::to_string(k)),
                            "no state for member ", k, " (", member_names()[k], ")"),
            ++k),
           ...);
        },
        cs_);
  }

  template <std::size_t I>
  auto& get() noexcept { return std::get<I>(cs_); }
  template <std::size_t I>
  const auto& get() const noexcept { return std::get<I>(cs_); }

 private:
  template <std::size_t... I>
  static std::tuple<Cs...> make(const Options& o, std::index_sequence<I...>) {
    return std::tuple<Cs...>(Cs(std::get<I>(o))...);
  }
  std::tuple<Cs...> cs_;
  std::array<std::size_t, K> lengths_{};  // statistics per member at this decision point
};

/// The base of a criterion combinator: the calls every member hears unchanged
/// (setup, observe, decision points, statistics, the optional hooks, state)
/// and the capabilities its members have, re-exported. A combinator derives
/// from it, adds name(), decide() and before_step(), and hides what it must
/// extend (AllOf: setup, on_state_change, save/load). A new optional hook of
/// the Criterion concept is forwarded here and nowhere else.
template <class... Cs>
class Forwarding {
 protected:
  using M = Members<Cs...>;

 public:
  using Options = typename M::Options;
  static constexpr bool uses_gradients = M::uses_gradients;
  static constexpr bool uses_features = M::uses_features;

  explicit Forwarding(const Options& o) : m_(o) {}

  void setup(const CriterionSetup& s) { m_.setup(s); }
  void observe(const StepState& s) { m_.observe(s); }
  /// Any member's decision point; only the members at theirs decide.
  bool decision_point(const StepState& s) const { return m_.decision_point(s); }
  /// The members' statistics in one tensor: one host read per decision point.
  at::Tensor statistics(const StepState& s) { return m_.statistics(s); }
  void on_state_change(std::int64_t block, BlockState from, BlockState to) {
    m_.on_state_change(block, from, to);
  }
  void on_validation(double loss, const StepState& s) { m_.on_validation(loss, s); }
  void commit_step(const StepState& s) { m_.commit_step(s); }
  void abort_step(const StepState& s) { m_.abort_step(s); }
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

 protected:
  M m_;
};

}  // namespace frost::criteria
