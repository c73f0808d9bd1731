#pragma once
// examples/train/cli.hpp — frost-train's command line: CLI11 (Debian
// libcli11-dev) declares every flag, bound to a TrainConfig, and writes --help.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cli_checks.hpp"

namespace frost_train {

/// Raised for a bad command line; main prints it with a pointer to --help.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TrainConfig {
  // data and output
  std::string data_dir;             // --data (default: $FROST_FASHION_MNIST or the Debian path)
  std::string out_dir;              // --out (default: out/<timestamp>)
  std::string cache_dir = "out/cache";  // --cache: pretrained checkpoints, reused across runs
  // what to run
  std::vector<std::string> strategies;  // --strategy a,b / --compare [a,b]
  bool compare = false;
  std::vector<std::pair<std::string, std::string>> sets;  // --set key=value (repeatable)
  std::string resume_dir;           // --resume DIR
  bool list = false;                // --list
  bool help = false;
  // model and device
  std::string model = "tiny";       // tiny | small | effnet-lite0 (examples/train/model.hpp)
  std::string weights;              // --weights: effnet-lite0's pretrained weights (safetensors)
  std::int64_t resolution = 64;     // --resolution: effnet-lite0's input size (images upsampled)
  std::string pooling = "mean";     // --pooling: minilm-l6's head reads mean or cls (docs/minilm.md)
  std::int64_t text_classes = 0;    // minilm-l6: the text task's classes, set when it is loaded
  double text_tokens = 0;           // minilm-l6: mean tokens of a training gloss, set likewise
  std::string device = "cpu";       // cpu | cuda | cuda:N
  int threads = 0;                  // 0: 1 on the CPU, all cores with a GPU
  int jobs = 0;                     // --jobs N: strategy turns trained at once (CPU; 0: the
                                    // cores / threads, each turn pinned to its own core)
  // training
  std::uint64_t seed = 0;
  std::int64_t seeds = 1;           // --seeds N: the runs of --seed seed, seed+1, ..., seed+N-1
  // --frontier: full fine-tuning at these shorter budgets (epochs), each with
  // its own cosine schedule to its own end, next to every comparison (two in
  // the default run, which must stay within 8 minutes on 2 cores with the
  // build and the pre-training: 5 min 36 s measured, docs/main-job.md)
  std::vector<double> frontier = {4, 8};
  std::vector<std::string> report;  // --report DIR,...: summarise finished runs' results.csv
  bool study = false;               // --study: the study's strategies, 5 seeds and the
                                    // frontier 3,4,6,8 unless --seeds / --frontier
  int matched_frontier = -1;        // --matched-frontier auto|on|off: each strategy's matched full
                                    // fine-tuning run (-1: on for --study and the default set)
  std::int64_t batch_size = 128;
  double lr = 1e-3;                 // fine-tuning base learning rate (AdamW)
  double weight_decay = 0.05;
  double epochs = 12.0;             // fine-tuning epochs (full fine-tuning plateaus on validation)
  std::int64_t warmup_steps = 10;
  std::int64_t train_limit = 5000;  // fine-tuning images (classes 5-9), -1 = all
  std::int64_t test_limit = -1;      // test images (classes 5-9), -1 = all
  std::int64_t val_limit = 1000;     // validation images (classes 5-9 train split, held out)
  // the activation cache of the frozen prefix
  bool cache = true;                 // --activation-cache on|off
  double cache_mb = 512;             // --activation-cache-mb: memory per strategy
  std::int64_t interleave = 0;       // --interleave N: steps per strategy per turn (0: an epoch)
  // pre-training (classes 0-4)
  double pretrain_epochs = 4.0;     // a body whose early blocks hold general features (8: no better)
  std::int64_t pretrain_limit = -1;
  double pretrain_lr = 2e-3;
  std::string pretrain_data = "0-4";  // --pretrain-data 0-4|all (all: also unused classes 5-9 images)
  // bookkeeping
  std::int64_t checkpoint_every = 50;   // steps; 0 = only at the end
  std::int64_t eval_every = 0;          // steps; 0 = only at the end
  int progress = -1;                    // -1 auto (terminal), 0 off, 1 on
  bool quiet = false;
  std::int64_t max_steps = -1;          // stop after this many steps this session (testing --resume)
  // fault injection, for tests only (no flag): the first attempt of each of
  // these steps gets a NaN loss and gradient, on rank nan_rank (-1: every rank)
  std::vector<std::int64_t> nan_at;
  int nan_rank = -1;
  std::vector<std::string> argv;        // the arguments as given (saved for --resume)
  std::vector<std::string> given;       // the options given (long names), for --resume's check
  // data-parallel (torchrun's environment unless given): -1 / empty = from the environment
  int rank = -1;                        // --rank (RANK)
  int local_rank = -1;                  // --local-rank (LOCAL_RANK): this rank's GPU
  int world_size = -1;                  // --world-size (WORLD_SIZE; 1 = one process)
  std::string master_addr;              // --master-addr (MASTER_ADDR, 127.0.0.1)
  int master_port = -1;                 // --master-port (MASTER_PORT, 29500)
  double dist_timeout = -1;             // --dist-timeout seconds (FROST_DIST_TIMEOUT, 300)
};

namespace detail {

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

/// The whole of `text` as a decimal T.
template <class T>
bool read_number(const std::string& text, T& v) {
  std::istringstream is(text);
  is >> v;
  char rest = 0;
  return !is.fail() && !(is >> rest);
}

/// A CLI11 transform accepting a decimal number of type T (finite for floating
/// point). Integers are rewritten in plain decimal: CLI11's own conversion
/// would read 010 as octal and 0x10 as hexadecimal.
template <class T>
CLI::Validator number() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        T v{};
        if (!read_number(s, v)) return "expects a number, got '" + s + "'";
        // istream reads "-5" into an unsigned type as its wrapped value
        if constexpr (std::is_unsigned_v<T>)
          if (s.find('-') != std::string::npos) return "must be 0 or more, got '" + s + "'";
        if constexpr (std::is_floating_point_v<T>) {
          if (!std::isfinite(v)) return "expects a finite number, got '" + s + "'";
        } else {
          s = std::to_string(v);
        }
        return {};
      },
      "");
}

// Checks on the (already validated) number: examples/common/cli_checks.hpp.
using frost_examples::cli::bound;
using frost_examples::cli::non_negative;
using frost_examples::cli::positive;
/// An image count: positive, or -1 for all.
inline CLI::Validator count_or_all() {
  return bound([](double v) { return v > 0 || v == -1; }, "positive, or -1 for all");
}

inline void append_names(std::vector<std::string>& to, const std::vector<std::string>& names) {
  for (const auto& n : names)
    if (!n.empty()) to.push_back(n);
}

/// What to run: the strategies, --compare, --list, --set, --help.
inline void add_run_flags(CLI::App& app, TrainConfig& cfg) {
  app.option_defaults()->group("What to run");
  // --strategy and --compare append, in command-line order (trigger_on_parse).
  app.add_option_function<std::vector<std::string>>(
         "--strategy",
         [&cfg](const std::vector<std::string>& v) { append_names(cfg.strategies, v); },
         "run these strategies (see --list)")
      ->type_name("NAME[,NAME]")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)  // every name of "a,b"
      ->allow_extra_args(false)
      ->trigger_on_parse();
  app.add_option_function<std::vector<std::string>>(
         "--compare",
         [&cfg](const std::vector<std::string>& v) {
           cfg.compare = true;
           append_names(cfg.strategies, v);
         },
         "run several on the same data and seed and print a table\n"
         "(the default set when NAMES is omitted)")
      ->type_name("[NAME[,NAME]]")
      ->expected(0, 1)
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)  // every name of "a,b"
      ->allow_extra_args(false)
      ->trigger_on_parse();
  app.add_flag("--list", cfg.list, "list the strategies compiled in, with their options");
  app.add_option_function<std::string>(
         "--set",
         [&cfg](const std::string& kv) {
           const auto eq = kv.find('=');
           cfg.sets.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
         },
         "set a policy option, e.g. --set criterion.threshold=0.002,\n"
         "--set schedule.t0=0.6; prefix with NAME: to target one strategy\n"
         "(--set dyf:criterion.relative=0.3); repeatable")
      ->type_name("KEY=VALUE")
      ->check(CLI::Validator(
          [](std::string& kv) -> std::string {
            const auto eq = kv.find('=');
            if (eq == std::string::npos || eq == 0)
              return "expects KEY=VALUE (e.g. criterion.threshold=0.002), got '" + kv + "'";
            return {};
          },
          ""))
      ->trigger_on_parse();
  app.add_flag("-h,--help", cfg.help, "print this help and exit");
}

/// Data and output: --data, --out, --cache, --resume.
inline void add_output_flags(CLI::App& app, TrainConfig& cfg) {
  app.option_defaults()->group("Data and output");
  app.add_option("--data", cfg.data_dir,
                 "Fashion-MNIST IDX files (default $FROST_FASHION_MNIST, else\n"
                 "/usr/share/datasets/fashion-mnist: Debian package dataset-fashion-mnist)")
      ->type_name("DIR");
  app.add_option("--out", cfg.out_dir, "output directory (default out/<date-time>)")
      ->type_name("DIR");
  app.add_option("--cache", cfg.cache_dir, "where pre-trained checkpoints are kept")
      ->type_name("DIR");
  app.add_option("--resume", cfg.resume_dir,
                 "continue a killed run in DIR with the settings it was started with\n"
                 "(DIR/args.txt; only --max-steps, --threads, --progress, --quiet and the\n"
                 "data-parallel flags may be given again)")
      ->type_name("DIR");
}

/// Model and device: --model, --device, --threads, --jobs.
inline void add_model_flags(CLI::App& app, TrainConfig& cfg) {
  app.option_defaults()->group("Model and device");
  app.add_option("--model", cfg.model,
                 "tiny: 6 blocks width 64 (CPU); small: ViT-S, 12 blocks width 384;\n"
                 "effnet-lite0: ImageNet-pretrained EfficientNet-Lite0, no pre-training\n"
                 "(weights: bash scripts/effnet-weights.sh; docs/effnet.md);\n"
                 "minilm-l6: all-MiniLM-L6-v2 (BERT, 6 layers) on WordNet glosses\n"
                 "(weights: bash scripts/minilm-weights.sh)")
      ->type_name("tiny|small|effnet-lite0|minilm-l6")
      ->check(CLI::Validator(
          [](std::string& m) -> std::string {
            if (m != "tiny" && m != "small" && m != "effnet-lite0" && m != "minilm-l6")
              return "is tiny or small (the ViT), effnet-lite0 or minilm-l6, got '" + m + "'";
            return {};
          },
          ""));
  app.add_option("--weights", cfg.weights,
                 "effnet-lite0's pretrained weights, safetensors (default\n"
                 "${FROST_CACHE_DIR:-~/.cache/frost}/effnet-lite0/efficientnet-lite0.safetensors)")
      ->type_name("FILE");
  app.add_option("--resolution", cfg.resolution,
                 "effnet-lite0: images upsampled to NxN, three channels (32 or more)")
      ->type_name("N")
      ->transform(number<std::int64_t>())
      ->check(bound([](double v) { return v >= 32; }, "32 or more"));
  app.add_option("--pooling", cfg.pooling,
                 "minilm-l6: the feature the new head reads, the mean of the real\n"
                 "tokens' final states or the final [CLS] state (minilm-l6's comparison\n"
                 "uses cls unless given: chosen on validation, docs/minilm.md)")
      ->type_name("mean|cls")
      ->check(CLI::IsMember({"mean", "cls"}));
  app.add_option("--device", cfg.device, "training device")->type_name("cpu|cuda[:N]");
  app.add_option("--threads", cfg.threads,
                 "CPU threads (0: one when training on the CPU, all cores with a GPU)")
      ->type_name("N")
      ->transform(number<int>())
      ->check(non_negative("0 (automatic) or more"));
  app.add_option("--jobs", cfg.jobs,
                 "CPU: strategy turns trained at once, each on a core of its own\n"
                 "(0: the cores / --threads; 1: one at a time). The results are the\n"
                 "same for every N, only the times differ")
      ->type_name("N")
      ->transform(number<int>())
      ->check(non_negative("0 (automatic) or more"));
}

/// Training, what is compared: --seed, --seeds, --frontier, --report, --study.
inline void add_seed_flags(CLI::App& app, TrainConfig& cfg) {
  app.option_defaults()->group("Training");
  app.add_option("--seed", cfg.seed, "seed for initialisation and data order (0 or more)")
      ->type_name("N")
      ->transform(number<std::uint64_t>());
  app.add_option("--seeds", cfg.seeds,
                 "run N seeds (--seed, --seed+1, ...: data order and pre-trained body)\n"
                 "and report means, paired differences with 95 % intervals")
      ->type_name("N")
      ->transform(number<std::int64_t>())
      ->check(positive());
  app.add_option_function<std::string>(
         "--frontier",
         [&cfg](const std::string& list) {
           cfg.frontier.clear();
           if (list == "none") return;
           for (const auto& e : split(list, ',')) {
             double v = 0;
             read_number(e, v);
             cfg.frontier.push_back(v);
           }
         },
         "full fine-tuning at these shorter budgets (epochs) in every comparison,\n"
         "each annealed to its own end; none: no frontier")
      ->type_name("E[,E]|none")
      ->default_str("4,8")
      ->check(CLI::Validator(
          [](std::string& list) -> std::string {
            if (list == "none") return {};
            const auto items = split(list, ',');
            if (items.empty()) return "expects epochs like 3,4,6,8 or none, got '" + list + "'";
            for (const auto& e : items) {
              double v = 0;
              if (!read_number(e, v) || !std::isfinite(v) || !(v > 0))
                return "expects positive epochs like 3,4,6,8 or none, got '" + e + "'";
            }
            return {};
          },
          ""))
      ->trigger_on_parse();
  app.add_option("--report", cfg.report,
                 "summarise finished runs over their seeds without training: each DIR\n"
                 "a frost-train output directory (its results.csv); the summary goes\n"
                 "to --out (e.g. seeds run in parallel processes or machines)")
      ->type_name("DIR[,DIR]")
      ->delimiter(',');
  app.add_option_function<std::string>(
         "--matched-frontier",
         [&cfg](const std::string& v) {
           if (v != "auto" && v != "on" && v != "off")
             throw CLI::ValidationError("--matched-frontier", "is auto, on or off, got '" + v + "'");
           cfg.matched_frontier = v == "auto" ? -1 : v == "on" ? 1 : 0;
         },
         "after each seed's runs, full fine-tuning annealed to each strategy's\n"
         "own cost (its measured time / full's step time, in steps), paired\n"
         "(auto, the default: on for --study and the default comparison)")
      ->type_name("auto|on|off");
  app.add_flag("--study", cfg.study,
               "the study: the default strategies, each adaptive one also without\n"
               "early stopping, over 5 seeds and with the frontier 3,4,6,8 (unless\n"
               "--seeds or --frontier are given)");
}

/// Training, the budget: epochs, batch, learning rate, data sizes, the cache, --interleave.
inline void add_budget_flags(CLI::App& app, TrainConfig& cfg) {
  app.add_option("--epochs", cfg.epochs, "fine-tuning epochs (> 0)")
      ->type_name("X")
      ->transform(number<double>())
      ->check(positive());
  app.add_option("--batch-size", cfg.batch_size, "batch size (> 0)")
      ->type_name("N")
      ->transform(number<std::int64_t>())
      ->check(positive());
  app.add_option("--lr", cfg.lr, "fine-tuning learning rate, AdamW (> 0)")
      ->type_name("X")
      ->transform(number<double>())
      ->check(positive());
  app.add_option("--weight-decay", cfg.weight_decay, "AdamW weight decay (0 or more)")
      ->type_name("X")
      ->transform(number<double>())
      ->check(non_negative());
  app.add_option("--warmup", cfg.warmup_steps, "warm-up steps (0 or more)")
      ->type_name("N")
      ->transform(number<std::int64_t>())
      ->check(non_negative());
  app.add_option("--train-limit", cfg.train_limit,
                 "fine-tuning images from classes 5-9 (-1: all 30000)")
      ->type_name("N")
      ->transform(number<std::int64_t>())
      ->check(count_or_all());
  app.add_option("--test-limit", cfg.test_limit, "test images from classes 5-9 (-1: all 5000)")
      ->type_name("N")
      ->transform(number<std::int64_t>())
      ->check(count_or_all());
  app.add_option("--val-limit", cfg.val_limit,
                 "validation images: held-out training images of classes 5-9 (> 0)")
      ->type_name("N")
      ->transform(number<std::int64_t>())
      ->check(positive());
  app.add_option_function<std::string>(
         "--activation-cache",
         [&cfg](const std::string& v) {
           if (v != "on" && v != "off")
             throw CLI::ValidationError("--activation-cache", "is on or off, got '" + v + "'");
           cfg.cache = v == "on";
         },
         "activation cache of the frozen prefix (default on)")
      ->type_name("on|off");
  app.add_option("--activation-cache-mb", cfg.cache_mb, "activation-cache memory per strategy, MiB (0 or more)")
      ->type_name("X")
      ->transform(number<double>())
      ->check(non_negative());
  app.add_option("--interleave", cfg.interleave,
                 "steps each strategy runs in its turn (0: an epoch); strategies take turns so "
                 "that they meet the same machine")
      ->type_name("N")
      ->transform(number<std::int64_t>())
      ->check(non_negative());
}

/// Pre-training (classes 0-4).
inline void add_pretrain_flags(CLI::App& app, TrainConfig& cfg) {
  app.option_defaults()->group("Pre-training (classes 0-4)");
  app.add_option("--pretrain-epochs", cfg.pretrain_epochs,
                 "pre-training epochs on classes 0-4 (0 or more)")
      ->type_name("X")
      ->transform(number<double>())
      ->check(non_negative());
  app.add_option("--pretrain-limit", cfg.pretrain_limit,
                 "pre-training images from classes 0-4 (-1: all 30000)")
      ->type_name("N")
      ->transform(number<std::int64_t>())
      ->check(count_or_all());
  app.add_option("--pretrain-lr", cfg.pretrain_lr, "pre-training learning rate, AdamW (> 0)")
      ->type_name("X")
      ->transform(number<double>())
      ->check(positive());
  app.add_option("--pretrain-data", cfg.pretrain_data,
                 "0-4: classes 0-4 only (the task's classes never seen); all: also\n"
                 "the classes 5-9 training images that neither fine-tuning nor\n"
                 "validation uses (a body that has seen the task's classes)")
      ->type_name("0-4|all")
      ->check(CLI::IsMember({"0-4", "all"}));
}

/// Bookkeeping: checkpoints, evaluation, --max-steps, progress.
inline void add_bookkeeping_flags(CLI::App& app, TrainConfig& cfg) {
  app.option_defaults()->group("Bookkeeping");
  app.add_option("--checkpoint-every", cfg.checkpoint_every,
                 "write the checkpoint every N steps (0: at the end)")
      ->type_name("N")
      ->transform(number<std::int64_t>())
      ->check(non_negative());
  app.add_option("--eval-every", cfg.eval_every,
                 "test accuracy every N steps, logged (0: at the end only)")
      ->type_name("N")
      ->transform(number<std::int64_t>())
      ->check(non_negative());
  app.add_option("--max-steps", cfg.max_steps,
                 "end this session after N steps (a checkpoint remains; --resume)\n"
                 "(-1: no limit)")
      ->type_name("N")
      ->transform(number<std::int64_t>());
  // --progress / --no-progress: the last one given counts (trigger_on_parse).
  app.add_flag_callback("--progress", [&cfg] { cfg.progress = 1; },
                        "progress bar (default: when stderr is a terminal)")
      ->trigger_on_parse();
  app.add_flag_callback("--no-progress", [&cfg] { cfg.progress = 0; }, "no progress bar")
      ->trigger_on_parse();
  app.add_flag("--quiet", cfg.quiet, "only the final table");
}

/// Data-parallel: the ranks (torchrun's environment unless given).
inline void add_parallel_flags(CLI::App& app, TrainConfig& cfg) {
  app.option_defaults()->group("Data-parallel (default: torchrun's environment variables)");
  app.add_option("--world-size", cfg.world_size,
                 "ranks in the run (WORLD_SIZE; 1: a single process)")
      ->type_name("N")
      ->transform(number<int>())
      ->check(positive());
  app.add_option("--rank", cfg.rank, "this process' rank, 0..world-size-1 (RANK)")
      ->type_name("R")
      ->transform(number<int>())
      ->check(non_negative());
  app.add_option("--local-rank", cfg.local_rank,
                 "this rank's GPU on its machine (LOCAL_RANK; modulo the GPU count)")
      ->type_name("L")
      ->transform(number<int>())
      ->check(non_negative());
  app.add_option("--master-addr", cfg.master_addr, "rank 0's host (MASTER_ADDR, 127.0.0.1)")
      ->type_name("HOST");
  app.add_option("--master-port", cfg.master_port, "rank 0's rendezvous port (MASTER_PORT, 29500)")
      ->type_name("PORT")
      ->transform(number<int>())
      ->check(positive());
  app.add_option("--dist-timeout", cfg.dist_timeout,
                 "seconds a rank waits for another before failing, naming it "
                 "(FROST_DIST_TIMEOUT, 300)")
      ->type_name("S")
      ->transform(number<double>())
      ->check(positive());
}

}  // namespace detail

/// Declares every flag of frost-train on `app`, bound to the fields of `cfg`
/// (whose current values are the defaults --help shows).
inline void add_flags(CLI::App& app, TrainConfig& cfg) {
  app.description(
      "frost-train: fine-tune a small vision transformer on Fashion-MNIST with frost.\n\n"
      "Pre-trains a ViT on classes 0-4 (cached, reused on later runs), then fine-tunes it on\n"
      "classes 5-9 with one or several freezing strategies and reports accuracy, wall time,\n"
      "speed-up over full fine-tuning and when each block froze.\n\n"
      "With no arguments: --compare with the default strategies (about 4 minutes on 2 CPU "
      "cores, pre-training included).\n");
  app.set_help_flag();  // -h/--help is a plain flag below: run_app prints the help, exit 0
  app.get_formatter()->column_width(34);
  // A repeated flag: the last one counts. Defaults are shown in --help.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.option_defaults()->always_capture_default();
  detail::add_run_flags(app, cfg);
  detail::add_output_flags(app, cfg);
  detail::add_model_flags(app, cfg);
  detail::add_seed_flags(app, cfg);
  detail::add_budget_flags(app, cfg);
  detail::add_pretrain_flags(app, cfg);
  detail::add_bookkeeping_flags(app, cfg);
  detail::add_parallel_flags(app, cfg);
}

/// The --help text: every flag with its default.
inline std::string usage() {
  TrainConfig defaults;
  CLI::App app("", "frost-train");
  add_flags(app, defaults);
  return app.help();
}

/// Parses argv[1..] into `cfg` (defaults already in place); a bad command line
/// throws UsageError naming the flag. -h/--help only sets cfg.help.
inline void parse_args(const std::vector<std::string>& args, TrainConfig& cfg) {
  cfg.argv = args;
  CLI::App app("", "frost-train");
  add_flags(app, cfg);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them reversed
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what());
  }
  cfg.given.clear();
  for (const CLI::Option* o : app.get_options())
    if (o->count() > 0) cfg.given.push_back(o->get_name());
  // The same strategy twice would write into one output directory.
  for (std::size_t i = 0; i < cfg.strategies.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (cfg.strategies[i] == cfg.strategies[j])
        throw UsageError("strategy '" + cfg.strategies[i] + "' is named twice; each writes " +
                         "<out>/<strategy>/ (for a timing control of full fine-tuning, use " +
                         "full-repeat)");
}

}  // namespace frost_train
