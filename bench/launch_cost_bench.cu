// dsv4_launch_cost_bench: what a kernel launch costs the host and the GPU, eagerly and through CUDA graphs, the
// measurement behind the decode-step graph design (src/backend/cuda/ops/step_graphs.h, docs/perf.md "Runs
// 31-36"). N trivial kernels (8 CTAs, each waits for its predecessor with griddepcontrol.wait, as every dsv4
// kernel does) are issued with and without the PDL attribute:
//   eager       host time of N cudaLaunchKernelEx calls, and the wall time until the stream is idle;
//   capture     host time to capture the N launches, cudaGraphExecUpdate into a cached executable graph,
//               cudaGraphLaunch, cudaGraphDestroy (what StepGraphs does every step), and the wall time;
//   instantiate cudaGraphInstantiate of the captured graph (a new topology);
//   replay      cudaGraphLaunch of the executable graph until idle (the GPU's time for N dependent kernels).
// Usage: dsv4_launch_cost_bench [N...] (default 56 2400: one layer, one 43-layer step). Medians of 7 repeats.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "dsv4_launch_cost_bench: %s: %s\n", what, cudaGetErrorString(e));
  std::exit(1);
}

__global__ void chained_kernel(float* p, int i) {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
  if (threadIdx.x == 0 && blockIdx.x == 0) p[(i + 1) & 1023] = p[i & 1023] + 1.0f;
}

void launch(cudaStream_t s, float* p, int i, bool pdl) {
  cudaLaunchConfig_t c{};
  c.gridDim = dim3(8);
  c.blockDim = dim3(128);
  c.stream = s;
  cudaLaunchAttribute a[1];
  a[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  a[0].val.programmaticStreamSerializationAllowed = 1;
  c.attrs = a;
  c.numAttrs = pdl ? 1 : 0;
  check(cudaLaunchKernelEx(&c, chained_kernel, p, i), "launch");
}

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> counts;
  for (int i = 1; i < argc; ++i) counts.push_back(std::atoi(argv[i]));
  if (counts.empty()) counts = {56, 2400};
  cudaStream_t s;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream");
  float* p = nullptr;
  check(cudaMalloc(&p, 1024 * sizeof(float)), "malloc");
  check(cudaMemset(p, 0, 1024 * sizeof(float)), "memset");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "properties");
  std::printf("# %s; %d repeats, medians; times in ms per batch of N launches\n", prop.name, 7);
  std::printf("N,pdl,eager_host,eager_wall,capture,update,launch,destroy,capture_path_wall,instantiate,replay_wall\n");
  const int R = 7;
  for (int N : counts) {
    for (int pdl = 0; pdl <= 1; ++pdl) {
      std::vector<double> eh, ew, cap, upd, lau, des, cw, inst, rep;
      cudaGraphExec_t exec = nullptr;
      for (int r = 0; r < R + 1; ++r) {  // repeat 0 warms up
        auto t = Clock::now();
        for (int i = 0; i < N; ++i) launch(s, p, i, pdl);
        const double host = ms_since(t);
        check(cudaStreamSynchronize(s), "sync");
        const double wall = ms_since(t);
        cudaGraph_t g = nullptr;
        t = Clock::now();
        check(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), "begin capture");
        for (int i = 0; i < N; ++i) launch(s, p, i + r, pdl);  // other arguments each repeat
        check(cudaStreamEndCapture(s, &g), "end capture");
        const double c_ms = ms_since(t);
        auto t2 = Clock::now();
        double u_ms = 0, i_ms = 0;
        if (!exec) {
          check(cudaGraphInstantiate(&exec, g, 0), "instantiate");
          i_ms = ms_since(t2);
        } else {
          cudaGraphExecUpdateResultInfo info{};
          check(cudaGraphExecUpdate(exec, g, &info), "update");
          u_ms = ms_since(t2);
        }
        t2 = Clock::now();
        check(cudaGraphLaunch(exec, s), "graph launch");
        const double l_ms = ms_since(t2);
        t2 = Clock::now();
        check(cudaGraphDestroy(g), "destroy");
        const double d_ms = ms_since(t2);
        check(cudaStreamSynchronize(s), "sync");
        const double c_wall = ms_since(t);
        t = Clock::now();
        check(cudaGraphLaunch(exec, s), "replay");
        check(cudaStreamSynchronize(s), "sync");
        const double r_ms = ms_since(t);
        if (r == 0) {
          inst.push_back(i_ms);
          continue;
        }
        eh.push_back(host), ew.push_back(wall), cap.push_back(c_ms), upd.push_back(u_ms), lau.push_back(l_ms);
        des.push_back(d_ms), cw.push_back(c_wall), rep.push_back(r_ms);
      }
      std::printf("%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f\n", N, pdl, median(eh), median(ew),
                  median(cap), median(upd), median(lau), median(des), median(cw), inst[0], median(rep));
      check(cudaGraphExecDestroy(exec), "exec destroy");
    }
  }
  return 0;
}
