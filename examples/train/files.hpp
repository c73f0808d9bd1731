#pragma once
// examples/train/files.hpp — the small helpers behind the files a run writes:
// paths, atomic writes (checkpoints and logs survive a crash), the numbers of
// steps.jsonl and of the CSV files.
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "system.hpp"

namespace frost_train {

inline bool path_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

using frost_examples::make_dirs;  // mkdir -p (examples/common/system.hpp)

inline std::string join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

/// Writes `text` to `path` atomically (temporary file + rename).
inline void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("cannot write " + tmp);
    f << text;
    if (!f.flush()) throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

/// steps.jsonl: one JSON object per line, keys in the order written.
using Json = nlohmann::ordered_json;

/// A number for steps.jsonl, to 6 significant digits; null when not finite
/// (JSON has no NaN or infinity).
inline Json json_number(double v) {
  if (!std::isfinite(v)) return nullptr;
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return std::strtod(b, nullptr);
}

/// `j` as one line of a JSON-lines file (invalid UTF-8 replaced, not thrown).
inline std::string json_line(const Json& j) {
  return j.dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace) + "\n";
}

/// A number for the CSV files: 6 significant digits, "null" when not finite.
inline std::string csv_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream os;
  os << std::setprecision(6) << v;
  return os.str();
}

}  // namespace frost_train
