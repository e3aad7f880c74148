// HybridKvManager's prefix cache (see hybrid_kv_manager.h): lookup, attaching a sequence to a cached prefix,
// adding entries, pins and eviction. Bookkeeping only: the engine copies the compressor-state snapshots.
#include <algorithm>
#include <string>

#include "core/check.h"
#include "kv/hybrid_kv_manager.h"

namespace dsv4::kv {

const HybridKvManager::PrefixEntry* HybridKvManager::find_child(int64_t parent, std::span<const int32_t> page) const {
  auto it = prefix_.find(PrefixKey{parent, std::vector<int32_t>(page.begin(), page.end())});
  return it == prefix_.end() ? nullptr : &it->second;
}

std::vector<const HybridKvManager::PrefixEntry*> HybridKvManager::chain_of(std::span<const int32_t> tokens,
                                                                          int64_t n) const {
  const int64_t p = layout_.page_tokens();
  std::vector<const PrefixEntry*> chain;
  int64_t parent = 0;
  for (int64_t at = 0; at + p <= std::min<int64_t>(n, static_cast<int64_t>(tokens.size())); at += p) {
    const PrefixEntry* e = find_child(parent, tokens.subspan(static_cast<size_t>(at), static_cast<size_t>(p)));
    if (e == nullptr) break;
    chain.push_back(e);
    parent = e->id;
  }
  return chain;
}

void HybridKvManager::touch_chain(int64_t id) {
  // Leaf first, so that an ancestor is always at least as recent as its descendants.
  ++clock_;
  while (id != 0) {
    PrefixEntry& e = prefix_.at(prefix_by_id_.at(id));
    e.stamp = clock_;
    id = e.parent;
  }
}

Status HybridKvManager::enable_prefix_cache(bool on) {
  if (on && layout_.shape.window > layout_.page_tokens())
    return make_error("prefix caching needs the sliding window (" + std::to_string(layout_.shape.window) +
                      ") to fit in one page of " + std::to_string(layout_.page_tokens()) + " tokens");
  if (!on) clear_prefix_cache();
  prefix_on_ = on;
  return Ok{};
}

int64_t HybridKvManager::cached_prefix(std::span<const int32_t> tokens, int64_t max_tokens) const {
  if (!prefix_on_) return 0;
  const std::vector<const PrefixEntry*> chain = chain_of(tokens, max_tokens);
  for (size_t k = chain.size(); k > 0; --k)  // back to the last resumable entry
    if (chain[k - 1]->state != kNoPage) return static_cast<int64_t>(k) * layout_.page_tokens();
  return 0;
}

bool HybridKvManager::is_cached(std::span<const int32_t> tokens) const {
  const int64_t p = layout_.page_tokens();
  const auto n = static_cast<int64_t>(tokens.size());
  check(n > 0 && n % p == 0, "HybridKvManager::is_cached: not a whole number of pages");
  const std::vector<const PrefixEntry*> chain = chain_of(tokens, n);
  return static_cast<int64_t>(chain.size()) == n / p && chain.back()->state != kNoPage;
}

Result<PageId> HybridKvManager::attach_prefix(SeqId seq, std::span<const int32_t> tokens, int64_t n) {
  const int64_t p = layout_.page_tokens();
  check(prefix_on_ && n > 0 && n % p == 0 && n <= static_cast<int64_t>(tokens.size()),
        "HybridKvManager::attach_prefix: not a whole-page prefix");
  check(!contains(seq), [&] { return "HybridKvManager::attach_prefix: sequence " + std::to_string(seq) + " is known"; });
  auto resumable = [&](const std::vector<const PrefixEntry*>& c) {
    return static_cast<int64_t>(c.size()) == n / p && c.back()->state != kNoPage;
  };
  std::vector<const PrefixEntry*> chain = chain_of(tokens, n);
  if (!resumable(chain)) return make_error("prefix of " + std::to_string(n) + " tokens is not cached with its state");
  touch_chain(chain.back()->id);  // the most recent now: evicted last
  if (state_.n_free() == 0) evict_for(PageDemand{.state = 1});
  chain = chain_of(tokens, n);  // entries may have been evicted
  if (state_.n_free() == 0 || !resumable(chain))
    return make_error("KV pool state: no slot free to attach sequence " + std::to_string(seq) + " to its prefix");
  const PrefixEntry& last = *chain.back();
  state_.retain(last.state);  // pinned: the snapshot must survive evictions until it is copied
  pins_.push_back(last.state);
  SeqPages& s = seqs_[seq];
  s.state = *state_.allocate();
  s.n_tokens = n;
  s.window.assign(static_cast<size_t>(n / p), kNoPage);
  s.window.back() = last.window;
  window_.retain(last.window);
  s.window_lo = std::max<int64_t>(0, n - layout_.shape.window);
  for (const PrefixEntry* e : chain) {
    if (!layout_.has_compressed()) break;
    s.compressed.push_back(e->compressed);
    compressed_.retain(e->compressed);
  }
  return last.state;
}

PageId HybridKvManager::take_snapshot_slot() {
  if (state_.n_free() == 0) evict_for(PageDemand{.state = 1});
  auto slot = state_.allocate();
  if (!slot) return kNoPage;
  pins_.push_back(*slot);
  return *slot;
}

void HybridKvManager::unpin(PageId state_slot) {
  auto it = std::find(pins_.begin(), pins_.end(), state_slot);
  check(it != pins_.end(), "HybridKvManager::unpin: slot not pinned");
  pins_.erase(it);
  state_.release(state_slot);
}

void HybridKvManager::add_prefix(SeqId seq, std::span<const int32_t> tokens, PageId snapshot) {
  const int64_t p = layout_.page_tokens();
  const auto n = static_cast<int64_t>(tokens.size());
  const SeqPages& s = pages(seq);
  check(n > 0 && n % p == 0 && n <= s.n_tokens, "HybridKvManager::add_prefix: not a whole page of the sequence");
  auto drop = [&] {
    if (snapshot != kNoPage) unpin(snapshot);
  };
  const int64_t k = n / p;
  const std::vector<const PrefixEntry*> ancestors = chain_of(tokens, n - p);
  if (static_cast<int64_t>(ancestors.size()) != k - 1) return drop();  // no entry without its ancestors
  const int64_t parent = ancestors.empty() ? 0 : ancestors.back()->id;
  PrefixKey key{parent, std::vector<int32_t>(tokens.end() - p, tokens.end())};
  const PageId window = s.window[static_cast<size_t>(k - 1)];
  auto found = prefix_.find(key);
  if (found != prefix_.end()) {  // a link entry gains the state it lacked; a complete one stays as it is
    PrefixEntry& e = found->second;
    if (e.state != kNoPage || snapshot == kNoPage || window == kNoPage) return drop();
    e.window = window;
    window_.retain(window);
    e.state = snapshot;
    pins_.erase(std::find(pins_.begin(), pins_.end(), snapshot));
    touch_chain(e.id);
    return;
  }
  if (snapshot != kNoPage && window == kNoPage) return drop();
  PrefixEntry e;
  e.id = next_entry_++;
  e.parent = parent;
  if (snapshot != kNoPage) {
    e.window = window;
    window_.retain(window);
    e.state = snapshot;  // the pin becomes the entry's reference
    pins_.erase(std::find(pins_.begin(), pins_.end(), snapshot));
  }
  if (layout_.has_compressed()) {
    e.compressed = s.compressed[static_cast<size_t>(k - 1)];
    compressed_.retain(e.compressed);
  }
  if (parent != 0) ++prefix_.at(prefix_by_id_.at(parent)).children;
  prefix_by_id_.emplace(e.id, key);
  const int64_t id = e.id;
  prefix_.emplace(std::move(key), std::move(e));
  touch_chain(id);
  ++prefix_stats_.entries;
}

int64_t HybridKvManager::reclaimable(PoolKind kind) const {
  const PagePool& pl = pool(kind);
  int64_t n = 0;
  for (const auto& [key, e] : prefix_) {
    const PageId page = kind == PoolKind::Window ? e.window : kind == PoolKind::Compressed ? e.compressed : e.state;
    n += page != kNoPage && pl.refcount(page) == 1;
  }
  return n;
}

void HybridKvManager::evict(std::map<PrefixKey, PrefixEntry>::iterator it) {
  const PrefixEntry& e = it->second;
  check(e.children == 0, "HybridKvManager: evicting a prefix entry with children");
  if (e.window != kNoPage) window_.release(e.window);
  if (e.compressed != kNoPage) compressed_.release(e.compressed);
  if (e.state != kNoPage) state_.release(e.state);
  if (e.parent != 0) --prefix_.at(prefix_by_id_.at(e.parent)).children;
  prefix_by_id_.erase(e.id);
  prefix_.erase(it);
  --prefix_stats_.entries;
  ++prefix_stats_.evictions;
}

void HybridKvManager::evict_for(const PageDemand& need) {
  auto short_of = [&] {
    return window_.n_free() < need.window || compressed_.n_free() < need.compressed || state_.n_free() < need.state;
  };
  while (short_of() && !prefix_.empty()) {
    auto victim = prefix_.end();
    for (auto it = prefix_.begin(); it != prefix_.end(); ++it) {
      if (it->second.children == 0 && (victim == prefix_.end() || it->second.stamp < victim->second.stamp)) victim = it;
    }
    check(victim != prefix_.end(), "HybridKvManager: prefix cache without a leaf");
    evict(victim);
  }
}

void HybridKvManager::clear_prefix_cache() {
  bool progress = true;
  while (progress) {
    progress = false;
    for (auto it = prefix_.begin(); it != prefix_.end();) {
      if (it->second.children == 0) {
        evict(it++);
        progress = true;
      } else {
        ++it;
      }
    }
  }
}

}  // namespace dsv4::kv
