// examples/common/idx.hpp
//
// Fashion-MNIST loader for frost's examples and benchmarks (example-side code,
// not part of frost's public API).
//
// The data comes from the Debian package `dataset-fashion-mnist`, which
// installs gzip-compressed IDX files under /usr/share/datasets/fashion-mnist:
//   train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
//   t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
// Uncompressed files with the same name minus ".gz" are accepted too (zlib's
// gzread reads plain files transparently).
//
// IDX format: 4-byte magic {0, 0, type, ndims} (type 0x08 = unsigned byte),
// then ndims big-endian uint32 dimension sizes, then the row-major data.
// Images: magic 0x00000803, dims [N, 28, 28]; labels: 0x00000801, dims [N].
//
// Link with -lz.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <utility>
#include <vector>

namespace frost_examples {

// Raised for every data problem (missing file, bad format, ...).  The
// message always names the file concerned.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Where the programs look for Fashion-MNIST unless told: $FROST_FASHION_MNIST,
/// else the directory the build chose (FROST_DEFAULT_DATA_DIR, frost-train's
/// CMake cache entry FROST_FASHION_MNIST), else Debian's.
inline std::string default_fashion_mnist_dir() {
  if (const char* e = std::getenv("FROST_FASHION_MNIST"); e && *e) return e;
#ifdef FROST_DEFAULT_DATA_DIR
  return FROST_DEFAULT_DATA_DIR;
#else
  return kDefaultFashionMnistDir;
#endif
}
inline constexpr double kFashionMnistMean = 0.2860;
inline constexpr double kFashionMnistStd = 0.3530;
inline constexpr int64_t kFashionMnistClasses = 10;

// Raw contents of one IDX file.
struct IdxData {
  std::string path;           // the file actually read
  uint32_t magic = 0;         // e.g. 0x00000803
  std::vector<int64_t> dims;  // dimension sizes, outermost first
  std::vector<uint8_t> data;  // row-major payload, product(dims) bytes
};

namespace detail {

inline bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

inline bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

inline std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

// "foo.gz" -> also try "foo"; "foo" -> also try "foo.gz".
// Returns the first existing candidate, or "" if none exists.
inline std::string resolve_idx_path(const std::string& path) {
  if (file_exists(path)) return path;
  std::string alt = ends_with(path, ".gz") ? path.substr(0, path.size() - 3) : path + ".gz";
  if (file_exists(alt)) return alt;
  return {};
}

inline std::string missing_file_message(const std::string& path) {
  return "Fashion-MNIST file not found: " + path +
         " (install it with: apt-get install dataset-fashion-mnist (or pass --data DIR))";
}

// zlib's message, without the "path: " prefix zlib adds itself.
inline std::string gz_message(gzFile f, const std::string& path) {
  int err = 0;
  const char* m = gzerror(f, &err);
  std::string s = m ? m : "";
  if (s.compare(0, path.size() + 2, path + ": ") == 0) s.erase(0, path.size() + 2);
  return s.empty() ? std::string("unknown zlib error") : s;
}

// The whole size (header + payload) the IDX header at the start of `b`
// declares, or 0 while the header is incomplete or not an IDX header
// (parse_idx then says what is wrong). Overflow-checked like parse_idx.
inline uint64_t idx_declared_size(const std::vector<uint8_t>& b) {
  if (b.size() < 4 || b[0] != 0 || b[1] != 0 || b[3] == 0) return 0;
  const uint64_t header = 4 + 4 * uint64_t(b[3]);
  if (b.size() < header) return 0;
  uint64_t total = 1;
  for (uint64_t i = 0; i < b[3]; ++i) {
    const uint8_t* p = &b[4 + 4 * i];
    const uint64_t d = (uint64_t(p[0]) << 24) | (uint64_t(p[1]) << 16) | (uint64_t(p[2]) << 8) | p[3];
    if (d != 0 && total > (uint64_t(1) << 40) / d) return UINT64_MAX;
    total *= d;
  }
  return header + total;
}

/// The most a compressed IDX file may decompress to: 1 GiB (Fashion-MNIST's
/// largest file is 47 MB). gzip compresses a run of zeros about 1000:1, so
/// without a limit a 1 MB file from a stranger could ask for a gigabyte and a
/// 1 GB one for a terabyte.
inline constexpr uint64_t kMaxIdxBytes = uint64_t(1) << 30;

// Whole file, decompressed if gzip (plain files pass through unchanged).
// Memory is bounded by what the file's IDX header declares, and by
// `max_bytes` whatever it declares: reading stops, with a DataError naming
// the file, at the first byte past either (a gzip bomb is never inflated
// whole).
inline std::vector<uint8_t> read_all_gz(const std::string& path, uint64_t max_bytes = kMaxIdxBytes) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw DataError("cannot open " + path + ": " + std::strerror(errno));
  gzbuffer(f, 1 << 17);
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  uint64_t declared = 0;  // header + payload, once the header is in
  for (;;) {
    int n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      std::string msg = gz_message(f, path);
      gzclose(f);
      throw DataError("error reading " + path + ": " + msg +
                      " (corrupt or truncated gzip stream?)");
    }
    if (n == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
    if (declared == 0 && (declared = idx_declared_size(out)) > max_bytes) {
      gzclose(f);
      throw DataError(path + ": implausible IDX dimensions (its header declares " +
                      (declared == UINT64_MAX ? std::string("more than 2^40 elements")
                                              : std::to_string(declared) + " bytes") +
                      ", more than the limit of " + std::to_string(max_bytes) + " bytes)");
    }
    if (out.size() > max_bytes) {
      gzclose(f);
      throw DataError(path + ": decompresses to more than " + std::to_string(max_bytes) +
                      " bytes, the limit for an IDX file (a gzip bomb, or not an IDX file); "
                      "reading stopped there");
    }
    if (declared != 0 && out.size() > declared) {
      gzclose(f);
      throw DataError(path + ": unexpected trailing bytes after IDX data (more than the " +
                      std::to_string(declared) + " bytes its header declares; reading stopped there)");
    }
  }
  // A truncated gzip stream makes gzread stop early; zlib reports it as
  // Z_BUF_ERROR from gzerror after EOF.
  int err = Z_OK;
  std::string emsg = gz_message(f, path);
  (void)gzerror(f, &err);
  gzclose(f);
  if (err != Z_OK && err != Z_STREAM_END)
    throw DataError("error reading " + path + ": " + emsg + " (corrupt or truncated gzip stream?)");
  return out;
}

}  // namespace detail

// Parses an in-memory IDX image.  `name` is used in error messages only.
// Only unsigned-byte payloads (type 0x08) are supported.
inline IdxData parse_idx(const std::vector<uint8_t>& bytes, const std::string& name) {
  IdxData r;
  r.path = name;
  if (bytes.size() < 4)
    throw DataError(name + ": truncated IDX file (" + std::to_string(bytes.size()) +
                    " bytes, need at least a 4-byte magic number)");
  r.magic = (uint32_t(bytes[0]) << 24) | (uint32_t(bytes[1]) << 16) |
            (uint32_t(bytes[2]) << 8) | uint32_t(bytes[3]);
  if (bytes[0] != 0 || bytes[1] != 0)
    throw DataError(name + ": not an IDX file (bad magic " + detail::hex32(r.magic) +
                    "; expected 0x000008NN)");
  if (bytes[2] != 0x08)
    throw DataError(name + ": unsupported IDX element type " + detail::hex32(bytes[2]) +
                    " in magic " + detail::hex32(r.magic) + " (only unsigned byte, 0x08)");
  const size_t ndims = bytes[3];
  if (ndims == 0) throw DataError(name + ": IDX file declares 0 dimensions");
  const size_t header = 4 + 4 * ndims;
  if (bytes.size() < header)
    throw DataError(name + ": truncated IDX header (" + std::to_string(bytes.size()) +
                    " bytes, header needs " + std::to_string(header) + ")");
  uint64_t total = 1;
  for (size_t i = 0; i < ndims; ++i) {
    const uint8_t* p = &bytes[4 + 4 * i];
    uint32_t d = (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) |
                 uint32_t(p[3]);
    r.dims.push_back(static_cast<int64_t>(d));
    // Checked before multiplying: up to 2^40 times a 32-bit size wraps 64 bits
    // (2^20 x 2^20 x 2^24 is 0), and a wrapped product let a header promising
    // 2^64 elements through with an empty payload.
    if (d != 0 && total > (uint64_t(1) << 40) / d)
      throw DataError(name + ": implausible IDX dimensions (more than 2^40 elements)");
    total *= d;
  }
  const uint64_t have = bytes.size() - header;
  if (have < total)
    throw DataError(name + ": truncated IDX data (header promises " + std::to_string(total) +
                    " bytes, file has " + std::to_string(have) + ")");
  if (have > total)
    throw DataError(name + ": " + std::to_string(have - total) +
                    " unexpected trailing bytes after IDX data");
  r.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return r;
}

// Reads one IDX file (gzip-compressed or plain).  If `path` does not exist,
// the name with ".gz" removed (or added) is tried.  Throws DataError.
// Decompresses at most `max_bytes` (detail::read_all_gz).
inline IdxData read_idx(const std::string& path, uint64_t max_bytes = detail::kMaxIdxBytes) {
  const std::string real = detail::resolve_idx_path(path);
  if (real.empty()) throw DataError(detail::missing_file_message(path));
  return parse_idx(detail::read_all_gz(real, max_bytes), real);
}

// ---------------------------------------------------------------------------
// Dataset
// ---------------------------------------------------------------------------
struct Dataset {
  at::Tensor images;  // float32 [N, 1, 28, 28], (x/255 - 0.2860) / 0.3530
  at::Tensor labels;  // int64 [N]
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

// Loads the Fashion-MNIST train (60000) or test (10000) split from `dir`.
// limit >= 0 keeps only the first `limit` examples.  Throws DataError.
inline Dataset load_fashion_mnist(const std::string& dir = kDefaultFashionMnistDir,
                                  bool train = true, int64_t limit = -1) {
  std::string base = dir.empty() ? std::string(".") : dir;
  if (base.back() != '/') base += '/';
  const std::string prefix = base + (train ? "train" : "t10k");
  const std::string img_path = prefix + "-images-idx3-ubyte.gz";
  const std::string lbl_path = prefix + "-labels-idx1-ubyte.gz";

  IdxData img = read_idx(img_path);
  if (img.magic != 0x00000803u)
    throw DataError(img.path + ": wrong magic " + detail::hex32(img.magic) +
                    " for an image file (expected 0x00000803: unsigned byte, 3 dims)");
  if (img.dims[1] != 28 || img.dims[2] != 28)
    throw DataError(img.path + ": images are " + std::to_string(img.dims[1]) + "x" +
                    std::to_string(img.dims[2]) + ", expected 28x28");
  IdxData lbl = read_idx(lbl_path);
  if (lbl.magic != 0x00000801u)
    throw DataError(lbl.path + ": wrong magic " + detail::hex32(lbl.magic) +
                    " for a label file (expected 0x00000801: unsigned byte, 1 dim)");
  if (img.dims[0] != lbl.dims[0])
    throw DataError("image/label count mismatch: " + img.path + " has " +
                    std::to_string(img.dims[0]) + " images but " + lbl.path + " has " +
                    std::to_string(lbl.dims[0]) + " labels");
  for (size_t i = 0; i < lbl.data.size(); ++i)
    if (lbl.data[i] >= kFashionMnistClasses)
      throw DataError(lbl.path + ": label " + std::to_string(int(lbl.data[i])) + " at index " +
                      std::to_string(i) + " is out of range [0, 10)");

  int64_t n = img.dims[0];
  if (limit >= 0) n = std::min(n, limit);
  Dataset ds;
  auto u8 = at::TensorOptions().dtype(at::kByte);
  ds.images = at::from_blob(img.data.data(), {n, 1, 28, 28}, u8)
                  .to(at::kFloat)  // copies out of img.data
                  .div_(255.0)
                  .sub_(kFashionMnistMean)
                  .div_(kFashionMnistStd);
  ds.labels = at::from_blob(lbl.data.data(), {n}, u8).to(at::kLong);
  return ds;
}

// Keeps only examples whose label is in `classes`.  With relabel, the label
// classes[i] becomes i (e.g. {5,6,7,8,9} -> 0..4), in the order given.
// Throws std::invalid_argument on an empty or duplicate class list.
inline Dataset filter_classes(const Dataset& ds, const std::vector<int64_t>& classes,
                              bool relabel) {
  if (classes.empty()) throw std::invalid_argument("filter_classes: empty class list");
  int64_t maxc = 0;
  for (auto c : classes) {
    if (c < 0) throw std::invalid_argument("filter_classes: negative class id");
    maxc = std::max(maxc, c);
  }
  // Lookup table label -> new label (or -1 = drop).
  const int64_t nlab = ds.size() ? std::max(maxc, ds.labels.max().item<int64_t>()) + 1 : maxc + 1;
  std::vector<int64_t> map(static_cast<size_t>(nlab), -1);
  for (size_t i = 0; i < classes.size(); ++i) {
    auto& m = map[static_cast<size_t>(classes[i])];
    if (m != -1)
      throw std::invalid_argument("filter_classes: duplicate class " + std::to_string(classes[i]));
    m = relabel ? static_cast<int64_t>(i) : classes[i];
  }
  auto lut = at::tensor(map, at::TensorOptions().dtype(at::kLong));
  auto labels = ds.labels.contiguous();
  auto mapped = lut.index_select(0, labels);
  auto idx = at::nonzero(mapped.ge(0)).flatten();
  Dataset out;
  out.images = ds.images.index_select(0, idx);
  out.labels = mapped.index_select(0, idx);
  return out;
}

// First n examples (a view, no copy).
inline Dataset take_first(const Dataset& ds, int64_t n) {
  n = std::max<int64_t>(0, std::min(n, ds.size()));
  return Dataset{ds.images.narrow(0, 0, n), ds.labels.narrow(0, 0, n)};
}

// ---------------------------------------------------------------------------
// Mini-batches
// ---------------------------------------------------------------------------
struct Batch {
  at::Tensor images;  // [b, 1, 28, 28]
  at::Tensor labels;  // [b]
  at::Tensor index;   // [b] int64 positions in the source dataset
};

// A lazily materialised epoch: batch i is gathered (index_select) only when
// requested, so a full epoch never holds a second copy of the dataset.
// Shuffling uses a CPU torch generator seeded with `seed`: the same seed gives
// the same order on every run (use seed + epoch for a new order per epoch).
class Batches {
 public:
  Batches(Dataset ds, int64_t batch_size, uint64_t seed, bool shuffle = true,
          bool drop_last = false)
      : ds_(std::move(ds)), bs_(batch_size) {
    if (batch_size <= 0) throw std::invalid_argument("batches: batch_size must be > 0");
    const int64_t n = ds_.size();
    if (shuffle) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
      perm_ = at::randperm(n, gen, at::TensorOptions().dtype(at::kLong));
    } else {
      perm_ = at::arange(n, at::TensorOptions().dtype(at::kLong));
    }
    count_ = drop_last ? n / bs_ : (n + bs_ - 1) / bs_;
  }

  int64_t size() const { return count_; }
  int64_t batch_size() const { return bs_; }
  const at::Tensor& permutation() const { return perm_; }

  // Indices of batch i into the dataset.
  at::Tensor indices(int64_t i) const {
    if (i < 0 || i >= count_) throw std::out_of_range("Batches: batch index out of range");
    const int64_t start = i * bs_;
    return perm_.narrow(0, start, std::min(bs_, perm_.size(0) - start));
  }

  Batch operator[](int64_t i) const {
    auto idx = indices(i);
    return Batch{ds_.images.index_select(0, idx), ds_.labels.index_select(0, idx), idx};
  }

  class iterator {
   public:
    iterator(const Batches* b, int64_t i) : b_(b), i_(i) {}
    Batch operator*() const { return (*b_)[i_]; }
    iterator& operator++() { ++i_; return *this; }
    bool operator==(const iterator& o) const { return i_ == o.i_ && b_ == o.b_; }
    bool operator!=(const iterator& o) const { return !(*this == o); }
   private:
    const Batches* b_;
    int64_t i_;
  };
  iterator begin() const { return iterator(this, 0); }
  iterator end() const { return iterator(this, count_); }

 private:
  Dataset ds_;
  int64_t bs_;
  at::Tensor perm_;
  int64_t count_ = 0;
};

// for (const Batch& b : batches(train, 128, seed + epoch)) { ... }
inline Batches batches(const Dataset& ds, int64_t batch_size, uint64_t seed, bool shuffle = true,
                       bool drop_last = false) {
  return Batches(ds, batch_size, seed, shuffle, drop_last);
}

}  // namespace frost_examples
