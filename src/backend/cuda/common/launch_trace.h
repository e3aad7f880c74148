// The signature of the kernels launched on this thread since reset_launch_signature(): an order-dependent hash
// of the kernel functions passed to launch_kernel (common/pdl.cuh). Captured graphs with the same signature
// (and node count) have the same topology, so one can be updated from the other (ops/step_graphs.h).
// Also the streams whose next kernel launch is not programmatic (common/pdl.cuh): the first kernel after a
// cross-stream wait (branches, ops/context.h), so that a captured graph gets a full edge there. A programmatic
// edge ties a kernel to its predecessor's stream; with full edges at the fork and the join, the branches of a
// graph may run on streams of their own.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsv4::cuda {

void note_launch(const void* kernel);
void reset_launch_signature();
uint64_t launch_signature();

void mark_full_dependency(cudaStream_t s);
bool take_full_dependency(cudaStream_t s);  // true once after mark_full_dependency(s)

}  // namespace dsv4::cuda
