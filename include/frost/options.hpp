#pragma once
// Options structs in the style of the LibTorch C++ frontend (chained setters,
// `opts.t0(0.8).warmup(10)`), reflected with Boost.Hana so that a controller
// can print its whole configuration and a command line can set any field by
// name (`frost::set_option(opts, "t0", "0.8")`).
//
// A policy's options are declared once, in one list (as
// BOOST_HANA_DEFINE_STRUCT declares members), inside the struct:
//
//   struct FreezeOutOptions {
//     FROST_OPTIONS(
//         /// t0: the share of the run before the first block freezes.
//         (double, t0, 0.0),
//         (std::int64_t, warmup, 0));
//   };
//
// Each entry is (type, name, default): a field with TORCH_ARG's setter and
// getters, and the name describe() and set_option() use. A default may hold
// commas (`{1, 2}`); a type may not (name it with `using` first). Reflected
// names are the user-facing names (without the storage suffix `_`). An
// options struct without fields is reflected with FROST_REFLECT_NONE(Type).
//
// The older two-list form (FROST_ARG fields, then FROST_REFLECT(Type, ...)
// at global scope) still works for options a user cannot declare in one
// list; the compiler checks that its list names every FROST_ARG in order.
#include <boost/hana/accessors.hpp>
#include <boost/hana/adapt_adt.hpp>
#include <boost/hana/adapt_struct.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/first.hpp>
#include <boost/hana/second.hpp>
#include <boost/hana/concept/struct.hpp>
#include <boost/hana/pair.hpp>
#include <boost/hana/string.hpp>
#include <boost/hana/tuple.hpp>
#include <boost/preprocessor/punctuation/comma_if.hpp>
#include <boost/preprocessor/seq/for_each.hpp>
#include <boost/preprocessor/seq/for_each_i.hpp>
#include <boost/preprocessor/variadic/to_seq.hpp>

#include <cstdint>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "frost/error.hpp"

/// Declares an option the way LibTorch's TORCH_ARG does: a private field
/// `name_`, a chained setter `name(v)` (by const reference and by rvalue) and
/// const / non-const getters `name()`. Follow it with `= default_value;`.
/// Members declared after the last FROST_ARG are private unless the struct
/// says `public:` again.
#define FROST_ARG(T, name)                                   \
 public:                                                     \
  auto name(const T& new_##name)->decltype(*this) {          \
    this->name##_ = new_##name;                              \
    return *this;                                            \
  }                                                          \
  auto name(T&& new_##name)->decltype(*this) {               \
    this->name##_ = std::move(new_##name);                   \
    return *this;                                            \
  }                                                          \
  const T& name() const noexcept { return this->name##_; }   \
  T& name() noexcept { return this->name##_; }               \
                                                             \
 private:                                                    \
  T name##_

/// Declares every option of a struct in one list, inside the struct:
/// `FROST_OPTIONS((double, t0, 0.0), (std::int64_t, warmup, 0));`. Each
/// entry becomes a FROST_ARG with its default, and the struct is reflected
/// (Boost.Hana's nested accessors, as BOOST_HANA_DEFINE_STRUCT does) from the
/// same list, so a field cannot be declared and left out of describe(),
/// set_option() or frost-train's --set. Members after it are public.
#define FROST_OPTIONS(...)                                                             \
  BOOST_PP_SEQ_FOR_EACH(FROST_DETAIL_DECLARE, ~, BOOST_PP_VARIADIC_TO_SEQ(__VA_ARGS__)) \
 public:                                                                               \
  struct hana_accessors_impl {                                                         \
    static constexpr auto apply() {                                                    \
      return ::boost::hana::make_tuple(BOOST_PP_SEQ_FOR_EACH_I(                        \
          FROST_DETAIL_NAMED_ACCESSOR, ~, BOOST_PP_VARIADIC_TO_SEQ(__VA_ARGS__)));      \
    }                                                                                  \
  }
// One entry (type, name, default...): the field, and its (name, accessor) pair.
#define FROST_DETAIL_DECLARE(r, data, entry) FROST_DETAIL_DECLARE_I entry
#define FROST_DETAIL_DECLARE_I(T, name, ...) FROST_ARG(T, name) = __VA_ARGS__;
#define FROST_DETAIL_NAMED_ACCESSOR(r, data, i, entry) \
  BOOST_PP_COMMA_IF(i) FROST_DETAIL_NAMED_ACCESSOR_I entry
#define FROST_DETAIL_NAMED_ACCESSOR_I(T, name, ...)  \
  ::boost::hana::make_pair(BOOST_HANA_STRING(#name), \
                           [](auto&& o) -> decltype(auto) { return o.name(); })

// Reflection goes through the public accessors (the fields are private):
// (name, [](auto&& o) -> decltype(auto) { return o.name(); }) for every field.
#define FROST_DETAIL_ACCESSOR(r, data, i, name) \
  BOOST_PP_COMMA_IF(i)(name, [](auto&& o) -> decltype(auto) { return o.name(); })

// The type of each listed field, for the layout check below.
#define FROST_DETAIL_FIELD_TYPE(r, Type, i, name) \
  BOOST_PP_COMMA_IF(i)::frost::detail::field_t<decltype(std::declval<const Type&>().name())>

/// Reflects an options struct declared with FROST_ARG (use at global scope),
/// listing its fields in the order they are declared. The two lists (the
/// FROST_ARGs and this one) are checked against each other at compile time:
/// a struct laid out from the listed fields alone must have the struct's
/// size and alignment, so a FROST_ARG left out here (or a list out of
/// order) does not compile. A field small enough to hide in the struct's
/// tail padding escapes this check; ctest's docs.options_listed_once
/// compares the names in every header.
#define FROST_REFLECT(Type, ...)                                                                \
  FROST_DETAIL_ADAPT(                                                                           \
      Type, BOOST_PP_SEQ_FOR_EACH_I(FROST_DETAIL_ACCESSOR, ~, BOOST_PP_VARIADIC_TO_SEQ(__VA_ARGS__))); \
  static_assert(::frost::detail::laid_out_as<Type, BOOST_PP_SEQ_FOR_EACH_I(                     \
                    FROST_DETAIL_FIELD_TYPE, Type, BOOST_PP_VARIADIC_TO_SEQ(__VA_ARGS__))>(),   \
                "frost: FROST_REFLECT(" #Type ", ...) does not list every FROST_ARG of " #Type  \
                " in declaration order; list each field once, in the order declared")
#define FROST_DETAIL_ADAPT(Type, ...) BOOST_HANA_ADAPT_ADT(Type, __VA_ARGS__)

/// Reflects an options struct without options (a policy with nothing to
/// set), so that describe() and set_option() accept it like any other.
#define FROST_REFLECT_NONE(Type)                                                         \
  BOOST_HANA_ADAPT_STRUCT(Type);                                                         \
  static_assert(std::is_empty_v<Type>, "frost: FROST_REFLECT_NONE(" #Type "): " #Type    \
                " has fields; list them with FROST_REFLECT(" #Type ", field1, field2, ...)")

namespace frost {

/// One `key=value` line per field; nested option structs and tuples (the
/// options of combinators) are flattened with dotted keys.
using OptionList = std::vector<std::pair<std::string, std::string>>;

namespace detail {

/// A reflected field's type (its accessor returns a const reference).
template <class R>
using field_t = std::remove_cv_t<std::remove_reference_t<R>>;

/// Whether `Type` is laid out as a struct of exactly the fields `F...` in
/// this order (the size and alignment the compiler would give them).
template <class Type, class... F>
constexpr bool laid_out_as() {
  std::size_t offset = 0, align = 1;
  ((offset = (offset + alignof(F) - 1) / alignof(F) * alignof(F) + sizeof(F),
    align = alignof(F) > align ? alignof(F) : align),
   ...);
  offset = (offset + align - 1) / align * align;
  return offset == sizeof(Type) && align == alignof(Type);
}

template <class T, class = void>
struct is_reflected : std::false_type {};
template <class T>
struct is_reflected<T, std::enable_if_t<boost::hana::Struct<T>::value>> : std::true_type {};

template <class T>
struct is_tuple : std::false_type {};
template <class... Ts>
struct is_tuple<std::tuple<Ts...>> : std::true_type {};

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};

template <class T>
std::string to_text(const T& v) {
  std::ostringstream os;
  if constexpr (std::is_same_v<T, bool>) {
    os << (v ? "true" : "false");
  } else if constexpr (is_vector<T>::value) {
    for (std::size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << to_text(v[i]);
  } else if constexpr (std::is_enum_v<T>) {
    os << to_string(v);  // found by ADL next to the enum
  } else {
    os << v;
  }
  return os.str();
}

/// The names an enum's from_string accepts, "a, b or c": the values whose
/// to_string reads back (both found by ADL next to the enum).
template <class T>
std::string enum_names() {
  std::vector<std::string> names;
  for (int i = 0; i < 64; ++i) {
    const T e = static_cast<T>(i);
    T back{};
    const std::string n = to_string(e);
    if (from_string(n, back) && back == e) names.push_back(n);
  }
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return out;
}

template <class T>
T from_text(const std::string& key, const std::string& text) {
  if constexpr (std::is_same_v<T, std::string>) {
    return text;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (text == "1" || text == "true" || text == "on" || text == "yes") return true;
    if (text == "0" || text == "false" || text == "off" || text == "no") return false;
    fail("option '", key, "' takes true/false, got '", text, "'");
  } else if constexpr (is_vector<T>::value) {
    T out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (!item.empty()) out.push_back(from_text<typename T::value_type>(key, item));
    }
    return out;
  } else if constexpr (std::is_enum_v<T>) {
    T v{};
    if (!from_string(text, v))
      fail("option '", key, "' does not accept '", text, "'; it takes ", enum_names<T>());
    return v;
  } else {
    std::istringstream is(text);
    T v{};
    is >> v;
    char rest = 0;
    if (is.fail() || (is >> rest))
      fail("option '", key, "' expects a number", std::is_integral_v<T> ? " (an integer)" : "",
           ", got '", text, "'");
    return v;
  }
}

template <class Opts, class F>
void visit_fields(Opts& opts, const std::string& prefix, F&& f);

template <class T, class F>
void visit_value(T& value, const std::string& key, F& f) {
  using V = std::decay_t<T>;
  if constexpr (is_reflected<V>::value || is_tuple<V>::value) {
    visit_fields(value, key + ".", f);
  } else {
    f(key, value);
  }
}

template <class Opts, class F>
void visit_fields(Opts& opts, const std::string& prefix, F&& f) {
  using O = std::decay_t<Opts>;
  if constexpr (is_tuple<O>::value) {
    std::size_t i = 0;
    std::apply([&](auto&... parts) { (visit_value(parts, prefix + std::to_string(i++), f), ...); },
               opts);
  } else if constexpr (is_reflected<O>::value) {
    boost::hana::for_each(boost::hana::accessors<O>(), [&](auto pair) {
      auto name = boost::hana::to<char const*>(boost::hana::first(pair));
      visit_value(boost::hana::second(pair)(opts), prefix + name, f);
    });
  } else {
    static_assert(is_reflected<O>::value || is_tuple<O>::value,
                  "frost: this Options type is not reflected; declare its fields with "
                  "FROST_OPTIONS((type, name, default), ...) inside the struct "
                  "(FROST_REFLECT_NONE(YourOptions) at global scope when it has none)");
  }
}
}  // namespace detail

/// All fields of an options struct (or tuple of them) as key/value text.
template <class Opts>
OptionList describe(const Opts& opts) {
  OptionList out;
  detail::visit_fields(opts, "", [&](const std::string& key, const auto& v) {
    out.emplace_back(key, detail::to_text(v));
  });
  return out;
}

/// Sets the field `key` (dotted for nested options) from text; throws
/// frost::Error naming the known keys when there is no such field. Messages
/// name the key with `shown_prefix` in front (a controller's "criterion.", ...).
template <class Opts>
void set_option(Opts& opts, const std::string& key, const std::string& value,
                const std::string& shown_prefix = "") {
  bool found = false;
  std::string known;
  detail::visit_fields(opts, "", [&](const std::string& k, auto& v) {
    known += (known.empty() ? "" : ", ") + k;
    if (k == key) {
      v = detail::from_text<std::decay_t<decltype(v)>>(shown_prefix + key, value);
      found = true;
    }
  });
  if (!found)
    detail::fail("unknown option '", shown_prefix, key, "'; known options: ", known,
                 shown_prefix.empty() ? "" : " (each after '" + shown_prefix + "')");
}

}  // namespace frost
