#pragma once
// Reading one value of a torch::serialize::InputArchive with a frost::Error
// (not a bare c10::Error) when the key is missing: the controller's checkpoint,
// the policies' save/load and the example trainer all read checkpoints this way.
#include <torch/serialize/input-archive.h>

#include <string>

#include "frost/error.hpp"

namespace frost::detail {

inline c10::IValue read_value(torch::serialize::InputArchive& ar, const std::string& key) {
  c10::IValue v;
  if (!ar.try_read(key, v))
    fail("checkpoint has no '", key,
         "'; it was written by another program, version or strategy than the one reading it");
  return v;
}

}  // namespace frost::detail
