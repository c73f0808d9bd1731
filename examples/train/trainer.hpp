#pragma once
// examples/train/trainer.hpp — one strategy's fine-tuning (StrategyRun): the
// loop that drives a frost::FreezeController on classes 5-9, logs every step,
// checkpoints atomically and resumes. The rooms it stands on:
//   files.hpp        paths, atomic writes, the numbers of the log files
//   device.hpp       --device, sync, peak memory
//   data.hpp         Fashion-MNIST's two tasks, a rank's shard, accuracy on a split
//   pretraining.hpp  the cached pre-training (the body every strategy starts from)
//   run.hpp          RunContext, Plan, RunResult and the Run interface
#include <torch/nn/functional/loss.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "frost/cache/activation_cache.hpp"
#include "frost/checkpoint.hpp"
#include "frost/frost.hpp"

#include "accounting.hpp"
#include "cli.hpp"
#include "data.hpp"
#include "device.hpp"
#include "files.hpp"
#include "model.hpp"
#include "pretraining.hpp"
#include "run.hpp"
#include "world.hpp"

namespace frost_train {

namespace fx = frost_examples;

namespace detail {

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  if (!f) throw std::runtime_error("cannot write " + path);
  f << text;
}

/// Keeps the lines of steps.jsonl for steps before `step` (a resumed run
/// rewrites what came after its checkpoint).
inline void truncate_log(const std::string& path, std::int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  while (std::getline(in, line)) {
    const auto k = line.find("\"step\":");
    if (k == std::string::npos) continue;
    const long long s = std::atoll(line.c_str() + k + 7);
    if (s < step) kept += line + "\n";
  }
  in.close();
  write_file_atomic(path, kept);
}

inline std::string timeline_csv(const frost::Timeline& tl) {
  std::ostringstream os;
  os << "step,kind,block,block_name,policy,statistic,detail\n";
  for (const auto& e : tl) {
    std::string d = e.detail;
    for (auto& c : d)
      if (c == '"') c = '\'';
    os << e.step << ',' << frost::to_string(e.kind) << ',' << e.block << ',' << e.block_name << ','
       << e.policy << ',' << csv_number(e.statistic) << ",\"" << d << "\"\n";
  }
  return os.str();
}

}  // namespace detail

/// Fine-tunes the pre-trained model on classes 5-9 with the strategy
/// FreezeController<C, S, P>, configured by `configure` (the strategy's
/// defaults) and then ctx.sets (the user's --set).
template <class C, class S, class P>
class StrategyRun final : public Run {
 public:
  using Ctl = TrainController<C, S, P>;
  using Configure = std::function<void(typename Ctl::Options&, const Plan&, const frost::BlockMap&)>;

  StrategyRun(const RunContext& ctx, std::string name, const Configure& configure)
      : ctx_(ctx), cfg_(ctx_.cfg), data_(*ctx.data), device_(ctx.device),
        world_(ctx.world ? *ctx.world : single_), train_(shard(data_.train, world_)),
        batch_size_(cfg_.batch_size / world_.size), name_(std::move(name)),
        net_(make_model()), blocks_(frost::BlockMap::detect(net_->module())),
        opt_(frost::param_groups(blocks_, net_->module()),
             torch::optim::AdamWOptions(cfg_.lr).weight_decay(cfg_.weight_decay)),
        plan_(make_plan(cfg_, data_.train.size())), ctl_(net_->module(), opt_, blocks_, options(configure)),
        work_model_{net_->block_macs()},
        ckpt_path_(join(ctx.out_dir, "checkpoint.pt")), log_path_(join(ctx.out_dir, "steps.jsonl")) {
    make_dirs(ctx.out_dir);
    r_.strategy = name_;
    r_.seed = cfg_.seed;
    r_.epochs = cfg_.epochs;
    r_.out_dir = ctx.out_dir;
    if (work_model_.blocks() != ctl_.blocks().size())
      throw std::logic_error("frost-train: the model reports the cost of " +
                             std::to_string(work_model_.blocks()) + " blocks, the BlockMap has " +
                             std::to_string(ctl_.blocks().size()));
    r_.config = ctl_.describe();
    r_.composition = concepts_names(r_.config);
    for (const auto& b : ctl_.blocks()) r_.block_names.push_back(b.name);
    // The cache applies once a prefix is frozen for good, on inputs that are
    // the same every epoch (frost-train does not augment).
    if (cfg_.cache && cfg_.cache_mb > 0)
      cache_ = std::make_unique<frost::cache::ActivationCache>(
          train_.size(), frost::cache::ActivationCacheOptions().budget_mb(cfg_.cache_mb));
    r_.cached = cache_ != nullptr;
    if (ctx.resume && path_exists(ckpt_path_)) resume();
    else if (world_.root()) detail::write_text(log_path_, "");
    if (world_.root()) {
      log_.open(log_path_, std::ios::app);
      if (!log_) throw std::runtime_error("cannot write " + log_path_);
    }
    seen_events_ = ctl_.timeline().size();
    batches_epoch_ = step_ / plan_.steps_per_epoch;
    batches_ = std::make_unique<fx::Batches>(train_, batch_size_, data_seed(cfg_, batches_epoch_));
  }

  const std::string& name() const override { return name_; }
  std::int64_t steps_done() const override { return step_; }
  std::int64_t planned_steps() const override { return plan_.total_steps; }
  double measured_s() const override { return bill_.measured_s(); }
  const std::vector<EvalPoint>& evals() const override { return r_.evals; }
  bool done() const override {
    return step_ >= plan_.total_steps || ctl_.should_stop() ||
           (cfg_.max_steps >= 0 && session_steps_ >= cfg_.max_steps);
  }

  void step() override {
    // Everything the step causes is timed: the batch, the cache's fills and
    // catch-up passes, the criterion's work (a predictor stage included).
    const auto t0 = std::chrono::steady_clock::now();
    if (step_ == unfreeze_at_) unfreeze_all();
    // Peak device memory: the strategies interleave, so the counter restarts
    // with each of this strategy's steps (a host call, no synchronisation).
    if (device_.is_cuda()) reset_peak_memory(device_);
    const fx::Batch batch = next_batch();
    ctl_.before_step();
    StepShape shape = training_blocks();  // the states after_step may change
    const double ff = ctl_.frozen_fraction();
    const double no_grad = ctl_.no_grad_fraction();
    opt_.zero_grad();
    const CacheMark mark = cache_mark();
    const at::Tensor loss = forward_backward(batch, mark.k);
    grads_.after_backward();  // before the criterion reads the gradients (several ranks)
    if (!finite_step(loss)) return skip_batch(t0);  // before the criterion or the optimizer sees it
    frozen_sum_ += ff;
    busy_sum_ += 1.0 - no_grad;  // blocks in trial get no gradient either
    ctl_.after_backward();
    opt_.step();
    ctl_.after_step();
    sync(device_);  // the step's time, not the queue's (CUDA)
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (device_.is_cuda()) {  // the largest of its steps (every strategy's weights resident)
      const auto mem = peak_memory_mib(device_);
      if (!(r_.peak_mem_mib >= mem.first)) r_.peak_mem_mib = mem.first;
      r_.peak_mem_kind = mem.second;
    }

    account(shape, batch, mark, dt);
    record(ff, dt, loss);
    skipped_in_a_row_ = 0;
    ++step_;
    ++session_steps_;
    after_step_io();
  }

  /// Batches skipped because their loss was not finite (the whole run).
  std::int64_t skipped_batches() const noexcept { return skipped_; }

  /// LP-FT (strategies.hpp): before step `step` every frozen block trains
  /// again; -1: never.
  void unfreeze_all_at(std::int64_t step) { unfreeze_at_ = step; }

  RunResult finish() override {
    flush();
    save_checkpoint();  // also the final state: --resume of a finished run only evaluates
    r_.steps = step_;
    r_.planned_steps = plan_.total_steps;
    r_.wall_s = bill_.step_s;
    r_.measured_s = bill_.measured_s();
    r_.validation_s = bill_.validation_s;
    r_.frozen_share = step_ > 0 ? frozen_sum_ / static_cast<double>(step_) : 0.0;
    r_.backward_avoided = 1.0 - busy_sum_ / static_cast<double>(plan_.total_steps);
    r_.work_avoided = bill_.work_avoided_total(plan_.total_steps);
    r_.work_avoided_per_step = bill_.work_avoided_per_step();
    r_.catch_up_share = bill_.full_work_run > 0 ? bill_.catch_up_work / bill_.full_work_run : 0.0;
    r_.steps_not_run = RunBill::steps_not_run(step_, plan_.total_steps);
    r_.skipped_batches = skipped_;
    // The estimate: per phase steps x median (and quartiles), plus the
    // validation it needed as measured; see docs/main-job.md.
    r_.time_est_s = bill_.estimate_s(0.5) + bill_.validation_s;
    r_.time_lo_s = bill_.estimate_s(0.25) + bill_.validation_s;
    r_.time_hi_s = bill_.estimate_s(0.75) + bill_.validation_s;
    r_.losses = losses_;
    r_.timeline = ctl_.timeline();
    r_.freeze_step.assign(ctl_.blocks().size(), -1);
    for (const auto& e : r_.timeline)
      if ((e.kind == frost::EventKind::freeze || e.kind == frost::EventKind::commit) &&
          e.block >= 0 && r_.freeze_step[static_cast<std::size_t>(e.block)] < 0)
        r_.freeze_step[static_cast<std::size_t>(e.block)] = e.step;
    r_.completed = step_ >= plan_.total_steps || ctl_.should_stop();
    r_.ranks = world_.size;
    if (cache_) {
      const auto& st = cache_->stats();
      r_.cache_hits = cache_hits0_ + st.hits;  // with the sessions before a resume
      r_.cache_misses = cache_misses0_ + st.misses;
      r_.cache_samples = st.cached_samples;
      r_.cache_mib = static_cast<double>(st.bytes) / (1024.0 * 1024.0);
    }
    r_.comm_mib = grads_.mib();
    r_.comm_full_mib = grads_.full_mib();
    if (world_.parallel()) {
      // Every rank's own timeline: identical across ranks by construction.
      const std::string mine = join(ctx_.out_dir, "rank" + std::to_string(world_.rank));
      make_dirs(mine);
      detail::write_text(join(mine, "timeline.csv"), detail::timeline_csv(r_.timeline));
    }
    if (world_.root()) {
      detail::write_text(join(ctx_.out_dir, "timeline.csv"), detail::timeline_csv(r_.timeline));
      std::ostringstream c;
      for (const auto& kv : r_.config) c << kv.first << "=" << kv.second << "\n";
      detail::write_text(join(ctx_.out_dir, "config.txt"), c.str());
    }
    if (r_.completed) {
      const MeterScope off(nullptr);  // evaluation is not the training's memory (device.hpp)
      r_.test_accuracy = evaluate(*net_, data_.test, device_, world_);
    }
    if (!r_.evals.empty()) r_.val_accuracy = r_.evals.back().val_accuracy;
    return r_;
  }

 private:
  struct Row {
    std::int64_t step;
    double lr_head;
    std::vector<double> lr;
    std::int64_t frozen;
    double frozen_fraction;
    double step_ms;
    Json events = Json::array();
  };

  /// Where the activation cache stood before a step's forward pass.
  struct CacheMark {
    std::int64_t k = 0;  ///< the frozen prefix (frozen for good, never a trial) it serves
    std::int64_t hits = 0, advanced = 0, depth = 0;
  };

  /// LP-FT's second phase: ctl.unfreeze on every frozen block (fresh optimizer
  /// state, the head's kept); the cache's entries serve no prefix any more and
  /// are dropped (its counts kept for the report).
  void unfreeze_all() {
    for (std::size_t b = 0; b < ctl_.blocks().size(); ++b)
      if (ctl_.is_frozen(b)) ctl_.unfreeze(b, "LP-FT: the probe ends, full fine-tuning from here");
    if (!cache_) return;
    cache_hits0_ += cache_->stats().hits;
    cache_misses0_ += cache_->stats().misses;
    cache_.reset();
  }

  /// This step's batch (a new shuffle at each epoch).
  fx::Batch next_batch() {
    const std::int64_t epoch = step_ / plan_.steps_per_epoch;
    if (epoch != batches_epoch_) {
      batches_ = std::make_unique<fx::Batches>(train_, batch_size_, data_seed(cfg_, epoch));
      batches_epoch_ = epoch;
      skip_offset_ = 0;
    }
    // A skipped batch (skip_batch) is replaced by the next one; the epoch's
    // steps stay, so its last ones wrap round to its first batches.
    const std::int64_t i = std::min(step_ % plan_.steps_per_epoch, batches_->size() - 1) + skip_offset_;
    return (*batches_)[i % batches_->size()];
  }

  // TrainConfig::nan_at (tests): the first attempt of those steps gets a NaN
  // loss before its backward, so NaN gradients too, as a real one would.
  void inject_fault(at::Tensor& loss) {
    if (std::find(cfg_.nan_at.begin(), cfg_.nan_at.end(), step_) == cfg_.nan_at.end() ||
        injected_at_ == step_ || (cfg_.nan_rank >= 0 && cfg_.nan_rank != world_.rank))
      return;
    injected_at_ = step_;
    loss = loss * std::numeric_limits<double>::quiet_NaN();
  }

  // Whether the step's loss is finite, the same verdict on every rank. With
  // several ranks a non-finite loss on any of them makes the exchanged (mean)
  // gradients of the head, which trains in every strategy, not finite on all
  // of them: the last parameter with a gradient is checked, no collective of
  // its own. One host read (the trainer synchronises every step anyway).
  bool finite_step(const at::Tensor& loss) const {
    if (!world_.parallel()) return std::isfinite(loss.item<double>());
    const auto params = net_->module().parameters();
    for (auto it = params.rbegin(); it != params.rend(); ++it)
      if (it->grad().defined()) return it->grad().isfinite().all().item<bool>();
    return std::isfinite(loss.item<double>());
  }

  // A batch whose loss is not finite: the step is abandoned before the
  // criterion or the optimizer sees it (ctl.abort_step(): no decision, the
  // same step again) and the next batch takes its place. Its time counts
  // against the strategy. Ten in a row end the run: it has diverged.
  void skip_batch(std::chrono::steady_clock::time_point t0) {
    ctl_.abort_step();
    opt_.zero_grad();
    ++skipped_;
    ++skip_offset_;
    ++skipped_in_a_row_;
    bill_.step_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ctx_.log("[" + name_ + "] step " + std::to_string(step_) +
             ": the loss is not finite; the batch is skipped, nothing was applied (" +
             std::to_string(skipped_) + " skipped in all)");
    if (skipped_in_a_row_ >= kMaxSkipsInARow)
      throw std::runtime_error(name_ + ": " + std::to_string(kMaxSkipsInARow) +
                               " batches in a row with a loss that is not finite at step " +
                               std::to_string(step_) +
                               ": the run has diverged; lower --lr (or its strategy's rate)");
  }

  /// Which blocks get a gradient this step.
  StepShape training_blocks() const {
    StepShape shape;
    shape.trains.resize(ctl_.blocks().size());
    for (std::size_t b = 0; b < shape.trains.size(); ++b)
      shape.trains[b] = frost::meaning(ctl_.block_state(b)).trains;
    return shape;
  }

  CacheMark cache_mark() const {
    if (!cache_) return {};
    const auto& st = cache_->stats();
    return {ctl_.frozen_prefix(), st.hits, st.advanced, st.depth};
  }

  /// The forward pass (the frozen prefix from the cache) and the backward
  /// pass; the loss stays on the device.
  at::Tensor forward_backward(const fx::Batch& batch, std::int64_t k) {
    const auto labels = batch.labels.to(device_, /*non_blocking=*/true);
    at::Tensor h = cache_ ? cache_->activations(*net_, batch.index, batch.images.to(device_), k)
                          : batch.images.to(device_, /*non_blocking=*/true);
    at::Tensor logits;
    if constexpr (frost::concepts::uses_features<C>()) {
      // The class token the head sees (after the final norm), for criteria
      // that compare features (token similarity).
      const auto cls = net_->features_from(h, k);
      ctl_.observe_features(cls, labels);
      logits = net_->head(cls);
    } else {
      logits = net_->forward_range(h, k, frost::cache::kOutput);
    }
    auto loss = torch::nn::functional::cross_entropy(logits, labels);
    inject_fault(loss);
    loss.backward();
    return loss;
  }

  // The step's work, FLOP-weighted (accounting.hpp): forward through the
  // blocks not served from the cache, backward down to the first block with
  // a gradient; a catch-up pass of the cache through newly frozen blocks
  // counts against the strategy.
  void account(StepShape& shape, const fx::Batch& batch, const CacheMark& mark, double dt) {
    const std::int64_t hits = cache_ ? cache_->stats().hits - mark.hits : 0;
    const double hit_share =
        cache_ && mark.k > 0
            ? static_cast<double>(hits) /
                  static_cast<double>(std::max<std::int64_t>(1, batch.index.numel()))
            : 0.0;
    shape.samples = batch.index.numel();
    shape.cached_depth = mark.k;
    shape.cache_hits = hits;
    const double catch_up =
        cache_ ? catch_up_work(work_model_, cache_->stats().advanced - mark.advanced, mark.depth,
                               cache_->stats().depth)
               : 0.0;
    std::int64_t no_grad_blocks = 0;
    for (const bool t : shape.trains) no_grad_blocks += t ? 0 : 1;
    // The phase: which blocks this step skipped (a step's cost depends on it).
    const auto phase = no_grad_blocks * 1000 + mark.k * 10 + (hit_share >= 1.0 ? 1 : 0);
    bill_.add_step(work_model_, shape, dt, phase, catch_up);
  }

  /// The step's row of steps.jsonl, written at the next flush (its loss is
  /// read then), with the timeline's new events.
  void record(double frozen_fraction, double dt, const at::Tensor& loss) {
    Row row;
    row.step = step_;
    row.lr_head = opt_.param_groups().back().options().get_lr();
    for (std::size_t g = 0; g < ctl_.blocks().size(); ++g)
      row.lr.push_back(opt_.param_groups()[g].options().get_lr());
    row.frozen = ctl_.num_frozen();
    row.frozen_fraction = frozen_fraction;
    row.step_ms = dt * 1000.0;
    for (; seen_events_ < ctl_.timeline().size(); ++seen_events_) {
      const auto& e = ctl_.timeline()[seen_events_];
      row.events.push_back(Json{{"kind", frost::to_string(e.kind)},
                                {"step", e.step},
                                {"block", e.block},
                                {"block_name", e.block_name},
                                {"policy", e.policy},
                                {"statistic", json_number(e.statistic)},
                                {"detail", e.detail}});
    }
    rows_.push_back(std::move(row));
    pending_.push_back(loss.detach());
  }

  // After a completed step: the log, and at an epoch's end the validation;
  // the test accuracy (--eval-every) and the checkpoint when due. Flushes
  // are collectives with several ranks: every rank flushes at the same steps.
  void after_step_io() {
    const bool epoch_end = step_ % plan_.steps_per_epoch == 0 || step_ == plan_.total_steps;
    const bool ckpt_due = cfg_.checkpoint_every > 0 && step_ % cfg_.checkpoint_every == 0 &&
                          step_ < plan_.total_steps;
    const bool eval_due = cfg_.eval_every > 0 && step_ % cfg_.eval_every == 0;
    if (rows_.size() < 25 && !ckpt_due && !eval_due && !epoch_end) return;
    flush();
    if (epoch_end) validate();
    if (eval_due) {
      const double acc = evaluate(*net_, data_.test, device_, world_);
      log_ << json_line({{"step", step_ - 1}, {"test_accuracy", json_number(acc)}});
      log_.flush();
    }
    if (ckpt_due && !ctl_.should_stop()) save_checkpoint();
  }

  std::unique_ptr<TaskNet> make_model() {
    // Model from the pre-trained weights with a new head (model.hpp),
    // optimizer with one group per block.
    auto net = seeded([&] { return make_task_net(cfg_, ctx_.pretrained); }, cfg_.seed + 1);
    net->module().to(device_);
    net->module().train();
    // With several ranks: rank 0's weights everywhere; then gradients averaged
    // over the ranks, frozen blocks left out of the all-reduce.
    grads_ = world_.gradient_exchange(net->module());
    return net;
  }

  typename Ctl::Options options(const Configure& configure) {
    typename Ctl::Options opts;
    opts.controller()
        .total_steps(plan_.total_steps)
        .steps_per_epoch(plan_.steps_per_epoch)
        .warmup_steps(std::min(cfg_.warmup_steps, plan_.total_steps - 1));
    if (configure) configure(opts, plan_, blocks_);
    for (const auto& kv : ctx_.sets) Ctl::set_option(opts, kv.first, kv.second);
    world_.bind_reducer(opts.reducer());  // every rank takes every decision
    return opts;
  }

  void resume() {
    torch::serialize::InputArchive ar;
    frost::load_file(ar, ckpt_path_, device_);
    torch::serialize::InputArchive msub, osub, fsub;
    ar.read("frost", fsub);  // first: checked before the model and optimizer change
    frost::load(ctl_, fsub, ckpt_path_);
    ar.read("model", msub);
    net_->module().load(msub);
    ar.read("optimizer", osub);
    opt_.load(osub);
    bill_.step_s = frost::read_value(ar, "trainer.elapsed").toDouble();
    frozen_sum_ = frost::read_value(ar, "trainer.frozen_sum").toDouble();
    busy_sum_ = frost::read_value(ar, "trainer.busy_sum").toDouble();
    losses_ = frost::read_value(ar, "trainer.losses").toDoubleVector();
    // The same number of ranks (absent in checkpoints of an older frost-train).
    c10::IValue v;
    if (ar.try_read("trainer.world_size", v) && v.toInt() != world_.size)
      throw std::runtime_error("--resume: " + ckpt_path_ + " was trained on " +
                               std::to_string(v.toInt()) + " rank(s); resume it on the same " +
                               "number (this is " + std::to_string(world_.size) + ")");
    read_accounts(ar);
    step_ = ctl_.step();
    if (world_.root()) detail::truncate_log(log_path_, step_);
    r_.resumed = true;
    ctx_.log("[" + name_ + "] resumed from " + ckpt_path_ + " at step " + std::to_string(step_));
  }

  // What the report adds up over the whole run (absent in checkpoints of an
  // older frost-train: then only this session's steps count).
  void read_accounts(torch::serialize::InputArchive& ar) {
    c10::IValue v;
    // The work account (absent before the FLOP-weighted one: then it counts
    // this session's steps only, like the other sums of older checkpoints).
    if (ar.try_read("trainer.bill", v)) {
      const auto b = v.toDoubleVector();  // step work, catch-up, full's, steps, validation (needed, not)
      if (b.size() == 6) {
        bill_.step_work = b[0];
        bill_.catch_up_work = b[1];
        bill_.full_work_run = b[2];
        bill_.steps = static_cast<std::int64_t>(b[3]);
        bill_.validation_s = b[4];
        bill_.validation_untimed_s = b[5];
      }
    }
    if (ar.try_read("trainer.phase_keys", v)) {
      const auto keys = v.toIntVector();
      c10::IValue counts, times;
      if (ar.try_read("trainer.phase_counts", counts) && ar.try_read("trainer.phase_times", times)) {
        const auto n = counts.toIntVector();
        const auto t = times.toDoubleVector();
        std::size_t at = 0;
        for (std::size_t i = 0; i < keys.size() && i < n.size(); ++i) {
          auto& dst = bill_.phase_times[keys[i]];
          for (std::int64_t j = 0; j < n[i] && at < t.size(); ++j) dst.push_back(t[at++]);
        }
      }
    }
    if (ar.try_read("trainer.evals", v)) {
      const auto e = v.toDoubleVector();  // step, time, accuracy, loss
      for (std::size_t i = 0; i + 3 < e.size(); i += 4)
        r_.evals.push_back({static_cast<std::int64_t>(e[i]), e[i + 1], e[i + 2], e[i + 3]});
    }
    if (ar.try_read("trainer.skipped", v)) {
      const auto k = v.toIntVector();  // in all, in this epoch
      if (k.size() == 2) std::tie(skipped_, skip_offset_) = std::make_tuple(k[0], k[1]);
    }
    if (ar.try_read("trainer.cache_hits", v)) cache_hits0_ = v.toInt();
    if (ar.try_read("trainer.cache_misses", v)) cache_misses0_ = v.toInt();
  }

  void save_checkpoint() {
    if (!world_.root()) return;  // the ranks hold the same state
    torch::serialize::OutputArchive ar, msub, osub, fsub;
    net_->module().save(msub);
    opt_.save(osub);
    frost::save(ctl_, fsub);
    ar.write("model", msub);
    ar.write("optimizer", osub);
    ar.write("frost", fsub);
    ar.write("trainer.elapsed", c10::IValue(bill_.step_s));
    ar.write("trainer.frozen_sum", c10::IValue(frozen_sum_));
    ar.write("trainer.busy_sum", c10::IValue(busy_sum_));
    ar.write("trainer.losses", c10::IValue(losses_));
    ar.write("trainer.world_size", c10::IValue(static_cast<std::int64_t>(world_.size)));
    ar.write("trainer.skipped", c10::IValue(std::vector<std::int64_t>{skipped_, skip_offset_}));
    ar.write("trainer.bill",
             c10::IValue(std::vector<double>{bill_.step_work, bill_.catch_up_work,
                                             bill_.full_work_run, static_cast<double>(bill_.steps),
                                             bill_.validation_s, bill_.validation_untimed_s}));
    std::vector<std::int64_t> keys, counts;
    std::vector<double> times, evals;
    for (const auto& kv : bill_.phase_times) {
      keys.push_back(kv.first);
      counts.push_back(static_cast<std::int64_t>(kv.second.size()));
      times.insert(times.end(), kv.second.begin(), kv.second.end());
    }
    for (const auto& e : r_.evals)
      evals.insert(evals.end(), {static_cast<double>(e.step), e.time_s, e.val_accuracy, e.val_loss});
    ar.write("trainer.phase_keys", c10::IValue(keys));
    ar.write("trainer.phase_counts", c10::IValue(counts));
    ar.write("trainer.phase_times", c10::IValue(times));
    ar.write("trainer.evals", c10::IValue(evals));
    ar.write("trainer.cache_hits", c10::IValue(cache_hits0_ + (cache_ ? cache_->stats().hits : 0)));
    ar.write("trainer.cache_misses",
             c10::IValue(cache_misses0_ + (cache_ ? cache_->stats().misses : 0)));
    frost::save_file(ar, ckpt_path_);
  }

  // Per-step rows wait for their loss: losses stay on the device and are read
  // in one transfer every few steps (no synchronisation per step on a GPU).
  void flush() {
    if (rows_.empty()) return;
    auto host = torch::stack(pending_).to(torch::kCPU, torch::kDouble);
    world_.mean_(host);  // the loss of the global batch: one collective per flush
    const double* lp = host.data_ptr<double>();
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      const auto& row = rows_[i];
      losses_.push_back(lp[i]);
      Json lr = Json::array();
      for (const double x : row.lr) lr.push_back(json_number(x));
      log_ << json_line({{"step", row.step},
                         {"epoch", row.step / plan_.steps_per_epoch},
                         {"loss", json_number(lp[i])},
                         {"lr_head", json_number(row.lr_head)},
                         {"lr", std::move(lr)},
                         {"frozen", row.frozen},
                         {"frozen_fraction", json_number(row.frozen_fraction)},
                         {"step_ms", json_number(row.step_ms)},
                         {"events", row.events}});
      const bool froze = std::any_of(row.events.begin(), row.events.end(), [](const Json& e) {
        return e["kind"] == "freeze" || e["kind"] == "commit";
      });
      if (froze && !cfg_.quiet && cfg_.progress == 0)
        ctx_.log("[" + name_ + "] step " + std::to_string(row.step) + ": froze " +
                 row.events.back()["block_name"].template get<std::string>());
    }
    log_.flush();
    rows_.clear();
    pending_.clear();
  }

  // At an epoch's end: validation accuracy and loss; the loss goes to the
  // controller (early stopping listens to it). Timed, and counted in the
  // strategy's measured time when its decisions listen to it.
  void validate() {
    const auto t0 = std::chrono::steady_clock::now();
    const auto [acc, loss] = [&] {
      const MeterScope off(nullptr);  // evaluation is not the training's memory (device.hpp)
      return detail::validate(*net_, data_.val, device_, world_);
    }();
    ctl_.report_validation(loss);
    sync(device_);
    bill_.add_validation(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
        ctx_.validation_needed);
    r_.evals.push_back({step_ - 1, bill_.measured_s(), acc, loss});
    log_ << json_line({{"step", step_ - 1},
                       {"val_accuracy", json_number(acc)},
                       {"val_loss", json_number(loss)},
                       {"time_s", json_number(bill_.measured_s())}});
    log_.flush();
  }

  RunContext ctx_;
  const TrainConfig& cfg_;
  const TaskData& data_;
  torch::Device device_;
  World single_;
  const World& world_;
  fx::Dataset train_;  // this rank's shard
  std::int64_t batch_size_;
  std::string name_;
  GradientExchange grads_;  // the all-reduce of the gradients (world.hpp)
  std::unique_ptr<TaskNet> net_;  // the model behind the seam (model.hpp)
  frost::BlockMap blocks_;
  torch::optim::AdamW opt_;
  Plan plan_;
  Ctl ctl_;
  WorkModel work_model_;  // each block's forward cost (the model's block_macs)
  std::unique_ptr<frost::cache::ActivationCache> cache_;
  std::string ckpt_path_, log_path_;
  std::ofstream log_;
  RunResult r_;
  std::int64_t step_ = 0, session_steps_ = 0, batches_epoch_ = 0;
  std::unique_ptr<fx::Batches> batches_;
  double frozen_sum_ = 0.0, busy_sum_ = 0.0;
  RunBill bill_;  // work and time, step by step (accounting.hpp)
  std::int64_t cache_hits0_ = 0, cache_misses0_ = 0;  // from the sessions before a resume
  std::int64_t unfreeze_at_ = -1;  // LP-FT: the step every block trains again (unfreeze_all_at)
  static constexpr std::int64_t kMaxSkipsInARow = 10;
  std::int64_t skipped_ = 0, skip_offset_ = 0, skipped_in_a_row_ = 0;  // skip_batch
  std::int64_t injected_at_ = -1;  // inject_fault: the step whose first attempt failed
  std::vector<double> losses_;
  std::vector<Row> rows_;
  std::vector<torch::Tensor> pending_;
  std::size_t seen_events_ = 0;
};

/// The whole run of one strategy, start to finish (no interleaving).
template <class C, class S, class P>
RunResult run_strategy(const RunContext& ctx, const std::string& name,
                       const typename StrategyRun<C, S, P>::Configure& configure) {
  StrategyRun<C, S, P> run(ctx, name, configure);
  while (!run.done()) run.step();
  return run.finish();
}

}  // namespace frost_train
