#pragma once
// frost::detail::check_archive — everything frost can check in a LibTorch
// archive (a checkpoint, frost's nested state, a predictor) BEFORE LibTorch's
// reader (torch::jit::load) sees it: the zip structure, every record's
// CRC-32, and that nothing in it makes that reader compile or run code.
//
// A LibTorch archive (torch::save, OutputArchive::save_to) is a zip file of
// stored (uncompressed) records: the pickled structure (data.pkl,
// constants.pkl), one record per tensor (data/N), version records, and
// TorchScript source under code/ (deflated): one `class Module(Module):` per
// (nested) archive, declaring its attributes. torch::jit::load compiles that
// source and unpickles data.pkl with TorchScript's unpickler, which calls
// what the pickle's GLOBAL opcodes name, and runs a class's `__setstate__`
// method when it has one. frost's archives hold no method and name only
// tensors, storages and their own classes, so anything else is refused here
// with a frost::Error naming the file, the record and what it holds:
//  - code/*.py: every line is an attribute declaration of OutputArchive's
//    form (`class X(Module):`, `__parameters__ = [...]`, `__buffers__`,
//    `__annotations__[...] = Type`, `name : Type`), and at most 1 MiB
//    inflated (kMaxCodeBytes, checked on the directory before inflating);
//  - every *.pkl record (stored, so frost reads it itself): its opcodes walked
//    one by one, every GLOBAL on the allowlist (allowed_global), none of the
//    opcodes that name a callable otherwise (INST, OBJ, STACK_GLOBAL, EXT*);
//  - the zip: the directory inside the file, no record named twice (LibTorch
//    would read one, frost might have checked the other), only stored
//    records except deflated code/*.py, every stored record's CRC-32
//    (LibTorch builds its zip reader with CRC checks off, so a flipped bit
//    inside a tensor's record would load silently as a wrong weight).
// The code records are inflated by LibTorch's zip layer (miniz, through
// caffe2::serialize::PyTorchStreamReader), after frost's directory checks
// bounded their sizes: that reads bytes and compiles nothing.
//
// Memory: at most the file plus one code record (1 MiB); time: linear in the
// file (one pass for the CRCs, one per pickle, one per code record).
//
// The zip layout used (APPNOTE.TXT, sections 4.3.7, 4.3.12, 4.3.14-16, 4.5.3):
// the end-of-central-directory record (and, for large archives, its zip64
// form) gives the central directory; each entry there gives the record's
// CRC-32, sizes and the offset of its local header, after which the data
// follows.
#include <caffe2/serialize/inline_container.h>
#include <c10/util/Exception.h>

#include <boost/crc.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <istream>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "frost/error.hpp"

namespace frost::detail {

namespace zip {
inline std::uint64_t le(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/// The most one code/ record may inflate to. frost's largest (the example
/// trainer's ViT checkpoint) are a few hundred bytes per nested archive.
inline constexpr std::uint64_t kMaxCodeBytes = std::uint64_t(1) << 20;

inline bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
inline bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}
inline bool is_ident(const std::string& s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (const char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}
/// `s`, cut to 60 characters, with what is not printable ASCII as \xNN: for a message.
inline std::string shown(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < 60; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return s.size() > 60 ? out + "..." : out;
}

/// What a GLOBAL opcode of a frost archive may name: the archive's own
/// classes (`__torch__.Module`, mangled `__torch__.___torch_mangle_N.Module`,
/// whose code is checked to hold no method), storages, the tensor rebuild and
/// TorchScript's list and dict helpers. Not `__torch__.torch.classes.*` (C++
/// classes registered with a __setstate__ of their own), nor anything else.
inline bool allowed_global(const std::string& module, const std::string& name) {
  if (module == "__torch__") return is_ident(name);
  if (starts_with(module, "__torch__.___torch_mangle_")) {
    const std::string n = module.substr(26);
    return !n.empty() && n.find_first_not_of("0123456789") == std::string::npos && is_ident(name);
  }
  if (module == "torch") return name.size() > 7 && ends_with(name, "Storage") && is_ident(name);
  if (module == "torch._utils") return name == "_rebuild_tensor_v2";
  if (module == "collections") return name == "OrderedDict";
  if (module == "torch.jit._pickle")
    return name == "build_intlist" || name == "build_tensorlist" || name == "build_doublelist" ||
           name == "build_boollist" || name == "build_tensor_from_id" || name == "restore_type_tag";
  return false;
}

/// Why the pickle p[0, n) could make TorchScript's unpickler call something a
/// frost archive never calls, or "" when it cannot: the opcodes are walked
/// one by one (each argument's length checked against what is left), every
/// GLOBAL must be allowed_global, and the opcodes that name a callable any
/// other way are refused. One pass.
inline std::string pickle_problem(const unsigned char* p, std::uint64_t n) {
  std::uint64_t i = 0;
  auto line = [&](std::string& out) {
    const auto* nl = static_cast<const unsigned char*>(std::memchr(p + i, '\n', n - i));
    if (!nl) return false;
    out.assign(reinterpret_cast<const char*>(p + i), static_cast<std::size_t>(nl - (p + i)));
    i = static_cast<std::uint64_t>(nl - p) + 1;
    return true;
  };
  auto at = [](std::uint64_t k) { return " at byte " + std::to_string(k); };
  while (i < n) {
    const std::uint64_t op_at = i;
    const unsigned char op = p[i++];
    std::uint64_t arg = 0;  // bytes of argument after the opcode (and its length field)
    int len_bytes = 0;      // a length field of 1, 4 or 8 bytes, then that many bytes
    std::string a, b;
    switch (op) {
      case '.':  // STOP
        return "";
      case '(': case '0': case '1': case '2': case 'N': case 'R': case 'a': case 'b': case 'd':
      case '}': case 'e': case 'l': case ']': case 's': case 't': case ')': case 'u': case 'Q':
      case 0x81: case 0x85: case 0x86: case 0x87: case 0x88: case 0x89: case 0x8f: case 0x90:
      case 0x91: case 0x94:
        break;  // no argument (REDUCE, BUILD, NEWOBJ call a GLOBAL checked below)
      case 0x80: case 'K': case 'h': case 'q':
        arg = 1;
        break;
      case 'M':
        arg = 2;
        break;
      case 'J': case 'j': case 'r':
        arg = 4;
        break;
      case 'G': case 0x95:
        arg = 8;
        break;
      case 0x8a: case 'U': case 'C': case 0x8c:
        len_bytes = 1;
        break;
      case 0x8b: case 'T': case 'X': case 'B':
        len_bytes = 4;
        break;
      case 0x8d: case 0x8e:
        len_bytes = 8;
        break;
      case 'F': case 'I': case 'L': case 'S': case 'V': case 'g': case 'p': case 'P':
        if (!line(a)) return "an argument cut short" + at(op_at);
        continue;
      case 'c':  // GLOBAL module\nname\n
        if (!line(a) || !line(b)) return "a GLOBAL cut short" + at(op_at);
        if (!allowed_global(a, b))
          return "a GLOBAL naming '" + shown(a) + "." + shown(b) + "'" + at(op_at) +
                 ", which a frost archive never names (LibTorch's unpickler would call it)";
        continue;
      default: {
        char h[8];
        std::snprintf(h, sizeof h, "0x%02x", op);
        return std::string("opcode ") + h + at(op_at) +
               " (INST, OBJ, STACK_GLOBAL and EXT name a callable; frost's archives use none of them)";
      }
    }
    if (len_bytes > 0) {
      if (static_cast<std::uint64_t>(len_bytes) > n - i) return "a length cut short" + at(op_at);
      arg = le(p + i, len_bytes);
      i += static_cast<std::uint64_t>(len_bytes);
    }
    if (arg > n - i) return "an argument longer than the pickle" + at(op_at);
    i += arg;
  }
  return "no STOP opcode (cut short)";
}

/// `s` from `i` on starts with `lit`; `i` moves past it.
inline bool eat(const std::string& s, std::size_t& i, const char* lit) {
  const std::size_t n = std::strlen(lit);
  if (s.compare(i, n, lit) != 0) return false;
  i += n;
  return true;
}
/// A double-quoted string literal (backslash escapes) at `i`.
inline bool eat_string(const std::string& s, std::size_t& i) {
  if (i >= s.size() || s[i] != '"') return false;
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      ++i;
      return true;
    }
  }
  return false;
}
/// A type to the end of the line: names, dots, brackets, commas and spaces
/// (Tensor, List[float], __torch__.___torch_mangle_3.Module): no call, no operator.
inline bool is_type(const std::string& s, std::size_t i) {
  if (i >= s.size()) return false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '.' || c == '[' || c == ']' || c == ',' || c == ' '))
      return false;
  }
  return true;
}
/// `["a", "b", ]` to the end of the line.
inline bool is_string_list(const std::string& s, std::size_t i) {
  if (!eat(s, i, "[")) return false;
  for (;;) {
    while (i < s.size() && s[i] == ' ') ++i;
    if (eat(s, i, "]")) return i == s.size();
    if (!eat_string(s, i) || !eat(s, i, ",")) return false;
  }
}
/// One line of OutputArchive's TorchScript source: a class header or an
/// attribute declaration.
inline bool is_declaration(const std::string& l) {
  std::size_t i = 0;
  if (l.empty()) return true;
  if (eat(l, i, "class ")) {
    const auto open = l.find('(', i);
    return open != std::string::npos && is_ident(l.substr(i, open - i)) &&
           l.compare(open, std::string::npos, "(Module):") == 0;
  }
  if (!eat(l, i, "  ")) return false;
  if (eat(l, i, "__parameters__ = ") || eat(l, i, "__buffers__ = ")) return is_string_list(l, i);
  if (eat(l, i, "__annotations__ = []")) return i == l.size();
  if (eat(l, i, "__annotations__[")) return eat_string(l, i) && eat(l, i, "] = ") && is_type(l, i);
  const auto colon = l.find(" : ", i);
  return colon != std::string::npos && is_ident(l.substr(i, colon - i)) && is_type(l, colon + 3);
}

/// Why the TorchScript source p[0, n) is not an archive's declarations only
/// (a method, an import, any statement), or "".
inline std::string code_problem(const char* p, std::size_t n) {
  if (n == 0) return "";
  std::size_t line_no = 1;
  for (std::size_t i = 0; i <= n; ++line_no) {
    const char* nl = static_cast<const char*>(std::memchr(p + i, '\n', n - i));
    const std::size_t end = nl ? static_cast<std::size_t>(nl - p) : n;
    const std::string l(p + i, end - i);
    if (!is_declaration(l)) {
      const bool method = l.find("def ") != std::string::npos;
      return "line " + std::to_string(line_no) + " '" + shown(l) + "' is " +
             (method ? "a method, which LibTorch compiles (and runs while loading, for a "
                       "__setstate__)"
                     : "TorchScript that LibTorch would compile") +
             "; frost's archives hold only attribute declarations";
    }
    i = end + 1;
  }
  return "";
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

/// The record's name inside the archive (after "<archive name>/").
inline std::string relative(const std::string& name) {
  const auto slash = name.find('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}
inline bool is_code(const std::string& rel) { return starts_with(rel, "code/") && ends_with(rel, ".py"); }
inline bool is_pickle(const std::string& rel) { return ends_with(rel, ".pkl"); }

/// The archive in `in` (`size` bytes) open for the check; every failure
/// names `path` (as `what`: "checkpoint") and says `fix`.
class Checker {
 public:
  Checker(std::istream& in, std::uint64_t size, const std::string& path, const std::string& what,
          const std::string& fix)
      : in_(in), path_(path), what_(what), fix_(fix), size_(size) {}

  /// The zip structure, every stored record's CRC-32 and every pickle.
  void check_all() {
    const Directory dir = directory();
    const auto cd = read_at(dir.offset, dir.size);
    std::unordered_set<std::string> names;
    std::uint64_t p = 0;
    for (std::uint64_t k = 0; k < dir.entries; ++k) {
      const Entry e = entry(cd, p);
      if (!names.insert(e.name).second)
        refuse("record '" + shown(e.name) + "' is in its zip directory twice (LibTorch would read "
               "one, frost could check the other)");
      const std::string rel = relative(e.name);
      if (is_code(rel) && e.usize > kMaxCodeBytes)
        refuse("record '" + shown(e.name) + "' (TorchScript source) inflates to " +
               std::to_string(e.usize) + " bytes, more than the " + std::to_string(kMaxCodeBytes) +
               " a frost archive's declarations can need");
      if (e.method == 8 && is_code(rel)) continue;  // deflated source: checked by check_code
      if (e.method != 0)
        refuse("record '" + shown(e.name) + "' is compressed (method " + std::to_string(e.method) +
               "); LibTorch stores every record but the TorchScript source uncompressed");
      check_record(e, is_pickle(rel));
    }
  }

 private:
  std::vector<unsigned char> read_at(std::uint64_t off, std::uint64_t n) {
    // Checked before allocating: `n` and `off` come from the file's directory,
    // and a damaged one must not make frost allocate more than the file holds
    // (nor wrap off + n).
    if (off > size_ || n > size_ - off) unreadable("its zip directory points past the end of the file");
    std::vector<unsigned char> buf(n);
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(off));
    in_.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n));
    if (in_.gcount() != static_cast<std::streamsize>(n))
      unreadable("its zip directory points past the end of the file");
    return buf;
  }

  /// Not a zip archive, or one cut short: the same words as LibTorch's own
  /// refusal of such a file (load_file said them before this check ran first).
  [[noreturn]] void unreadable(const std::string& problem) const {
    fail(what_, " ", path_, " cannot be read: it is truncated, corrupt or not a LibTorch archive (",
         problem, "); ", fix_);
  }
  [[noreturn]] void corrupt(const std::string& problem) const {
    fail(what_, " ", path_, " is corrupt: ", problem,
         "; the file was damaged after it was written; ", fix_);
  }
  [[noreturn]] void refuse(const std::string& problem) const {
    fail(what_, " ", path_, " is refused before LibTorch reads it: ", problem,
         "; it was not written by frost and LibTorch's save, or was altered since; ", fix_);
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
    if (eocd < 0) unreadable("no zip end-of-directory record");
    const unsigned char* e = &t[static_cast<std::size_t>(eocd)];
    Directory d{le(e + 10, 2), le(e + 12, 4), le(e + 16, 4)};
    if (d.entries == 0xFFFF || d.size == 0xFFFFFFFFu || d.offset == 0xFFFFFFFFu) {
      // zip64: a 20-byte locator just before the record points at the zip64 record.
      const std::uint64_t at = size_ - tail + static_cast<std::uint64_t>(eocd);
      if (at < 20) unreadable("no zip64 locator");
      const auto loc = read_at(at - 20, 20);
      if (le(loc.data(), 4) != 0x07064b50) unreadable("no zip64 locator");
      const auto z = read_at(le(loc.data() + 8, 8), 56);
      if (le(z.data(), 4) != 0x06064b50) unreadable("no zip64 end-of-directory record");
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
      if (at + 4 + len > xlen) corrupt("its zip directory is damaged (record '" + shown(r.name) + "')");
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

  /// A stored record's data, found through its local header, against its
  /// CRC-32; a pickle's opcodes too (`pickle`: kept in memory for that).
  void check_record(const Entry& e, bool pickle) {
    const std::string name = shown(e.name);
    if (e.csize != e.usize) corrupt("record '" + name + "' has two sizes");
    const auto lh = read_at(e.local, 30);
    if (le(lh.data(), 4) != 0x04034b50) corrupt("record '" + name + "' has no local header");
    const std::uint64_t off = e.local + 30 + le(lh.data() + 26, 2) + le(lh.data() + 28, 2);
    if (off > size_ || e.csize > size_ - off) corrupt("record '" + name + "' is cut short (a truncated file)");
    crc_.reset();
    std::vector<unsigned char> kept;
    if (pickle) kept.reserve(static_cast<std::size_t>(e.csize));
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(off));
    for (std::uint64_t left = e.csize; left > 0;) {
      const auto n = static_cast<std::streamsize>(std::min<std::uint64_t>(left, chunk_.size()));
      in_.read(chunk_.data(), n);
      if (in_.gcount() != n) corrupt("record '" + name + "' is cut short (a truncated file)");
      crc_.process_bytes(chunk_.data(), static_cast<std::size_t>(n));
      if (pickle) kept.insert(kept.end(), chunk_.data(), chunk_.data() + n);
      left -= static_cast<std::uint64_t>(n);
    }
    if (crc_.checksum() != e.crc)
      corrupt("record '" + name + "' fails its CRC-32 check (stored " + std::to_string(e.crc) +
              ", computed " + std::to_string(crc_.checksum()) + ")");
    if (pickle) {
      const std::string problem = pickle_problem(kept.data(), kept.size());
      if (!problem.empty()) refuse("record '" + name + "' (a pickle) holds " + problem);
    }
  }

  std::istream& in_;
  const std::string& path_;
  const std::string& what_;
  const std::string& fix_;
  std::uint64_t size_ = 0;
  boost::crc_32_type crc_;
  std::vector<char> chunk_ = std::vector<char>(std::size_t{1} << 20);
};

/// Every code/*.py record of the archive `r` reads (inflated by LibTorch's
/// zip layer, miniz: no TorchScript compiled) against code_problem. Run after
/// Checker::check_all, which bounded their sizes.
inline void check_code(caffe2::serialize::PyTorchStreamReader& r, const std::string& path,
                       const std::string& what, const std::string& fix) {
  for (const auto& name : r.getAllRecords()) {
    if (!is_code(name)) continue;
    // LibTorch's reader checks the record again as it inflates it and throws
    // c10::Error where frost's checks passed (fuzzing found one: a local
    // header that disagrees with the directory); say so as frost's own error.
    decltype(r.getRecord(name)) record;  // (data, size)
    try {
      record = r.getRecord(name);
    } catch (const c10::Error& e) {
      std::string why = e.what_without_backtrace();
      if (const auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
      fail(what, " ", path, " cannot be read: record '", shown(name), "' is damaged (", why, "); ", fix);
    }
    const std::string problem = code_problem(static_cast<const char*>(std::get<0>(record).get()),
                                             std::get<1>(record));
    if (!problem.empty())
      fail(what, " ", path, " is refused before LibTorch reads it: record '", shown(name),
           "' (TorchScript source): ", problem,
           "; it was not written by frost and LibTorch's save, or was altered since; ", fix);
  }
}

/// Checker::check_all, then check_code through LibTorch's zip reader made by `open`.
template <class Open>
void check(std::istream& in, std::uint64_t size, const std::string& path, const std::string& what,
           const std::string& fix, Open open) {
  Checker(in, size, path, what, fix).check_all();
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> r;
  try {
    r = open();
  } catch (const c10::Error& e) {
    std::string why = e.what_without_backtrace();
    if (const auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
    fail(what, " ", path, " cannot be read: it is truncated, corrupt or not a LibTorch archive (",
         why, "); ", fix);
  }
  // LibTorch's reader may still refuse what frost's checks passed (fuzzing
  // found a record name outside the archive's folder, refused by
  // getAllRecords): its c10::Error becomes frost's, naming the file.
  try {
    check_code(*r, path, what, fix);
  } catch (const c10::Error& e) {
    std::string why = e.what_without_backtrace();
    if (const auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
    fail(what, " ", path, " cannot be read: LibTorch's reader refuses it (", why, "); ", fix);
  }
}
}  // namespace zip

/// Throws frost::Error naming `path` (as `what`: "checkpoint") when the
/// archive there is not one frost can read safely (see the top of this
/// file): a damaged zip directory, a record whose data does not match its
/// CRC-32, TorchScript code, a pickle naming what frost's archives never
/// name. `fix` says what to do instead. Call it before LibTorch's reader.
inline void check_archive(const std::string& path, const std::string& what = "checkpoint",
                          const std::string& fix = "use an earlier checkpoint") {
  std::ifstream in(path, std::ios::binary);
  require(static_cast<bool>(in), "cannot open ", what, " ", path, " to check it");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uint64_t>(in.tellg());
  zip::check(in, size, path, what, fix,
             [&] { return std::make_unique<caffe2::serialize::PyTorchStreamReader>(path); });
}

/// The same for an archive in memory (frost's nested state), named `name`.
inline void check_archive(const char* data, std::size_t n, const std::string& name,
                          const std::string& what, const std::string& fix) {
  std::istringstream in(std::string(data, n));
  zip::check(in, n, name, what, fix, [&] {
    in.clear();
    in.seekg(0);
    return std::make_unique<caffe2::serialize::PyTorchStreamReader>(&in);
  });
}

/// The name of check_archive before it checked more than the CRCs.
inline void check_zip_crcs(const std::string& path, const std::string& what = "checkpoint",
                           const std::string& fix = "use an earlier checkpoint") {
  check_archive(path, what, fix);
}

}  // namespace frost::detail
