// Memory budget → pool sizes. The budget is a byte count or a fraction of the device memory that is free
// once weights and workspaces are loaded (a policy value, resolved by the runtime which knows the free
// bytes). The window and state pools are sized for the concurrency limits so that they never run out
// before the compressed pool does; everything that is left goes to compressed pages, whose count times
// page_tokens is the number of context tokens that fit (all sequences together).
//
// Sizing (S = max_seqs, T = max_step_tokens, P = page_tokens, W = window):
//   state slots   = S
//   window pages  = S * (pages_for_span(W + 1) + 1) + ceil(T / P)
//     After a step a sequence holds the pages intersecting its last W positions; while a chunk of k tokens
//     runs it holds those intersecting [n - W, n + k), at most pages_for_span(W + 1) + ceil((k - 1) / P)
//     pages (<= 3 for a decode with W = 128, P = 256). Summed over at most S sequences and T tokens per
//     step this is below the formula.
//   prefix entries E = floor(prefix_share * (budget - state bytes - window bytes) / (window page + state slot))
//     (prefix caching: each cached page keeps a window page and a compressor-state snapshot; its compressed
//     page comes from the compressed pool), added to the window pages and state slots
//   compressed pages = floor((budget - state bytes - window bytes) / compressed_page_bytes)
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <variant>

#include "core/result.h"
#include "kv/cache_layout.h"

namespace dsv4::kv {

struct BudgetBytes {
  int64_t bytes = 0;
};
struct BudgetFraction {
  double fraction = 0.9;  // of the free device memory, in (0, 1]
};
using MemoryBudget = std::variant<BudgetBytes, BudgetFraction>;

// Bytes the budget stands for, given the free device memory. Errors name the invalid value.
Result<int64_t> resolve_budget(const MemoryBudget& budget, int64_t free_bytes);

// The concurrency the window and state pools are sized for: the scheduler's max_running and
// max_tokens_per_step must not exceed these.
struct Concurrency {
  int64_t max_seqs = 64;
  int64_t max_step_tokens = 8192;
  double prefix_share = 0;  // [0, 1): share of what is left after the fixed part for prefix-cache entries
};

struct PoolSizes {
  int64_t n_window_pages = 0;
  int64_t n_compressed_pages = 0;
  int64_t n_state_slots = 0;
  int64_t n_prefix_entries = 0;  // included in n_window_pages and n_state_slots
};

inline constexpr int64_t kUnlimitedTokens = std::numeric_limits<int64_t>::max();

// Splits `budget_bytes` into pools. Error when the fixed part (window + state) does not fit, or when not
// even one compressed page remains; the message gives the bytes needed.
Result<PoolSizes> size_pools(const CacheLayout& layout, int64_t budget_bytes, const Concurrency& c);
int64_t pool_bytes(const CacheLayout& layout, const PoolSizes& sizes);  // bytes the pools occupy
// Context tokens the compressed pool holds: n_compressed_pages * page_tokens (kUnlimitedTokens for a model
// without compressor layers, whose per-sequence state is fixed).
int64_t tokens_that_fit(const CacheLayout& layout, const PoolSizes& sizes);
Result<int64_t> tokens_that_fit(const CacheLayout& layout, int64_t budget_bytes, const Concurrency& c);

// Lines for `dsv4 inspect`: pool sizes in pages and bytes, and how many tokens fit.
std::string describe(const CacheLayout& layout, const PoolSizes& sizes, const Concurrency& c);

}  // namespace dsv4::kv
