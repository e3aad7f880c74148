// HybridKvManager: allocation, window trimming and release (integrity checks in kv_integrity.cpp).
#include "kv/hybrid_kv_manager.h"

#include <algorithm>
#include <string>

#include "core/check.h"

namespace dsv4::kv {

const char* to_string(PoolKind k) {
  switch (k) {
    case PoolKind::Window: return "window";
    case PoolKind::Compressed: return "compressed";
    case PoolKind::State: return "state";
  }
  return "?";
}

HybridKvManager::HybridKvManager(const CacheLayout& layout, const PoolSizes& sizes)
    : layout_(layout),
      window_(sizes.n_window_pages),
      compressed_(sizes.n_compressed_pages),
      state_(sizes.n_state_slots) {}

const PagePool& HybridKvManager::pool(PoolKind k) const {
  return k == PoolKind::Window ? window_ : k == PoolKind::Compressed ? compressed_ : state_;
}

PagePool& HybridKvManager::pool_for_test(PoolKind k) {
  return k == PoolKind::Window ? window_ : k == PoolKind::Compressed ? compressed_ : state_;
}

int64_t HybridKvManager::n_tokens(SeqId seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second.n_tokens;
}

const SeqPages& HybridKvManager::pages(SeqId seq) const {
  auto it = seqs_.find(seq);
  check(it != seqs_.end(), [&] { return "HybridKvManager::pages: unknown sequence " + std::to_string(seq); });
  return it->second;
}

PageDemand HybridKvManager::demand(SeqId seq, int64_t n_new) const {
  check(n_new >= 0, "HybridKvManager::demand: negative token count");
  auto it = seqs_.find(seq);
  const int64_t n = it == seqs_.end() ? 0 : it->second.n_tokens;
  PageDemand d;
  d.window = layout_.pages_covering(n + n_new) - layout_.pages_covering(n);
  d.compressed = layout_.compressed_pages(n + n_new) - layout_.compressed_pages(n);
  d.state = it == seqs_.end() && n_new > 0 ? 1 : 0;
  return d;
}

bool HybridKvManager::fits(const PageDemand& d, Available& a) const {
  if (d.window <= window_.n_free() && d.compressed <= compressed_.n_free() && d.state <= state_.n_free()) return true;
  if (prefix_.empty()) return false;
  if (a.window < 0) {  // counted once per query: linear in the cache entries
    a.window = available(PoolKind::Window);
    a.compressed = available(PoolKind::Compressed);
    a.state = available(PoolKind::State);
  }
  return d.window <= a.window && d.compressed <= a.compressed && d.state <= a.state;
}

bool HybridKvManager::can_allocate(SeqId seq, int64_t n_new) const {
  Available a;
  return fits(demand(seq, n_new), a);
}

int64_t HybridKvManager::max_allocatable(SeqId seq, int64_t limit) const {
  Available a;
  if (limit <= 0 || !fits(demand(seq, 1), a)) return 0;
  int64_t lo = 1, hi = limit;  // fits(lo) holds; demand is monotone in the token count
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (fits(demand(seq, mid), a))
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

Status HybridKvManager::allocate(SeqId seq, int64_t n_new) {
  check(n_new >= 1, "HybridKvManager::allocate: n_new must be >= 1");
  const PageDemand d = demand(seq, n_new);
  if (!prefix_.empty()) evict_for(d);
  const struct {
    PoolKind kind;
    int64_t need;
  } needs[] = {{PoolKind::Window, d.window}, {PoolKind::Compressed, d.compressed}, {PoolKind::State, d.state}};
  for (const auto& n : needs) {
    if (n.need > pool(n.kind).n_free())
      return make_error(std::string("KV pool ") + to_string(n.kind) + ": " + std::to_string(pool(n.kind).n_free()) +
                        " pages free, " + std::to_string(n.need) + " needed for sequence " + std::to_string(seq) +
                        " (+" + std::to_string(n_new) + " tokens at " + std::to_string(n_tokens(seq)) + ")");
  }
  SeqPages& s = seqs_[seq];
  if (d.state) s.state = *state_.allocate();
  for (int64_t i = 0; i < d.window; ++i) s.window.push_back(*window_.allocate());
  for (int64_t i = 0; i < d.compressed; ++i) s.compressed.push_back(*compressed_.allocate());
  s.n_tokens += n_new;
  return Ok{};
}

void HybridKvManager::trim_window(SeqId seq) {
  auto it = seqs_.find(seq);
  check(it != seqs_.end(), [&] { return "HybridKvManager::trim_window: unknown sequence " + std::to_string(seq); });
  SeqPages& s = it->second;
  const int64_t p = layout_.page_tokens();
  const int64_t new_lo = std::max(s.window_lo, s.n_tokens - layout_.shape.window);
  for (int64_t t = s.window_lo / p; (t + 1) * p <= new_lo; ++t) {
    PageId& page = s.window[static_cast<size_t>(t)];
    if (page != kNoPage) window_.release(page);
    page = kNoPage;
  }
  s.window_lo = new_lo;
}

bool HybridKvManager::free(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return false;
  SeqPages& s = it->second;
  for (PageId p : s.window)
    if (p != kNoPage) window_.release(p);
  for (PageId p : s.compressed) compressed_.release(p);
  if (s.state != kNoPage) state_.release(s.state);
  seqs_.erase(it);
  return true;
}

bool HybridKvManager::fits_alone(int64_t n_tokens, int64_t max_chunk) const {
  const int64_t span = std::min(n_tokens, layout_.shape.window + std::max<int64_t>(max_chunk, 1));
  return layout_.compressed_pages(n_tokens) <= compressed_.n_pages() &&
         layout_.pages_for_span(std::max<int64_t>(span, 1)) <= window_.n_pages() && state_.n_pages() >= 1;
}

}  // namespace dsv4::kv
