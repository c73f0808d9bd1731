#pragma once
// A policy's state, described once. `FROST_STATE(a, b, c)` inside a class
// lists the members a_, b_, c_ that make up its state; frost::save_fields and
// frost::load_fields write and read them under the keys "a", "b", "c". Save
// and load walk the same list, so they cannot drift apart: a member added to
// the list is saved and loaded, one left out is neither.
//
//   class Patience {
//    private:
//     FROST_STATE(best, bad)   // before save/load: state_fields() has a deduced type
//    public:
//     void save(torch::serialize::OutputArchive& ar) const { frost::save_fields(ar, state_fields()); }
//     void load(torch::serialize::InputArchive& ar) {
//       frost::load_fields(ar, state_fields());   // assigns best_ and bad_
//       frost::detail::require(bad_ >= 0, ...);   // then checks what it read
//     }
//    private:
//     double best_ = inf;
//     std::int64_t bad_ = 0;
//   };
//
// Assigning before checking is safe: load() runs on a freshly set-up copy of
// the policy that the controller swaps in only when every part of the
// checkpoint loaded (frost/concepts/state.hpp). What a field's value must
// satisfy (sizes against the block map, ranges) stays the policy's code;
// state that is not a fixed list of members (a tensor per live parameter) is
// written next to the fields by hand.
//
// Field types and how they are stored (the kinds the hand-written code used,
// so checkpoints written before FROST_STATE load unchanged):
//   std::int64_t, double, bool, std::string        an IValue of that kind
//   an enum                                          its value as an integer
//   std::vector<std::int64_t> / <double> / <std::string>   a list
//   std::vector<char> (flags)                        a list of integers
//   at::Tensor                                       a buffer, read on the CPU
//                                                    (the policy moves it)
#include <ATen/core/Tensor.h>
#include <ATen/core/List.h>
#include <ATen/core/ivalue.h>
#include <boost/preprocessor/cat.hpp>
#include <boost/preprocessor/punctuation/comma_if.hpp>
#include <boost/preprocessor/seq/for_each_i.hpp>
#include <boost/preprocessor/stringize.hpp>
#include <boost/preprocessor/variadic/to_seq.hpp>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "frost/detail/archive.hpp"
#include "frost/error.hpp"

namespace frost {

/// One member of a policy's state: its checkpoint key and a reference to it.
template <class T>
struct StateField {
  const char* key;
  T& value;
};
template <class T>
StateField<T> state_field(const char* key, T& value) {
  return {key, value};
}

namespace detail {

template <class T>
void write_field(torch::serialize::OutputArchive& ar, const char* key, const T& v) {
  if constexpr (std::is_same_v<T, at::Tensor>) {
    ar.write(key, v, /*is_buffer=*/true);
  } else if constexpr (std::is_enum_v<T>) {
    ar.write(key, c10::IValue(static_cast<std::int64_t>(v)));
  } else if constexpr (std::is_same_v<T, std::vector<char>>) {
    ar.write(key, c10::IValue(std::vector<std::int64_t>(v.begin(), v.end())));
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    ar.write(key, c10::IValue(c10::List<std::string>(v)));
  } else {
    static_assert(std::is_same_v<T, std::int64_t> || std::is_same_v<T, double> ||
                      std::is_same_v<T, bool> || std::is_same_v<T, std::string> ||
                      std::is_same_v<T, std::vector<std::int64_t>> ||
                      std::is_same_v<T, std::vector<double>>,
                  "frost: FROST_STATE lists a member of a type it cannot store; use std::int64_t, "
                  "double, bool, std::string, an enum, std::vector of std::int64_t / double / "
                  "char / std::string, or at::Tensor (frost/state_fields.hpp)");
    ar.write(key, c10::IValue(v));
  }
}

template <class T>
T value_as(const c10::IValue& x) {
  if constexpr (std::is_enum_v<T>) {
    return static_cast<T>(x.toInt());
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    return x.toInt();
  } else if constexpr (std::is_same_v<T, double>) {
    return x.toDouble();
  } else if constexpr (std::is_same_v<T, bool>) {
    return x.toBool();
  } else if constexpr (std::is_same_v<T, std::string>) {
    return x.toStringRef();
  } else if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) {
    return x.toIntVector();
  } else if constexpr (std::is_same_v<T, std::vector<double>>) {
    return x.toDoubleVector();
  } else if constexpr (std::is_same_v<T, std::vector<char>>) {
    const auto ints = x.toIntVector();
    return std::vector<char>(ints.begin(), ints.end());
  } else {
    static_assert(std::is_same_v<T, std::vector<std::string>>, "see write_field");
    std::vector<std::string> out;
    for (const auto& s : x.toListRef()) out.push_back(s.toStringRef());
    return out;
  }
}

template <class T>
void read_field(torch::serialize::InputArchive& ar, const char* key, T& v) {
  if constexpr (std::is_same_v<T, at::Tensor>) {
    at::Tensor t;
    if (!ar.try_read(key, t, /*is_buffer=*/true))
      fail("checkpoint has no tensor '", key,
           "'; it was written by another program, version or strategy than the one reading it");
    v = t;
  } else {
    const c10::IValue x = read_value(ar, key);
    try {
      v = value_as<T>(x);
    } catch (const c10::Error&) {
      fail("checkpoint's '", key, "' holds a ", x.tagKind(),
           " where a policy's state expects another kind; it was written by another program, "
           "version or strategy than the one reading it");
    }
  }
}

}  // namespace detail

/// Writes every field of `fields` (a policy's state_fields()) under its key.
template <class... T>
void save_fields(torch::serialize::OutputArchive& ar, const std::tuple<StateField<T>...>& fields) {
  std::apply([&](const auto&... f) { (detail::write_field(ar, f.key, f.value), ...); }, fields);
}

/// Reads every field of `fields` back from its key, assigning the members; a
/// missing key or a value of another kind is a frost::Error naming the key.
template <class... T>
void load_fields(torch::serialize::InputArchive& ar, const std::tuple<StateField<T>...>& fields) {
  std::apply([&](const auto&... f) { (detail::read_field(ar, f.key, f.value), ...); }, fields);
}

}  // namespace frost

#define FROST_DETAIL_STATE_FIELD(r, data, i, m) \
  BOOST_PP_COMMA_IF(i)::frost::state_field(BOOST_PP_STRINGIZE(m), BOOST_PP_CAT(m, _))

/// Inside a policy: its state is the members `<name>_` for each name listed;
/// declares state_fields() (const and not) for frost::save_fields/load_fields.
#define FROST_STATE(...)                                                                        \
  auto state_fields() {                                                                         \
    return std::make_tuple(                                                                     \
        BOOST_PP_SEQ_FOR_EACH_I(FROST_DETAIL_STATE_FIELD, ~, BOOST_PP_VARIADIC_TO_SEQ(__VA_ARGS__))); \
  }                                                                                             \
  auto state_fields() const {                                                                   \
    return std::make_tuple(                                                                     \
        BOOST_PP_SEQ_FOR_EACH_I(FROST_DETAIL_STATE_FIELD, ~, BOOST_PP_VARIADIC_TO_SEQ(__VA_ARGS__))); \
  }
