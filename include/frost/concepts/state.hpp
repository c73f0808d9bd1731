#pragma once
// Every policy either saves and loads the state it keeps between steps, or
// says that it keeps none, so that a checkpoint resumes every composition
// exactly (see frost/checkpoint.hpp):
//
//   void save(torch::serialize::OutputArchive&) const;
//   void load(torch::serialize::InputArchive&);
//   // or
//   static constexpr bool stateless = true;
//
// Write both from one list: FROST_STATE(a, b) in the class and
// frost::save_fields / frost::load_fields (frost/state_fields.hpp) save and
// load the members a_, b_ under "a", "b", so save and load cannot drift apart.
//
// load() is called on a freshly constructed and set-up policy; it must check
// what it reads (sizes against the block map) and throw frost::Error on a
// mismatch. The controller loads into a fresh copy and only swaps it in once
// everything fitted, so a failed load changes nothing.
// (Torch-free: the archives are only named, so schedules can be checked in
// programs that do not link LibTorch; frost/concepts/state_io.hpp reads and
// writes.)
#include <string>
#include <type_traits>
#include <utility>

#include "frost/concepts/detect.hpp"

namespace torch::serialize {
class OutputArchive;
class InputArchive;
}  // namespace torch::serialize

namespace frost::concepts {
namespace ops {
template <class P>
using policy_save =
    decltype(std::declval<const P&>().save(std::declval<torch::serialize::OutputArchive&>()));
template <class P>
using policy_save_name = decltype(&P::save);
template <class P>
using policy_load =
    decltype(std::declval<P&>().load(std::declval<torch::serialize::InputArchive&>()));
template <class P>
using policy_load_name = decltype(&P::load);
template <class P>
using policy_stateless = decltype(bool{P::stateless});
}  // namespace ops

template <class P>
constexpr bool is_stateless() {
  if constexpr (is_detected<ops::policy_stateless, P>)
    return P::stateless;
  else
    return false;
}

template <class P>
constexpr bool check_state() {
  constexpr bool save = is_detected<ops::policy_save, P>, load = is_detected<ops::policy_load, P>;
  static_assert(!is_detected<ops::policy_save_name, P> || save,
                "frost: a policy's save must be `void save(torch::serialize::OutputArchive&) const`");
  static_assert(!is_detected<ops::policy_load_name, P> || load,
                "frost: a policy's load must be `void load(torch::serialize::InputArchive&)`");
  static_assert(save == load,
                "frost: a policy that saves its state must also load it (and the other way "
                "round): give it both `void save(torch::serialize::OutputArchive&) const` and "
                "`void load(torch::serialize::InputArchive&)`");
  static_assert(save || is_stateless<P>(),
                "frost: a policy keeps state between steps unless it says otherwise, and a "
                "checkpoint must resume it exactly: give it `void "
                "save(torch::serialize::OutputArchive&) const` and `void "
                "load(torch::serialize::InputArchive&)`, or declare `static constexpr bool "
                "stateless = true;` when it keeps none");
  static_assert(!(save && is_stateless<P>()),
                "frost: a policy declares `stateless = true` but has save()/load(); keep one");
  return true;
}

}  // namespace frost::concepts
