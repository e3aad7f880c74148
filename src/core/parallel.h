// A fixed pool of worker threads and parallel_for over an index range, used by the CPU backend to spread
// row-parallel work over all cores. The pool is created once (size from core/options) and lives for the
// process; parallel_for blocks until every chunk is done. Work inside a chunk must not call parallel_for.
#pragma once
#include <cstdint>
#include <functional>

namespace dsv4 {

// Calls fn(begin, end) over disjoint chunks covering [0, n). Chunks are at least `grain` long.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

// Number of worker threads (>= 1).
int num_threads();

}  // namespace dsv4
