#pragma once
// What every fuzz target shares: the input as bytes, and the verdict on an
// input. A target returns normally when frost accepted the input or refused it
// with its own error (frost::Error, or the example's own error type): that is
// the promise under test. Anything else (another exception, a sanitizer
// report, a failed invariant: abort) is a finding.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace frost_fuzz {

inline std::string bytes(const std::uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

/// An invariant of an accepted (or refused) input that does not hold: the
/// reader let something through that it promises not to. Aborts, so that
/// libFuzzer keeps the input and the replay fails on it.
[[noreturn]] inline void broken(const char* target, const std::string& what) {
  std::fprintf(stderr, "frost fuzz %s: invariant broken: %s\n", target, what.c_str());
  std::abort();
}

/// A file in memory (memfd) for the readers that take a path: rewritten for
/// every input, no disk involved. path() is /proc/self/fd/N.
class MemFile {
 public:
  explicit MemFile(const char* name) : fd_(::memfd_create(name, 0)) {
    if (fd_ < 0) broken(name, "memfd_create failed");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  const std::string& write(const std::uint8_t* data, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, data, size, 0) != static_cast<ssize_t>(size))
      broken("memfile", "cannot write the input to the memfd");
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

}  // namespace frost_fuzz
