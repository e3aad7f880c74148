// PagePool: id order, LIFO reuse, reference counts, misuse is an invariant error, integrity check.
#include "kv/page_pool.h"

#include <gtest/gtest.h>

#include "core/check.h"

namespace dsv4::kv {
namespace {

TEST(PagePool, HandsOutPagesInOrderAndReusesLifo) {
  PagePool pool(3);
  EXPECT_EQ(pool.n_free(), 3);
  EXPECT_EQ(*pool.allocate(), 0);
  EXPECT_EQ(*pool.allocate(), 1);
  EXPECT_EQ(*pool.allocate(), 2);
  EXPECT_FALSE(pool.allocate().has_value());
  pool.release(1);
  EXPECT_EQ(pool.n_used(), 2);
  EXPECT_EQ(*pool.allocate(), 1);
  EXPECT_TRUE(pool.check_integrity().ok());
}

TEST(PagePool, RefcountKeepsSharedPage) {
  PagePool pool(2);
  const PageId p = *pool.allocate();
  pool.retain(p);
  EXPECT_EQ(pool.refcount(p), 2);
  pool.release(p);
  EXPECT_EQ(pool.n_free(), 1);  // still held once
  pool.release(p);
  EXPECT_EQ(pool.n_free(), 2);
  EXPECT_EQ(pool.refcount(p), 0);
  EXPECT_TRUE(pool.check_integrity().ok());
}

TEST(PagePool, MisuseIsAnInvariantError) {
  PagePool pool(2);
  EXPECT_THROW(pool.release(0), InvariantError);  // free page
  EXPECT_THROW(pool.retain(1), InvariantError);   // free page
  EXPECT_THROW(pool.release(5), InvariantError);  // out of range
  EXPECT_THROW(PagePool(-1), InvariantError);
}

TEST(PagePool, EmptyPool) {
  PagePool pool(0);
  EXPECT_FALSE(pool.allocate().has_value());
  EXPECT_TRUE(pool.check_integrity().ok());
}

}  // namespace
}  // namespace dsv4::kv
