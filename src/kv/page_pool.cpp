// PagePool implementation (see page_pool.h).
#include "kv/page_pool.h"

#include <limits>
#include <string>

#include "core/check.h"

namespace dsv4::kv {

PagePool::PagePool(int64_t n_pages) {
  check(n_pages >= 0 && n_pages <= std::numeric_limits<PageId>::max(), "PagePool: page count out of range");
  refcount_.assign(static_cast<size_t>(n_pages), 0);
  free_.reserve(static_cast<size_t>(n_pages));
  for (int64_t p = n_pages - 1; p >= 0; --p) free_.push_back(static_cast<PageId>(p));
}

void PagePool::check_id(PageId page) const {
  check(page >= 0 && page < n_pages(), [&] { return "PagePool: page id " + std::to_string(page) + " out of range"; });
}

std::optional<PageId> PagePool::allocate() {
  if (free_.empty()) return std::nullopt;
  const PageId p = free_.back();
  free_.pop_back();
  refcount_[static_cast<size_t>(p)] = 1;
  return p;
}

void PagePool::retain(PageId page) {
  check_id(page);
  check(refcount_[static_cast<size_t>(page)] > 0, "PagePool::retain on a free page");
  ++refcount_[static_cast<size_t>(page)];
}

void PagePool::release(PageId page) {
  check_id(page);
  int32_t& rc = refcount_[static_cast<size_t>(page)];
  check(rc > 0, [&] { return "PagePool::release on a free page " + std::to_string(page); });
  if (--rc == 0) free_.push_back(page);
}

int32_t PagePool::refcount(PageId page) const {
  check_id(page);
  return refcount_[static_cast<size_t>(page)];
}

Status PagePool::check_integrity() const {
  std::vector<uint8_t> in_free(refcount_.size(), 0);
  for (PageId p : free_) {
    if (p < 0 || p >= n_pages()) return make_error("free list holds page id " + std::to_string(p) + " out of range");
    if (in_free[static_cast<size_t>(p)]++)
      return make_error("page " + std::to_string(p) + " is in the free list twice");
  }
  for (size_t p = 0; p < refcount_.size(); ++p) {
    const int32_t rc = refcount_[p];
    if (rc < 0) return make_error("page " + std::to_string(p) + " has refcount " + std::to_string(rc));
    if ((rc == 0) != (in_free[p] != 0))
      return make_error("page " + std::to_string(p) + " has refcount " + std::to_string(rc) +
                        (in_free[p] ? " but is in the free list" : " but is not in the free list"));
  }
  return Ok{};
}

}  // namespace dsv4::kv
