#pragma once
// Saving and loading a policy's state (see frost/concepts/state.hpp).
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <string>

#include "frost/concepts/state.hpp"

namespace frost::concepts {

/// Writes `p`'s state into a nested archive under `key` (nothing when stateless).
template <class P>
void save_state(const P& p, torch::serialize::OutputArchive& ar, const std::string& key) {
  if constexpr (!is_stateless<P>()) {
    torch::serialize::OutputArchive sub;
    p.save(sub);
    ar.write(key, sub);
  }
}
/// Reads what save_state wrote; false when `key` is missing.
template <class P>
bool load_state(P& p, torch::serialize::InputArchive& ar, const std::string& key) {
  if constexpr (!is_stateless<P>()) {
    torch::serialize::InputArchive sub;
    if (!ar.try_read(key, sub)) return false;
    p.load(sub);
  }
  return true;
}

}  // namespace frost::concepts
