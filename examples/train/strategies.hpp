#pragma once
// examples/train/strategies.hpp — the freezing strategies compiled into
// frost-train: each a FreezeController<Criterion, Schedule, StopRule>
// composition with example defaults, selectable by name at run time.
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "frost/frost.hpp"
#include "frost/predictor.hpp"
#include "trainer.hpp"

namespace frost_train {

struct Strategy {
  std::string name;
  std::string summary;
  bool adaptive = false;  ///< decides from training statistics (not a fixed plan)
  /// Its stop rule listens to the validation loss: the validation passes are
  /// part of what it costs (counted in its measured time).
  bool validation_needed = false;
  /// Full fine-tuning at some budget: a point of the frontier.
  bool on_frontier = false;
  /// Full's work again, nothing else: its speed-up must read 1.00x, and the
  /// report judges the machine's noise by it (report.hpp, format_control).
  /// Declared here, never inferred from "avoided no work": full-early-stop
  /// avoids none until it stops, yet pays for its validation passes.
  bool timing_control = false;
  /// Refuses what it cannot run with (a UsageError), given its --set options;
  /// run before any data is read (plan.hpp) and again by start. Null: nothing.
  std::function<void(const std::vector<std::pair<std::string, std::string>>&)> check;
  /// Builds the run (model, optimizer, controller), ready to step.
  std::function<std::unique_ptr<Run>(const RunContext&)> start;
  /// The whole run at once.
  RunResult run(const RunContext& ctx) const {
    auto r = start(ctx);
    while (!r->done()) r->step();
    return r->finish();
  }
  /// Every option key of the composition (for --list and --set routing).
  std::function<frost::OptionList()> options;
};

/// Whether stop rule P listens to the validation loss (early stopping).
template <class P>
struct listens_to_validation : std::false_type {};
template <>
struct listens_to_validation<frost::stop::Patience> : std::true_type {};
template <class... R>
struct listens_to_validation<frost::stop::AnyOf<R...>>
    : std::disjunction<listens_to_validation<R>...> {};

template <class C, class S, class P>
Strategy make_strategy(
    std::string name, std::string summary, bool adaptive,
    std::function<void(typename TrainController<C, S, P>::Options&, const Plan&,
                       const frost::BlockMap&)>
        configure) {
  using Ctl = TrainController<C, S, P>;
  Strategy s;
  s.name = name;
  s.summary = std::move(summary);
  s.adaptive = adaptive;
  s.validation_needed = listens_to_validation<P>::value;
  s.start = [name, configure](const RunContext& ctx) -> std::unique_ptr<Run> {
    return std::make_unique<StrategyRun<C, S, P>>(ctx, name, configure);
  };
  s.options = [] { return Ctl::describe(typename Ctl::Options{}); };
  return s;
}

/// Whether `key` is an option of strategy `s`.
inline bool has_option(const Strategy& s, const std::string& key) {
  for (const auto& kv : s.options())
    if (kv.first == key && key.find('.') != std::string::npos) return true;
  return false;
}

namespace strategy_defaults {
// Early stopping (full-early-stop and the freezing strategies): the run ends
// after this many epochs without a lower validation loss.
inline constexpr std::int64_t kPatience = 2;
// For the default CPU run (tiny ViT, 5000 images, 6 epochs = 240 steps). The
// head starts from zero, so the body's gradients first *grow*: DyF's relative
// threshold is taken against each block's peak window, not its first.
inline constexpr std::int64_t kDyfWindow = 20;       // steps per DyF evaluation
inline constexpr double kDyfRelative = 0.5;          // freeze at half the block's peak mean |grad|
// AutoFreeze's interval: one evaluation per 40-step epoch, chosen on validation
// (docs/main-job.md, "Settings chosen on validation"; was 20).
inline constexpr std::int64_t kAutoFreezeInterval = 40;
inline constexpr std::int64_t kNumClasses = 10;  // the head's outputs (labels 5..9 used)
// SimFreeze's R and C (the paper gives none), chosen on validation: see
// token_similarity.hpp (C was 10).
inline constexpr std::int64_t kSimRecord = 20;
inline constexpr std::int64_t kSimCompare = 20;
// The backbone arms (issue 32): LP-FT's probe share of the budget and the
// static prefixes' shares of the blocks, the grids of scripts/choose-backbone.sh;
// kLpftSplit is the split "lpft" runs with, chosen there on validation
// (--pretrain-data all body, 2 seeds: lpft-75 95.85, -50 95.65, -25 95.45,
// full 95.25; the rule takes the cheapest within 0.5 points of full).
inline constexpr double kLpftSplit = 0.75;
inline constexpr double kLpftSplits[] = {0.25, 0.5, 0.75};
inline constexpr double kStaticShares[] = {0.25, 0.5, 0.75};
}  // namespace strategy_defaults

namespace detail {

/// Full fine-tuning (with its timing control and early stopping) and the
/// plans fixed in advance: static freezing and FreezeOut's four variants.
inline void add_planned_strategies(std::vector<Strategy>& v) {
  namespace c = frost::criteria;
  namespace sch = frost::schedules;
  namespace st = frost::stop;
  v.push_back(make_strategy<c::Never, sch::Cosine, st::Never>(
      "full", "full fine-tuning: every block trains for the whole budget (cosine lr)", false,
      nullptr));
  v.back().on_frontier = true;
  // The timing control: full's work again. Its speed-up must read 1.00x
  // (within the measurement's +-5 %); a table where it does not is noise.
  v.push_back(make_strategy<c::Never, sch::Cosine, st::Never>(
      "full-repeat",
      "full fine-tuning again, the timing control: the same work as full, so its speed-up "
      "must read 1.00x",
      false, nullptr));
  v.back().timing_control = true;
  v.push_back(make_strategy<c::Never, sch::Cosine, st::Patience>(
      "full-early-stop",
      "full fine-tuning with early stopping: ends when the validation loss has not improved "
      "for stop.patience epochs",
      false, [](auto& o, const Plan&, const frost::BlockMap&) {
        o.stop().patience(strategy_defaults::kPatience);
      }));
  v.push_back(make_strategy<c::AtSteps, sch::Cosine, st::Never>(
      "static", "static freezing: the stem and the first half of the blocks frozen from step 0",
      false, [](auto& o, const Plan&, const frost::BlockMap& b) {
        o.criterion() = c::AtStepsOptions::prefix(static_cast<std::int64_t>(b.size() + 1) / 2, 0);
      }));
  auto freezeout = [&](auto spacing, auto scaling, const std::string& nm, const std::string& what) {
    using Sp = decltype(spacing);
    using Sc = decltype(scaling);
    v.push_back(make_strategy<c::Never, sch::FreezeOut<Sp, Sc>, st::Never>(
        nm, "FreezeOut (" + what + "): per-block cosine annealing, block i frozen at t_i", false,
        nullptr));
  };
  freezeout(frost::Linear{}, frost::Scaled{}, "freezeout-linear-scaled", "linear spacing, scaled lr");
  freezeout(frost::Linear{}, frost::Unscaled{}, "freezeout-linear-unscaled",
            "linear spacing, unscaled lr");
  freezeout(frost::Cubic{}, frost::Scaled{}, "freezeout-cubic-scaled", "cubic spacing, scaled lr");
  freezeout(frost::Cubic{}, frost::Unscaled{}, "freezeout-cubic-unscaled",
            "cubic spacing, unscaled lr");
}

/// The adaptive strategies that read the gradients: DyF and AutoFreeze.
inline void add_gradient_strategies(std::vector<Strategy>& v) {
  namespace c = frost::criteria;
  namespace sch = frost::schedules;
  namespace st = frost::stop;
  // DyF as its paper ran it: the threshold test per window, in order, and once
  // every block is frozen one more epoch with only the head (its Table 2).
  // The adaptive strategies compose their criterion with early stopping, as
  // full-early-stop does: they end when the validation loss stops falling,
  // and DyF also once every block is frozen and the head had one more epoch.
  //
  // Each also runs as "<name>-nostop", the same criterion without early
  // stopping (DyF keeps its own end, AllFrozen): the two rows together say
  // how much of a speed-up comes from freezing and how much from stopping.
  auto dyf = [](auto& o) {
    o.criterion()
        .window(strategy_defaults::kDyfWindow)
        .relative(strategy_defaults::kDyfRelative)
        .reference(c::Reference::peak);
    o.controller().in_order(true);
  };
  v.push_back(make_strategy<c::GradientThreshold, sch::Cosine, st::AnyOf<st::AllFrozen, st::Patience>>(
      "dyf",
      "DyF: a block freezes when its mean |grad| over a window falls below the threshold; "
      "ends once every block is frozen and the head trained one more epoch, or on early stopping",
      true, [dyf](auto& o, const Plan&, const frost::BlockMap&) {
        dyf(o);
        std::get<0>(o.stop()).extra_epochs(1);
        std::get<1>(o.stop()).patience(strategy_defaults::kPatience);
      }));
  v.push_back(make_strategy<c::GradientThreshold, sch::Cosine, st::AllFrozen>(
      "dyf-nostop", "DyF without early stopping: ends only once every block is frozen and the "
      "head trained one more epoch",
      true, [dyf](auto& o, const Plan&, const frost::BlockMap&) {
        dyf(o);
        o.stop().extra_epochs(1);
      }));
  // Fine-tuning a pre-trained model: AutoFreeze's own behaviour, decisions from
  // the first evaluation (min_epochs 0); the library's default waits an epoch,
  // which suits training from scratch (docs/from-scratch.md).
  auto autofreeze = [](auto& o) {
    o.criterion().interval(strategy_defaults::kAutoFreezeInterval).min_epochs(0);
  };
  v.push_back(make_strategy<c::GradientNormChange, sch::Cosine, st::Patience>(
      "autofreeze",
      "AutoFreeze: every interval, leading blocks whose accumulated-gradient-norm change is below "
      "the median freeze (the last block keeps training); early stopping",
      true, [autofreeze](auto& o, const Plan&, const frost::BlockMap&) {
        autofreeze(o);
        o.stop().patience(strategy_defaults::kPatience);
      }));
  v.push_back(make_strategy<c::GradientNormChange, sch::Cosine, st::Never>(
      "autofreeze-nostop", "AutoFreeze without early stopping: the whole budget",
      true, [autofreeze](auto& o, const Plan&, const frost::BlockMap&) { autofreeze(o); }));
}

/// SmartFRZ's predictor file as its criterion will load it (--set
/// criterion.predictor, else the shipped one: $FROST_PREDICTOR or the build's)
/// is refused when it learned from histories that include this very job
/// (frost-predictor's --allow-main-job, recorded in the file): its smartfrz
/// rows would be scored on the task it was trained on.
inline void check_predictor_file(const std::vector<std::pair<std::string, std::string>>& sets) {
  std::string path;
  for (const auto& kv : sets)
    if (kv.first == "criterion.predictor") path = kv.second;
  if (path.empty()) path = frost::predictor::default_path();
  if (path.empty()) return;  // none known: the criterion's own error says so
  if (!frost::predictor::read_info(path).includes_main_job) return;
  throw UsageError("SmartFRZ's predictor " + path + " was trained on histories that include "
                   "frost-train's main job (frost-predictor --allow-main-job, recorded in the "
                   "file): its smartfrz rows would be scored on the task it learned. Give "
                   "--set criterion.predictor=<a file from frost-predictor train without "
                   "--allow-main-job>, or regenerate the shipped one (docs/predictor.md)");
}

/// The adaptive strategies that read features or weights: SimFreeze (class
/// tokens) and SmartFRZ (the learned predictor).
inline void add_representation_strategies(std::vector<Strategy>& v) {
  namespace c = frost::criteria;
  namespace sch = frost::schedules;
  namespace st = frost::stop;
  auto simfreeze = [](auto& o) {
    o.criterion()
        .num_classes(strategy_defaults::kNumClasses)
        .record_steps(strategy_defaults::kSimRecord)
        .compare_steps(strategy_defaults::kSimCompare);
  };
  v.push_back(make_strategy<c::TokenSimilarity, sch::Cosine, st::Patience>(
      "simfreeze",
      "SimFreeze (ATSF): blocks in order from the input side; each records its class tokens' "
      "class means, goes on trial, and is frozen when their similarity stops rising; early "
      "stopping",
      true, [simfreeze](auto& o, const Plan&, const frost::BlockMap&) {
        simfreeze(o);
        o.stop().patience(strategy_defaults::kPatience);
      }));
  v.push_back(make_strategy<c::TokenSimilarity, sch::Cosine, st::Never>(
      "simfreeze-nostop", "SimFreeze without early stopping: the whole budget",
      true, [simfreeze](auto& o, const Plan&, const frost::BlockMap&) { simfreeze(o); }));
  // SmartFRZ: the shipped attention predictor (data/smartfrz-predictor.pt,
  // trained offline by frost-predictor on CKA-labelled histories of other
  // models and data, never the main job's: docs/predictor.md) judges every
  // training block at each epoch's end, in any order.
  v.push_back(make_strategy<c::AttentionPredictor, sch::Cosine, st::Patience>(
      "smartfrz",
      "SmartFRZ: at each epoch's end an attention predictor trained offline on CKA-labelled "
      "weight histories judges every training block from its last 30 records; early stopping",
      true, [](auto& o, const Plan&, const frost::BlockMap&) {
        o.stop().patience(strategy_defaults::kPatience);
      }));
  v.push_back(make_strategy<c::AttentionPredictor, sch::Cosine, st::Never>(
      "smartfrz-nostop", "SmartFRZ without early stopping: the whole budget", true, nullptr));
  for (auto* s : {&v[v.size() - 2], &v.back()}) {
    s->check = check_predictor_file;
    s->start = [start = s->start](const RunContext& ctx) {
      check_predictor_file(ctx.sets);
      return start(ctx);
    };
  }
}

/// The strategies that use a strong backbone the way practitioners do (issue
/// 32; docs/where-frost-pays.md): the whole body or a prefix frozen from step 0,
/// its output served by the activation cache after the first epoch, so that
/// each later epoch costs only the suffix and the head.
///
///  probe       linear probe: every block frozen from step 0, only the head
///              (the ViT's final norm and classifier, the CNN's head
///              convolution and classifier) trains, on cached features;
///  lpft[-P]    LP-FT (Kumar et al. 2022): the probe for P % of the budget,
///              then full fine-tuning of every block from the probe's head.
///              One run: at the split the trainer calls ctl.unfreeze on every
///              block (frozen -> training with fresh optimizer state, as a
///              new fine-tuning optimizer would start), the head keeps its
///              trained weights and state, the cosine schedule runs on (the
///              body starts at the schedule's lower rate, as LP-FT's second
///              phase uses a smaller rate than the probe), and the cache
///              drops its entries. The alternative, a probe run whose head
///              starts a separate full run, is the same computation with the
///              bill split over two runs; one run keeps one measured time;
///  static-P    the first round(P % of the blocks) frozen from step 0.
///
/// Settings (P, the rate) are chosen on validation: scripts/choose-backbone.sh.
inline void add_backbone_strategies(std::vector<Strategy>& v) {
  namespace c = frost::criteria;
  namespace sch = frost::schedules;
  namespace st = frost::stop;
  using Probe = StrategyRun<c::AtSteps, sch::Cosine, st::Never>;
  auto all_blocks = [](auto& o, const Plan&, const frost::BlockMap& b) {
    o.criterion() = c::AtStepsOptions::prefix(static_cast<std::int64_t>(b.size()), 0);
  };
  v.push_back(make_strategy<c::AtSteps, sch::Cosine, st::Never>(
      "probe",
      "linear probe: every block frozen from step 0, only the head trains (on the activation "
      "cache's features after the first epoch)",
      false, all_blocks));
  auto lpft = [&](const std::string& nm, double split) {
    v.push_back(make_strategy<c::AtSteps, sch::Cosine, st::Never>(
        nm,
        "LP-FT (Kumar et al. 2022): the probe for the first " +
            std::to_string(static_cast<int>(std::lround(split * 100))) +
            " % of the budget, then every block unfrozen and fine-tuned from the probe's head",
        false, all_blocks));
    v.back().start = [nm, split, all_blocks](const RunContext& ctx) -> std::unique_ptr<Run> {
      auto r = std::make_unique<Probe>(ctx, nm, all_blocks);
      r->unfreeze_all_at(static_cast<std::int64_t>(
          std::llround(split * static_cast<double>(r->planned_steps()))));
      return r;
    };
  };
  lpft("lpft", strategy_defaults::kLpftSplit);
  for (const double p : strategy_defaults::kLpftSplits)
    lpft("lpft-" + std::to_string(static_cast<int>(std::lround(p * 100))), p);
  for (const double p : strategy_defaults::kStaticShares) {
    const int pct = static_cast<int>(std::lround(p * 100));
    v.push_back(make_strategy<c::AtSteps, sch::Cosine, st::Never>(
        "static-" + std::to_string(pct),
        "static freezing: the first " + std::to_string(pct) +
            " % of the blocks (rounded, the stem first) frozen from step 0, with the cache",
        false, [p](auto& o, const Plan&, const frost::BlockMap& b) {
          o.criterion() = c::AtStepsOptions::prefix(
              std::max<std::int64_t>(1, std::llround(p * static_cast<double>(b.size()))), 0);
        }));
  }
  // The stem alone (issue 33): a transformer's embeddings, frozen as a common
  // practice (MiniLM-L6: half the parameters, almost none of the forward work).
  v.push_back(make_strategy<c::AtSteps, sch::Cosine, st::Never>(
      "static-stem",
      "static freezing of the stem only (block 0: a transformer's embeddings) from step 0, "
      "with the cache",
      false, [](auto& o, const Plan&, const frost::BlockMap&) {
        o.criterion() = c::AtStepsOptions::prefix(1, 0);
      }));
}

}  // namespace detail

/// All strategies, in table order.
inline std::vector<Strategy> all_strategies() {
  std::vector<Strategy> v;
  detail::add_planned_strategies(v);
  detail::add_gradient_strategies(v);
  detail::add_representation_strategies(v);
  detail::add_backbone_strategies(v);
  return v;
}

/// The strategies of a bare `--compare` (and of no arguments at all); the
/// frontier's shorter full fine-tuning runs come with them (--frontier).
/// The timing control (full-repeat) comes last in every turn, as far from
/// full as the cycle allows, so that it sees the machine's drift across a
/// whole round as well as its bursts.
inline std::vector<std::string> default_comparison() {
  return {"full",     "full-early-stop", "freezeout-cubic-scaled", "autofreeze", "dyf",
          "simfreeze", "smartfrz",       "full-repeat"};
}

/// The study's set (README): the default comparison, every adaptive
/// strategy without early stopping, and the backbone arms (issue 32): the
/// probe, LP-FT at its chosen split, and the two static depths whose measured
/// share of the work can reach the speed-up target (docs/where-frost-pays.md).
inline std::vector<std::string> study_comparison() {
  auto v = default_comparison();
  v.pop_back();  // full-repeat, the control, stays last
  for (const char* n : {"autofreeze-nostop", "dyf-nostop", "simfreeze-nostop", "smartfrz-nostop",
                        "probe", "lpft", "static-50", "static-75"})
    v.push_back(n);
  v.push_back("full-repeat");
  return v;
}

/// "full-<E>ep": full fine-tuning with a budget of `epochs` (its cosine
/// schedule annealed to its own end), a point of the frontier.
inline Strategy frontier_strategy(double epochs) {
  namespace c = frost::criteria;
  namespace sch = frost::schedules;
  namespace st = frost::stop;
  std::ostringstream e;
  e << epochs;
  Strategy s = make_strategy<c::Never, sch::Cosine, st::Never>(
      "full-" + e.str() + "ep",
      "full fine-tuning for " + e.str() + " epochs, annealed to its own end: a point of the frontier",
      false, nullptr);
  s.on_frontier = true;
  auto start = s.start;
  s.start = [start, epochs](const RunContext& ctx) {
    RunContext c = ctx;
    c.cfg.epochs = epochs;
    return start(c);
  };
  return s;
}

inline const Strategy* find_strategy(const std::vector<Strategy>& all, const std::string& name) {
  for (const auto& s : all)
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace frost_train
