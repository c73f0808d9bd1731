#pragma once
// reducers::AllReduceMean — consensus of the ranks of a data-parallel run.
//
// The data-parallel gradient-norm paper (data-parallel-freezing-gradient-norm-
// test, §7 "Future work", item 2) leaves the workers' votes on freezing as
// future work. Here they agree by construction: at every decision
// point the criterion's statistics (and every reported validation loss) are
// all-reduced and averaged before the host reads them, so every rank decides
// from the same numbers, at the same step, and the timelines are identical.
//
//   using Ctl = frost::FreezeController<Criterion, Schedule, Stop,
//       frost::with_reducer<frost::reducers::AllReduceMean>>;
//
// Before each reduction one small all-gather checks that every rank brings a
// tensor of the same size, at the same call: a rank with another model (other
// statistics) or out of step fails every rank with an error naming it,
// instead of mixing numbers or hanging.
//
// The group is options.group(), else frost::dist::default_group() at
// construction; with neither (a single-process run) the reducer is the
// identity. Stateless: a checkpoint taken on N ranks resumes on one and back.
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>

#include "frost/concepts/reducer.hpp"
#include "frost/options.hpp"
#include "frost/distributed/group.hpp"

namespace frost::reducers {

struct AllReduceMeanOptions {
  /// The ranks to agree with; null: frost::dist::default_group().
  FROST_ARG(std::shared_ptr<dist::Group>, group) = nullptr;
};

class AllReduceMean {
 public:
  using Options = AllReduceMeanOptions;
  static constexpr const char* name = "AllReduceMean";
  static constexpr bool stateless = true;

  explicit AllReduceMean(const Options& o = {})
      : group_(o.group() ? o.group() : dist::default_group()) {}

  at::Tensor reduce(const at::Tensor& statistics) {
    if (!group_ || group_->size() == 1) return statistics;
    auto& g = *group_;
    ++calls_;
    // Same size, same call on every rank, or a clear error (see above).
    g.agree({statistics.numel(), calls_},
            [](const std::vector<std::int64_t>& v) {
              return "brings " + std::to_string(v[0]) + " values at its reduction " +
                     std::to_string(v[1]);
            },
            "they reached a decision point with different statistics: every rank must train "
            "the same model with the same composition and options, in step (same steps per "
            "epoch and decision points)");
    at::Tensor x = statistics.detach().to(g.device()).contiguous().clone();
    g.all_reduce_(x);
    x.div_(static_cast<double>(g.size()));
    return x.to(statistics.device());
  }

  const std::shared_ptr<dist::Group>& group() const noexcept { return group_; }

 private:
  std::shared_ptr<dist::Group> group_;
  std::int64_t calls_ = 0;  // this rank's reductions so far (compared, never saved)
};

}  // namespace frost::reducers

// Reflected without its one field, on purpose: `group` is a live object (the
// ranks' process group), not a value describe() can print or set_option()
// parse; it is given in code only. (FROST_REFLECT_NONE refuses a struct with
// fields, so this is the one bare adaptation.)
BOOST_HANA_ADAPT_STRUCT(frost::reducers::AllReduceMeanOptions);
