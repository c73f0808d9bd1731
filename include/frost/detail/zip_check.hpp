#pragma once
// frost::detail::check_zip_crcs — verifies every record of a LibTorch archive
// against the CRC-32 its zip directory stores.
//
// A LibTorch archive (torch::save, OutputArchive::save_to) is a zip file of
// stored (uncompressed) records: the pickled structure and one record per
// tensor. LibTorch builds its zip reader with the CRC checks off, so a
// flipped bit inside a tensor's record loads silently as a wrong weight.
// frost's own state carries a CRC-32 of its own (FreezeController::save); this
// check covers the rest of a checkpoint (the model, the optimizer), for
// frost::load_file. It streams the file once (1 MiB at a time) after LibTorch
// has parsed it, so its structure is known to be a zip.
//
// The zip layout used (APPNOTE.TXT, sections 4.3.7, 4.3.12, 4.3.14-16, 4.5.3):
// the end-of-central-directory record (and, for large archives, its zip64
// form) gives the central directory; each entry there gives the record's
// CRC-32, sizes and the offset of its local header, after which the data
// follows. Compressed records (never written by LibTorch) are not checked.
#include <boost/crc.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "frost/error.hpp"

namespace frost::detail {

namespace zip {
inline std::uint64_t le(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
}  // namespace zip

/// Throws frost::Error naming `path` (as `what`: "checkpoint") and the record
/// when a stored record's data does not match its CRC-32, or the zip
/// directory is damaged; `fix` says what to do instead.
inline void check_zip_crcs(const std::string& path, const std::string& what = "checkpoint",
                           const std::string& fix = "use an earlier checkpoint") {
  std::ifstream in(path, std::ios::binary);
  require(static_cast<bool>(in), "cannot open ", what, " ", path, " to check it");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uint64_t>(in.tellg());
  auto read_at = [&](std::uint64_t off, std::uint64_t n) {
    std::vector<unsigned char> buf(n);
    in.clear();
    in.seekg(static_cast<std::streamoff>(off));
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n));
    require(off + n <= size && in.gcount() == static_cast<std::streamsize>(n), what, " ", path,
            " is truncated or corrupt: its zip directory points past the end of the file; ", fix);
    return buf;
  };
  auto corrupt = [&](const std::string& problem) {
    fail(what, " ", path, " is corrupt: ", problem, "; the file was damaged after it was written; ",
         fix);
  };

  // End of central directory: 22 bytes + a comment of up to 65535 bytes.
  const std::uint64_t tail = std::min<std::uint64_t>(size, 22 + 65535);
  const auto t = read_at(size - tail, tail);
  std::int64_t eocd = -1;
  for (std::int64_t i = static_cast<std::int64_t>(tail) - 22; i >= 0; --i)
    if (zip::le(&t[static_cast<std::size_t>(i)], 4) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd < 0) corrupt("no zip end-of-directory record");
  const unsigned char* e = &t[static_cast<std::size_t>(eocd)];
  std::uint64_t entries = zip::le(e + 10, 2), cd_size = zip::le(e + 12, 4),
                cd_off = zip::le(e + 16, 4);
  if (entries == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
    // zip64: a 20-byte locator just before the record points at the zip64 record.
    const std::uint64_t at = size - tail + static_cast<std::uint64_t>(eocd);
    if (at < 20) corrupt("no zip64 locator");
    const auto loc = read_at(at - 20, 20);
    if (zip::le(loc.data(), 4) != 0x07064b50) corrupt("no zip64 locator");
    const auto z = read_at(zip::le(loc.data() + 8, 8), 56);
    if (zip::le(z.data(), 4) != 0x06064b50) corrupt("no zip64 end-of-directory record");
    entries = zip::le(z.data() + 32, 8);
    cd_size = zip::le(z.data() + 40, 8);
    cd_off = zip::le(z.data() + 48, 8);
  }
  const auto cd = read_at(cd_off, cd_size);

  boost::crc_32_type crc;
  std::vector<char> chunk(std::size_t{1} << 20);
  std::uint64_t p = 0;
  for (std::uint64_t k = 0; k < entries; ++k) {
    if (p + 46 > cd.size() || zip::le(&cd[p], 4) != 0x02014b50) corrupt("its zip directory is damaged");
    const unsigned char* c = &cd[p];
    const std::uint64_t method = zip::le(c + 10, 2), stored_crc = zip::le(c + 16, 4);
    std::uint64_t csize = zip::le(c + 20, 4), usize = zip::le(c + 24, 4), local = zip::le(c + 42, 4);
    const std::uint64_t nlen = zip::le(c + 28, 2), xlen = zip::le(c + 30, 2), clen = zip::le(c + 32, 2);
    if (p + 46 + nlen + xlen + clen > cd.size()) corrupt("its zip directory is damaged");
    const std::string name(reinterpret_cast<const char*>(c + 46), nlen);
    // zip64 extended information: the 8-byte values of the fields set to 0xFFFFFFFF, in order.
    for (std::uint64_t x = 0; x + 4 <= xlen;) {
      const unsigned char* h = c + 46 + nlen + x;
      const std::uint64_t id = zip::le(h, 2), len = zip::le(h + 2, 2);
      if (x + 4 + len > xlen) corrupt("its zip directory is damaged (record '" + name + "')");
      if (id == 0x0001) {
        std::uint64_t q = 4;
        for (std::uint64_t* f : {&usize, &csize, &local})
          if (*f == 0xFFFFFFFFu && q + 8 <= 4 + len) {
            *f = zip::le(h + q, 8);
            q += 8;
          }
      }
      x += 4 + len;
    }
    p += 46 + nlen + xlen + clen;
    if (method != 0) continue;  // compressed: LibTorch never writes these
    if (csize != usize) corrupt("record '" + name + "' has two sizes");
    const auto lh = read_at(local, 30);
    if (zip::le(lh.data(), 4) != 0x04034b50) corrupt("record '" + name + "' has no local header");
    std::uint64_t off = local + 30 + zip::le(lh.data() + 26, 2) + zip::le(lh.data() + 28, 2);
    if (off + csize > size) corrupt("record '" + name + "' is cut short (a truncated file)");
    crc.reset();
    in.clear();
    in.seekg(static_cast<std::streamoff>(off));
    for (std::uint64_t left = csize; left > 0;) {
      const auto n = static_cast<std::streamsize>(std::min<std::uint64_t>(left, chunk.size()));
      in.read(chunk.data(), n);
      if (in.gcount() != n) corrupt("record '" + name + "' is cut short (a truncated file)");
      crc.process_bytes(chunk.data(), static_cast<std::size_t>(n));
      left -= static_cast<std::uint64_t>(n);
    }
    if (crc.checksum() != stored_crc)
      corrupt("record '" + name + "' fails its CRC-32 check (stored " + std::to_string(stored_crc) +
              ", computed " + std::to_string(crc.checksum()) + ")");
  }
}

}  // namespace frost::detail
