// Launch signature; see launch_trace.h.
#include "backend/cuda/common/launch_trace.h"

namespace dsv4::cuda {
namespace {
thread_local uint64_t g_signature = 0;
thread_local cudaStream_t g_full[4] = {};  // marked streams (at most the context's two)
}  // namespace

void note_launch(const void* kernel) {
  // FNV-1a style mix of the function address into the running hash.
  g_signature = (g_signature ^ reinterpret_cast<uintptr_t>(kernel)) * 0x100000001b3ull;
}

void reset_launch_signature() { g_signature = 0xcbf29ce484222325ull; }

uint64_t launch_signature() { return g_signature; }

void mark_full_dependency(cudaStream_t s) {
  for (cudaStream_t& f : g_full)
    if (f == s) return;
  for (cudaStream_t& f : g_full)
    if (f == nullptr) {
      f = s;
      return;
    }
}

bool take_full_dependency(cudaStream_t s) {
  if (s == nullptr) return false;
  for (cudaStream_t& f : g_full)
    if (f == s) {
      f = nullptr;
      return true;
    }
  return false;
}

}  // namespace dsv4::cuda
