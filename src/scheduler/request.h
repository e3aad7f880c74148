// Request: the scheduler's record of one generation request and its state machine.
//
//   add_request ──> Waiting ──admit──> Running ──commit: stop / max_new_tokens──> Finished(Stop | Length)
//                     ^                   │  (phase Prefill while > 1 known token lacks KV, then Decode)
//                     └──── Preempted <───┘  preempted: KV freed, recomputed later from position 0
//   cancel() from any live state ──> Finished(Cancelled)
//
// Known tokens are the prompt followed by the generated tokens. n_computed of them have their KV in the
// cache (committed steps only). A running request always has at least one known token without KV: the
// next chunk, or the last sampled token in decode.
#pragma once
#include <cstdint>
#include <vector>

#include "kv/hybrid_kv_manager.h"

namespace dsv4::scheduler {

using ReqId = kv::SeqId;

enum class RequestState : uint8_t { Waiting, Running, Preempted };
enum class Phase : uint8_t { Prefill, Decode };
enum class FinishReason : uint8_t {
  Stop,       // the engine reported a stop (EOS, stop string)
  Length,     // max_new_tokens generated
  Cancelled,  // cancel()
};
const char* to_string(RequestState s);
const char* to_string(FinishReason r);

struct RequestSpec {
  ReqId id = 0;                 // chosen by the caller, unique among live requests
  std::vector<int32_t> prompt;  // token ids, non-empty
  int64_t max_new_tokens = 0;   // >= 1
};

struct Request {
  ReqId id = 0;
  std::vector<int32_t> tokens;  // prompt followed by generated tokens
  int64_t n_prompt = 0;
  int64_t max_new_tokens = 0;
  int64_t n_computed = 0;       // known tokens whose KV is in the cache (0 while waiting or preempted)
  RequestState state = RequestState::Waiting;
  int64_t arrival = 0;          // FCFS rank: order of add_request
  int64_t queued_step = 0;      // step index at which it last entered the waiting queue
  int64_t preempted_step = -1;  // step index of its last preemption
  int64_t n_preemptions = 0;
  bool long_prefill = false;    // admitted as a long prompt (FcfsWaitCap)
  bool in_flight = false;       // part of the step between step() and commit()
  bool cancel_requested = false;  // cancel() arrived while in flight; ended at commit()

  int64_t n_known() const { return static_cast<int64_t>(tokens.size()); }
  int64_t n_generated() const { return n_known() - n_prompt; }
  int64_t n_remaining() const { return n_known() - n_computed; }  // known tokens without KV
  Phase phase() const { return n_remaining() > 1 ? Phase::Prefill : Phase::Decode; }
};

}  // namespace dsv4::scheduler
