#pragma once
// frost::LrBook: the controller's learning-rate bookkeeping, one entry per
// optimizer param group.
//
// A group's rate is its base rate (the user's) times a multiplier (the
// schedule's, 0 for a block out of training). The base is the group's rate
// when the book is built. Between steps the user may change the optimizer's
// rates; adopt() (called by the controller at the start of before_step())
// compares every group's rate with the one the book set last and tells the
// common decay patterns apart, so that each does what the user meant:
//
//   scaled:   every group that had a rate above 0 changed by one factor, the
//             others (rate 0) did not: a torch::optim scheduler (StepLR ...),
//             or `for (auto& g : opt.param_groups()) g.options().set_lr(g.options().get_lr() * f)`.
//             Every base is multiplied by that factor, those of groups at 0
//             (blocks out of training) included.
//   absolute: every group now has the same rate r (at least one changed):
//             `for (auto& g : opt.param_groups()) g.options().set_lr(r)`.
//             r becomes the base of every group, whatever its multiplier.
//   ambiguous: every group had the same rate before and has the same rate
//             after, so the change fits both readings. Where every multiplier
//             is 1 (schedules::Constant after warm-up) they give the same
//             bases and it is read as a factor. Under one multiplier m != 1
//             (warm-up, Cosine mid-run) a factor would make the base r / m
//             and a rate r: the same user code would mean one thing with a
//             block frozen (no factor can lift a rate of 0) and another
//             without. So it is read as ControllerOptions::lr_changes says
//             (factor or rate) and, by default (detect), refused.
//   partial:  anything else, e.g. `opt.param_groups().front().options().set_lr(r)`
//             with frost's one group per block: only some groups changed. Each
//             changed group's base becomes its new rate / its last multiplier
//             (its rate itself where that was 0), and adopt() reports it, so
//             the controller can warn (or refuse it, with the fix).
//
// set_base() sets bases directly (ctl.set_base_lr) and takes precedence over
// a change the user made to the same group's rate since.
//
// The book never sees the controller. save()/load() follow the policies'
// contract (frost/concepts/state.hpp) and write the keys "base_lr" and
// "lr_scale" into the archive they are given (the controller's own), as the
// controller did before the book existed, so older checkpoints load; and
// "lr_set" and "lr_now", the rates the book set last and the optimizer's rates
// at the save. A change the user made after the last step is not in the bases
// yet (adopt() takes it in at the next before_step()), and LibTorch's
// Optimizer::load does not restore rates, so without them a checkpoint written
// between such a change and the next step (the README's epoch loop: decay,
// then save) resumes at the old rate. reapply() restores both.
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "frost/block_map.hpp"
#include "frost/concepts/schedule.hpp"
#include "frost/controller_options.hpp"
#include "frost/error.hpp"
#include "frost/timeline.hpp"

namespace frost {

/// What LrBook::adopt() found in the optimizer's rates.
struct LrChange {
  enum class Kind { none, scaled, absolute, partial };
  Kind kind = Kind::none;
  double factor = 1.0;               ///< scaled: the factor
  double rate = 0.0;                 ///< absolute: the rate set on every group
  std::vector<std::size_t> groups;   ///< the groups whose rate changed
  std::string message;               ///< partial: what happened, and how to decay every group
};

inline const char* to_string(LrChange::Kind k) {
  switch (k) {
    case LrChange::Kind::none: return "none";
    case LrChange::Kind::scaled: return "scaled";
    case LrChange::Kind::absolute: return "absolute";
    case LrChange::Kind::partial: return "partial";
  }
  return "?";
}

class LrBook {
 public:
  LrBook() = default;

  /// Maps `optimizer`'s param groups to `blocks` and takes each group's rate
  /// as its base. A block may span several groups (e.g. weights with weight
  /// decay, biases and norms without), but a group must not mix blocks, or a
  /// block and parameters outside the map: its rate follows one block.
  LrBook(torch::optim::Optimizer& optimizer, const BlockMap& blocks) : opt_(&optimizer) {
    map(blocks);
  }

  std::size_t num_groups() const noexcept { return base_.size(); }
  /// The block whose rate group `g` follows, or kHead.
  std::int64_t block_of(std::size_t g) const { return group_block_.at(g); }
  /// The groups of block `b`.
  const std::vector<std::size_t>& groups_of(std::size_t b) const { return block_groups_.at(b); }
  /// The base rate of group `g` (the user's rate, before the multiplier).
  double base(std::size_t g) const { return base_.at(g); }
  /// The multiplier last applied to group `g`.
  double scale(std::size_t g) const { return scale_.at(g); }

  /// Sets group g's rate to its base x `scale`.
  void apply(std::size_t g, double scale) {
    const double lr = base_[g] * scale;
    opt_->param_groups()[g].options().set_lr(lr);
    last_[g] = lr;
    scale_[g] = scale;
  }
  /// The same for every group of block `b`.
  void apply_block(std::size_t b, double scale) {
    for (const std::size_t g : block_groups_[b]) apply(g, scale);
  }
  /// Applies every group's last multiplier again (after load()), then the
  /// optimizer's rates as they were at the save, with a change the user made
  /// since the last step still to be adopted (none in older checkpoints).
  void reapply() {
    for (std::size_t g = 0; g < base_.size(); ++g) apply(g, scale_[g]);
    if (saved_now_.empty()) return;
    for (std::size_t g = 0; g < base_.size(); ++g)
      opt_->param_groups()[g].options().set_lr(saved_now_[g]);
    last_ = std::move(saved_set_);
    saved_set_.clear();
    saved_now_.clear();
  }

  /// Sets the base of every group / of one group, from the next apply().
  void set_base(double lr) {
    check_rate(lr, "set_base_lr: the rate");
    for (std::size_t g = 0; g < base_.size(); ++g) take(g, lr);
  }
  void set_base(std::size_t g, double lr) {
    detail::require(g < base_.size(), "set_base_lr(", g, "): there are ", base_.size(),
                    " param groups (0..", base_.size() - 1, ")");
    check_rate(lr, "set_base_lr: the rate");
    take(g, lr);
  }

  /// Recognises what the user changed in the optimizer's rates since the book
  /// last set them (see the header comment) and takes it into the bases.
  /// With `refuse_partial`, a partial change is a frost::Error (nothing
  /// changes). A rate that is not finite or negative is always one; so is a
  /// change that fits both a factor and a rate under a multiplier other than
  /// 1, unless `reading` says which it is.
  LrChange adopt(bool refuse_partial = false, LrChanges reading = LrChanges::detect) {
    LrChange c;
    const std::size_t n = base_.size();
    std::vector<double> cur(n);
    for (std::size_t g = 0; g < n; ++g) {
      cur[g] = opt_->param_groups()[g].options().get_lr();
      if (cur[g] != last_[g]) c.groups.push_back(g);
    }
    if (c.groups.empty()) return c;
    for (const std::size_t g : c.groups)
      detail::require(std::isfinite(cur[g]) && cur[g] >= 0.0, "param group ", g, " (",
                      group_name(g), ") has learning rate ", cur[g],
                      ", set between steps; give a finite rate of 0 or more");
    const bool one_rate =
        std::all_of(cur.begin(), cur.end(), [&](double r) { return r == cur[0]; });
    const double f = common_factor(cur);
    if (f > 0.0 && one_rate && !multipliers_all_one())
      detail::require(reading != LrChanges::detect, ambiguity(f, cur[0]));
    if (f > 0.0 && !(one_rate && reading == LrChanges::rate)) {
      c.kind = LrChange::Kind::scaled;
      c.factor = f;
      for (std::size_t g = 0; g < n; ++g) base_[g] = last_[g] > 0.0 ? cur[g] / scale_[g] : base_[g] * f;
    } else if (one_rate) {
      c.kind = LrChange::Kind::absolute;
      c.rate = cur[0];
      std::fill(base_.begin(), base_.end(), cur[0]);
    } else {
      c.kind = LrChange::Kind::partial;
      c.message = describe(c, cur);
      detail::require(!refuse_partial, c.message,
                      " (controller.strict_lr is on, so this is an error)");
      for (const std::size_t g : c.groups) base_[g] = scale_[g] > 0.0 ? cur[g] / scale_[g] : cur[g];
    }
    last_ = cur;
    return c;
  }

  /// A name for group `g` in messages: "block 'layer1.0'" or "the head".
  std::string group_name(std::size_t g) const {
    const std::int64_t b = group_block_.at(g);
    return b == kHead ? std::string("the parameters outside the block map")
                      : "block '" + names_[static_cast<std::size_t>(b)] + "'";
  }

  /// The warning event of a partial change `c` at `step` (policy
  /// "controller"; about the first changed group's block).
  Event warning(const LrChange& c, std::int64_t step) const {
    Event e;
    e.step = step;
    e.block = group_block_.at(c.groups.front());
    if (e.block >= 0) e.block_name = names_[static_cast<std::size_t>(e.block)];
    e.kind = EventKind::warning;
    e.policy = "controller";
    e.statistic = static_cast<double>(c.groups.size());
    e.detail = c.message;
    return e;
  }

  void save(torch::serialize::OutputArchive& ar) const {
    ar.write("base_lr", c10::IValue(base_));
    ar.write("lr_scale", c10::IValue(scale_));
    std::vector<double> now(base_.size());
    for (std::size_t g = 0; g < now.size(); ++g) now[g] = opt_->param_groups()[g].options().get_lr();
    ar.write("lr_set", c10::IValue(last_));
    ar.write("lr_now", c10::IValue(now));
  }

  /// Reads what save() wrote into this book (not into the optimizer: call
  /// reapply() once the rest of the checkpoint has loaded too).
  void load(torch::serialize::InputArchive& ar) {
    std::vector<double> base = rates(ar, "base_lr", true), scale = rates(ar, "lr_scale", true);
    std::vector<double> set = rates(ar, "lr_set", false), now = rates(ar, "lr_now", false);
    detail::require(set.empty() == now.empty(), "it has '",
                    set.empty() ? "lr_now" : "lr_set", "' without '",
                    set.empty() ? "lr_set" : "lr_now", "'");
    base_ = std::move(base);
    scale_ = std::move(scale);
    saved_set_ = std::move(set);
    saved_now_ = std::move(now);
  }

 private:
  /// One rate per param group under `key`, each finite and 0 or more; empty
  /// when the key is absent and not `required` (a checkpoint older than it).
  std::vector<double> rates(torch::serialize::InputArchive& ar, const char* key,
                            bool required) const {
    c10::IValue v;
    if (!ar.try_read(key, v) && !required) return {};
    detail::require(v.isDoubleList(), "'", key, "' is missing or of another kind");
    std::vector<double> r = v.toDoubleVector();
    detail::require(r.size() == base_.size(), "it was written for an optimizer with ", r.size(),
                    " param groups; this one has ", base_.size());
    for (std::size_t g = 0; g < r.size(); ++g)
      detail::require(std::isfinite(r[g]) && r[g] >= 0.0, "its learning rate of param group ", g,
                      " is corrupt ('", key, "')");
    return r;
  }

  static void check_rate(double lr, const char* what) {
    detail::require(std::isfinite(lr) && lr >= 0.0, what, " is ", lr,
                    "; give a finite rate of 0 or more");
  }

  /// group g's base is `lr`; a change the user made to its rate is superseded.
  void take(std::size_t g, double lr) {
    last_[g] = opt_->param_groups()[g].options().get_lr();
    base_[g] = lr;
  }

  /// The one factor by which every group above 0 changed, while the groups at
  /// 0 stayed there; 0 when there is none. Relative tolerance 1e-9: rates
  /// multiplied in double round differently per group.
  double common_factor(const std::vector<double>& cur) const {
    double f = 0.0;
    for (std::size_t g = 0; g < cur.size(); ++g) {
      if (last_[g] == 0.0) {
        if (cur[g] != 0.0) return 0.0;
        continue;
      }
      const double r = cur[g] / last_[g];
      if (f == 0.0) f = r;
      else if (std::abs(r - f) > 1e-9 * f) return 0.0;
    }
    return f;
  }

  /// Whether every group's last multiplier is 1 (relative 1e-12): then a
  /// factor and a rate give the same bases.
  bool multipliers_all_one() const {
    return std::all_of(scale_.begin(), scale_.end(),
                       [](double m) { return std::abs(m - 1.0) <= 1e-12; });
  }

  /// Why a change of every group from one rate to another rate `r` under a
  /// multiplier other than 1 is refused, and the three ways out.
  std::string ambiguity(double f, double r) const {
    std::ostringstream os;
    os << "the learning rate of every param group changed from " << last_[0] << " to " << r
       << " between steps, while the schedule's multiplier (group 0) is " << scale_[0]
       << " (warm-up or an annealing schedule); this fits a rescale by " << f
       << " (a torch::optim scheduler: every base -> " << r / scale_[0]
       << ") and a new rate (every base -> " << r
       << "), which differ here and not with a block frozen. Say which: "
          "ControllerOptions().lr_changes(frost::LrChanges::factor) for a scheduler that "
          "multiplies the rates, lr_changes(frost::LrChanges::rate) for a rate you set, or set "
          "the bases with ctl.set_base_lr(rate) instead of the optimizer's rates";
    return os.str();
  }

  /// What a partial change did and how to do what was probably meant.
  std::string describe(const LrChange& c, const std::vector<double>& cur) const {
    std::ostringstream os;
    os << "the learning rate of " << c.groups.size() << " of " << base_.size()
       << " param groups changed between steps (";
    for (std::size_t i = 0; i < c.groups.size() && i < 3; ++i) {
      const std::size_t g = c.groups[i];
      os << (i ? "; " : "") << "group " << g << ", " << group_name(g) << ": " << last_[g]
         << " -> " << cur[g];
    }
    if (c.groups.size() > 3) os << "; ...";
    os << "), the others kept theirs, so only the changed groups' base rates follow. frost "
          "gives each block its own param group: to decay every group use a torch::optim "
          "scheduler, multiply every group's rate by one factor, set one rate on every "
          "group, or call ctl.set_base_lr(lr); to change one group on purpose call "
          "ctl.set_base_lr(group, lr)";
    return os.str();
  }

  void map(const BlockMap& blocks) {
    auto& groups = opt_->param_groups();
    std::unordered_map<const void*, std::size_t> group_of;
    for (std::size_t g = 0; g < groups.size(); ++g)
      for (const auto& p : groups[g].params()) group_of[p.unsafeGetTensorImpl()] = g;
    std::unordered_map<const void*, std::size_t> block_of;
    for (std::size_t b = 0; b < blocks.size(); ++b)
      for (const auto& p : blocks[b].params) block_of[p.unsafeGetTensorImpl()] = b;
    group_block_.assign(groups.size(), kHead);
    block_groups_.assign(blocks.size(), {});
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const auto& blk = blocks[b];
      names_.push_back(blk.name);
      for (std::size_t i = 0; i < blk.params.size(); ++i) {
        auto it = group_of.find(blk.params[i].unsafeGetTensorImpl());
        detail::require(it != group_of.end(), "parameter '", blk.param_names[i], "' of block '",
                        blk.name,
                        "' is not in the optimizer; build the optimizer with "
                        "frost::param_groups(blocks, model) so every block has its own group");
        const std::size_t g = it->second;
        auto& mine = block_groups_[b];
        if (std::find(mine.begin(), mine.end(), g) != mine.end()) continue;
        mine.push_back(g);
        group_block_[g] = static_cast<std::int64_t>(b);
        std::size_t others = 0;
        std::string other_block;
        for (const auto& p : groups[g].params()) {
          auto ob = block_of.find(p.unsafeGetTensorImpl());
          if (ob != block_of.end() && ob->second == b) continue;
          ++others;
          if (ob != block_of.end() && other_block.empty()) other_block = blocks[ob->second].name;
        }
        detail::require(others == 0, "optimizer param group ", g, " holds block '", blk.name,
                        "' and ", others, " other parameters",
                        other_block.empty() ? std::string(" (outside the block map)")
                                            : " (of block '" + other_block + "')",
                        "; a group's learning rate follows one block, so give each block groups "
                        "of its own (one or several), e.g. with frost::param_groups(blocks, "
                        "model)");
      }
    }
    base_.resize(groups.size());
    for (std::size_t g = 0; g < groups.size(); ++g) {
      // A group added without options uses the optimizer's defaults.
      base_[g] = groups[g].has_options() ? groups[g].options().get_lr()
                                         : opt_->defaults().get_lr();
    }
    last_ = base_;
    scale_.assign(groups.size(), 1.0);
  }

  torch::optim::Optimizer* opt_ = nullptr;
  std::vector<std::string> names_;                      // per block: its name (for messages)
  std::vector<std::int64_t> group_block_;               // per param group: its block, or kHead
  std::vector<std::vector<std::size_t>> block_groups_;  // per block: its param groups
  std::vector<double> base_;                            // per param group: the user's rate
  std::vector<double> last_;                            // per param group: the rate set last
  std::vector<double> scale_;                           // per param group: that rate's multiplier
  std::vector<double> saved_set_, saved_now_;           // load() -> reapply(): last_ and the
                                                        // optimizer's rates at the save
};

}  // namespace frost
