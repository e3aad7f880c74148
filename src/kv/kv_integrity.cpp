// HybridKvManager::check_integrity: recomputes every page's owners from the page tables and compares them
// with the pools (invariants listed in hybrid_kv_manager.h). Linear in pages + page-table entries.
#include <algorithm>
#include <string>

#include "kv/hybrid_kv_manager.h"

namespace dsv4::kv {
namespace {

std::string seq_name(SeqId id) { return "sequence " + std::to_string(id); }

// Counts one reference to `page` of `pool`; error if the id is not a page of the pool.
Status count_ref(std::vector<int32_t>& refs, PageId page, PoolKind kind, SeqId id) {
  if (page < 0 || page >= static_cast<PageId>(refs.size()))
    return make_error(seq_name(id) + ": " + to_string(kind) + " page id " + std::to_string(page) + " out of range");
  ++refs[static_cast<size_t>(page)];
  return Ok{};
}

Status compare_refs(const PagePool& pool, const std::vector<int32_t>& refs, PoolKind kind) {
  DSV4_TRY_STATUS(pool.check_integrity());
  for (size_t p = 0; p < refs.size(); ++p) {
    const int32_t rc = pool.refcount(static_cast<PageId>(p));
    if (rc != refs[p])
      return make_error(std::string(to_string(kind)) + " page " + std::to_string(p) + " has refcount " +
                        std::to_string(rc) + " but " + std::to_string(refs[p]) + " page-table entries");
  }
  return Ok{};
}

}  // namespace

Status HybridKvManager::check_sequence(SeqId id, const SeqPages& s, bool require_trimmed) const {
  const int64_t p = layout_.page_tokens();
  const int64_t full_lo = std::max<int64_t>(0, s.n_tokens - layout_.shape.window);
  if (s.n_tokens < 1) return make_error(seq_name(id) + " is registered with " + std::to_string(s.n_tokens) + " tokens");
  if (s.state == kNoPage) return make_error(seq_name(id) + " has no state slot");
  if (static_cast<int64_t>(s.window.size()) != layout_.pages_covering(s.n_tokens))
    return make_error(seq_name(id) + ": " + std::to_string(s.window.size()) + " window entries for " +
                      std::to_string(s.n_tokens) + " tokens");
  if (static_cast<int64_t>(s.compressed.size()) != layout_.compressed_pages(s.n_tokens))
    return make_error(seq_name(id) + ": " + std::to_string(s.compressed.size()) + " compressed pages for " +
                      std::to_string(s.n_tokens) + " tokens, expected " +
                      std::to_string(layout_.compressed_pages(s.n_tokens)));
  if (s.window_lo < 0 || s.window_lo > full_lo)
    return make_error(seq_name(id) + ": window_lo " + std::to_string(s.window_lo) + " drops part of the window " +
                      "(must be <= " + std::to_string(full_lo) + ")");
  if (require_trimmed && s.window_lo != full_lo)
    return make_error(seq_name(id) + ": window not trimmed (window_lo " + std::to_string(s.window_lo) + ", expected " +
                      std::to_string(full_lo) + ")");
  for (size_t t = 0; t < s.window.size(); ++t) {
    const bool held = (static_cast<int64_t>(t) + 1) * p > s.window_lo;
    if (held != (s.window[t] != kNoPage))
      return make_error(seq_name(id) + ": window page " + std::to_string(t) +
                        (held ? " is inside the window but not held" : " is outside the window but still held"));
  }
  for (PageId c : s.compressed)
    if (c == kNoPage) return make_error(seq_name(id) + ": missing compressed page");
  return Ok{};
}

Status HybridKvManager::check_integrity(bool require_trimmed) const {
  std::vector<int32_t> window_refs(static_cast<size_t>(window_.n_pages()), 0);
  std::vector<int32_t> compressed_refs(static_cast<size_t>(compressed_.n_pages()), 0);
  std::vector<int32_t> state_refs(static_cast<size_t>(state_.n_pages()), 0);
  for (const auto& [id, s] : seqs_) {
    DSV4_TRY_STATUS(check_sequence(id, s, require_trimmed));
    for (PageId w : s.window)
      if (w != kNoPage) DSV4_TRY_STATUS(count_ref(window_refs, w, PoolKind::Window, id));
    for (PageId c : s.compressed) DSV4_TRY_STATUS(count_ref(compressed_refs, c, PoolKind::Compressed, id));
    DSV4_TRY_STATUS(count_ref(state_refs, s.state, PoolKind::State, id));
  }
  for (const auto& [key, e] : prefix_) {
    const SeqId who = -e.id;  // named as a negative id in messages
    if (layout_.has_compressed()) DSV4_TRY_STATUS(count_ref(compressed_refs, e.compressed, PoolKind::Compressed, who));
    if ((e.window == kNoPage) != (e.state == kNoPage))
      return make_error("prefix cache entry " + std::to_string(e.id) + " has a window page xor a state slot");
    if (e.window != kNoPage) DSV4_TRY_STATUS(count_ref(window_refs, e.window, PoolKind::Window, who));
    if (e.state != kNoPage) DSV4_TRY_STATUS(count_ref(state_refs, e.state, PoolKind::State, who));
    if (e.parent != 0 && prefix_by_id_.count(e.parent) == 0)
      return make_error("prefix cache entry " + std::to_string(e.id) + " has no parent entry");
  }
  if (prefix_by_id_.size() != prefix_.size()) return make_error("prefix cache: id index out of step");
  for (PageId p : pins_) DSV4_TRY_STATUS(count_ref(state_refs, p, PoolKind::State, 0));
  DSV4_TRY_STATUS(compare_refs(window_, window_refs, PoolKind::Window));
  DSV4_TRY_STATUS(compare_refs(compressed_, compressed_refs, PoolKind::Compressed));
  DSV4_TRY_STATUS(compare_refs(state_, state_refs, PoolKind::State));
  return Ok{};
}

}  // namespace dsv4::kv
