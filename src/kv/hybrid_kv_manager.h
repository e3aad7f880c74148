// HybridKvManager: the host-side bookkeeping of the paged hybrid KV cache. It owns the three page pools of
// cache_layout.h (window, compressed, state) and one page table per sequence and pool; it owns no device
// memory (the runtime maps page ids to addresses with the CacheLayout offsets).
//
// Lifecycle of a sequence: allocate(seq, k) reserves rows for its next k positions (the first call registers
// the sequence and takes a state slot); the engine writes those rows during the step; trim_window(seq)
// after the step releases the window pages that fell out of the window; free(seq) releases everything.
// Allocation is all-or-nothing.
//
// Invariants (check_integrity):
//   * each pool is consistent (page_pool.h) and every page's refcount equals the number of page-table
//     entries that name it: every page is either free or owned;
//   * a registered sequence has n_tokens >= 1, a state slot, compressed.size() == compressed_pages(n_tokens)
//     and window.size() == pages_covering(n_tokens); window entry t is held iff page t intersects
//     [window_lo, n_tokens), and window_lo <= max(0, n_tokens - W) (the whole window is held);
//   * with require_trimmed, window_lo == max(0, n_tokens - W): only the last window's pages are held.
#pragma once
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "kv/cache_layout.h"
#include "kv/memory_budget.h"
#include "kv/page_pool.h"

namespace dsv4::kv {

using SeqId = int64_t;

enum class PoolKind : uint8_t { Window, Compressed, State };
const char* to_string(PoolKind k);

// The page tables of one sequence (plain data the runtime turns into device block tables).
struct SeqPages {
  int64_t n_tokens = 0;             // positions [0, n_tokens) have rows reserved
  int64_t window_lo = 0;            // first position whose window row is still held
  std::vector<PageId> window;       // [pages_covering(n_tokens)] page of positions [t*P, t*P+P); kNoPage if released
  std::vector<PageId> compressed;   // [compressed_pages(n_tokens)] page k holds entries of tokens [k*P, k*P+P)
  PageId state = kNoPage;           // compressor tail-state slot
};

// New pages an allocation would take from each pool.
struct PageDemand {
  int64_t window = 0;
  int64_t compressed = 0;
  int64_t state = 0;
};

class HybridKvManager {
 public:
  HybridKvManager(const CacheLayout& layout, const PoolSizes& sizes);

  const CacheLayout& layout() const { return layout_; }
  const PagePool& pool(PoolKind k) const;
  // Mutable access for tests (corrupting state to see check_integrity fail) and future prefix sharing.
  PagePool& pool_for_test(PoolKind k);

  bool contains(SeqId seq) const { return seqs_.count(seq) != 0; }
  int64_t n_tokens(SeqId seq) const;  // 0 for an unknown sequence
  const SeqPages& pages(SeqId seq) const;  // seq must be registered
  int64_t n_seqs() const { return static_cast<int64_t>(seqs_.size()); }

  PageDemand demand(SeqId seq, int64_t n_new) const;  // seq may be unknown (length 0)
  bool can_allocate(SeqId seq, int64_t n_new) const;
  // Largest k in [0, limit] with can_allocate(seq, k).
  int64_t max_allocatable(SeqId seq, int64_t limit) const;
  // Reserves rows for positions [n_tokens, n_tokens + n_new), n_new >= 1. Error (nothing taken) when a
  // pool lacks pages; the message names the pool.
  Status allocate(SeqId seq, int64_t n_new);
  // Releases the window pages entirely before position n_tokens - W.
  void trim_window(SeqId seq);
  // Releases every page of the sequence and forgets it. Returns false for an unknown sequence.
  bool free(SeqId seq);

  // Whether a sequence of n_tokens run in chunks of at most max_chunk tokens fits when it is alone.
  bool fits_alone(int64_t n_tokens, int64_t max_chunk) const;

  Status check_integrity(bool require_trimmed = false) const;

 private:
  Status check_sequence(SeqId id, const SeqPages& s, bool require_trimmed) const;
  CacheLayout layout_;
  PagePool window_, compressed_, state_;
  std::unordered_map<SeqId, SeqPages> seqs_;
};

}  // namespace dsv4::kv
