// Programmatic dependent launch (PDL, sm_90): every kernel of the backend is launched through launch_kernel,
// which marks the launch as allowed to begin while the previous kernel on the stream is still running, and
// every kernel starts with grid_dependency_sync(): it waits there (griddepcontrol.wait) until the previous grid
// has completed and its memory is visible, then lets the next one launch (griddepcontrol.launch_dependents). So
// the stream order of memory effects is unchanged (no kernel touches what a kernel produces before its
// predecessor is done); what overlaps is the next kernel's launch and block scheduling with the current kernel's
// tail, which is most of the cost of the many 2-5 us kernels of a small-batch decode step (docs/perf.md, run 14
// profile). A kernel may read before its wait only what no kernel writes: checkpoint weights and host-built scale
// copies, uploaded by cudaMemcpyAsync (a copy, complete before the next kernel starts); not the dense path's bf16
// weight cache (weight_to_bf16_kernel writes it). Kernels not launched with the attribute (e.g. cuBLASLt's)
// behave as usual, and the wait is a no-op without it. Switch: kernel_paths().pdl (DSV4_CUDA_PATHS=pdl=0).
#pragma once
#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_paths.h"
#include "backend/cuda/common/launch_trace.h"

namespace dsv4::cuda {

__device__ __forceinline__ void grid_dependency_sync() {
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
}

// Whether a launch on `stream` takes the PDL attribute: the switch, except for the first kernel after a branch's
// cross-stream wait (common/launch_trace.h).
inline bool use_pdl(cudaStream_t stream) { return !take_full_dependency(stream) && kernel_paths().pdl; }

template <typename... KArgs, typename... Args>
inline void launch_kernel(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                          Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = use_pdl(stream) ? 1 : 0;
  note_launch(reinterpret_cast<const void*>(kernel));  // the graph signature (common/launch_trace.h)
  DSV4_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

}  // namespace dsv4::cuda
