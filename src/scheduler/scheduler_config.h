// SchedulerConfig and the admission policies (policies are values: a std::variant, no inheritance).
//
// Order of service. Requests are ranked by arrival (FCFS). Each step first serves the running requests in
// rank order (decodes and prefill chunks alike, each at most max_prefill_chunk tokens), then admits waiting
// requests in rank order while the token budget, max_running and the KV pools allow. A request that was
// preempted keeps its rank, so it is ahead of every request that arrived after it.
//
// StrictFcfs: the first waiting request that cannot be admitted stops admission for this step (no request
//   overtakes an older one).
// FcfsWaitCap: a waiting request that cannot be admitted is skipped and younger ones may be admitted. A
//   request is skipped when its first chunk does not fit in the KV pools, or when it is long (more than
//   long_prompt_tokens tokens left to prefill) and max_long_prefills long prompts are already prefilling.
//   A request is overdue once it has waited more than wait_cap_steps steps since it (re)entered the queue;
//   an overdue request ignores the long-prefill limit, and if it still cannot be admitted, admission stops
//   for this step, so no younger request (short or long) is admitted before it. Pages and running slots
//   freed by finishing requests then go to the overdue request first.
#pragma once
#include <cstdint>
#include <variant>

#include "core/result.h"

namespace dsv4::scheduler {

struct StrictFcfs {};

struct FcfsWaitCap {
  int64_t long_prompt_tokens = 8192;  // a prompt with more tokens than this left to prefill is long
  int64_t max_long_prefills = 1;      // long prompts prefilling at once (overdue ones excepted)
  int64_t wait_cap_steps = 256;       // a request waiting longer than this blocks younger admissions
};

using AdmissionPolicy = std::variant<StrictFcfs, FcfsWaitCap>;

struct SchedulerConfig {
  int64_t max_tokens_per_step = 8192;  // token budget of one step: decodes + prefill chunks
  int64_t max_running = 64;            // requests holding KV at once
  int64_t max_prefill_chunk = 2048;    // tokens of one request in one step
  AdmissionPolicy admission = FcfsWaitCap{};
};

// Errors name the field and the allowed range.
Status validate(const SchedulerConfig& config);

}  // namespace dsv4::scheduler
