#pragma once
// examples/train/text_data.hpp — frost-train's text task for --model minilm-l6:
// WordNet noun glosses labelled with their supersense (docs/minilm.md), as
// scripts/wordnet_prepare.py prepared and tokenized them (the `tokenizers`
// package, BERT's uncased WordPiece) into one safetensors file:
//
//   {train,val,test}_ids      int64 [N, L]  [CLS] ... [SEP], then [PAD] = 0
//   {train,val,test}_labels   int64 [N]     0 .. C-1
//   {train,val,test}_offsets  int64 [N]     the synset's offset in data.noun
//   __metadata__              frost.task, frost.classes, frost.seq_len, frost.prep_key
//
// read here with frost::io::read_safetensors (which checks the file's layout)
// into the TaskData the trainer already takes: Dataset::images holds the token
// ids (the trainer only slices, shards and moves them; the model reads them).
// The file is checked before any of it is used: every tensor present with its
// dtype and a shape that agrees with the others, the labels within the classes,
// every row a [CLS] ... [SEP] sequence with padding only at its end.
#include <ATen/ATen.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "frost/io/safetensors.hpp"
#include "idx.hpp"

#include "cli.hpp"
#include "data.hpp"

namespace frost_train {

/// The task's tag in the file's metadata (frost.task).
inline constexpr const char* kTextTask = "wordnet-noun-supersense";

/// Where scripts/wordnet-data.sh writes the prepared task: $FROST_TEXT_DATA if
/// set, else ${FROST_CACHE_DIR:-$HOME/.cache/frost}/wordnet-supersense/supersense.safetensors.
inline std::string default_text_data_path() {
  if (const char* p = std::getenv("FROST_TEXT_DATA"); p && *p) return p;
  std::string dir;
  if (const char* c = std::getenv("FROST_CACHE_DIR"); c && *c) {
    dir = c;
  } else {
    const char* home = std::getenv("HOME");
    dir = std::string(home && *home ? home : ".") + "/.cache/frost";
  }
  return dir + "/wordnet-supersense/supersense.safetensors";
}

/// The text task: the splits, the class names (label i is classes[i]), the
/// fixed length L and the mean real length of a training gloss in tokens.
struct TextTask {
  TaskData data;
  std::vector<std::string> classes;
  std::int64_t seq_len = 0;
  double mean_tokens = 0;
};

namespace detail {

[[noreturn]] inline void text_error(const std::string& path, const std::string& what) {
  throw frost_examples::DataError(
      "text task file " + path + ": " + what +
      "; it is not a file scripts/wordnet_prepare.py wrote: delete it and run "
      "`bash scripts/wordnet-data.sh` (or bash scripts/main.sh --model minilm-l6), or give "
      "--data FILE");
}

/// The split `name`'s ids and labels, checked against each other, the classes and L.
inline frost_examples::Dataset text_split(const frost::io::SafeTensors& st, const std::string& path,
                                          const std::string& name, std::int64_t classes,
                                          std::int64_t seq_len) {
  auto get = [&](const std::string& key) -> at::Tensor {
    for (const auto& [k, t] : st.tensors)
      if (k == key) {
        if (t.scalar_type() != at::kLong) text_error(path, "tensor " + key + " is not int64 (I64)");
        return t;
      }
    text_error(path, "no tensor " + key);
  };
  const at::Tensor ids = get(name + "_ids");
  const at::Tensor labels = get(name + "_labels");
  if (ids.dim() != 2 || ids.size(1) != seq_len) {
    std::string shape;
    for (const auto n : ids.sizes()) shape += (shape.empty() ? "" : ", ") + std::to_string(n);
    text_error(path, name + "_ids has shape [" + shape + "], expected [N, " +
                         std::to_string(seq_len) + "] (frost.seq_len)");
  }
  if (labels.dim() != 1 || labels.size(0) != ids.size(0))
    text_error(path, name + "_labels must be [" + std::to_string(ids.size(0)) + "], one per row of " +
                         name + "_ids");
  if (ids.size(0) == 0) text_error(path, "the " + name + " split is empty");
  if (labels.min().item<std::int64_t>() < 0 || labels.max().item<std::int64_t>() >= classes)
    text_error(path, name + "_labels has a label outside 0.." + std::to_string(classes - 1) +
                         " (frost.classes names " + std::to_string(classes) + ")");
  // [CLS] first and no word piece after the first [PAD]: the model's mask is
  // ids != 0, so a hole would be read as padding in the middle of a gloss.
  const at::Tensor real = ids.ne(0);
  if (!real.select(1, 0).all().item<bool>()) text_error(path, name + "_ids has an empty row");
  if (ids.min().item<std::int64_t>() < 0) text_error(path, name + "_ids has a negative id");
  if (seq_len > 1 &&
      (real.narrow(1, 1, seq_len - 1).to(at::kInt) - real.narrow(1, 0, seq_len - 1).to(at::kInt))
              .gt(0)
              .any()
              .item<bool>())
    text_error(path, name + "_ids has a word piece after padding");
  return {ids.contiguous(), labels.contiguous()};
}

inline std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace detail

/// The task in `path`, its splits cut to the limits (-1: all; a prefix of the
/// training split is balanced, the file interleaves its classes). Throws
/// frost_examples::DataError naming the file, what is wrong and the fix.
inline TextTask load_text_task(const std::string& path, std::int64_t train_limit = -1,
                               std::int64_t val_limit = -1, std::int64_t test_limit = -1) {
  if (!std::ifstream(path))
    throw frost_examples::DataError(
        "no text task file at " + path + ": run `bash scripts/wordnet-data.sh` once (WordNet's "
        "glosses from Debian's wordnet-base, tokenized with the `tokenizers` package; cached), "
        "or give --data FILE");
  frost::io::SafeTensors st;
  try {
    st = frost::io::read_safetensors(path);
  } catch (const std::exception& e) {
    throw frost_examples::DataError(e.what());
  }
  auto meta = [&](const std::string& key) {
    const auto it = st.metadata.find(key);
    if (it == st.metadata.end()) detail::text_error(path, "its metadata lacks " + key);
    return it->second;
  };
  if (meta("frost.task") != kTextTask)
    detail::text_error(path, "frost.task is '" + meta("frost.task") + "', not " + kTextTask);
  TextTask t;
  t.classes = detail::split_names(meta("frost.classes"));
  if (t.classes.size() < 2) detail::text_error(path, "frost.classes names fewer than two classes");
  t.seq_len = std::atoll(meta("frost.seq_len").c_str());
  if (t.seq_len < 3) detail::text_error(path, "frost.seq_len is below 3");
  const auto c = static_cast<std::int64_t>(t.classes.size());
  t.data.train = detail::text_split(st, path, "train", c, t.seq_len);
  t.data.val = detail::text_split(st, path, "val", c, t.seq_len);
  t.data.test = detail::text_split(st, path, "test", c, t.seq_len);
  if (train_limit >= 0) t.data.train = frost_examples::take_first(t.data.train, train_limit);
  if (val_limit >= 0) t.data.val = frost_examples::take_first(t.data.val, val_limit);
  if (test_limit >= 0) t.data.test = frost_examples::take_first(t.data.test, test_limit);
  t.mean_tokens = t.data.train.images.ne(0).sum().item<double>() /
                  static_cast<double>(t.data.train.size());
  return t;
}

/// Whether --model reads the text task (else Fashion-MNIST).
inline bool reads_text_task(const std::string& model) { return model == "minilm-l6"; }

/// The run's data: the text task for a text model (--data FILE, default
/// default_text_data_path(); its classes and mean length recorded in `cfg`
/// for the model seam, SimFreeze told the number of classes), else
/// Fashion-MNIST (load_task_data).
inline TaskData load_run_data(TrainConfig& cfg) {
  if (!reads_text_task(cfg.model))
    return load_task_data(cfg.data_dir, cfg.pretrain_limit, cfg.train_limit, cfg.test_limit,
                          cfg.val_limit);
  TextTask t = load_text_task(cfg.data_dir, cfg.train_limit, cfg.val_limit, cfg.test_limit);
  cfg.text_classes = static_cast<std::int64_t>(t.classes.size());
  cfg.text_tokens = t.mean_tokens;
  // SimFreeze keeps one class mean per label (strategies.hpp's default is
  // Fashion-MNIST's 10); unless --set gave it, the task's own count.
  for (const auto& s : cfg.strategies) {
    if (s.rfind("simfreeze", 0) != 0) continue;
    bool given = false;
    for (const auto& kv : cfg.sets)
      given = given || kv.first == "criterion.num_classes" || kv.first == s + ":criterion.num_classes";
    if (!given) cfg.sets.emplace_back(s + ":criterion.num_classes", std::to_string(cfg.text_classes));
  }
  return t.data;
}

/// The run header's words for the text task.
inline std::string describe_text_task(const TrainConfig& cfg, const TaskData& d) {
  return "no pre-training (all-MiniLM-L6-v2 weights), fine-tune on " +
         std::to_string(cfg.text_classes) + " WordNet noun supersenses (" +
         std::to_string(d.train.size()) + " glosses, validation " + std::to_string(d.val.size()) +
         ", test " + std::to_string(d.test.size()) + ", " + std::to_string(d.train.images.size(1)) +
         " tokens at most)";
}

}  // namespace frost_train
