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

/// Where the central directory is: its number of entries, size and offset.
struct Directory {
  std::uint64_t entries = 0, size = 0, offset = 0;
};

/// One central-directory entry: the record's name, compression method,
/// CRC-32, sizes and the offset of its local header.
struct Entry {
  std::string name;
  std::uint64_t method = 0, crc = 0, csize = 0, usize = 0, local = 0;
};

/// The archive `path` open for the check; every failure names it (as `what`)
/// and says `fix`.
class Checker {
 public:
  Checker(const std::string& path, const std::string& what, const std::string& fix)
      : in_(path, std::ios::binary), path_(path), what_(what), fix_(fix) {
    require(static_cast<bool>(in_), "cannot open ", what, " ", path, " to check it");
    in_.seekg(0, std::ios::end);
    size_ = static_cast<std::uint64_t>(in_.tellg());
  }

  void check_all() {
    const Directory dir = directory();
    const auto cd = read_at(dir.offset, dir.size);
    std::uint64_t p = 0;
    for (std::uint64_t k = 0; k < dir.entries; ++k) {
      const Entry e = entry(cd, p);
      if (e.method != 0) continue;  // compressed: LibTorch never writes these
      check_record(e);
    }
  }

 private:
  std::vector<unsigned char> read_at(std::uint64_t off, std::uint64_t n) {
    // Checked before allocating: `n` and `off` come from the file's directory,
    // and a damaged one must not make frost allocate more than the file holds
    // (nor wrap off + n).
    require(off <= size_ && n <= size_ - off, what_, " ", path_,
            " is truncated or corrupt: its zip directory points past the end of the file; ", fix_);
    std::vector<unsigned char> buf(n);
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(off));
    in_.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n));
    require(in_.gcount() == static_cast<std::streamsize>(n), what_, " ", path_,
            " is truncated or corrupt: its zip directory points past the end of the file; ", fix_);
    return buf;
  }

  [[noreturn]] void corrupt(const std::string& problem) const {
    fail(what_, " ", path_, " is corrupt: ", problem,
         "; the file was damaged after it was written; ", fix_);
  }

  /// The end-of-central-directory record (22 bytes + a comment of up to
  /// 65535 bytes) and, when its fields overflow, its zip64 form.
  Directory directory() {
    const std::uint64_t tail = std::min<std::uint64_t>(size_, 22 + 65535);
    const auto t = read_at(size_ - tail, tail);
    std::int64_t eocd = -1;
    for (std::int64_t i = static_cast<std::int64_t>(tail) - 22; i >= 0; --i)
      if (le(&t[static_cast<std::size_t>(i)], 4) == 0x06054b50) {
        eocd = i;
        break;
      }
    if (eocd < 0) corrupt("no zip end-of-directory record");
    const unsigned char* e = &t[static_cast<std::size_t>(eocd)];
    Directory d{le(e + 10, 2), le(e + 12, 4), le(e + 16, 4)};
    if (d.entries == 0xFFFF || d.size == 0xFFFFFFFFu || d.offset == 0xFFFFFFFFu) {
      // zip64: a 20-byte locator just before the record points at the zip64 record.
      const std::uint64_t at = size_ - tail + static_cast<std::uint64_t>(eocd);
      if (at < 20) corrupt("no zip64 locator");
      const auto loc = read_at(at - 20, 20);
      if (le(loc.data(), 4) != 0x07064b50) corrupt("no zip64 locator");
      const auto z = read_at(le(loc.data() + 8, 8), 56);
      if (le(z.data(), 4) != 0x06064b50) corrupt("no zip64 end-of-directory record");
      d = {le(z.data() + 32, 8), le(z.data() + 40, 8), le(z.data() + 48, 8)};
    }
    return d;
  }

  /// The central-directory entry at `p` of `cd`; `p` moves past it.
  Entry entry(const std::vector<unsigned char>& cd, std::uint64_t& p) const {
    if (p + 46 > cd.size() || le(&cd[p], 4) != 0x02014b50) corrupt("its zip directory is damaged");
    const unsigned char* c = &cd[p];
    Entry r;
    r.method = le(c + 10, 2);
    r.crc = le(c + 16, 4);
    r.csize = le(c + 20, 4);
    r.usize = le(c + 24, 4);
    r.local = le(c + 42, 4);
    const std::uint64_t nlen = le(c + 28, 2), xlen = le(c + 30, 2), clen = le(c + 32, 2);
    if (p + 46 + nlen + xlen + clen > cd.size()) corrupt("its zip directory is damaged");
    r.name.assign(reinterpret_cast<const char*>(c + 46), nlen);
    zip64_sizes(c + 46 + nlen, xlen, r);
    p += 46 + nlen + xlen + clen;
    return r;
  }

  /// zip64 extended information in the extra field `x` (`xlen` bytes): the
  /// 8-byte values of the fields set to 0xFFFFFFFF, in order.
  void zip64_sizes(const unsigned char* x, std::uint64_t xlen, Entry& r) const {
    for (std::uint64_t at = 0; at + 4 <= xlen;) {
      const unsigned char* h = x + at;
      const std::uint64_t id = le(h, 2), len = le(h + 2, 2);
      if (at + 4 + len > xlen) corrupt("its zip directory is damaged (record '" + r.name + "')");
      if (id == 0x0001) {
        std::uint64_t q = 4;
        for (std::uint64_t* f : {&r.usize, &r.csize, &r.local})
          if (*f == 0xFFFFFFFFu && q + 8 <= 4 + len) {
            *f = le(h + q, 8);
            q += 8;
          }
      }
      at += 4 + len;
    }
  }

  /// A stored record's data, found through its local header, against its CRC-32.
  void check_record(const Entry& e) {
    if (e.csize != e.usize) corrupt("record '" + e.name + "' has two sizes");
    const auto lh = read_at(e.local, 30);
    if (le(lh.data(), 4) != 0x04034b50) corrupt("record '" + e.name + "' has no local header");
    const std::uint64_t off = e.local + 30 + le(lh.data() + 26, 2) + le(lh.data() + 28, 2);
    if (off + e.csize > size_) corrupt("record '" + e.name + "' is cut short (a truncated file)");
    crc_.reset();
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(off));
    for (std::uint64_t left = e.csize; left > 0;) {
      const auto n = static_cast<std::streamsize>(std::min<std::uint64_t>(left, chunk_.size()));
      in_.read(chunk_.data(), n);
      if (in_.gcount() != n) corrupt("record '" + e.name + "' is cut short (a truncated file)");
      crc_.process_bytes(chunk_.data(), static_cast<std::size_t>(n));
      left -= static_cast<std::uint64_t>(n);
    }
    if (crc_.checksum() != e.crc)
      corrupt("record '" + e.name + "' fails its CRC-32 check (stored " + std::to_string(e.crc) +
              ", computed " + std::to_string(crc_.checksum()) + ")");
  }

  std::ifstream in_;
  const std::string& path_;
  const std::string& what_;
  const std::string& fix_;
  std::uint64_t size_ = 0;
  boost::crc_32_type crc_;
  std::vector<char> chunk_ = std::vector<char>(std::size_t{1} << 20);
};
}  // namespace zip

/// Throws frost::Error naming `path` (as `what`: "checkpoint") and the record
/// when a stored record's data does not match its CRC-32, or the zip
/// directory is damaged; `fix` says what to do instead.
inline void check_zip_crcs(const std::string& path, const std::string& what = "checkpoint",
                           const std::string& fix = "use an earlier checkpoint") {
  zip::Checker(path, what, fix).check_all();
}

}  // namespace frost::detail
