#pragma once
// Checkpointing a FreezeController: its own state (step, frozen blocks, stop
// flag, timeline) and, where the policies have them, their internals, so a
// resumed run makes the same decisions as an uninterrupted one.
//
//   torch::serialize::OutputArchive ar;
//   frost::save(ctl, ar);                  // or nest it next to the model's archive
//   frost::save_file(ar, "run.ckpt");      // atomic: temp file + rename
//
// A policy that keeps state between steps opts in with
//   void save(torch::serialize::OutputArchive&) const;
//   void load(torch::serialize::InputArchive&);
// A policy without them is reconstructed from its options only.
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstdio>
#include <string>
#include <vector>

#include "frost/concepts/detect.hpp"
#include "frost/detail/archive.hpp"
#include "frost/error.hpp"
#include "frost/timeline.hpp"

namespace frost {

namespace detail {
template <class P>
using has_save = decltype(std::declval<const P&>().save(std::declval<torch::serialize::OutputArchive&>()));
template <class P>
using has_load = decltype(std::declval<P&>().load(std::declval<torch::serialize::InputArchive&>()));

template <class P>
void save_policy(const P& p, torch::serialize::OutputArchive& ar, const std::string& key) {
  if constexpr (concepts::is_detected<has_save, P>) {
    torch::serialize::OutputArchive sub;
    p.save(sub);
    ar.write(key, sub);
  }
}
template <class P>
void load_policy(P& p, torch::serialize::InputArchive& ar, const std::string& key) {
  if constexpr (concepts::is_detected<has_load, P>) {
    torch::serialize::InputArchive sub;
    if (!ar.try_read(key, sub))
      fail("checkpoint has no state for the ", key, "; it was written by a different strategy");
    p.load(sub);
  }
}

}  // namespace detail

/// Writes the controller's state (and its policies', where they can) into `ar`.
template <class Controller>
void save(const Controller& ctl, torch::serialize::OutputArchive& ar) {
  const auto s = ctl.state_snapshot();
  ar.write("frost.step", c10::IValue(s.step));
  ar.write("frost.stopped", c10::IValue(s.stopped));
  std::vector<std::int64_t> frozen(s.frozen.begin(), s.frozen.end());
  ar.write("frost.frozen", c10::IValue(frozen));
  std::vector<std::int64_t> steps, blocks, kinds;
  std::vector<double> stats;
  std::vector<std::string> names, policies, details;
  for (const auto& e : s.timeline) {
    steps.push_back(e.step);
    blocks.push_back(e.block);
    kinds.push_back(static_cast<std::int64_t>(e.kind));
    stats.push_back(e.statistic);
    names.push_back(e.block_name);
    policies.push_back(e.policy);
    details.push_back(e.detail);
  }
  ar.write("frost.timeline.step", c10::IValue(steps));
  ar.write("frost.timeline.block", c10::IValue(blocks));
  ar.write("frost.timeline.kind", c10::IValue(kinds));
  ar.write("frost.timeline.statistic", c10::IValue(stats));
  ar.write("frost.timeline.block_name", c10::IValue(c10::List<std::string>(names)));
  ar.write("frost.timeline.policy", c10::IValue(c10::List<std::string>(policies)));
  ar.write("frost.timeline.detail", c10::IValue(c10::List<std::string>(details)));
  detail::save_policy(const_cast<Controller&>(ctl).criterion(), ar, "criterion");
  detail::save_policy(const_cast<Controller&>(ctl).stop_rule(), ar, "stop rule");
}

/// Restores what save() wrote into a controller built over the same model,
/// block map and strategy (blocks frozen then are frozen again now).
template <class Controller>
void load(Controller& ctl, torch::serialize::InputArchive& ar) {
  typename Controller::State s;
  s.step = detail::read_value(ar, "frost.step").toInt();
  s.stopped = detail::read_value(ar, "frost.stopped").toBool();
  for (auto f : detail::read_value(ar, "frost.frozen").toIntVector())
    s.frozen.push_back(static_cast<char>(f != 0));
  const auto steps = detail::read_value(ar, "frost.timeline.step").toIntVector();
  const auto blocks = detail::read_value(ar, "frost.timeline.block").toIntVector();
  const auto kinds = detail::read_value(ar, "frost.timeline.kind").toIntVector();
  const auto stats = detail::read_value(ar, "frost.timeline.statistic").toDoubleVector();
  const auto names = detail::read_value(ar, "frost.timeline.block_name").toList();
  const auto policies = detail::read_value(ar, "frost.timeline.policy").toList();
  const auto details = detail::read_value(ar, "frost.timeline.detail").toList();
  for (std::size_t i = 0; i < steps.size(); ++i) {
    Event e;
    e.step = steps[i];
    e.block = blocks[i];
    e.kind = static_cast<EventKind>(kinds[i]);
    e.statistic = stats[i];
    e.block_name = names.get(i).toStringRef();
    e.policy = policies.get(i).toStringRef();
    e.detail = details.get(i).toStringRef();
    s.timeline.push_back(std::move(e));
  }
  ctl.restore(s);
  detail::load_policy(ctl.criterion(), ar, "criterion");
  detail::load_policy(ctl.stop_rule(), ar, "stop rule");
}

/// Writes `ar` to `path` atomically: to a temporary file in the same directory,
/// then renamed over `path`, so a run killed mid-write leaves the previous
/// checkpoint intact.
inline void save_file(torch::serialize::OutputArchive& ar, const std::string& path) {
  const std::string tmp = path + ".tmp";
  ar.save_to(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    detail::fail("could not move checkpoint ", tmp, " to ", path,
                 "; check that the directory is writable");
  }
}

/// Reads a checkpoint written by save_file (throws frost::Error when missing).
inline void load_file(torch::serialize::InputArchive& ar, const std::string& path,
                      const c10::optional<c10::Device>& device = c10::nullopt) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) detail::fail("no checkpoint at ", path);
  std::fclose(f);
  ar.load_from(path, device);
}

}  // namespace frost
