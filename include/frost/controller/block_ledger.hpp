#pragma once
// frost::BlockLedger: where every block stands and how it got there. It holds
// the block states, answers what a request would do (the lifecycle table,
// frost/controller/lifecycle.hpp), records what happened in the timeline
// (warnings also go to c10's warning handler, once per topic and block:
// frost/warn.hpp), and saves and loads states and timeline with the same
// contract as the policies (frost/concepts/state.hpp). It changes no
// parameter: the controller carries a transition out on the model and the
// optimizer, then enters it here.
#include <ATen/core/List.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/block_state.hpp"
#include "frost/concepts/criterion.hpp"
#include "frost/concepts/stop_rule.hpp"
#include "frost/controller/lifecycle.hpp"
#include "frost/error.hpp"
#include "frost/timeline.hpp"
#include "frost/warn.hpp"

namespace frost {

/// Who asks: the guards differ (BlockLedger::review).
enum class Source : std::uint8_t { criterion, schedule, user };

/// What a policy's request comes to: the lifecycle table's cell, or a refusal.
struct Verdict {
  Transition cell;
  std::string refusal;  ///< why it is refused; empty when it is not
  bool refused() const noexcept { return !refusal.empty(); }
};

class BlockLedger {
 public:
  BlockLedger() = default;
  /// Every block of `blocks` in training, an empty timeline.
  explicit BlockLedger(const BlockMap& blocks) {
    for (const auto& b : blocks) {
      names_.push_back(b.name);
      numel_.push_back(b.numel);
    }
    states_.assign(names_.size(), BlockState::training);
  }

  std::size_t size() const noexcept { return states_.size(); }
  BlockState state(std::size_t b) const { return states_.at(b); }
  const std::vector<BlockState>& states() const noexcept { return states_; }
  const std::string& name(std::size_t b) const { return names_.at(b); }
  const std::vector<std::string>& names() const noexcept { return names_; }
  const Timeline& timeline() const noexcept { return timeline_; }

  /// A warning (block -1) when the block map holds less of the model than
  /// `min_coverage` (controller.min_coverage).
  void check_coverage(const BlockMap::Coverage& c, double min_coverage) {
    if (c.share() >= min_coverage) return;
    note(Event{0, -1, "", EventKind::warning, "controller", c.share(),
               c.describe() +
                   "; the rest trains like the head and is never frozen. "
                   "Check what BlockMap::detect found, or name the blocks (from_prefixes); "
                   "controller.min_coverage(0) silences this"},
         "controller:coverage");
  }

  /// What `r` would do to block b now (nothing changes).
  Transition plan(std::size_t b, Request r) const { return lifecycle(states_.at(b), r); }

  /// Records that block b made the move `t` (a cell of the table that moves)
  /// at `step`; the controller has carried it out.
  void enter(std::size_t b, const Transition& t, std::int64_t step, const std::string& policy,
             double statistic, std::string detail) {
    states_.at(b) = t.to;
    record(t.event, b, step, policy, statistic, std::move(detail), policy);
  }

  /// A warning about block b (a refused request, something the user should
  /// know), emitted under `topic` (default: the policy).
  void warn(std::size_t b, std::int64_t step, const std::string& policy, double statistic,
            std::string detail, const std::string& topic = {}) {
    record(EventKind::warning, b, step, policy, statistic, std::move(detail),
           topic.empty() ? policy : topic);
  }
  /// `policy`'s request `it` on block b was refused (verdict `v`): a warning
  /// under the topic "<policy>:refused".
  void refused(std::size_t b, std::int64_t step, const std::string& policy,
               const Decisions::Item& it, const Verdict& v) {
    warn(b, step, policy, it.statistic,
         std::string(it.what()) + " refused: " + v.refusal +
             (it.detail.empty() ? std::string() : " (" + it.detail + ")"),
         policy + ":refused");
  }
  /// The stop rule ended the run after `steps_done` steps.
  void stop(std::int64_t steps_done, const std::string& policy) {
    Event e;
    e.step = std::max<std::int64_t>(steps_done - 1, 0);  // the last step run
    e.kind = EventKind::stop;
    e.policy = policy;
    e.statistic = static_cast<double>(count_frozen());
    e.detail = "after " + std::to_string(steps_done) + " steps; " +
               std::to_string(count_frozen()) + " of " + std::to_string(size()) +
               " blocks frozen";
    note(std::move(e));
  }
  /// Any event as it is (a warning not about one block, block -1);
  /// a warning is emitted under `topic` (default: its policy).
  void note(Event e, const std::string& topic = {}) {
    if (e.kind == EventKind::warning) warnings_.emit(e, topic.empty() ? e.policy : topic);
    timeline_.push_back(std::move(e));
  }

  /// The one review every request gets, before anything changes: the cell
  /// of the lifecycle table for `r` on block b, then the guards that need
  /// more than the block's state. A criterion's move out of training is
  /// refused (a warning, the run goes on) on a statistic that is not finite
  /// or, with `in_order`, while a block before b is not frozen for good; the
  /// schedule's request is the table's alone; a refusal of the user's
  /// request is a frost::Error (the controller adds the schedule's check on
  /// a user's move back into training, which only the schedule can answer).
  Verdict review(std::size_t b, Request r, double statistic, Source who, bool in_order) const {
    Verdict v{plan(b, r), {}};
    if (v.cell.refused()) {
      v.refusal = v.cell.refusal;
    } else if (who == Source::criterion && ends_out_of_training(v.cell)) {
      const std::int64_t prefix = frozen_prefix();
      if (!std::isfinite(statistic))
        v.refusal = "the statistic is not finite";
      else if (in_order && static_cast<std::int64_t>(b) > prefix)
        v.refusal = "in_order: block " + std::to_string(prefix) + " (" +
                    names_[static_cast<std::size_t>(prefix)] + ") before it is not frozen for good";
    }
    detail::require(who != Source::user || !v.refused(), to_string(r), "(", names_.at(b), "): ",
                    v.refusal, "; call ctl.unfreeze() first");
    return v;
  }

  // --- views of the states (the controller's queries) ----------------------
  std::int64_t count(BlockState s) const {
    return static_cast<std::int64_t>(std::count(states_.begin(), states_.end(), s));
  }
  /// Blocks frozen for good (their state's row says so).
  std::int64_t count_frozen() const {
    return static_cast<std::int64_t>(std::count_if(
        states_.begin(), states_.end(), [](BlockState s) { return meaning(s).frozen_for_good; }));
  }
  /// The stop rule's view `st` (the clock's) with the block counts filled in.
  StopState with_counts(StopState st) const {
    st.num_blocks = static_cast<std::int64_t>(size());
    st.num_frozen = count_frozen();
    st.num_trial = count(BlockState::trial);
    st.frozen_prefix = frozen_prefix();
    return st;
  }
  /// Per block: frozen for good (a block in trial is not).
  std::vector<bool> frozen() const {
    std::vector<bool> out;
    for (auto s : states_) out.push_back(meaning(s).frozen_for_good);
    return out;
  }
  /// Leading blocks frozen for good, from the input side: the part of the
  /// network whose outputs no longer change (what an activation cache may
  /// keep). Trials do not count.
  std::int64_t frozen_prefix() const { return leading(is_frozen); }
  /// Leading blocks that get no gradient (trial or frozen): the part of the
  /// network that costs no backward work this step.
  std::int64_t no_grad_prefix() const { return leading(out_of_training); }
  /// Parameters in blocks frozen for good / parameters in all blocks.
  double frozen_fraction() const { return fraction(is_frozen); }
  /// Parameters in blocks that get no gradient (trial or frozen) / parameters
  /// in all blocks: the share of the blocks' backward and update work avoided.
  double no_grad_fraction() const { return fraction(out_of_training); }
  /// Parameters in blocks whose state satisfies `pred` / parameters in all blocks.
  template <class Pred>
  double fraction(Pred pred) const {
    std::int64_t part = 0, all = 0;
    for (std::size_t i = 0; i < states_.size(); ++i) {
      all += numel_[i];
      if (pred(states_[i])) part += numel_[i];
    }
    return all ? static_cast<double>(part) / static_cast<double>(all) : 0.0;
  }
  /// Number of leading blocks (input side first) whose state satisfies `pred`.
  template <class Pred>
  std::int64_t leading(Pred pred) const {
    return static_cast<std::int64_t>(std::find_if_not(states_.begin(), states_.end(), pred) -
                                     states_.begin());
  }

  // --- checkpoint: keys "states" and "timeline.*" --------------------------
  void save(torch::serialize::OutputArchive& ar) const {
    std::vector<std::int64_t> st;
    for (auto s : states_) st.push_back(static_cast<std::int64_t>(s));
    ar.write("states", c10::IValue(st));
    write_timeline(ar);
  }
  /// Reads states and timeline into this ledger (built over the same block
  /// map; warnings already emitted stay emitted). On any mismatch a
  /// frost::Error saying what is wrong (detail::load_part names the file and
  /// the part) and nothing changes.
  void load(torch::serialize::InputArchive& ar) {
    const auto st = read(ar, "states", &c10::IValue::isIntList).toIntVector();
    detail::require(st.size() == states_.size(), "block states for ", st.size(),
                    " blocks, ", states_.size(), " expected");
    std::vector<BlockState> states;
    for (std::size_t b = 0; b < st.size(); ++b) {
      detail::require(is_block_state(st[b]), "block '", names_[b], "' has state ",
                      st[b], " (states are 0 to ", kNumBlockStates - 1, ")");
      states.push_back(static_cast<BlockState>(st[b]));
    }
    Timeline tl = read_timeline(ar);
    states_ = std::move(states);
    timeline_ = std::move(tl);
  }

 private:
  static bool is_frozen(BlockState s) { return meaning(s).frozen_for_good; }
  static bool out_of_training(BlockState s) { return !meaning(s).trains; }

  void record(EventKind kind, std::size_t b, std::int64_t step, const std::string& policy,
              double statistic, std::string detail, const std::string& topic) {
    Event e;
    e.step = step;
    e.block = static_cast<std::int64_t>(b);
    e.block_name = names_.at(b);
    e.kind = kind;
    e.policy = policy;
    e.statistic = statistic;
    e.detail = std::move(detail);
    note(std::move(e), topic);
  }

  static c10::IValue read(torch::serialize::InputArchive& ar, const char* key,
                          bool (c10::IValue::*is_type)() const) {
    c10::IValue v;
    detail::require(ar.try_read(key, v) && (v.*is_type)(),
                    "'", key, "' is missing or of another kind");
    return v;
  }

  // The timeline as one column per Event field, listed once here for
  // write_timeline() and read_timeline(): an archive key and the member.
  template <class F>
  static void timeline_columns(F&& f) {
    f("timeline.step", &Event::step);
    f("timeline.block", &Event::block);
    f("timeline.kind", &Event::kind);  // by number: kinds are appended, never renumbered
    f("timeline.statistic", &Event::statistic);
    f("timeline.block_name", &Event::block_name);
    f("timeline.policy", &Event::policy);
    f("timeline.detail", &Event::detail);
  }
  template <class M>
  using column_type = std::decay_t<decltype(std::declval<Event&>().*std::declval<M>())>;

  void write_timeline(torch::serialize::OutputArchive& ar) const {
    timeline_columns([&](const char* key, auto member) {
      using T = column_type<decltype(member)>;
      if constexpr (std::is_same_v<T, std::string>) {
        c10::List<std::string> col;
        for (const auto& e : timeline_) col.push_back(e.*member);
        ar.write(key, c10::IValue(col));
      } else if constexpr (std::is_same_v<T, double>) {
        std::vector<double> col;
        for (const auto& e : timeline_) col.push_back(e.*member);
        ar.write(key, c10::IValue(col));
      } else {  // integers and the kind
        std::vector<std::int64_t> col;
        for (const auto& e : timeline_) col.push_back(static_cast<std::int64_t>(e.*member));
        ar.write(key, c10::IValue(col));
      }
    });
  }

  Timeline read_timeline(torch::serialize::InputArchive& ar) const {
    Timeline tl;
    bool first = true;
    auto rows = [&](std::size_t n) {  // every column as long as the first
      if (first) tl.resize(n);
      first = false;
      detail::require(n == tl.size(), "the timeline's columns differ in length");
    };
    timeline_columns([&](const char* key, auto member) {
      using T = column_type<decltype(member)>;
      if constexpr (std::is_same_v<T, std::string>) {
        const auto col = read(ar, key, &c10::IValue::isList).toList();
        rows(col.size());
        for (std::size_t i = 0; i < col.size(); ++i) {
          detail::require(col.get(i).isString(), "timeline event ", i, " holds an impossible value");
          tl[i].*member = col.get(i).toStringRef();
        }
      } else if constexpr (std::is_same_v<T, double>) {
        const auto col = read(ar, key, &c10::IValue::isDoubleList).toDoubleVector();
        rows(col.size());
        for (std::size_t i = 0; i < col.size(); ++i) tl[i].*member = col[i];
      } else {
        const auto col = read(ar, key, &c10::IValue::isIntList).toIntVector();
        rows(col.size());
        for (std::size_t i = 0; i < col.size(); ++i) {
          if constexpr (std::is_enum_v<T>)  // checked before it becomes a kind
            detail::require(col[i] >= 0 && col[i] <= kLastEventKind, "timeline event ", i, " holds an impossible value");
          tl[i].*member = static_cast<T>(col[i]);
        }
      }
    });
    for (std::size_t i = 0; i < tl.size(); ++i)
      detail::require(tl[i].block >= -1 && tl[i].block < static_cast<std::int64_t>(states_.size()),
                      "timeline event ", i, " holds an impossible value");
    return tl;
  }

  std::vector<std::string> names_;
  std::vector<std::int64_t> numel_;
  std::vector<BlockState> states_;
  Timeline timeline_;
  WarningLog warnings_;  // warnings passed to c10's handler (once per topic, block)
};

}  // namespace frost
