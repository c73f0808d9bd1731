#pragma once
// Target idx: the IDX reader of the examples (examples/common/idx.hpp), from
// bytes (parse_idx) and, for a gzip stream, through the file reader
// (read_idx: zlib, then parse_idx). An accepted file's dimensions multiply to
// exactly its payload, which is what at::from_blob over it relies on.
#include "common.hpp"
#include "common/idx.hpp"

namespace frost_fuzz::idx {

inline void check(const frost_examples::IdxData& d) {
  unsigned __int128 total = 1;
  for (const auto n : d.dims) {
    if (n < 0) broken("idx", "a negative dimension");
    total *= static_cast<unsigned __int128>(n);
  }
  if (total != d.data.size()) broken("idx", "the dimensions do not multiply to the payload");
}

inline int run(const std::uint8_t* data, std::size_t size) {
  try {
    check(frost_examples::parse_idx(std::vector<std::uint8_t>(data, data + size), "fuzz.idx"));
  } catch (const frost_examples::DataError&) {
  }
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {  // gzip: the file path too
    static MemFile file("frost-fuzz-idx");
    try {
      check(frost_examples::read_idx(file.write(data, size)));
    } catch (const frost_examples::DataError&) {
    }
  }
  return 0;
}

}  // namespace frost_fuzz::idx
