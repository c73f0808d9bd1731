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
//             r becomes the base of every group.
//             (When every group had the same rate before, the two cannot be
//             told apart; the change is then taken as a factor. With multipliers
//             all 1, as under schedules::Constant, both give the same bases.)
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
// controller did before the book existed, so older checkpoints load.
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
  /// Applies every group's last multiplier again (after load()).
  void reapply() {
    for (std::size_t g = 0; g < base_.size(); ++g) apply(g, scale_[g]);
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
  /// changes). A rate that is not finite or negative is always one.
  LrChange adopt(bool refuse_partial = false) {
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
    if (const double f = common_factor(cur); f > 0.0) {
      c.kind = LrChange::Kind::scaled;
      c.factor = f;
      for (std::size_t g = 0; g < n; ++g) base_[g] = last_[g] > 0.0 ? cur[g] / scale_[g] : base_[g] * f;
    } else if (std::all_of(cur.begin(), cur.end(), [&](double r) { return r == cur[0]; })) {
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
  }

  /// Reads what save() wrote into this book (not into the optimizer: call
  /// reapply() once the rest of the checkpoint has loaded too).
  void load(torch::serialize::InputArchive& ar) {
    auto doubles = [&](const char* key) {
      c10::IValue v;
      detail::require(ar.try_read(key, v) && v.isDoubleList(), "its frost state has no valid '",
                      key, "'");
      return v.toDoubleVector();
    };
    std::vector<double> base = doubles("base_lr"), scale = doubles("lr_scale");
    detail::require(base.size() == base_.size() && scale.size() == base_.size(),
                    "it was written for an optimizer with ", base.size(),
                    " param groups; this one has ", base_.size());
    for (std::size_t g = 0; g < base.size(); ++g)
      detail::require(std::isfinite(base[g]) && base[g] >= 0.0 && std::isfinite(scale[g]) &&
                          scale[g] >= 0.0,
                      "its learning rate of param group ", g, " is corrupt");
    base_ = std::move(base);
    scale_ = std::move(scale);
  }

 private:
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
};

}  // namespace frost
