#pragma once
// examples/predictor/predictor_cli.hpp — frost-predictor's command line: what
// `generate` and `train` are given, the architecture names, and the check that
// keeps frost-train's main job out of the generated histories
// (docs/predictor.md). Header-only so that the tests parse command lines and
// run the check without generating anything.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <climits>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/serialize/input-archive.h>

#include "cli.hpp"  // examples/train: frost_train::TrainConfig, the main job's schedule
#include "frost/predictor/freeze_predictor.hpp"  // the predictor file's main-job flag
#include "cli_checks.hpp"
#include "idx.hpp"
#include "vit.hpp"  // ViTOptions::tiny(), the main job's model

namespace frost_predictor {

namespace fx = frost_examples;

/// The classes frost-train fine-tunes, validates and tests on (its main job:
/// examples/train/data.hpp, load_task_data). The histories must not see them.
inline const std::vector<std::int64_t>& main_job_classes() {
  static const std::vector<std::int64_t> c{5, 6, 7, 8, 9};
  return c;
}

/// An architecture name: "mlp", "cnn", or "vit<depth>[w<width>][p<patch>]"
/// (a ViT as frost-train builds it, ViTOptions::tiny() with that depth, width
/// and patch; width and patch default to tiny()'s: "vit6" is frost-train's model).
struct Arch {
  std::string name, kind;  // kind: vit, mlp, cnn
  std::int64_t depth = 0, width = 0, patch = 0;  // ViTs only

  fx::ViTOptions vit_options() const {
    return fx::ViTOptions::tiny().depth(depth).dim(width).patch_size(patch).num_classes(10);
  }
  /// frost-train's main-job model: ViTOptions::tiny()'s depth, width and patch.
  bool is_main_job_model() const {
    const auto t = fx::ViTOptions::tiny();
    return kind == "vit" && depth == t.depth() && width == t.dim() && patch == t.patch_size();
  }
  /// The main-job model or a near copy of it (main_job_tolerance): a ViT with
  /// its patch (the same tokens), a depth within one block and a width within
  /// a factor 1.25. Its weight histories would teach the predictor the main
  /// job's own dynamics as surely as the model itself.
  bool is_near_main_job_model() const;
};

/// How near to frost-train's main job a setting may come before generate
/// refuses it: exact equality let a near copy through (vit6w60, lr 1.1e-3
/// for 12 epochs), so each number is compared within a tolerance. The
/// shipped defaults keep well clear of every one: depths 2, 4, 8 (the main
/// job's 6 +- 2 or more), widths 96, 48, 32 (64 x 1.5, x 0.75, x 0.5), learning
/// rates 2e-3 and 5e-4 (a factor 2), 7 and 14 epochs at those rates.
struct MainJobTolerance {
  std::int64_t depth = 1;   ///< blocks either side of the main job's depth
  double width = 1.25;      ///< factor either side of its width
  double lr = 1.25;         ///< factor either side of its learning rate
  double epochs = 0.25;     ///< share either side of its epochs (12: 9 to 15)
};
inline const MainJobTolerance& main_job_tolerance() {
  static const MainJobTolerance t;
  return t;
}

/// a / b within a factor f either side.
inline bool within_factor(double a, double b, double f) {
  return a > 0 && b > 0 && a <= b * f * (1 + 1e-12) && b <= a * f * (1 + 1e-12);
}

inline bool Arch::is_near_main_job_model() const {
  const auto t = fx::ViTOptions::tiny();
  const auto& tol = main_job_tolerance();
  return kind == "vit" && patch == t.patch_size() && std::abs(depth - t.depth()) <= tol.depth &&
         within_factor(static_cast<double>(width), static_cast<double>(t.dim()), tol.width);
}

/// Parses an architecture name; std::invalid_argument says what is wrong.
inline Arch parse_arch(const std::string& name) {
  Arch a;
  a.name = name;
  if (name == "mlp" || name == "cnn") {
    a.kind = name;
    return a;
  }
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("architecture '" + name + "': " + why +
                                 " (mlp, cnn, or vit<depth>[w<width>][p<patch>], e.g. vit3w96)");
  };
  if (name.compare(0, 3, "vit") != 0) throw bad("unknown");
  const auto t = fx::ViTOptions::tiny();
  a.kind = "vit";
  a.width = t.dim();
  a.patch = t.patch_size();
  std::size_t i = 3;
  auto number = [&](const char* what) {
    const auto start = i;
    while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) ++i;
    if (i == start || i - start > 6) throw bad(std::string("expected a ") + what);
    return std::stoll(name.substr(start, i - start));
  };
  a.depth = number("depth");
  if (i < name.size() && name[i] == 'w') ++i, a.width = number("width after 'w'");
  if (i < name.size() && name[i] == 'p') ++i, a.patch = number("patch after 'p'");
  if (i != name.size()) throw bad("unexpected '" + name.substr(i) + "'");
  if (a.depth < 1) throw bad("depth must be 1 or more");
  try {
    a.vit_options().validate();
  } catch (const std::invalid_argument& e) {
    throw bad(e.what());
  }
  return a;
}

// ---------------------------------------------------------------------------
// generate
// ---------------------------------------------------------------------------
struct GenConfig {
  std::string data_dir = fx::default_fashion_mnist_dir();  // $FROST_FASHION_MNIST, as frost-train
  std::string out = "out/predictor-data";
  // ViTs of other depths and widths than frost-train's (depth 6, width 64),
  // the MLP and the CNN.
  std::vector<std::string> archs{"vit2w96", "vit4w48", "vit8w32", "mlp", "cnn"};
  std::int64_t seeds = 2;           // even seeds: from scratch; odd: the fine-tuning pattern
  std::int64_t epochs = 7;          // E: the recorded run; the reference trains 2E (not 12)
  std::int64_t pretrain_epochs = 2;
  std::int64_t record_every = 2;
  std::int64_t images = 5000;       // training images per task (and for pre-training)
  std::int64_t probe = 256;         // held-out images after them: the CKA probe
  std::int64_t batch = 128;
  std::int64_t subset = 1024;
  std::vector<double> lrs{2e-3, 5e-4};  // seed s trains at lrs[s % size]
  double pretrain_lr = 2e-3;
  double weight_decay = 0.05;
  std::int64_t warmup = 10;
  // Fashion-MNIST *train* images of classes 0-4 only: the main job's
  // fine-tuning classes (5-9) are never seen.
  std::vector<std::int64_t> classes{0, 1, 2, 3, 4};  // from-scratch runs
  std::vector<std::int64_t> pretrain_classes{0, 1};  // fine-tuning runs: pre-train on these,
  std::vector<std::int64_t> finetune_classes{2, 3, 4};  // then train on these
  bool allow_main_job = false;
  int threads = 1;  // one thread: the same bits on every run (and the shipped file's)

  double lr_of(std::int64_t seed) const {
    return lrs[static_cast<std::size_t>(seed) % lrs.size()];
  }
};

inline std::string join(const std::vector<std::int64_t>& v) {
  std::string s;
  for (auto x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}
inline std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}
inline std::string join(const std::vector<double>& v) {
  std::ostringstream s;
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? "," : "") << v[i];
  return s.str();
}
inline std::string number(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

/// Why `cfg` would put frost-train's main job, or a near copy of it, into the
/// histories: its model (ViTOptions::tiny(): depth 6, width 64, patch 7, or
/// within main_job_tolerance() of it), its data (classes 5-9: any one of
/// them) or its schedule (TrainConfig's lr for TrainConfig's epochs, each
/// within the tolerance), one sentence each; empty when none of them is in.
inline std::vector<std::string> main_job_refusals(const GenConfig& cfg) {
  std::vector<std::string> why;
  const auto tiny = fx::ViTOptions::tiny();
  const frost_train::TrainConfig main_job;
  const auto& tol = main_job_tolerance();
  for (const auto& name : cfg.archs) {
    Arch a;
    try {
      a = parse_arch(name);
    } catch (const std::invalid_argument&) {
      continue;  // a usage error of its own
    }
    if (a.is_near_main_job_model())
      why.push_back("architecture " + name + " is " +
                    (a.is_main_job_model() ? "frost-train's main-job model" : "a near copy of frost-train's main-job model") +
                    " (ViT depth " + std::to_string(tiny.depth()) + ", width " + std::to_string(tiny.dim()) +
                    ", patch " + std::to_string(tiny.patch_size()) + ": ViTOptions::tiny(); refused within " +
                    std::to_string(tol.depth) + " block of its depth and a factor " + number(tol.width) +
                    " of its width, with its patch); use another depth or width, e.g. vit3w96");
  }
  const auto& held = main_job_classes();
  auto check_classes = [&](const char* option, const std::vector<std::int64_t>& cs) {
    std::vector<std::int64_t> bad;
    for (auto c : cs)
      if (std::find(held.begin(), held.end(), c) != held.end()) bad.push_back(c);
    if (!bad.empty())
      why.push_back(std::string(option) + " has class" + (bad.size() > 1 ? "es " : " ") + join(bad) +
                    ": frost-train's main job fine-tunes, validates and tests on classes " +
                    join(held) + "; use classes 0-4 only");
  };
  check_classes("--classes", cfg.classes);
  if (cfg.seeds > 1) {  // the fine-tuning pattern runs only with odd seeds
    check_classes("--pretrain-classes", cfg.pretrain_classes);
    check_classes("--finetune-classes", cfg.finetune_classes);
  }
  const auto near_epochs = [&](double e) { return std::abs(e - main_job.epochs) <= tol.epochs * main_job.epochs; };
  for (std::int64_t s = 0; s < std::min<std::int64_t>(cfg.seeds, static_cast<std::int64_t>(cfg.lrs.size())); ++s) {
    const double lr = cfg.lr_of(s);
    if (!within_factor(lr, main_job.lr, tol.lr)) continue;
    for (const auto& [what, e] : {std::pair<const char*, std::int64_t>{"the recorded run", cfg.epochs},
                                  {"the reference run, 2 x --epochs", 2 * cfg.epochs}})
      if (near_epochs(static_cast<double>(e)))
        why.push_back("--lrs " + number(lr) + " with " + std::to_string(e) + " epochs (" + what +
                      ") is frost-train's main-job schedule (--lr " + number(main_job.lr) +
                      " --epochs " + number(main_job.epochs) + ") or within a factor " +
                      number(tol.lr) + " of its lr and " + number(100 * tol.epochs) +
                      " % of its epochs; use another learning rate or --epochs");
  }
  return why;
}

/// Whether generate's histories include the main job: let through by
/// --allow-main-job, and written into every history file ("includes_main_job")
/// so that train can refuse them.
inline bool includes_main_job(const GenConfig& cfg) {
  return cfg.allow_main_job && !main_job_refusals(cfg).empty();
}

/// frost-train's main job in words, from ViTOptions::tiny() and TrainConfig's defaults.
inline std::string main_job_summary() {
  const auto t = fx::ViTOptions::tiny();
  const frost_train::TrainConfig m;
  return "ViT depth " + std::to_string(t.depth()) + " width " + std::to_string(t.dim()) + " patch " +
         std::to_string(t.patch_size()) + ", classes " + join(main_job_classes()) + ", lr " +
         number(m.lr) + " x " + number(m.epochs) + " epochs";
}

/// The generation setup in one line: written into every history file and,
/// through `train`, into the predictor's description.
inline std::string describe(const GenConfig& cfg) {
  std::ostringstream s;
  s << "frost-predictor generate: archs " << join(cfg.archs) << "; " << cfg.seeds
    << " seed(s): even from scratch on Fashion-MNIST train classes " << join(cfg.classes)
    << ", odd pre-trained " << cfg.pretrain_epochs << " epochs on classes "
    << join(cfg.pretrain_classes) << " (lr " << cfg.pretrain_lr << ") then trained on classes "
    << join(cfg.finetune_classes) << "; " << cfg.images << " images per task, batch " << cfg.batch
    << ", AdamW wd " << cfg.weight_decay << ", cosine with " << cfg.warmup
    << " warm-up steps, lr per seed " << join(cfg.lrs) << "; recorded " << cfg.epochs
    << " epochs, reference " << 2 * cfg.epochs << ", record every " << cfg.record_every
    << " steps, CKA on " << cfg.probe << " held-out images; "
    << (includes_main_job(cfg) ? std::string(frost::predictor::kMainJobMark) + " (--allow-main-job)"
            : "frost-train's main job (" + main_job_summary() + ") excluded");
  return s.str();
}

/// The usage errors of `generate` beyond CLI11's own checks, then the main-job
/// check unless --allow-main-job: the message, empty when none.
inline std::string generate_usage_error(const GenConfig& cfg) {
  if (cfg.archs.empty()) return "--archs is empty; give some of mlp, cnn, vit<depth>[w<width>][p<patch>]";
  for (const auto& a : cfg.archs) {
    try {
      parse_arch(a);
    } catch (const std::invalid_argument& e) {
      return std::string("--archs: ") + e.what();
    }
  }
  if (cfg.lrs.empty()) return "--lrs is empty";
  for (double lr : cfg.lrs)
    if (!(lr > 0)) return "--lrs: learning rates must be positive, got " + number(lr);
  auto check = [](const char* option, const std::vector<std::int64_t>& cs) -> std::string {
    if (cs.empty()) return std::string(option) + " is empty";
    for (std::size_t i = 0; i < cs.size(); ++i) {
      if (cs[i] < 0 || cs[i] > 9)
        return std::string(option) + ": Fashion-MNIST classes are 0-9, got " + std::to_string(cs[i]);
      if (std::find(cs.begin(), cs.begin() + static_cast<std::ptrdiff_t>(i), cs[i]) != cs.begin() + static_cast<std::ptrdiff_t>(i))
        return std::string(option) + ": class " + std::to_string(cs[i]) + " is given twice";
    }
    return {};
  };
  for (const auto& [o, cs] : {std::pair<const char*, const std::vector<std::int64_t>*>{"--classes", &cfg.classes},
                              {"--pretrain-classes", &cfg.pretrain_classes},
                              {"--finetune-classes", &cfg.finetune_classes}})
    if (auto m = check(o, *cs); !m.empty()) return m;
  for (auto c : cfg.finetune_classes)
    if (std::find(cfg.pretrain_classes.begin(), cfg.pretrain_classes.end(), c) != cfg.pretrain_classes.end())
      return "--pretrain-classes and --finetune-classes share class " + std::to_string(c) +
             "; the fine-tuning pattern trains on classes it has not seen";
  if (cfg.allow_main_job) return {};
  const auto why = main_job_refusals(cfg);
  if (why.empty()) return {};
  std::string m =
      "refused: the histories would include frost-train's main job, whose smartfrz row would then "
      "be scored in-sample (docs/predictor.md):";
  for (const auto& w : why) m += "\n  " + w;
  m += "\ngive --allow-main-job to generate it anyway (experiments only, not the shipped predictor)";
  return m;
}

// ---------------------------------------------------------------------------
// train
// ---------------------------------------------------------------------------
struct TrainConfig {
  std::string data = "out/predictor-data";
  std::string out = "data/smartfrz-predictor.pt";
  double epsilon = 0.02;
  std::int64_t epochs = 30;
  std::int64_t window = 30;
  bool holdout = true;
  std::string holdout_by = "family";  // "family" (the ViTs together) or "model"
  std::string sweep = "0.01,0.02,0.05";
  int threads = 1;
  std::int64_t seed = 0;
  /// Train on histories that include the main job (an experiment): the file
  /// then records it, and frost-train refuses it.
  bool allow_main_job = false;
};

/// A history file, as far as the main-job check goes.
struct HistoryOrigin {
  std::string path;
  bool includes_main_job = false;
};

/// Whether a history file's run included frost-train's main job: the flag
/// generate writes, or for a file from before the flag, the INCLUDES mark its
/// description (generated_from) carries.
inline HistoryOrigin history_origin(const std::string& path, torch::serialize::InputArchive& ar) {
  HistoryOrigin h{path, false};
  c10::IValue v;
  if (ar.try_read("includes_main_job", v))
    h.includes_main_job = v.toBool();
  else if (ar.try_read("generated_from", v))
    h.includes_main_job = v.toStringRef().find(frost::predictor::kMainJobMark) != std::string::npos;
  return h;
}

/// `p` with its directory resolved (realpath: the file itself may not exist
/// yet; not std::filesystem, whose copy in pip's libtorch.so crashes), `p`
/// itself when the directory does not exist.
inline std::string resolved_path(const std::string& p) {
  const auto slash = p.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : p.substr(0, slash);
  char buf[PATH_MAX];
  if (::realpath(dir.c_str(), buf) == nullptr) return p;
  return std::string(buf) + "/" + (slash == std::string::npos ? p : p.substr(slash + 1));
}

/// Whether two paths name the same file (either may not exist yet).
inline bool same_path(const std::string& a, const std::string& b) {
  return resolved_path(a) == resolved_path(b);
}

/// Why `train` refuses these histories, empty when it does not. A predictor
/// that learned from the main job's histories would score frost-train's
/// smartfrz rows on the task it was trained on; frost-train refuses such a
/// file, so train refuses to make one unless told (--allow-main-job, for an
/// experiment), and never over the shipped predictor.
inline std::string train_refusal(const std::vector<HistoryOrigin>& histories, const TrainConfig& cfg) {
  std::vector<std::string> in;
  for (const auto& h : histories)
    if (h.includes_main_job) in.push_back(h.path);
  if (in.empty()) return {};
  std::string list;
  for (std::size_t i = 0; i < in.size() && i < 3; ++i) list += (i ? ", " : "") + in[i];
  if (in.size() > 3) list += " and " + std::to_string(in.size() - 3) + " more";
  const std::string what = "refused: " + std::to_string(in.size()) + " of the histories in " + cfg.data +
                           " include frost-train's main job (generated with --allow-main-job: " + list + ")";
  if (!cfg.allow_main_job)
    return what + "; a predictor trained on them would score the main job's smartfrz rows in-sample "
                  "and frost-train refuses it. Regenerate without --allow-main-job "
                  "(docs/predictor.md), or give train --allow-main-job and another --out for an "
                  "experiment";
  const std::string shipped = frost::predictor::default_path();
  if (same_path(cfg.out, TrainConfig().out) || (!shipped.empty() && same_path(cfg.out, shipped)))
    return what + "; --allow-main-job makes an experiment's predictor, not the shipped one: give "
                  "another --out than " + cfg.out;
  return {};
}

struct Command {
  bool generate = false;  // else train
  GenConfig gen;
  TrainConfig train;
};

/// Parses frost-predictor's command line into `cmd`. Returns -1 to go on, or
/// the exit code having written the help (0) or the usage error (2, with
/// CLI11's "Run with --help" line, as frost-train) to `out` / `err`.
inline int parse_command_line(int argc, const char* const* argv, Command& cmd,
                              std::ostream& out = std::cout, std::ostream& err = std::cerr) {
  const CLI::Validator positive = fx::cli::positive(), non_negative = fx::cli::non_negative();
  CLI::App app{"frost-predictor: SmartFRZ's CKA-labelled predictor data and training"};
  app.require_subcommand(1);
  GenConfig& g = cmd.gen;
  auto* gen = app.add_subcommand(
      "generate",
      "record CKA-labelled weight histories (never of frost-train's main job: its model, "
      "classes 5-9 or its lr and epochs are refused without --allow-main-job)");
  gen->add_option("--data-dir", g.data_dir, "Fashion-MNIST directory")->capture_default_str();
  gen->add_option("--out", g.out, "output directory")->capture_default_str();
  gen->add_option("--archs", g.archs, "architectures: mlp, cnn, vit<depth>[w<width>][p<patch>]")
      ->delimiter(',')->capture_default_str();
  gen->add_option("--seeds", g.seeds, "runs per architecture (odd seeds are fine-tuned)")
      ->check(positive)->capture_default_str();
  gen->add_option("--epochs", g.epochs, "epochs of the recorded run (the reference trains twice as long)")
      ->check(positive)->capture_default_str();
  gen->add_option("--lrs", g.lrs, "AdamW learning rates, seed s trains at the (s mod n)-th")
      ->delimiter(',')->capture_default_str();
  gen->add_option("--pretrain-epochs", g.pretrain_epochs, "pre-training epochs (odd seeds)")
      ->check(non_negative)->capture_default_str();
  gen->add_option("--pretrain-lr", g.pretrain_lr, "pre-training learning rate (odd seeds)")
      ->check(positive)->capture_default_str();
  gen->add_option("--classes", g.classes, "classes of the from-scratch runs (even seeds)")
      ->delimiter(',')->capture_default_str();
  gen->add_option("--pretrain-classes", g.pretrain_classes, "classes the odd seeds pre-train on")
      ->delimiter(',')->capture_default_str();
  gen->add_option("--finetune-classes", g.finetune_classes, "classes the odd seeds then train on")
      ->delimiter(',')->capture_default_str();
  gen->add_option("--record-every", g.record_every, "steps between records")
      ->check(positive)->capture_default_str();
  gen->add_option("--images", g.images, "training images per task")
      ->check(positive)->capture_default_str();
  gen->add_option("--threads", g.threads, "intra-op threads")
      ->check(positive)->capture_default_str();
  gen->add_flag("--allow-main-job", g.allow_main_job,
                "generate even with frost-train's main-job model, data or schedule (experiments)");
  TrainConfig& t = cmd.train;
  auto* tr = app.add_subcommand("train", "train the predictor (held-out scores, then the shipped file)");
  tr->add_option("--data", t.data, "directory written by generate")->capture_default_str();
  tr->add_option("--out", t.out, "predictor file to write")->capture_default_str();
  tr->add_option("--epsilon", t.epsilon, "labelling rule: CKA within epsilon of its final value")
      ->check(fx::cli::bound([](double e) { return e > 0 && e < 1; }, "in (0, 1)"))
      ->capture_default_str();
  tr->add_option("--sweep", t.sweep, "epsilons whose label statistics are shown")->capture_default_str();
  tr->add_option("--epochs", t.epochs, "training epochs")
      ->check(positive)->capture_default_str();
  tr->add_option("--window", t.window, "records per window (T)")
      ->check(positive)->capture_default_str();
  tr->add_option("--holdout", t.holdout, "score each architecture held out first")->capture_default_str();
  tr->add_option("--threads", t.threads, "intra-op threads")
      ->check(positive)->capture_default_str();
  tr->add_option("--holdout-by", t.holdout_by,
                 "hold out a whole family (the ViTs together) or one model at a time")
      ->check(CLI::IsMember({"family", "model"}))
      ->capture_default_str();
  tr->add_option("--seed", t.seed, "initialisation and order seed")->capture_default_str();
  tr->add_flag("--allow-main-job", t.allow_main_job,
               "train even on histories that include frost-train's main job (an experiment: the "
               "file records it and frost-train refuses it; not over the shipped predictor)");
  try {
    app.parse(argc, argv);
    cmd.generate = static_cast<bool>(*gen);
    if (cmd.generate)
      if (const auto m = generate_usage_error(g); !m.empty()) throw CLI::ValidationError("generate", m);
  } catch (const CLI::ParseError& e) {  // --help: 0; a bad command line: 2, as frost-train
    const int rc = app.exit(e, out, err);
    return rc == 0 ? 0 : 2;
  }
  return -1;
}

}  // namespace frost_predictor
