#pragma once
// examples/train/cli.hpp — frost-train's command line: a small hand-written
// flag parser (no dependencies) filling a TrainConfig.
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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
  std::string model = "tiny";       // tiny | small
  std::string device = "cpu";       // cpu | cuda | cuda:N
  int threads = 0;                  // 0: all cores
  // training
  std::uint64_t seed = 0;
  std::int64_t batch_size = 128;
  double lr = 1e-3;                 // fine-tuning base learning rate (AdamW)
  double weight_decay = 0.05;
  double epochs = 6.0;              // fine-tuning epochs (full-fine-tuning budget)
  std::int64_t warmup_steps = 10;
  std::int64_t train_limit = 5000;  // fine-tuning images (classes 5-9), -1 = all
  std::int64_t test_limit = -1;      // test images (classes 5-9), -1 = all
  // pre-training (classes 0-4)
  double pretrain_epochs = 1.0;
  std::int64_t pretrain_limit = -1;
  double pretrain_lr = 2e-3;
  // bookkeeping
  std::int64_t checkpoint_every = 50;   // steps; 0 = only at the end
  std::int64_t eval_every = 0;          // steps; 0 = only at the end
  int progress = -1;                    // -1 auto (terminal), 0 off, 1 on
  bool quiet = false;
  std::int64_t max_steps = -1;          // stop after this many steps this session (testing --resume)
  std::vector<std::string> argv;        // the arguments as given (saved for --resume)
};

inline std::string usage() {
  return R"(frost-train: fine-tune a small vision transformer on Fashion-MNIST with frost.

Pre-trains a ViT on classes 0-4 (cached, reused on later runs), then fine-tunes it on
classes 5-9 with one or several freezing strategies and reports accuracy, wall time,
speed-up over full fine-tuning and when each block froze.

With no arguments: --compare with the default strategies (about 5 minutes on 2 CPU cores).

Usage: frost-train [options]
  --strategy NAME[,NAME]  run these strategies (see --list)
  --compare [NAMES]       run several on the same data and seed and print a table
                          (default set when NAMES is omitted)
  --list                  list the strategies compiled in, with their options
  --set KEY=VALUE         set a policy option, e.g. --set criterion.threshold=0.002,
                          --set schedule.t0=0.6; prefix with NAME: to target one strategy
                          (--set dyf:criterion.relative=0.3); repeatable
  --data DIR              Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist,
                          Debian package dataset-fashion-mnist; or $FROST_FASHION_MNIST)
  --out DIR               output directory (default out/<date-time>)
  --cache DIR             where pre-trained checkpoints are kept (default out/cache)
  --resume DIR            continue a killed run in DIR (same arguments as then)
  --model tiny|small      tiny: 6 blocks width 64 (CPU); small: ViT-S, 12 blocks width 384
  --device cpu|cuda[:N]   training device (default cpu)
  --threads N             CPU threads (default: all cores)
  --seed N                seed for initialisation and data order (default 0)
  --epochs X              fine-tuning epochs (default 6)
  --batch-size N          (default 128)
  --lr X                  fine-tuning learning rate, AdamW (default 1e-3)
  --weight-decay X        (default 0.05)
  --warmup N              warm-up steps (default 10)
  --train-limit N         fine-tuning images from classes 5-9 (default 5000; -1: all 30000)
  --test-limit N          test images from classes 5-9 (default -1: all 5000)
  --pretrain-epochs X     pre-training epochs on classes 0-4 (default 1)
  --pretrain-limit N      pre-training images from classes 0-4 (default -1: all 30000)
  --pretrain-lr X         (default 2e-3)
  --checkpoint-every N    write the checkpoint every N steps (default 50; 0: at the end)
  --eval-every N          test accuracy every N steps, logged (default 0: at the end only)
  --max-steps N           end this session after N steps (a checkpoint remains; --resume)
  --progress / --no-progress   progress bar (default: when stderr is a terminal)
  --quiet                 only the final table
  -h, --help              this text
)";
}

namespace detail {
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}
template <class T>
T parse_number(const std::string& flag, const std::string& text) {
  std::istringstream is(text);
  T v{};
  is >> v;
  char rest = 0;
  if (is.fail() || (is >> rest))
    throw UsageError(flag + " expects a number, got '" + text + "'");
  return v;
}
}  // namespace detail

/// Parses argv[1..] into `cfg` (defaults already in place).
inline void parse_args(const std::vector<std::string>& args, TrainConfig& cfg) {
  cfg.argv = args;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string inline_value;
    bool has_inline = false;
    if (a.rfind("--", 0) == 0) {
      const auto eq = a.find('=');
      if (eq != std::string::npos && a != "--set") {
        // --lr=0.1 style (but not "--set" whose value itself has '=')
        inline_value = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_inline = true;
      }
    }
    auto value = [&]() -> std::string {
      if (has_inline) return inline_value;
      if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
      return args[++i];
    };
    auto next_is_value = [&]() {
      return has_inline || (i + 1 < args.size() && args[i + 1].rfind("-", 0) != 0);
    };
    if (a == "-h" || a == "--help") cfg.help = true;
    else if (a == "--list") cfg.list = true;
    else if (a == "--strategy") {
      for (auto& s : detail::split(value(), ',')) cfg.strategies.push_back(s);
    } else if (a == "--compare") {
      cfg.compare = true;
      if (next_is_value())
        for (auto& s : detail::split(value(), ',')) cfg.strategies.push_back(s);
    } else if (a == "--set") {
      const std::string kv = value();
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        throw UsageError("--set expects KEY=VALUE (e.g. criterion.threshold=0.002), got '" + kv + "'");
      cfg.sets.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (a == "--data") cfg.data_dir = value();
    else if (a == "--out") cfg.out_dir = value();
    else if (a == "--cache") cfg.cache_dir = value();
    else if (a == "--resume") cfg.resume_dir = value();
    else if (a == "--model") {
      cfg.model = value();
      if (cfg.model != "tiny" && cfg.model != "small")
        throw UsageError("--model is tiny or small, got '" + cfg.model + "'");
    } else if (a == "--device") cfg.device = value();
    else if (a == "--threads") cfg.threads = detail::parse_number<int>(a, value());
    else if (a == "--seed") cfg.seed = detail::parse_number<std::uint64_t>(a, value());
    else if (a == "--epochs") cfg.epochs = detail::parse_number<double>(a, value());
    else if (a == "--batch-size") cfg.batch_size = detail::parse_number<std::int64_t>(a, value());
    else if (a == "--lr") cfg.lr = detail::parse_number<double>(a, value());
    else if (a == "--weight-decay") cfg.weight_decay = detail::parse_number<double>(a, value());
    else if (a == "--warmup") cfg.warmup_steps = detail::parse_number<std::int64_t>(a, value());
    else if (a == "--train-limit") cfg.train_limit = detail::parse_number<std::int64_t>(a, value());
    else if (a == "--test-limit") cfg.test_limit = detail::parse_number<std::int64_t>(a, value());
    else if (a == "--pretrain-epochs") cfg.pretrain_epochs = detail::parse_number<double>(a, value());
    else if (a == "--pretrain-limit") cfg.pretrain_limit = detail::parse_number<std::int64_t>(a, value());
    else if (a == "--pretrain-lr") cfg.pretrain_lr = detail::parse_number<double>(a, value());
    else if (a == "--checkpoint-every") cfg.checkpoint_every = detail::parse_number<std::int64_t>(a, value());
    else if (a == "--eval-every") cfg.eval_every = detail::parse_number<std::int64_t>(a, value());
    else if (a == "--max-steps") cfg.max_steps = detail::parse_number<std::int64_t>(a, value());
    else if (a == "--progress") cfg.progress = 1;
    else if (a == "--no-progress") cfg.progress = 0;
    else if (a == "--quiet") cfg.quiet = true;
    else throw UsageError("unknown argument '" + args[i] + "'");
  }
  if (cfg.batch_size <= 0) throw UsageError("--batch-size must be positive");
  if (!(cfg.epochs > 0)) throw UsageError("--epochs must be positive");
  if (!(cfg.pretrain_epochs >= 0)) throw UsageError("--pretrain-epochs must be 0 or more");
  if (!(cfg.lr > 0)) throw UsageError("--lr must be positive");
  if (cfg.threads < 0) throw UsageError("--threads must be 0 (all cores) or more");
  if (cfg.warmup_steps < 0) throw UsageError("--warmup must be 0 or more");
}

}  // namespace frost_train
