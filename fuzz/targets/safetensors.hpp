#pragma once
// Target safetensors: the header (length, JSON, dtypes, shapes, offsets,
// tiling, metadata, checksum) and the tensor table, from bytes.
#include <ATen/ATen.h>

#include "common.hpp"
#include "frost/io/safetensors.hpp"

namespace frost_fuzz::safetensors {

inline int run(const std::uint8_t* data, std::size_t size) {
  const std::string in = bytes(data, size);
  frost::io::SafeTensors st;
  try {
    st = frost::io::parse_safetensors(in, "fuzz.safetensors");
  } catch (const frost::Error&) {
    return 0;  // refused, with a message: the promise
  }
  // Accepted: the tensors hold exactly the data buffer (the format tiles it),
  // so their bytes can never add up to more than the input.
  std::uint64_t total = 0;
  for (const auto& [name, t] : st.tensors) {
    if (!t.is_contiguous()) broken("safetensors", "tensor '" + name + "' is not contiguous");
    total += static_cast<std::uint64_t>(t.numel()) * static_cast<std::uint64_t>(t.element_size());
  }
  if (total > size) broken("safetensors", "the tensors hold more bytes than the file");
  return 0;
}

}  // namespace frost_fuzz::safetensors
