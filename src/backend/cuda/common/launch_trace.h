// The signature of the kernels launched on this thread since reset_launch_signature(): an order-dependent hash
// of the kernel functions passed to launch_kernel (common/pdl.cuh). Captured graphs with the same signature
// (and node count) have the same topology, so one can be updated from the other (ops/step_graphs.h).
#pragma once
#include <cstdint>

namespace dsv4::cuda {

void note_launch(const void* kernel);
void reset_launch_signature();
uint64_t launch_signature();

}  // namespace dsv4::cuda
