#pragma once
// criteria::AttentionPredictor — SmartFRZ's attention-guided layer freezing
// (../shared/papers/smartfrz-attention-predictor-freezing.txt, §3.1-3.3,
// Figure 1): a predictor trained offline on CKA-labelled weight histories
// (frost::predictor::FreezePredictor, shipped in data/, regenerated with
// `frost-predictor`, docs/predictor.md) decides when each block is ready.
//
// Recording (every record_every steps, before the step's forward, on the
// device): every block's tailored subset of weights (predictor::Tailor, drawn
// once from `seed`) is gathered, encoded against the previous record
// (predictor::encode) and written into a ring buffer of the last `window`
// records per block: [blocks, window, subset] float32 next to the parameters,
// 30 x 1024 x 4 B = 120 KiB per block. No host read.
//
// Freezing stage (every `every` steps, by default each epoch's end as in the
// paper's CKA experiment): every training block with at least `min_records`
// records is judged, in any order (SmartFRZ does not force sequential
// freezing; ControllerOptions().in_order(true) does): the predictor gives
// P(freeze) for its latest window (eq. 1-4), one [blocks] tensor goes through
// the reducer and is read once; a block freezes when P(freeze) > threshold
// (0.5: the argmax of eq. 4). Frozen blocks are no longer judged (their
// records are ignored); a block back in training (a user's unfreeze) starts
// its history afresh.
//
// The predictor is loaded in setup() from `predictor` (a path), else the
// shipped file (predictor::default_path(): $FROST_PREDICTOR, else where the
// build or the installed package put it); a missing or incompatible file is a
// frost::Error. record_every and window default to what it was trained with.
//
// What it reads is weights only (a block's conv kernels and batch-norm scales
// count like a transformer's matrices; running statistics are buffers, not
// read), so it works unchanged on a CNN: the "attention" is inside the
// predictor, over the weight history, not the model's attention maps.
//
// Cost between freezing stages: every record_every steps one index_select per
// parameter, one cat, stack, a few elementwise ops on [blocks, subset] and one
// copy into the ring: a handful of small kernels, independent of the model's
// size beyond the parameter count. At a stage: one predictor pass over
// [judged, window, subset] (0.12 GFLOP per block) and one host read.
#include <ATen/ATen.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "frost/concepts/criterion.hpp"
#include "frost/detail/archive.hpp"
#include "frost/error.hpp"
#include "frost/options.hpp"
#include "frost/predictor/freeze_predictor.hpp"
#include "frost/predictor/tailor.hpp"

namespace frost::criteria {

struct AttentionPredictorOptions {
  FROST_OPTIONS(
      /// The predictor file; empty: the shipped one (predictor::default_path()).
      (std::string, predictor, ""),
      /// Steps between records; 0: the cadence the predictor was trained with.
      (std::int64_t, record_every, 0),
      /// Steps between freezing stages; 0: at each epoch's end (needs controller.steps_per_epoch).
      (std::int64_t, every, 0),
      /// Freeze when the predictor's P(freeze) is above this (0.5: eq. 4's argmax).
      (double, threshold, 0.5),
      /// Records a block needs before it is judged; 0: a full window.
      (std::int64_t, min_records, 0),
      /// Seed of the tailored subsets (the same seed samples the same weights).
      (std::int64_t, seed, 0));
};

class AttentionPredictor {
 public:
  using Options = AttentionPredictorOptions;
  static constexpr const char* name = "AttentionPredictor";

  explicit AttentionPredictor(const Options& o = {}) : o_(o) {
    detail::require(o_.record_every() >= 0, "criterion.record_every is ", o_.record_every(),
                    "; give steps between records, or 0 for the predictor's own cadence");
    detail::require(o_.every() >= 0, "criterion.every is ", o_.every(),
                    "; give steps between freezing stages, or 0 for each epoch's end");
    detail::require(std::isfinite(o_.threshold()) && o_.threshold() > 0.0 && o_.threshold() < 1.0,
                    "criterion.threshold is ", o_.threshold(),
                    "; give a probability in (0, 1) (0.5: freeze when the predictor says so)");
    detail::require(o_.min_records() >= 0, "criterion.min_records is ", o_.min_records(),
                    "; give 1 or more records, or 0 for a full window");
  }

  void setup(const CriterionSetup& s) {
    detail::require(s.blocks != nullptr && !s.blocks->empty(), name, ": no blocks");
    const std::string path = o_.predictor().empty() ? predictor::default_path() : o_.predictor();
    detail::require(!path.empty(), name,
                    ": no predictor file: this build of frost knows no shipped predictor; set "
                    "criterion.predictor (or $FROST_PREDICTOR) to a file written by "
                    "`frost-predictor train`");
    net_ = predictor::load(path);
    path_ = path;
    const auto& po = net_->options;
    record_every_ = o_.record_every() > 0 ? o_.record_every() : po.record_every();
    window_ = po.window();
    min_records_ = o_.min_records() > 0 ? o_.min_records() : window_;
    detail::require(min_records_ <= window_, "criterion.min_records is ", min_records_,
                    " but the predictor's window holds ", window_,
                    " records; give at most ", window_, ", or 0 for a full window");
    every_ = o_.every() > 0 ? o_.every() : s.steps_per_epoch;
    detail::require(every_ > 0, name,
                    " holds a freezing stage at each epoch's end by default but "
                    "controller.steps_per_epoch is 0 (unknown); set it, or criterion.every");
    const auto device = (*s.blocks)[0].params.front().device();
    tailor_.setup(*s.blocks, po.subset(), static_cast<std::uint64_t>(o_.seed()));
    net_->to(device);
    const auto nb = static_cast<std::int64_t>(s.blocks->size());
    at::NoGradGuard ng;
    auto f = at::TensorOptions().dtype(at::kFloat).device(device);
    ring_ = at::zeros({nb, window_, po.subset()}, f);
    last_ = at::zeros({nb, po.subset()}, f);
    count_.assign(static_cast<std::size_t>(nb), 0);
    primed_.assign(static_cast<std::size_t>(nb), 0);
    pos_ = 0;
    records_ = 0;
    probability_.assign(static_cast<std::size_t>(nb), std::numeric_limits<double>::quiet_NaN());
  }

  /// Gradients are not read: after_backward() is not needed.
  void observe(const StepState&) {}

  /// Records before the forward of every record_every-th step: the weights
  /// after the previous step.
  void before_step(const StepState& s, Decisions&) {
    if (s.step % record_every_ != 0) return;
    at::NoGradGuard ng;
    // What the record overwrites, kept until the step ends: an abandoned step
    // (abort_step) takes its record back, and its retry records the same.
    undo_ = Undo{true, ring_.select(1, pos_).clone(), last_.clone(), pos_, records_, count_, primed_};
    auto w = tailor_.gather();
    ring_.select(1, pos_).copy_(predictor::encode(w, last_));
    last_.copy_(w);
    pos_ = (pos_ + 1) % window_;
    ++records_;
    for (std::size_t b = 0; b < count_.size(); ++b) {
      if (!s.trains(static_cast<std::int64_t>(b))) continue;
      if (primed_[b])
        count_[b] = std::min<std::int64_t>(count_[b] + 1, window_);
      else
        primed_[b] = 1;  // the first record has no predecessor: no change to encode
    }
  }

  /// The step completed: its record stays.
  void commit_step(const StepState&) { undo_ = Undo{}; }
  /// The step was abandoned: its record is taken back.
  void abort_step(const StepState&) {
    if (!undo_.armed) return;
    at::NoGradGuard ng;
    ring_.select(1, undo_.pos).copy_(undo_.column);
    last_.copy_(undo_.last);
    pos_ = undo_.pos;
    records_ = undo_.records;
    count_ = std::move(undo_.count);
    primed_ = std::move(undo_.primed);
    undo_ = Undo{};
  }

  bool decision_point(const StepState& s) const {
    return o_.every() == 0 ? s.epoch_end : (s.step + 1) % every_ == 0;
  }

  /// [blocks] float32 on the device: P(freeze) of every judged block, -1 for
  /// the others; undefined when none is judged (nothing to read).
  at::Tensor statistics(const StepState& s) {
    std::vector<std::int64_t> judged;
    for (std::size_t b = 0; b < count_.size(); ++b)
      if (s.trains(static_cast<std::int64_t>(b)) && count_[b] >= min_records_)
        judged.push_back(static_cast<std::int64_t>(b));
    if (judged.empty()) return at::Tensor();
    at::NoGradGuard ng;
    const auto device = ring_.device();
    auto idx = at::tensor(judged, at::kLong).to(device);
    // Oldest record first: the next write position holds the oldest.
    auto x = ring_.index_select(0, idx).roll(-pos_, 1);
    auto valid = at::zeros({static_cast<std::int64_t>(judged.size()), window_}, at::kBool);
    for (std::size_t j = 0; j < judged.size(); ++j)
      valid[static_cast<std::int64_t>(j)].narrow(0, window_ - count_[static_cast<std::size_t>(judged[j])],
                                                 count_[static_cast<std::size_t>(judged[j])]).fill_(true);
    auto p = at::softmax(net_->forward(x, valid.to(device)), 1).select(1, 1);
    auto out = at::full({static_cast<std::int64_t>(count_.size())}, -1.0,
                        at::TensorOptions().dtype(at::kFloat).device(device));
    return out.index_copy(0, idx, p.to(at::kFloat));
  }

  void decide(const StepState& s, HostValues p, Decisions& out) {
    ++stages_;
    std::fill(probability_.begin(), probability_.end(), std::numeric_limits<double>::quiet_NaN());
    if (p.empty()) return;
    detail::require(p.size() == count_.size(), name, ": got ", p.size(), " statistics for ",
                    count_.size(), " blocks");
    for (std::size_t b = 0; b < count_.size(); ++b) {
      const auto blk = static_cast<std::int64_t>(b);
      if (!s.trains(blk) || p[b] < 0.0) continue;
      probability_[b] = p[b];
      if (!std::isfinite(p[b])) {
        out.warn(blk, p[b], "predictor output is not finite (non-finite weights?); not judged");
        continue;
      }
      if (p[b] > o_.threshold()) {
        std::ostringstream d;
        d << "P(freeze) " << p[b] << " > " << o_.threshold() << " over " << count_[b] << " records";
        out.freeze(blk, p[b], d.str());
      }
    }
  }

  /// A block back in training records a fresh history.
  void on_state_change(std::int64_t block, BlockState, BlockState to) {
    if (!meaning(to).trains || block < 0 || static_cast<std::size_t>(block) >= count_.size())
      return;
    count_[static_cast<std::size_t>(block)] = 0;
    primed_[static_cast<std::size_t>(block)] = 0;
  }

  // --- checkpointing --------------------------------------------------------
  /// The ring, the previous record, the counters and the tailored indices (a
  /// resumed run samples the same weights and judges the same windows).
  void save(torch::serialize::OutputArchive& ar) const {
    ar.write("ring", ring_, true);
    ar.write("last", last_, true);
    ar.write("indices", tailor_.indices(), true);
    ar.write("count", c10::IValue(count_));
    std::vector<std::int64_t> primed(primed_.begin(), primed_.end());
    ar.write("primed", c10::IValue(primed));
    ar.write("pos", c10::IValue(pos_));
    ar.write("records", c10::IValue(records_));
    ar.write("stages", c10::IValue(stages_));
    ar.write("record_every", c10::IValue(record_every_));
    ar.write("window", c10::IValue(window_));
  }
  void load(torch::serialize::InputArchive& ar) {
    using frost::detail::read_value;
    at::Tensor ring, last, indices;
    ar.read("ring", ring, true);
    ar.read("last", last, true);
    ar.read("indices", indices, true);
    const auto count = read_value(ar, "count").toIntVector();
    const auto primed = read_value(ar, "primed").toIntVector();
    const auto pos = read_value(ar, "pos").toInt();
    const auto records = read_value(ar, "records").toInt();
    const auto stages = read_value(ar, "stages").toInt();
    const auto record_every = read_value(ar, "record_every").toInt();
    const auto window = read_value(ar, "window").toInt();
    detail::require(record_every == record_every_ && window == window_, name,
                    ": the state was recorded every ", record_every, " steps in windows of ", window,
                    ", this run records every ", record_every_, " in windows of ", window_,
                    "; resume with the same criterion.record_every and predictor");
    detail::require(ring.sizes() == ring_.sizes() && last.sizes() == last_.sizes() &&
                        count.size() == count_.size() && primed.size() == primed_.size(),
                    name, ": the state holds records of shape ", ring.sizes(), " for ", count.size(),
                    " blocks; this block map and predictor need ", ring_.sizes());
    detail::require(indices.sizes() == tailor_.indices().sizes() && indices.equal(tailor_.indices()),
                    name, ": the state's tailored weights differ from this run's (another seed, "
                    "model or block map); resume with the same criterion.seed and model");
    detail::require(pos >= 0 && pos < window_, name, ": ring position ", pos, " out of range");
    for (auto c : count) detail::require(c >= 0 && c <= window_, name, ": a record count of ", c);
    at::NoGradGuard ng;
    ring_.copy_(ring);
    last_.copy_(last);
    count_ = count;
    primed_.assign(primed.begin(), primed.end());
    pos_ = pos;
    records_ = records;
    stages_ = stages;
  }

  // --- inspection -----------------------------------------------------------
  /// Per block: P(freeze) at the last freezing stage (NaN: not judged).
  const std::vector<double>& probabilities() const noexcept { return probability_; }
  /// Per block: valid records in its window.
  const std::vector<std::int64_t>& records_per_block() const noexcept { return count_; }
  std::int64_t records() const noexcept { return records_; }
  std::int64_t stages() const noexcept { return stages_; }
  std::int64_t record_every() const noexcept { return record_every_; }
  std::int64_t window() const noexcept { return window_; }
  const std::string& predictor_path() const noexcept { return path_; }
  const predictor::Tailor& tailor() const noexcept { return tailor_; }

 private:
  Options o_;
  predictor::FreezePredictor net_{nullptr};
  predictor::Tailor tailor_;
  std::string path_;
  std::int64_t record_every_ = 1, window_ = 1, min_records_ = 1, every_ = 1;
  at::Tensor ring_;  // [blocks, window, subset] encoded records, ring order
  at::Tensor last_;  // [blocks, subset] the previous record's raw subset
  std::vector<std::int64_t> count_;
  std::vector<char> primed_;
  std::int64_t pos_ = 0, records_ = 0, stages_ = 0;
  struct Undo {  // this step's record, until the step ends
    bool armed = false;
    at::Tensor column, last;
    std::int64_t pos = 0, records = 0;
    std::vector<std::int64_t> count;
    std::vector<char> primed;
  } undo_;
  std::vector<double> probability_;
};

}  // namespace frost::criteria
