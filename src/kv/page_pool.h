// PagePool: the page ids of one pool, a LIFO free list and a reference count per page. It owns no memory:
// a page id is an index into a device (or host) array of pages that the runtime owns. Reference counts
// exist for prefix sharing (a page held by several page tables); today every holder is one page-table entry.
// Invariants (check_integrity): a page is free iff its count is 0; the free list holds every free page
// exactly once; n_free() + n_used() == n_pages().
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "core/result.h"

namespace dsv4::kv {

using PageId = int32_t;
inline constexpr PageId kNoPage = -1;

class PagePool {
 public:
  explicit PagePool(int64_t n_pages = 0);

  int64_t n_pages() const { return static_cast<int64_t>(refcount_.size()); }
  int64_t n_free() const { return static_cast<int64_t>(free_.size()); }
  int64_t n_used() const { return n_pages() - n_free(); }

  // Takes a free page (refcount 1), or nullopt when none is free.
  std::optional<PageId> allocate();
  // Adds a holder to a page in use.
  void retain(PageId page);
  // Drops a holder; the page returns to the free list when its count reaches 0.
  void release(PageId page);
  int32_t refcount(PageId page) const;

  Status check_integrity() const;

 private:
  void check_id(PageId page) const;
  std::vector<int32_t> refcount_;  // [n_pages]
  std::vector<PageId> free_;       // stack; initially n-1 .. 0 so that pages are handed out in id order
};

}  // namespace dsv4::kv
