// HybridKvManager: the host-side bookkeeping of the paged hybrid KV cache. It owns the three page pools of
// cache_layout.h (window, compressed, state) and one page table per sequence and pool; it owns no device
// memory (the runtime maps page ids to addresses with the CacheLayout offsets).
//
// Lifecycle of a sequence: allocate(seq, k) reserves rows for its next k positions (the first call registers
// the sequence and takes a state slot); the engine writes those rows during the step; trim_window(seq)
// after the step releases the window pages that fell out of the window; free(seq) releases everything.
// Allocation is all-or-nothing.
//
// Prefix caching (off unless enable_prefix_cache(); kv/prefix_cache.cpp): a cache entry stands for the first
// k pages of a token sequence and holds compressed page k-1 (pages 0..k-2 are held by the entry's ancestors).
// A resumable entry also holds what resuming at position k*P needs: window page k-1 (whose rows include the last
// W <= P positions: the window kept by full store) and a snapshot of the compressor state at k*P in a state slot
// of its own. A link entry (a boundary inside a prefill chunk, whose state was never seen) has neither: lookups
// pass through it and resume at the last resumable entry (periodic checkpoints). Entries are keyed
// by (parent entry, the page's tokens), so a hit compares tokens, never hashes alone. A sequence attached to a
// cached prefix shares those pages read-only (it writes positions >= k*P only, in pages of its own). Entries the
// pools need are evicted least recently used first, leaves before their parents.
//
// Invariants (check_integrity):
//   * each pool is consistent (page_pool.h) and every page's refcount equals the number of page-table
//     entries, prefix cache entries and pinned snapshots that name it: every page is either free or owned;
//   * a registered sequence has n_tokens >= 1, a state slot, compressed.size() == compressed_pages(n_tokens)
//     and window.size() == pages_covering(n_tokens); window entry t is held iff page t intersects
//     [window_lo, n_tokens), and window_lo <= max(0, n_tokens - W) (the whole window is held);
//   * with require_trimmed, window_lo == max(0, n_tokens - W): only the last window's pages are held.
#pragma once
#include <cstdint>
#include <map>
#include <span>
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

struct PrefixCacheStats {
  int64_t entries = 0;          // cached pages
  int64_t hit_tokens = 0;       // tokens served from the cache
  int64_t queried_tokens = 0;   // tokens the lookups asked for
  int64_t evictions = 0;
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

  // --- prefix caching ---
  // Error when the window is longer than a page (a cached page must hold the whole window).
  Status enable_prefix_cache(bool on);
  bool prefix_cache_enabled() const { return prefix_on_; }
  // Tokens of the longest cached resumable prefix of `tokens` (whole pages) that is at most max_tokens long.
  int64_t cached_prefix(std::span<const int32_t> tokens, int64_t max_tokens) const;
  // Registers the unknown sequence `seq` at n = cached_prefix(tokens, ...) tokens: it shares the entries' pages
  // and gets a state slot of its own (evicting entries if no slot is free; error, nothing taken, if none can be
  // had). Returns the cached snapshot's state slot, pinned until unpin(): the caller copies it into
  // pages(seq).state before the sequence runs.
  Result<PageId> attach_prefix(SeqId seq, std::span<const int32_t> tokens, int64_t n);
  // Whether the page ending at tokens.size() (a multiple of P) is cached under its prefix, resumable.
  bool is_cached(std::span<const int32_t> tokens) const;
  // A state slot for a snapshot, pinned (evicting entries if needed); kNoPage when none can be had.
  PageId take_snapshot_slot();
  // Adds the entry for the page ending at tokens.size() (a multiple of P, <= n_tokens(seq)) of `seq`, whose
  // state at that position was copied into the pinned `snapshot` (the entry takes over the pin), or a link entry
  // when snapshot is kNoPage. A link entry that exists gains the snapshot. Otherwise no-op (the pin is dropped)
  // when the entry exists or its parent is not cached.
  void add_prefix(SeqId seq, std::span<const int32_t> tokens, PageId snapshot);
  // Pages of `kind` that evicting cache entries could free (held by the cache alone).
  int64_t reclaimable(PoolKind kind) const;
  void unpin(PageId state_slot);  // drops a pin of attach_prefix / take_snapshot_slot
  int64_t n_pins() const { return static_cast<int64_t>(pins_.size()); }
  const PrefixCacheStats& prefix_stats() const { return prefix_stats_; }
  void count_prefix_query(int64_t asked_tokens, int64_t hit_tokens) {
    prefix_stats_.queried_tokens += asked_tokens;
    prefix_stats_.hit_tokens += hit_tokens;
  }
  // Evicts every entry (pages that sequences share stay with them).
  void clear_prefix_cache();

 private:
  struct PrefixEntry {
    int64_t id = 0;
    int64_t parent = 0;  // 0: the first page
    PageId compressed = kNoPage, window = kNoPage, state = kNoPage;
    int64_t children = 0;
    int64_t stamp = 0;   // last use
  };
  using PrefixKey = std::pair<int64_t, std::vector<int32_t>>;  // (parent id, the page's tokens)

  Status check_sequence(SeqId id, const SeqPages& s, bool require_trimmed) const;
  struct Available {  // free + evictable pages per pool; -1 until counted
    int64_t window = -1, compressed = -1, state = -1;
  };
  bool fits(const PageDemand& d, Available& a) const;  // free pages first: the cache is counted only when short
  int64_t available(PoolKind kind) const { return pool(kind).n_free() + reclaimable(kind); }
  // Evicts least recently used leaves until the pools have `need` free pages each, or nothing is left.
  void evict_for(const PageDemand& need);
  void evict(std::map<PrefixKey, PrefixEntry>::iterator it);
  const PrefixEntry* find_child(int64_t parent, std::span<const int32_t> page) const;
  // The entries of the whole pages of tokens[0, n) from the first, up to the first page not cached.
  std::vector<const PrefixEntry*> chain_of(std::span<const int32_t> tokens, int64_t n) const;
  void touch_chain(int64_t id);

  CacheLayout layout_;
  PagePool window_, compressed_, state_;
  std::unordered_map<SeqId, SeqPages> seqs_;
  bool prefix_on_ = false;
  std::map<PrefixKey, PrefixEntry> prefix_;
  std::unordered_map<int64_t, PrefixKey> prefix_by_id_;
  std::vector<PageId> pins_;  // state slots pinned for the step in flight
  int64_t next_entry_ = 1, clock_ = 0;
  PrefixCacheStats prefix_stats_;
};

}  // namespace dsv4::kv
