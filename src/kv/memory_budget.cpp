// Budget resolution and pool sizing (see memory_budget.h for the formulas).
#include "kv/memory_budget.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace dsv4::kv {
namespace {

struct FixedPart {
  int64_t n_window_pages = 0;
  int64_t n_state_slots = 0;
  int64_t bytes = 0;
};

FixedPart fixed_part(const CacheLayout& l, const Concurrency& c) {
  FixedPart f;
  const int64_t p = l.page_tokens();
  f.n_window_pages = c.max_seqs * (l.pages_for_span(l.shape.window + 1) + 1) + (c.max_step_tokens + p - 1) / p;
  f.n_state_slots = c.max_seqs;
  f.bytes = f.n_window_pages * l.window_page_bytes + f.n_state_slots * l.state_slot_bytes;
  return f;
}

}  // namespace

Result<int64_t> resolve_budget(const MemoryBudget& budget, int64_t free_bytes) {
  if (const auto* b = std::get_if<BudgetBytes>(&budget)) {
    if (b->bytes <= 0) return make_error("KV budget: " + std::to_string(b->bytes) + " bytes, expected > 0");
    return b->bytes;
  }
  const double f = std::get<BudgetFraction>(budget).fraction;
  if (!(f > 0.0 && f <= 1.0))
    return make_error("KV budget: fraction " + std::to_string(f) + " of free memory, expected in (0, 1]");
  if (free_bytes <= 0) return make_error("KV budget: no free device memory to take a fraction of");
  return static_cast<int64_t>(std::floor(f * double(free_bytes)));
}

Result<PoolSizes> size_pools(const CacheLayout& l, int64_t budget_bytes, const Concurrency& c) {
  if (c.max_seqs < 1 || c.max_step_tokens < 1)
    return make_error("KV pools: max_seqs " + std::to_string(c.max_seqs) + " and max_step_tokens " +
                      std::to_string(c.max_step_tokens) + " must be >= 1");
  const FixedPart f = fixed_part(l, c);
  const int64_t need = f.bytes + l.compressed_page_bytes;
  if (budget_bytes < need)
    return make_error("KV budget of " + std::to_string(budget_bytes) + " bytes is too small: " +
                      std::to_string(c.max_seqs) + " sequences need " + std::to_string(f.bytes) +
                      " bytes of window pages and compressor state, plus " +
                      std::to_string(l.compressed_page_bytes) + " per compressed page; need at least " +
                      std::to_string(need) + " bytes or fewer sequences");
  if (!(c.prefix_share >= 0 && c.prefix_share < 1))
    return make_error("KV pools: prefix cache share " + std::to_string(c.prefix_share) + ", expected in [0, 1)");
  PoolSizes s;
  const int64_t left = budget_bytes - f.bytes;
  const int64_t entry_bytes = l.window_page_bytes + l.state_slot_bytes;
  s.n_prefix_entries = std::min(static_cast<int64_t>(c.prefix_share * double(left)) / entry_bytes,
                                (left - l.compressed_page_bytes) / entry_bytes);  // one compressed page stays
  const int64_t prefix_bytes = s.n_prefix_entries * entry_bytes;
  s.n_window_pages = f.n_window_pages + s.n_prefix_entries;
  s.n_state_slots = f.n_state_slots + s.n_prefix_entries;
  s.n_compressed_pages = l.has_compressed() ? (left - prefix_bytes) / l.compressed_page_bytes : 0;
  return s;
}

int64_t pool_bytes(const CacheLayout& l, const PoolSizes& s) {
  return s.n_window_pages * l.window_page_bytes + s.n_compressed_pages * l.compressed_page_bytes +
         s.n_state_slots * l.state_slot_bytes;
}

int64_t tokens_that_fit(const CacheLayout& l, const PoolSizes& s) {
  if (!l.has_compressed()) return kUnlimitedTokens;
  return s.n_compressed_pages * l.page_tokens();
}

Result<int64_t> tokens_that_fit(const CacheLayout& l, int64_t budget_bytes, const Concurrency& c) {
  DSV4_TRY(sizes, size_pools(l, budget_bytes, c));
  return tokens_that_fit(l, sizes);
}

std::string describe(const CacheLayout& l, const PoolSizes& s, const Concurrency& c) {
  auto gib = [](int64_t b) { return double(b) / double(int64_t{1} << 30); };
  char line[160];
  std::ostringstream o;
  o << describe(l);
  std::snprintf(line, sizeof line, "  pools for %lld sequences, %lld tokens per step: %.3f GiB\n",
                static_cast<long long>(c.max_seqs), static_cast<long long>(c.max_step_tokens),
                gib(pool_bytes(l, s)));
  o << line;
  std::snprintf(line, sizeof line, "    window %lld pages (%.3f GiB), state %lld slots (%.3f GiB), compressed %lld "
                "pages (%.3f GiB)\n",
                static_cast<long long>(s.n_window_pages), gib(s.n_window_pages * l.window_page_bytes),
                static_cast<long long>(s.n_state_slots), gib(s.n_state_slots * l.state_slot_bytes),
                static_cast<long long>(s.n_compressed_pages), gib(s.n_compressed_pages * l.compressed_page_bytes));
  o << line;
  if (s.n_prefix_entries > 0) {
    std::snprintf(line, sizeof line, "    prefix cache: up to %lld cached pages (%lld tokens) share those pools\n",
                  static_cast<long long>(s.n_prefix_entries), static_cast<long long>(s.n_prefix_entries * l.page_tokens()));
    o << line;
  }
  const int64_t t = tokens_that_fit(l, s);
  if (t == kUnlimitedTokens)
    o << "  tokens that fit: unlimited (no compressor layers; window and state are fixed per sequence)\n";
  else
    o << "  tokens that fit: " << t << " (all sequences together)\n";
  return o.str();
}

}  // namespace dsv4::kv
