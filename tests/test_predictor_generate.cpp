// frost-predictor generate's command line (examples/predictor/predictor_cli.hpp):
// the check that keeps frost-train's main job (its model, its fine-tuning
// classes, its learning rate and epochs) out of the predictor's histories, so
// that the main job's smartfrz row is scored out of sample. Parsing only:
// nothing is generated.
#include <unistd.h>

#include <cstdio>
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
      CHECK_FALSE(arch.is_near_main_job_model());
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
    // Another depth, width or patch, far enough, is another model.
    for (const char* ok : {"vit4", "vit6w48", "vit6w96", "vit6p4", "vit7p4", "vit3w96", "mlp", "cnn"}) {
      CAPTURE(ok);
      CHECK(parse({"generate", "--archs", ok}).rc == -1);
    }
  }

  TEST_CASE("frost-predictor generate: a near copy of the main job's model is refused") {
    // Exact equality let these through: a block more or less, a few channels
    // more or less, with the main job's patch, is the main job's model again.
    for (const char* near : {"vit5", "vit7", "vit6w60", "vit6w68", "vit6w80", "vit5w56", "vit7w72p7"}) {
      CAPTURE(near);
      CHECK(fpc::parse_arch(near).is_near_main_job_model());
      CHECK_FALSE(fpc::parse_arch(near).is_main_job_model());
      check_refused({"generate", "--archs", std::string("mlp,") + near},
                    "architecture " + std::string(near) + " is a near copy of frost-train's main-job model");
    }
    // The tolerance's edges: width 64 x 1.25 = 80 is in, 84 out; 64 / 1.25 = 51.2: 52 in, 48 out.
    CHECK(fpc::parse_arch("vit6w52").is_near_main_job_model());
    CHECK_FALSE(fpc::parse_arch("vit6w84").is_near_main_job_model());
    CHECK_FALSE(fpc::parse_arch("vit6w48").is_near_main_job_model());
    CHECK_FALSE(fpc::parse_arch("vit8").is_near_main_job_model());
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
    // Near copies, which exact equality let through: within a factor 1.25 of
    // the lr and 25 % of the epochs (9 to 15).
    check_refused({"generate", "--lrs", "1.1e-3", "--epochs", "12"}, "--lrs 0.0011 with 12 epochs (the recorded run)");
    check_refused({"generate", "--lrs", "1e-3", "--epochs", "11"}, "--lrs 0.001 with 11 epochs");
    check_refused({"generate", "--lrs", "8e-4", "--epochs", "5"}, "--lrs 0.0008 with 10 epochs (the reference run");
    check_refused({"generate", "--lrs", "2e-3,1.2e-3", "--epochs", "7"}, "--lrs 0.0012 with 14 epochs");
    // The same learning rate for a budget far enough, or another one for 12 epochs: allowed.
    CHECK(parse({"generate", "--lrs", "1e-3", "--epochs", "4"}).rc == -1);   // 4 and 8 epochs
    CHECK(parse({"generate", "--lrs", "1e-3", "--epochs", "16"}).rc == -1);  // 16 and 32
    CHECK(parse({"generate", "--lrs", "2e-3", "--epochs", "6"}).rc == -1);
    CHECK(parse({"generate", "--lrs", "1.3e-3", "--epochs", "12"}).rc == -1);
    // a second lr no seed trains at (one seed) is not used
    CHECK(parse({"generate", "--seeds", "1", "--lrs", "2e-3,1e-3", "--epochs", "12"}).rc == -1);
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

  TEST_CASE("frost-predictor train: histories of the main job are refused, --allow-main-job is an experiment") {
    struct Tmp {  // removed at the end, files first
      std::string path = frost_test::temp_dir("frost-predictor-train-test");
      ~Tmp() {
        for (const char* f : {"mlp-s0.pt", "vit6-s0.pt", "vit6-s1.pt", "cnn-s0.pt"})
          std::remove((path + "/" + f).c_str());
        ::rmdir(path.c_str());
      }
    } tmp;
    // Three history files as generate writes them (the flag), and one from
    // before the flag whose description says INCLUDES.
    auto write = [&](const std::string& name, int flag, const std::string& from) {
      torch::serialize::OutputArchive ar;
      ar.write("generated_from", c10::IValue(from));
      if (flag >= 0) ar.write("includes_main_job", c10::IValue(flag == 1));
      const std::string path = tmp.path + "/" + name;
      ar.save_to(path);
      torch::serialize::InputArchive in;
      in.load_from(path);
      return fpc::history_origin(path, in);
    };
    fpc::GenConfig allowed;
    allowed.archs = {"vit6"};
    allowed.allow_main_job = true;
    REQUIRE(fpc::includes_main_job(allowed));
    CHECK_FALSE(fpc::includes_main_job(fpc::GenConfig()));
    const auto clean = write("mlp-s0.pt", 0, fpc::describe(fpc::GenConfig()));
    const auto flagged = write("vit6-s0.pt", 1, fpc::describe(allowed));
    const auto old_in = write("vit6-s1.pt", -1, fpc::describe(allowed));
    const auto old_clean = write("cnn-s0.pt", -1, fpc::describe(fpc::GenConfig()));
    CHECK_FALSE(clean.includes_main_job);
    CHECK(flagged.includes_main_job);
    CHECK(old_in.includes_main_job);
    CHECK_FALSE(old_clean.includes_main_job);

    fpc::TrainConfig cfg;
    cfg.data = tmp.path;
    CHECK(fpc::train_refusal({clean, old_clean}, cfg).empty());
    const auto m = fpc::train_refusal({clean, flagged, old_in}, cfg);
    CHECK(contains(m, "refused: 2 of the histories in " + tmp.path + " include frost-train's main job"));
    CHECK(contains(m, flagged.path));
    CHECK(contains(m, "frost-train refuses it"));
    CHECK(contains(m, "Regenerate without --allow-main-job"));
    // --allow-main-job: an experiment's predictor, never over the shipped one
    const auto p = parse({"train", "--allow-main-job"});
    REQUIRE(p.rc == -1);
    REQUIRE(p.cmd.train.allow_main_job);
    auto exp = p.cmd.train;
    exp.data = tmp.path;
    CHECK(contains(fpc::train_refusal({flagged}, exp), "give another --out than data/smartfrz-predictor.pt"));
    exp.out = tmp.path + "/experiment.pt";
    CHECK(fpc::train_refusal({flagged}, exp).empty());
  }
}
