#pragma once
// The Reducer concept: what happens to a criterion's statistics (and to the
// validation losses) between the device and the host, at decision points only.
//
//   struct MyReducer {
//     using Options = MyReducerOptions;              // FROST_OPTIONS
//     static constexpr const char* name = "MyReducer";
//     static constexpr bool stateless = true;        // required: a checkpoint resumes
//                                                    // with any reducer (1 or N ranks)
//     explicit MyReducer(const Options&);
//     at::Tensor reduce(const at::Tensor& statistics);  // same shape back, same device
//     // optional:
//     static constexpr bool identity = true;         // reduce() returns its input unchanged
//   };
//
// The default, reducers::Identity, does nothing. A data-parallel reducer
// all-reduces (averages) the tensor over the ranks, so every rank takes every
// decision from the same numbers at the same step. reduce() must not read the
// host itself: the controller does that once, right after it.
#include <ATen/core/Tensor.h>

#include <type_traits>
#include <utility>

#include "frost/concepts/detect.hpp"
#include "frost/concepts/state.hpp"
#include "frost/error.hpp"

namespace frost::concepts {
namespace ops {
template <class R>
using reducer_reduce =
    decltype(at::Tensor{std::declval<R&>().reduce(std::declval<const at::Tensor&>())});
template <class R>
using reducer_identity = decltype(bool{R::identity});
template <class R>
using reducer_options = typename R::Options;
template <class R>
using reducer_name = decltype(R::name);
template <class R>
using reducer_ctor = decltype(R(std::declval<const typename R::Options&>()));
}  // namespace ops

template <class R>
constexpr bool check_reducer() {
  static_assert(is_detected<ops::reducer_options, R>,
                "frost: a Reducer needs a nested `using Options = ...;` (its reflected options)");
  static_assert(is_detected<ops::reducer_name, R>,
                "frost: a Reducer needs `static constexpr const char* name = \"...\";`");
  if constexpr (is_detected<ops::reducer_options, R>)
    static_assert(is_detected<ops::reducer_ctor, R>,
                  "frost: a Reducer needs a constructor `explicit R(const Options&)`");
  static_assert(is_detected<ops::reducer_reduce, R>,
                "frost: a Reducer needs `at::Tensor reduce(const at::Tensor&)` (the statistics "
                "of one decision point; return a tensor of the same shape)");
  static_assert(is_stateless<R>(),
                "frost: a Reducer must declare `static constexpr bool stateless = true;` (a "
                "checkpoint written with one reducer resumes with another, e.g. on one rank)");
  return true;
}

template <class R>
constexpr bool is_identity_reducer() {
  if constexpr (is_detected<ops::reducer_identity, R>)
    return R::identity;
  else
    return false;
}

/// r.reduce(t), refused when the reducer gives back another shape.
template <class R>
at::Tensor reduce(R& r, const at::Tensor& t) {
  at::Tensor out = r.reduce(t);
  frost::detail::require(out.defined() && out.sizes() == t.sizes(), "reducer ", name_of<R>(),
                         " returned a tensor of another shape (",
                         out.defined() ? out.sizes() : at::IntArrayRef{}, " for ", t.sizes(), ")");
  return out;
}
}  // namespace frost::concepts
