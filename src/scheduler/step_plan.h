// StepPlan and StepResult: the plain data exchanged between the scheduler and the engine loop.
//
//   plan = scheduler.step();   // KV rows for every chunk are already reserved in the HybridKvManager
//   engine: release state of plan.finished / plan.preempted; copy each restore_state slot into the chunk's
//           state slot; build the forward batch from plan.seqs and plan.input_ids (positions start..end-1, page
//           tables from kv.pages(id)); run; copy each chunk's state slot into its snapshot_state slot; sample one
//           token per chunk with needs_logits
//   scheduler.commit(result);  // exactly once per step(), also for an empty plan
#pragma once
#include <cstdint>
#include <vector>

#include "kv/page_pool.h"
#include "scheduler/request.h"

namespace dsv4::scheduler {

struct ScheduledSeq {
  ReqId id = 0;
  int64_t start = 0;          // first position of the chunk; KV of positions [0, start) is in the cache
  int64_t end = 0;            // one past the last position; the chunk is known tokens [start, end)
  int64_t row_begin = 0;      // rows [row_begin, row_begin + n()) of StepPlan::input_ids
  bool needs_logits = false;  // end == number of known tokens: sample the next token from the last row
  bool fresh = false;         // start == 0 (new or recomputed)
  // Prefix caching (kv/hybrid_kv_manager.h): the cached compressor-state snapshot to copy into the sequence's
  // state slot before the forward (start > 0: the sequence was attached to a cached prefix of `start` tokens),
  // and the slot that receives a copy of its state after the forward (end is a page boundary to cache).
  kv::PageId restore_state = kv::kNoPage;
  kv::PageId snapshot_state = kv::kNoPage;
  int64_t n() const { return end - start; }
};

struct Finished {
  ReqId id = 0;
  FinishReason reason = FinishReason::Stop;
  int64_t n_generated = 0;
};

struct StepPlan {
  int64_t step = 0;                   // step index, 1-based
  std::vector<ScheduledSeq> seqs;     // at most one chunk per request, oldest request first
  std::vector<int32_t> input_ids;     // [n_tokens()] the chunks' token ids, concatenated in seqs order
  std::vector<ReqId> preempted;       // preempted in this step: KV freed, will be recomputed from position 0
  std::vector<Finished> finished;     // ended since the previous plan (at the last commit or by cancel()):
                                      // KV freed, the id may be reused
  int64_t n_tokens() const { return static_cast<int64_t>(input_ids.size()); }
  bool empty() const { return seqs.empty(); }
};

struct SampledToken {
  ReqId id = 0;
  int32_t token = 0;
  bool stop = false;  // the engine's stop criteria matched (EOS, stop string): finish with Stop
};

// One entry per chunk of the committed plan with needs_logits; a request cancelled while in flight may be
// left out (its result is discarded either way).
struct StepResult {
  std::vector<SampledToken> sampled;
};

}  // namespace dsv4::scheduler
