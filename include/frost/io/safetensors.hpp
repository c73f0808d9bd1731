#pragma once
// frost::io — read and write safetensors files (https://github.com/huggingface/safetensors):
//
//   [8 bytes: N, little-endian u64] [N bytes: JSON header] [data buffer]
//   header = { "<name>": {"dtype": "F32", "shape": [32, 3, 3, 3], "data_offsets": [begin, end]},
//              ..., "__metadata__": {"<key>": "<string>", ...} }      (optional metadata)
//   offsets are byte positions in the data buffer; tensors are row-major, little-endian.
//
// Why safetensors: it is the ecosystem's standard for weights (Hugging Face,
// timm, diffusers all ship it), it is read without Python and without
// unpickling code (a .pth is a pickle: loading one runs code named by the file),
// and its format is simple enough to validate completely before a single byte
// reaches a model: sizes, ranges and dtypes are all in the header.
//
// The header is parsed by the small JSON reader below rather than by a
// library: frost depends on LibTorch and Boost headers only, Boost 1.74
// (Debian 12) has no Boost.JSON, and Boost.PropertyTree's JSON reader keeps
// every value as a string, splits keys at '.' (every tensor name has dots) and
// accepts duplicate keys. The reader covers JSON as the safetensors header
// uses it (objects, arrays, strings with escapes, non-negative integers; true,
// false and null are refused as no safetensors field has them) and says where
// it stopped.
//
// Every problem is a frost::Error naming the file, the tensor and the fix:
// a file shorter than its header says (truncated), a header that is not JSON,
// an entry without dtype/shape/data_offsets, an unknown dtype, offsets out of
// the data buffer or not matching the shape, tensors that do not tile the data
// buffer (a hole before or between them, an overlap, bytes after the last: the
// format indexes every byte, which is what keeps other content, a polyglot
// file's, out of it), a wrong checksum. If the metadata holds "frost.fnv1a64"
// (written by write_safetensors and scripts/effnet_convert.py: FNV-1a 64 of the
// data buffer, 16 hex digits), the data is checked against it, so flipped
// bytes are found too.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "frost/error.hpp"

namespace frost::io {

/// The tensors of a safetensors file, in the order of their data offsets, and its metadata.
struct SafeTensors {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::map<std::string, std::string> metadata;
};

namespace detail {

/// FNV-1a, 64 bits, over a byte range (continues from `h`).
inline std::uint64_t fnv1a64(const unsigned char* p, std::size_t n,
                             std::uint64_t h = 0xcbf29ce484222325ULL) {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

inline bool little_endian() {
  const std::uint16_t probe = 1;
  unsigned char first;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

/// safetensors dtype names <-> LibTorch scalar types.
inline const std::vector<std::pair<std::string, at::ScalarType>>& dtype_table() {
  static const std::vector<std::pair<std::string, at::ScalarType>> t = {
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
      {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
      {"U8", at::kByte},    {"BOOL", at::kBool}};
  return t;
}

inline bool dtype_of(const std::string& name, at::ScalarType& out) {
  for (const auto& [n, t] : dtype_table())
    if (n == name) {
      out = t;
      return true;
    }
  return false;
}

inline std::string dtype_name(at::ScalarType t) {
  for (const auto& [n, s] : dtype_table())
    if (s == t) return n;
  return "";
}

// ---------------------------------------------------------------------------
// A JSON value and its reader, for the safetensors header.
// ---------------------------------------------------------------------------
struct Json {
  enum Kind { object, array, string, integer } kind = object;
  std::vector<std::pair<std::string, Json>> members;  // object, in file order
  std::vector<Json> items;                            // array
  std::string text;                                   // string
  std::uint64_t number = 0;                           // integer

  const Json* find(const std::string& key) const {
    for (const auto& [k, v] : members)
      if (k == key) return &v;
    return nullptr;
  }
};

class JsonReader {
 public:
  JsonReader(const std::string& text, const std::string& file) : s_(text), file_(file) {}

  Json document() {
    Json v = value(0);
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after the header's closing brace");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    const std::size_t from = pos_ > 20 ? pos_ - 20 : 0;
    std::string near = s_.substr(from, 40);
    for (auto& c : near)
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    frost::detail::fail("safetensors file '", file_, "': the JSON header is malformed at byte ",
                        pos_ + 8, " (", what, ", near \"", near,
                        "\"); the file is corrupt or not a safetensors file: write it again "
                        "(scripts/effnet-weights.sh, safetensors.torch.save_file or "
                        "frost::save_state_dict)");
  }

  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  void expect(char c) {
    skip_space();
    if (pos_ >= s_.size() || s_[pos_] != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  Json value(int depth) {
    if (depth > 8) fail("nested too deeply for a safetensors header");
    skip_space();
    if (pos_ >= s_.size()) fail("the header ends inside a value");
    const char c = s_[pos_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') {
      Json v;
      v.kind = Json::string;
      v.text = string_literal();
      return v;
    }
    if (c >= '0' && c <= '9') return integer();
    fail("expected an object, array, string or non-negative integer");
  }

  /// After '{' or '[': true (and past it) when `close` comes next, an empty one.
  bool empty_until(char close) {
    ++pos_;
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == close) {
      ++pos_;
      return true;
    }
    return false;
  }

  /// After a member or an item: true (and past it) when a ',' follows,
  /// otherwise `close` must.
  bool more_until(char close) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == ',') {
      ++pos_;
      return true;
    }
    expect(close);
    return false;
  }

  Json object(int depth) {
    Json v;
    v.kind = Json::object;
    if (empty_until('}')) return v;
    do {
      skip_space();
      std::string key = string_literal();
      if (v.find(key)) fail("the key \"" + key + "\" appears twice");
      expect(':');
      v.members.emplace_back(std::move(key), value(depth + 1));
    } while (more_until('}'));
    return v;
  }

  Json array(int depth) {
    Json v;
    v.kind = Json::array;
    if (empty_until(']')) return v;
    do v.items.push_back(value(depth + 1));
    while (more_until(']'));
    return v;
  }

  Json integer() {
    Json v;
    v.kind = Json::integer;
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      const auto digit = static_cast<std::uint64_t>(s_[pos_] - '0');
      if (v.number > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
        fail("an integer too large for 64 bits");
      v.number = v.number * 10 + digit;
      ++pos_;
    }
    if (s_[start] == '0' && pos_ - start > 1) fail("an integer with a leading zero");
    if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E'))
      fail("a fractional number where safetensors has integers");
    return v;
  }

  static void put_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::uint32_t hex4() {
    if (pos_ + 4 > s_.size()) fail("a \\u escape cut short");
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<std::uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<std::uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<std::uint32_t>(h - 'A' + 10);
      else fail("a \\u escape with a non-hex digit");
    }
    return v;
  }

  std::string string_literal() {
    if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string");
    ++pos_;
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail("a string without its closing quote");
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("a control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) fail("a string ending in a backslash");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
            if (pos_ + 2 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u')
              fail("a lone UTF-16 surrogate");
            pos_ += 2;
            const std::uint32_t lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("a lone UTF-16 surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(out, cp);
          break;
        }
        default: fail(std::string("an unknown escape \\") + e);
      }
    }
  }

  const std::string& s_;
  const std::string& file_;
  std::size_t pos_ = 0;
};

inline void json_string(std::ostringstream& os, const std::string& s) {
  os << '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') os << '\\' << c;
    else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      os << buf;
    } else os << c;
  }
  os << '"';
}

/// The file's bytes; a frost::Error naming it when it cannot be read.
inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  frost::detail::require(in.good(), "cannot open safetensors file '", path,
                         "'; check the path (the EfficientNet weights are made by "
                         "scripts/effnet-weights.sh)");
  std::ostringstream ss;
  ss << in.rdbuf();
  frost::detail::require(!in.bad(), "cannot read safetensors file '", path, "'");
  return ss.str();
}

}  // namespace detail

/// Largest header accepted (the safetensors reference limit): a larger N means
/// a corrupt length, not a real header.
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
/// The metadata key of the data checksum (see the header comment).
inline constexpr const char* kChecksumKey = "frost.fnv1a64";

namespace detail {

/// What every message about a damaged file ends with.
inline const std::string& rewrite_hint() {
  static const std::string again =
      "; the file is truncated or corrupt: write it again (scripts/effnet-weights.sh and "
      "scripts/minilm-weights.sh check and rebuild the pretrained weights)";
  return again;
}

/// The header's length N, the file's first 8 bytes (little-endian), checked
/// against the format's limit and the file's size.
inline std::uint64_t header_length(const std::string& bytes, const std::string& path) {
  using frost::detail::require;
  const std::string& again = rewrite_hint();
  require(bytes.size() >= 8, "safetensors file '", path, "' has ", bytes.size(),
          " bytes, fewer than the 8 of its header length", again);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  require(n <= kMaxHeaderBytes, "safetensors file '", path, "': header length ", n,
          " bytes is over the format's limit of ", kMaxHeaderBytes, again);
  require(n <= bytes.size() - 8, "safetensors file '", path, "': the header says ", n,
          " bytes of JSON but the file has only ", bytes.size() - 8, " after the length", again);
  return n;
}

/// The header's __metadata__: an object of strings.
inline void read_metadata(const Json& v, const std::string& path,
                          std::map<std::string, std::string>& metadata) {
  using frost::detail::require;
  const std::string& again = rewrite_hint();
  require(v.kind == Json::object, "safetensors file '", path,
          "': __metadata__ is not an object of strings", again);
  for (const auto& [k, m] : v.members) {
    require(m.kind == Json::string, "safetensors file '", path, "': metadata '", k,
            "' is not a string", again);
    metadata[k] = m.text;
  }
}

/// One tensor of the header, its bytes [begin, end) of the data buffer.
struct TensorEntry {
  std::string name;
  at::ScalarType dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin, end;
};

/// "[30522, 384]": a shape for messages.
inline std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

/// The elements of `sh`, a shape (sizes that fit in int64, a product that
/// fits in uint64), appended to `shape`.
inline std::uint64_t read_shape(const Json& sh, const std::string& where,
                                std::vector<std::int64_t>& shape) {
  using frost::detail::require;
  const std::string& again = rewrite_hint();
  require(sh.kind == Json::array, where, "shape is not an array", again);
  std::uint64_t numel = 1;
  for (const auto& d : sh.items) {
    require(d.kind == Json::integer &&
                d.number <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
            where, "shape holds something other than a size", again);
    shape.push_back(static_cast<std::int64_t>(d.number));
    require(d.number == 0 || numel <= std::numeric_limits<std::uint64_t>::max() / d.number, where,
            "shape overflows", again);
    numel *= d.number;
  }
  return numel;
}

/// Tensor `name`'s entry `v`, validated: dtype, shape and data_offsets that
/// hold exactly its bytes within the data buffer of `data_size` bytes.
inline TensorEntry tensor_entry(const std::string& name, const Json& v, const std::string& path,
                                std::uint64_t data_size) {
  using frost::detail::require;
  const std::string& again = rewrite_hint();
  const std::string where = "safetensors file '" + path + "', tensor '" + name + "': ";
  require(v.kind == Json::object, where, "its entry is not an object", again);
  const Json* dt = v.find("dtype");
  const Json* sh = v.find("shape");
  const Json* off = v.find("data_offsets");
  require(dt && sh && off, where, "its entry lacks ", !dt ? "dtype" : !sh ? "shape" : "data_offsets",
          again);
  TensorEntry e{name, at::kFloat, {}, 0, 0};
  require(dt->kind == Json::string && dtype_of(dt->text, e.dtype), where,
          "dtype '", dt->text, "' is not one frost reads (F64, F32, F16, BF16, I64, I32, I16, I8, "
          "U8, BOOL); convert the tensor to one of them before saving");
  const std::uint64_t numel = read_shape(*sh, where, e.shape);
  require(off->kind == Json::array && off->items.size() == 2 &&
              off->items[0].kind == Json::integer && off->items[1].kind == Json::integer,
          where, "data_offsets is not [begin, end]", again);
  e.begin = off->items[0].number;
  e.end = off->items[1].number;
  require(e.begin <= e.end, where, "data_offsets [", e.begin, ", ", e.end, "] run backwards", again);
  // A truncated file ends here: say which tensor, its dtype and shape, and by
  // how much the file falls short of it.
  require(e.end <= data_size, where, "data_offsets [", e.begin, ", ", e.end, "] (", dt->text, " shape ",
          shape_text(e.shape), ") are out of range: the data buffer has ", data_size,
          " bytes, so the file is ", e.end - data_size, " bytes short of this tensor's end", again);
  const auto elem = static_cast<std::uint64_t>(c10::elementSize(e.dtype));
  require(numel <= std::numeric_limits<std::uint64_t>::max() / elem &&
              e.end - e.begin == numel * elem,
          where, "data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin,
          " bytes but shape and dtype ", dt->text, " need ", numel * elem, again);
  return e;
}

/// What a file whose tensors do not tile the data buffer ends with: such a
/// file was not made by a safetensors writer, or was altered since.
inline std::string tiling_hint() {
  return "; the format requires the tensors to tile the data buffer: sorted by offset, "
         "the first begins at 0, each begins where the previous ends and the last ends at "
         "the buffer's end (every byte belongs to exactly one tensor, so that nothing else, "
         "such as another format's content, can hide in it). The file was not written by a "
         "safetensors writer or was altered: write it again (scripts/effnet-weights.sh, "
         "safetensors.torch.save_file or frost::save_state_dict)";
}

/// Sorts `entries` by offset and checks that they tile the data buffer
/// [0, data_size) as the reference reader (safetensors' Metadata::validate)
/// does: no hole before or between tensors, no overlap, no bytes after the
/// last. An empty tensor sits at a boundary, not inside another tensor.
inline void check_tiling(std::vector<TensorEntry>& entries, const std::string& path,
                         std::uint64_t data_size) {
  using frost::detail::require;
  std::sort(entries.begin(), entries.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  const std::string file = "safetensors file '" + path + "': ";
  std::uint64_t covered = 0;  // the end of the tiled prefix [0, covered)
  const TensorEntry* prev = nullptr;
  for (const auto& e : entries) {
    require(e.begin <= covered, file, "bytes [", covered, ", ", e.begin, ") ",
            prev ? "between tensor '" + prev->name + "' and tensor '" + e.name + "'"
                 : "before the first tensor '" + e.name + "'",
            " belong to no tensor", tiling_hint());
    require(e.begin == covered, file, "tensor '", e.name, "' at [", e.begin, ", ", e.end,
            ") overlaps tensor '", prev ? prev->name : "", "' at [", prev ? prev->begin : 0, ", ",
            covered, ")", tiling_hint());
    covered = e.end;
    prev = &e;
  }
  require(covered == data_size, file, data_size - covered,
          " bytes after the last tensor (the header length or the offsets are wrong)",
          rewrite_hint());
}

}  // namespace detail

/// Parses a safetensors image (`bytes`, read from `path`, which only names it
/// in messages) and validates it completely; tensors are copies on the CPU.
inline SafeTensors parse_safetensors(const std::string& bytes, const std::string& path) {
  using frost::detail::require;
  require(detail::little_endian(), "safetensors file '", path,
          "': this machine is big-endian; frost reads safetensors on little-endian hosts only");
  const std::string& again = detail::rewrite_hint();
  const std::uint64_t n = detail::header_length(bytes, path);
  const std::string header = bytes.substr(8, static_cast<std::size_t>(n));
  const detail::Json root = detail::JsonReader(header, path).document();
  require(root.kind == detail::Json::object, "safetensors file '", path,
          "': the header is not a JSON object", again);
  const std::size_t data_start = 8 + static_cast<std::size_t>(n);
  const std::uint64_t data_size = bytes.size() - data_start;

  std::vector<detail::TensorEntry> entries;
  SafeTensors out;
  for (const auto& [name, v] : root.members) {
    if (name == "__metadata__") detail::read_metadata(v, path, out.metadata);
    else entries.push_back(detail::tensor_entry(name, v, path, data_size));
  }
  detail::check_tiling(entries, path, data_size);
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data()) + data_start;
  if (const auto it = out.metadata.find(kChecksumKey); it != out.metadata.end()) {
    const std::string got = detail::hex64(detail::fnv1a64(data, static_cast<std::size_t>(data_size)));
    require(got == it->second, "safetensors file '", path, "': the data's checksum is ", got,
            " but the file's metadata says ", it->second, again);
  }
  for (const auto& e : entries) {
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), data + e.begin, static_cast<std::size_t>(e.end - e.begin));
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

/// Reads and validates a safetensors file (see parse_safetensors).
inline SafeTensors read_safetensors(const std::string& path) {
  return parse_safetensors(detail::read_all(path), path);
}

/// The safetensors image of `tensors` (names unique, any device, contiguous
/// copies are made) with `metadata` plus the data checksum (kChecksumKey).
inline std::string serialize_safetensors(
    const std::vector<std::pair<std::string, at::Tensor>>& tensors,
    std::map<std::string, std::string> metadata = {}) {
  using frost::detail::require;
  require(detail::little_endian(), "frost writes safetensors on little-endian hosts only");
  std::vector<at::Tensor> cpu;
  std::string data;
  std::ostringstream header;
  header << '{';
  std::map<std::string, int> seen;
  for (const auto& [name, t] : tensors) {
    require(name != "__metadata__" && seen.emplace(name, 0).second, "save: tensor name '", name,
            "' is given twice (or is reserved); give every tensor its own name");
    require(t.defined(), "save: tensor '", name, "' is undefined");
    const std::string dt = detail::dtype_name(t.scalar_type());
    require(!dt.empty(), "save: tensor '", name, "' has dtype ", t.scalar_type(),
            " which safetensors cannot hold; convert it first");
    const at::Tensor c = t.detach().to(at::kCPU).contiguous();
    const auto begin = data.size();
    if (c.numel() > 0)
      data.append(static_cast<const char*>(c.data_ptr()),
                  static_cast<std::size_t>(c.numel()) * c.element_size());
    if (header.tellp() > 1) header << ',';
    detail::json_string(header, name);
    header << ":{\"dtype\":\"" << dt << "\",\"shape\":[";
    for (int64_t i = 0; i < c.dim(); ++i) header << (i ? "," : "") << c.size(i);
    header << "],\"data_offsets\":[" << begin << ',' << data.size() << "]}";
  }
  metadata[kChecksumKey] = detail::hex64(
      detail::fnv1a64(reinterpret_cast<const unsigned char*>(data.data()), data.size()));
  header << (tensors.empty() ? "" : ",") << "\"__metadata__\":{";
  bool first = true;
  for (const auto& [k, v] : metadata) {
    if (!first) header << ',';
    first = false;
    detail::json_string(header, k);
    header << ':';
    detail::json_string(header, v);
  }
  header << "}}";
  std::string h = header.str();
  h.append((8 - h.size() % 8) % 8, ' ');  // the data starts 8-byte aligned, as the reference writer does
  std::string out(8, '\0');
  std::uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + h + data;
}

/// Writes `tensors` to `path` as safetensors (to path + ".tmp", then renamed:
/// a crash never leaves a half-written file under the real name).
inline void write_safetensors(const std::string& path,
                              const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              std::map<std::string, std::string> metadata = {}) {
  const std::string image = serialize_safetensors(tensors, std::move(metadata));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    frost::detail::require(out.good(), "cannot write '", tmp, "'; check the directory exists and is writable");
    out.write(image.data(), static_cast<std::streamsize>(image.size()));
    out.close();
    frost::detail::require(!out.fail(), "writing '", tmp, "' failed (disk full?)");
  }
  frost::detail::require(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '", tmp,
                         "' to '", path, "'");
}

}  // namespace frost::io
