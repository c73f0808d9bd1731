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
// changes state (by any policy; then all its votes are dropped); the block freezes
// at the decision where the last missing vote arrives. Members report only
// requests, never "do not freeze", so a vote cannot be withdrawn.
//
// The statistic given to the controller (and the timeline) is that of the
// vote that completed the set, i.e. the last member to ask (ties within one
// call: the later member in the list); the detail lists every member's latest
// request. Warnings from members are passed on, prefixed with the member's
// name. A request with a non-finite statistic is not a vote (it is passed on
// as a warning), matching the controller's rule. Trial, revert and commit
// requests are a member's own protocol (token similarity's trials) and pass
// through unchanged. Its state: the members', the standing votes.
#include <ATen/core/Tensor.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "frost/concepts/criterion.hpp"
#include "frost/criteria/members.hpp"
#include "frost/detail/archive.hpp"
#include "frost/error.hpp"

namespace frost::criteria {

template <class... Cs>
class AllOf : public Forwarding<Cs...> {
  using Base = Forwarding<Cs...>;
  using typename Base::M;
  using Base::m_;
  static constexpr std::size_t K = M::K;

 public:
  using Options = typename Base::Options;
  static std::string name() { return M::names("AllOf"); }
  explicit AllOf(const Options& o = {}) : Base(o) {}

  /// Forwarding's calls, plus the votes (below) that only AllOf keeps.
  void setup(const CriterionSetup& s) {
    m_.setup(s);
    votes_.assign(s.blocks->size(), std::vector<Vote>(K));
  }
  void decide(const StepState& s, HostValues values, Decisions& out) {
    bool any = false;
    m_.decide_each(s, values, [&](auto& c, std::size_t k, HostValues mine) {
      Decisions d;
      c.decide(s, mine, d);
      any = collect(k, d, out) || any;
    });
    if (any) complete(s, out);
  }
  void before_step(const StepState& s, Decisions& out) {
    bool any = false;
    m_.each([&](auto& c, std::size_t k) {
      Decisions d;
      concepts::decide_before_step(c, s, d);
      any = collect(k, d, out) || any;
    });
    if (any) complete(s, out);
  }
  /// Votes for a block are dropped whenever its state changes.
  void on_state_change(std::int64_t block, BlockState from, BlockState to) {
    if (block >= 0 && static_cast<std::size_t>(block) < votes_.size())
      for (auto& v : votes_[static_cast<std::size_t>(block)]) v = Vote{};
    m_.on_state_change(block, from, to);
  }

  /// The members' states, the standing votes and the vote counter.
  void save(torch::serialize::OutputArchive& ar) const {
    torch::serialize::OutputArchive members;
    m_.save(members);
    ar.write("members", members);
    std::vector<std::int64_t> seq;
    std::vector<double> stat;
    std::vector<std::string> detail;
    for (const auto& per_block : votes_)
      for (const auto& v : per_block) {
        seq.push_back(static_cast<std::int64_t>(v.seq));
        stat.push_back(v.statistic);
        detail.push_back(v.detail);
      }
    ar.write("vote_seq", c10::IValue(seq));
    ar.write("vote_statistic", c10::IValue(stat));
    ar.write("vote_detail", c10::IValue(c10::List<std::string>(detail)));
    ar.write("seq", c10::IValue(static_cast<std::int64_t>(seq_)));
  }
  void load(torch::serialize::InputArchive& ar) {
    torch::serialize::InputArchive members;
    detail::require(ar.try_read("members", members), "no state for the members");
    const auto seq = frost::detail::read_value(ar, "vote_seq").toIntVector();
    const auto stat = frost::detail::read_value(ar, "vote_statistic").toDoubleVector();
    const auto det = frost::detail::read_value(ar, "vote_detail").toList();
    const auto counter = frost::detail::read_value(ar, "seq").toInt();
    const std::size_t n = votes_.size() * K;
    detail::require(seq.size() == n && stat.size() == n && det.size() == n, "votes for ",
                    seq.size() / K, " blocks, this block map has ", votes_.size());
    m_.load(members);
    for (std::size_t b = 0, i = 0; b < votes_.size(); ++b)
      for (std::size_t k = 0; k < K; ++k, ++i)
        votes_[b][k] = Vote{static_cast<std::uint64_t>(seq[i]), stat[i], det.get(i).toStringRef()};
    seq_ = static_cast<std::uint64_t>(counter);
  }

  /// Whether member `k` currently votes to freeze `block`.
  bool voted(std::size_t k, std::int64_t block) const {
    return votes_.at(static_cast<std::size_t>(block)).at(k).seq > 0;
  }

 private:
  struct Vote {
    std::uint64_t seq = 0;  // 0: no vote
    double statistic = 0.0;
    std::string detail;
  };

  /// Member k's requests: freezes become votes, the rest passes through.
  bool collect(std::size_t k, const Decisions& mine, Decisions& out) {
    bool any = false;
    const std::string who = M::member_names()[k] + ": ";
    for (const auto& it : mine.items()) {
      if (it.is_warning()) {
        out.warn(it.block, it.statistic, who + it.detail);
      } else if (*it.request != Request::freeze) {
        // trial / revert / commit: the member's own protocol, passed through
        out.ask(*it.request, it.block, it.statistic, who + it.detail);
      } else if (!std::isfinite(it.statistic)) {
        out.warn(it.block, it.statistic,
                 who + "freeze request with a non-finite statistic is not a vote" +
                     (it.detail.empty() ? "" : " (" + it.detail + ")"));
      } else if (it.block >= 0 && static_cast<std::size_t>(it.block) < votes_.size()) {
        votes_[static_cast<std::size_t>(it.block)][k] = Vote{++seq_, it.statistic, it.detail};
        any = true;
      } else {
        out.freeze(it.block, it.statistic, who + it.detail);  // let the controller refuse it
      }
    }
    return any;
  }

  /// Blocks whose every member has voted freeze.
  void complete(const StepState& s, Decisions& out) {
    for (std::size_t b = 0; b < votes_.size(); ++b) {
      if (s.is_frozen(static_cast<std::int64_t>(b))) continue;
      const auto& v = votes_[b];
      std::size_t last = 0;
      bool all = true;
      for (std::size_t j = 0; j < K; ++j) {
        if (v[j].seq == 0) all = false;
        else if (v[j].seq > v[last].seq) last = j;
      }
      if (!all) continue;
      const auto& names = M::member_names();
      std::ostringstream d;
      d << "all of " << K << " criteria asked; last " << names[last];
      for (std::size_t j = 0; j < K; ++j)
        d << "; " << names[j] << ": " << v[j].detail << " [" << v[j].statistic << "]";
      out.freeze(static_cast<std::int64_t>(b), v[last].statistic, d.str());
    }
  }

  std::vector<std::vector<Vote>> votes_;  // [block][member]
  std::uint64_t seq_ = 0;
};

}  // namespace frost::criteria
