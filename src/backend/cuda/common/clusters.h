// Thread-block cluster occupancy and the SM count of the current device (host code): the attention plan uses
// the first to pick the largest cluster that can be resident, the fp8_decode schedule to keep its grid within one
// wave of clusters; the MoE launches use the SM count.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace dsv4::cuda {

// SMs of the current device, read once per process (the engine uses one device).
inline int current_sm_count() {
  static const int n = [] {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    return v;
  }();
  return n;
}

// Clusters of `size` CTAs (along x) of `kernel`, each with `threads` threads and `smem` bytes of dynamic shared
// memory, that the current device runs at once (cudaOccupancyMaxActiveClusters); 0 when the query fails (the
// error is cleared: callers fall back to a smaller cluster or another path).
inline int max_active_clusters(const void* kernel, unsigned threads, size_t smem, int size) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(static_cast<unsigned>(size));
  cfg.blockDim = dim3(threads);
  cfg.dynamicSmemBytes = smem;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = static_cast<unsigned>(size);
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  int n = 0;
  if (cudaOccupancyMaxActiveClusters(&n, kernel, &cfg) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace dsv4::cuda
