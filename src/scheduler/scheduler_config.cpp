// Validation of SchedulerConfig (user-facing: the values come from command-line flags).
#include "scheduler/scheduler_config.h"

#include <string>

namespace dsv4::scheduler {
namespace {

Status at_least(const char* field, int64_t value, int64_t min) {
  if (value >= min) return Ok{};
  return make_error(std::string("scheduler config: ") + field + " = " + std::to_string(value) + ", expected >= " +
                    std::to_string(min));
}

}  // namespace

Status validate(const SchedulerConfig& c) {
  DSV4_TRY_STATUS(at_least("max_tokens_per_step", c.max_tokens_per_step, 1));
  DSV4_TRY_STATUS(at_least("max_running", c.max_running, 1));
  DSV4_TRY_STATUS(at_least("max_prefill_chunk", c.max_prefill_chunk, 1));
  if (const auto* p = std::get_if<FcfsWaitCap>(&c.admission)) {
    DSV4_TRY_STATUS(at_least("long_prompt_tokens", p->long_prompt_tokens, 1));
    DSV4_TRY_STATUS(at_least("max_long_prefills", p->max_long_prefills, 1));
    DSV4_TRY_STATUS(at_least("wait_cap_steps", p->wait_cap_steps, 0));
  }
  return Ok{};
}

}  // namespace dsv4::scheduler
