// frost-schedule: prints a schedule's per-block learning-rate multipliers and
// freezing as CSV, to check a configuration (or plot it) before training.
//
//   frost-schedule --schedule freezeout --spacing cubic --t0 0.8 --blocks 13
//                  --steps 1000 --warmup 100 > schedule.csv
//
// Output: header `step,block,lr_scale,frozen`, then one row per step (0..N-1,
// warm-up included) and block (0..B-1, input side first; with --head also
// block -1 for the head). Only frost's schedule headers are needed: no LibTorch.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "frost/error.hpp"
#include "frost/schedules.hpp"

namespace {

namespace fs = frost::schedules;

const char* const kUsage =
    "usage: frost-schedule [options]\n"
    "Prints CSV `step,block,lr_scale,frozen` for every step and block of a schedule.\n"
    "\n"
    "  --schedule S      freezeout (default), constant or cosine\n"
    "  --spacing S       freezeout: linear or cubic (default cubic: t_i = u_i^3)\n"
    "  --scaling S       freezeout: scaled (default, s_i = 1/t_i) or unscaled (s_i = 1)\n"
    "  --t0 X            freezeout: first block's linear freezing time in (0, 1]; 0: the spacing's\n"
    "                    default (0.5 linear, 0.8 cubic)\n"
    "  --lr-lr P         freezeout: layer-wise reduction, s_i = t_i^-P (replaces --scaling)\n"
    "  --sr-lr P         freezeout: stage-wise reduction, times (1/(S-s+1))^P; needs --stages\n"
    "  --stages LIST     stage of every block, input side first, e.g. 1,1,2,2,3\n"
    "  --min-scale X     cosine: multiplier the cosine ends at (default 0)\n"
    "  --blocks B        number of blocks (default 13)\n"
    "  --steps N         total training steps, warm-up included (default 1000)\n"
    "  --warmup W        linear warm-up steps (default 0)\n"
    "  --head            also print the head's rows (block -1)\n"
    "  --help            this text\n";

struct UsageError {
  std::string what;
};

[[noreturn]] void usage_error(const std::string& what) { throw UsageError{what}; }

std::int64_t parse_int(const std::string& flag, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || errno != 0 || *end != '\0')
    usage_error(flag + " expects an integer, got '" + text + "'");
  return static_cast<std::int64_t>(v);
}

double parse_double(const std::string& flag, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || errno != 0 || *end != '\0')
    usage_error(flag + " expects a number, got '" + text + "'");
  return v;
}

std::vector<int> parse_list(const std::string& flag, const std::string& text) {
  std::vector<int> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = text.find(',', pos);
    const std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    out.push_back(static_cast<int>(parse_int(flag, item)));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

struct Args {
  std::string schedule = "freezeout", spacing = "cubic", scaling = "scaled";
  double t0 = 0.0, lr_lr = 1.0, sr_lr = 0.0, min_scale = 0.0;
  std::int64_t blocks = 13, steps = 1000, warmup = 0;
  std::vector<int> stages;
  bool head = false, help = false;
  std::set<std::string> given;  // flags that appeared on the command line
};

Args parse(int argc, char** argv) {
  Args a;
  static const std::set<std::string> with_value = {
      "--schedule", "--spacing", "--scaling", "--t0",     "--lr-lr",  "--sr-lr",
      "--stages",   "--min-scale", "--blocks", "--steps", "--warmup"};
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i], value;
    const std::size_t eq = flag.find('=');
    bool inline_value = false;
    if (flag.rfind("--", 0) == 0 && eq != std::string::npos) {  // --t0=0.5
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      inline_value = true;
    }
    if (flag == "--help" || flag == "-h") {
      a.help = true;
      continue;
    }
    if (flag == "--head") {
      if (inline_value) usage_error("--head takes no value");
      a.head = true;
      a.given.insert(flag);
      continue;
    }
    if (!with_value.count(flag)) usage_error("unknown flag '" + flag + "'");
    if (!inline_value) {
      if (i + 1 >= argc) usage_error(flag + " needs a value");
      value = argv[++i];
    }
    a.given.insert(flag);
    if (flag == "--schedule") a.schedule = value;
    else if (flag == "--spacing") a.spacing = value;
    else if (flag == "--scaling") a.scaling = value;
    else if (flag == "--t0") a.t0 = parse_double(flag, value);
    else if (flag == "--lr-lr") a.lr_lr = parse_double(flag, value);
    else if (flag == "--sr-lr") a.sr_lr = parse_double(flag, value);
    else if (flag == "--min-scale") a.min_scale = parse_double(flag, value);
    else if (flag == "--stages") a.stages = parse_list(flag, value);
    else if (flag == "--blocks") a.blocks = parse_int(flag, value);
    else if (flag == "--steps") a.steps = parse_int(flag, value);
    else if (flag == "--warmup") a.warmup = parse_int(flag, value);
  }
  if (a.help) return a;

  if (a.schedule != "freezeout" && a.schedule != "constant" && a.schedule != "cosine")
    usage_error("--schedule must be freezeout, constant or cosine, got '" + a.schedule + "'");
  if (a.spacing != "linear" && a.spacing != "cubic")
    usage_error("--spacing must be linear or cubic, got '" + a.spacing + "'");
  if (a.scaling != "scaled" && a.scaling != "unscaled")
    usage_error("--scaling must be scaled or unscaled, got '" + a.scaling + "'");
  if (a.schedule != "freezeout") {
    for (const char* f : {"--spacing", "--scaling", "--t0", "--lr-lr", "--sr-lr", "--stages"})
      if (a.given.count(f))
        usage_error(std::string(f) + " only applies to --schedule freezeout");
  }
  if (a.schedule != "cosine" && a.given.count("--min-scale"))
    usage_error("--min-scale only applies to --schedule cosine");
  if (a.given.count("--lr-lr") && a.given.count("--scaling"))
    usage_error("--lr-lr replaces --scaling (p = 1 is scaled, p = 0 unscaled); give one of them");
  if (a.given.count("--sr-lr") && !a.given.count("--stages"))
    usage_error("--sr-lr needs --stages (the stage of every block, e.g. 1,1,2,2)");
  if (a.given.count("--stages") && !a.given.count("--sr-lr"))
    usage_error("--stages is only used by --sr-lr");
  if (a.steps > 100000000 || a.blocks > 100000 || a.steps * std::max<std::int64_t>(a.blocks, 1) > 1000000000)
    usage_error("--steps times --blocks is too large to print");
  return a;
}

template <class S>
void print(S& schedule, const Args& a) {
  frost::ScheduleSetup ss;
  ss.num_blocks = a.blocks;
  ss.total_steps = a.steps;
  ss.warmup_steps = a.warmup;
  ss.stages = a.stages;
  schedule.setup(ss);  // throws frost::Error on bad options
  std::printf("step,block,lr_scale,frozen\n");
  const std::int64_t first = a.head ? -1 : 0;
  for (std::int64_t step = 0; step < a.steps; ++step) {
    for (std::int64_t b = first; b < a.blocks; ++b) {
      const std::int64_t blk = b < 0 ? frost::kHead : b;
      std::printf("%lld,%lld,%.10g,%d\n", static_cast<long long>(step),
                  static_cast<long long>(blk), schedule.lr_scale(step, blk),
                  schedule.frozen(step, blk) ? 1 : 0);
    }
  }
}

// Builds the FreezeOut-family schedule the flags describe and prints it.
template <class Spacing>
void run_freezeout(const Args& a) {
  const bool layer_wise = a.given.count("--lr-lr") != 0;
  const bool stage_wise = a.given.count("--sr-lr") != 0;
  fs::FreezeOutOptions fo;
  fo.t0(a.t0);
  fs::LayerWiseOptions lo;
  lo.t0(a.t0).p(a.lr_lr);
  if (layer_wise && stage_wise) {
    fs::StageWiseLayerWiseOptions o;
    o.p(a.sr_lr).inner(lo);
    fs::StageWise<fs::LayerWise<Spacing>> s(o);
    print(s, a);
  } else if (layer_wise) {
    fs::LayerWise<Spacing> s(lo);
    print(s, a);
  } else if (a.scaling == "scaled") {
    if (stage_wise) {
      fs::StageWise<fs::FreezeOut<Spacing, frost::Scaled>> s(fs::StageWiseOptions{}.p(a.sr_lr).inner(fo));
      print(s, a);
    } else {
      fs::FreezeOut<Spacing, frost::Scaled> s(fo);
      print(s, a);
    }
  } else {
    if (stage_wise) {
      fs::StageWise<fs::FreezeOut<Spacing, frost::Unscaled>> s(fs::StageWiseOptions{}.p(a.sr_lr).inner(fo));
      print(s, a);
    } else {
      fs::FreezeOut<Spacing, frost::Unscaled> s(fo);
      print(s, a);
    }
  }
}

void run(const Args& a) {
  if (a.schedule == "constant") {
    fs::Constant s;
    print(s, a);
  } else if (a.schedule == "cosine") {
    fs::Cosine s(fs::CosineOptions{}.min_scale(a.min_scale));
    print(s, a);
  } else if (a.spacing == "linear") {
    run_freezeout<frost::Linear>(a);
  } else {
    run_freezeout<frost::Cubic>(a);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    if (a.help) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    run(a);
    return std::fflush(stdout) == 0 ? 0 : 1;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "frost-schedule: %s\n%s", e.what.c_str(), kUsage);
  } catch (const frost::Error& e) {
    std::fprintf(stderr, "frost-schedule: %s\n%s", e.what(), kUsage);
  }
  return 2;
}
