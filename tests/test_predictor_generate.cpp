// frost-predictor generate's command line (examples/predictor/predictor_cli.hpp):
// the check that keeps frost-train's main job (its model, its fine-tuning
// classes, its learning rate and epochs) out of the predictor's histories, so
// that the main job's smartfrz row is scored out of sample. Parsing only:
// nothing is generated.
#include <sstream>
#include <string>
#include <vector>

#include "predictor_cli.hpp"  // examples/predictor (on the test include path)
#include "support.hpp"
// last: after every LibTorch header (see doctest_torch.hpp)
#include "doctest_torch.hpp"
#include "frost_checks.hpp"

namespace fpc = frost_predictor;
using frost_test::contains;

namespace {

struct Parsed {
  int rc = 0;
  std::string out, err;
  fpc::Command cmd;
};

Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "frost-predictor");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  Parsed p;
  std::ostringstream out, err;
  p.rc = fpc::parse_command_line(static_cast<int>(argv.size()), argv.data(), p.cmd, out, err);
  p.out = out.str();
  p.err = err.str();
  return p;
}

/// A refused command line: exit 2, the refusal, the reason and the way out.
void check_refused(const std::vector<std::string>& args, const std::string& reason) {
  CAPTURE(reason);
  const auto p = parse(args);
  CHECK(p.rc == 2);
  CHECK(contains(p.err, "refused: the histories would include frost-train's main job"));
  CHECK(contains(p.err, reason));
  CHECK(contains(p.err, "--allow-main-job"));
  CHECK(contains(p.err, "Run with --help"));  // CLI11's usage-error line, as every other one
  // ... and --allow-main-job lets the same command line through.
  auto allowed = args;
  allowed.push_back("--allow-main-job");
  const auto q = parse(allowed);
  CHECK(q.rc == -1);
  CHECK(q.err.empty());
  CHECK(q.cmd.generate);
  CHECK_FALSE(fpc::main_job_refusals(q.cmd.gen).empty());
  CHECK(contains(fpc::describe(q.cmd.gen), "INCLUDES frost-train's main job"));
}

}  // namespace

TEST_SUITE("predictor") {
  TEST_CASE("frost-predictor generate: the defaults keep frost-train's main job out") {
    const fpc::GenConfig defaults;
    CHECK(fpc::main_job_refusals(defaults).empty());
    const auto p = parse({"generate"});
    REQUIRE(p.rc == -1);
    CHECK(p.err.empty());
    CHECK(p.cmd.generate);
    CHECK(fpc::main_job_refusals(p.cmd.gen).empty());
    // Each piece, against frost-train's own defaults rather than copied numbers.
    const auto tiny = frost_examples::ViTOptions::tiny();
    const frost_train::TrainConfig main_job;
    REQUIRE_FALSE(defaults.archs.empty());
    for (const auto& a : defaults.archs) {
      CAPTURE(a);
      const auto arch = fpc::parse_arch(a);
      CHECK_FALSE(arch.is_main_job_model());
      if (arch.kind == "vit") {  // other depths AND other widths
        CHECK(arch.depth != tiny.depth());
        CHECK(arch.width != tiny.dim());
      }
    }
    for (const auto* cs : {&defaults.classes, &defaults.pretrain_classes, &defaults.finetune_classes})
      for (auto c : *cs) {
        CHECK(c >= 0);
        CHECK(c <= 4);
      }
    for (double lr : defaults.lrs) CHECK(lr != doctest::Approx(main_job.lr));
    CHECK(static_cast<double>(defaults.epochs) != main_job.epochs);
    CHECK(static_cast<double>(2 * defaults.epochs) != main_job.epochs);
    CHECK(contains(fpc::describe(defaults), "main job (ViT depth 6 width 64 patch 7, classes 5,6,7,8,9, "
                                            "lr 0.001 x 12 epochs) excluded"));
  }

  TEST_CASE("frost-predictor generate: the main job's model is refused") {
    check_refused({"generate", "--archs", "vit2w96,vit6"},
                  "architecture vit6 is frost-train's main-job model (ViT depth 6, width 64, patch 7");
    check_refused({"generate", "--archs", "vit6w64p7"}, "architecture vit6w64p7");
    // Another depth, width or patch is another model.
    for (const char* ok : {"vit5", "vit6w48", "vit6p4", "vit3w96", "mlp", "cnn"}) {
      CAPTURE(ok);
      CHECK(parse({"generate", "--archs", ok}).rc == -1);
    }
  }

  TEST_CASE("frost-predictor generate: data from the main job's classes 5-9 is refused") {
    check_refused({"generate", "--classes", "0,1,7"}, "--classes has class 7: frost-train's main job");
    check_refused({"generate", "--pretrain-classes", "5"}, "--pretrain-classes has class 5");
    check_refused({"generate", "--finetune-classes", "8,9"}, "--finetune-classes has classes 8,9");
    // One seed: no fine-tuning run, its classes are not used.
    CHECK(parse({"generate", "--seeds", "1", "--finetune-classes", "8,9"}).rc == -1);
  }

  TEST_CASE("frost-predictor generate: the main job's learning rate and epochs are refused") {
    // The reference trains 2 x --epochs = 12 epochs at lr 1e-3: frost-train's fine-tuning.
    check_refused({"generate", "--lrs", "2e-3,1e-3", "--epochs", "6"},
                  "--lrs 0.001 with 12 epochs (the reference run, 2 x --epochs) is frost-train's "
                  "main-job schedule (--lr 0.001 --epochs 12)");
    check_refused({"generate", "--lrs", "0.001", "--epochs", "12"}, "(the recorded run)");
    // The same learning rate for another budget, or another one for 12 epochs: allowed.
    CHECK(parse({"generate", "--lrs", "1e-3", "--epochs", "5"}).rc == -1);
    CHECK(parse({"generate", "--lrs", "2e-3", "--epochs", "6"}).rc == -1);
  }

  TEST_CASE("frost-predictor generate: the old defaults are refused on all three counts") {
    const auto p = parse({"generate", "--archs", "vit2,vit4,vit6,mlp,cnn", "--classes", "5,6,7,8,9",
                          "--finetune-classes", "5,6,7,8,9", "--lrs", "1e-3", "--epochs", "6"});
    CHECK(p.rc == 2);
    CHECK(contains(p.err, "architecture vit6 "));
    CHECK_FALSE(contains(p.err, "architecture vit4 "));
    CHECK(contains(p.err, "--classes has classes 5,6,7,8,9"));
    CHECK(contains(p.err, "--finetune-classes has classes 5,6,7,8,9"));
    CHECK(contains(p.err, "--lrs 0.001 with 12 epochs"));
  }

  TEST_CASE("frost-predictor generate: other bad command lines are usage errors too") {
    for (const auto& [args, message] :
         std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"generate", "--archs", "resnet"}, "architecture 'resnet': unknown"},
             {{"generate", "--archs", "vit4w50"}, "must be divisible by heads"},
             {{"generate", "--archs", "vit4p5"}, "must be divisible by patch_size"},
             {{"generate", "--archs", "vit0"}, "depth must be 1 or more"},
             {{"generate", "--archs", "vit4x"}, "unexpected 'x'"},
             {{"generate", "--lrs", "0"}, "--lrs: learning rates must be positive"},
             {{"generate", "--classes", "0,10"}, "Fashion-MNIST classes are 0-9, got 10"},
             {{"generate", "--classes", "1,1"}, "class 1 is given twice"},
             {{"generate", "--pretrain-classes", "0,2"}, "share class 2"},
             {{"generate", "--seeds", "0"}, "must be positive"}}) {
      CAPTURE(message);
      const auto p = parse(args);
      CHECK(p.rc == 2);
      CHECK(contains(p.err, message));
      // --allow-main-job lifts the main-job check only
      auto with = args;
      with.push_back("--allow-main-job");
      CHECK(parse(with).rc == 2);
    }
    CHECK(parse({"train", "--holdout-by", "model"}).rc == -1);
    CHECK(parse({"train", "--holdout-by", "model"}).cmd.train.holdout_by == "model");
    CHECK(parse({"--help"}).rc == 0);
  }
}
