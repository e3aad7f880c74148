// StepGraphs: decode steps as CUDA graphs. The model marks break points (graph_break(): after the embed and after
// each half block); a segment of the step is captured up to a break point and launched at once, so the host
// captures segment i + 1 while the GPU runs segment i. Segments grow: the first two end at the first two break
// points (the GPU idles only while the embed and the first half block are captured), then each spans twice the
// break points of the one before (2, 4, 8, ...), so a 43-layer step is 8 graph launches and the host, which
// captures a layer in about a third of the time the GPU runs it, stays ahead. set_split_every_break(true)
// launches at every break point instead (the benchmark's per-layer timing).
//
// Why segments and capture every step: the ops take their plan data (positions, pointer lists, row blocks) from
// the host, so the host runs the model code every step anyway; capturing instead of launching costs about a
// quarter of an eager launch per kernel (bench/launch_cost_bench.cu on the H200: 0.95 us capture + 0.3 us update
// + 0.2 us graph teardown against 3.5 us for cudaLaunchKernelEx), and the GPU runs a graph's kernels back to back.
// One graph per step would serialize the whole capture before the first kernel runs.
//
// Executable graphs are cached by (rows, segment index, kernel signature, node count): a step whose segment has
// the topology of a cached one updates it in place (cudaGraphExecUpdate: new pointers, counts, grids), else a
// new one is instantiated. The first step at each row count runs eagerly (lazy weight uploads, workspace growth
// and GEMM autotuning happen outside any capture). Off with kernel_paths().graphs = false (DSV4_CUDA_PATHS=graphs=0).
#pragma once
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "backend/cuda/ops/context.h"

namespace dsv4::cuda {

struct GraphStats {
  int64_t graph_steps = 0;    // steps run as graphs
  int64_t eager_steps = 0;    // decode steps run eagerly (first step at a row count)
  int64_t launches = 0;       // segment graphs launched
  int64_t instantiated = 0;   // new executable graphs
  int64_t updated = 0;        // cached executable graphs updated in place
  int64_t update_failed = 0;  // updates refused (then re-instantiated)
  int64_t nodes = 0;          // nodes of the launched graphs
  // Host time, ms: issuing the captured ops (the model code and the ops' plans), ending captures, updating or
  // instantiating, launching, destroying the captured graphs.
  double capture_ms = 0, end_capture_ms = 0, update_ms = 0, instantiate_ms = 0, launch_ms = 0, destroy_ms = 0;
};

class StepGraphs {
 public:
  explicit StepGraphs(CudaContext& ctx);
  ~StepGraphs();
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  // Starts a decode step of n_rows rows; true when its work is captured (then next_segment() / end() launch it).
  bool begin(int64_t n_rows);
  void next_segment();  // launches the segment captured so far and starts capturing the next
  void end();           // launches the last segment
  void abort() noexcept;  // drops the segment being captured (after an error)
  bool active() const { return active_; }
  const GraphStats& stats() const { return stats_; }
  void clear();  // destroys the cached executable graphs
  // Called with the segment index right after each segment's launch, outside any capture (benchmark timing).
  void set_on_launch(std::function<void(int64_t)> f) { on_launch_ = std::move(f); }
  void set_split_every_break(bool on) { split_every_break_ = on; }

 private:
  void launch_segment();
  void start_capture();
  static constexpr size_t kMaxExecs = 1024;  // segment graphs kept (each holds its nodes' parameters on the host)
  CudaContext& ctx_;
  std::unordered_map<uint64_t, cudaGraphExec_t> execs_;
  std::unordered_set<int64_t> warm_;  // row counts that ran eagerly once
  cudaEvent_t step_done_ = nullptr;   // after the last segment of the previous graph step
  bool active_ = false;
  int64_t n_rows_ = 0;
  int64_t segment_ = 0;
  int64_t breaks_ = 0;   // break points inside the segment being captured
  int64_t target_ = 1;   // break points the current segment spans
  bool split_every_break_ = false;
  GraphStats stats_;
  std::function<void(int64_t)> on_launch_;
  std::chrono::steady_clock::time_point capture_start_;
};

}  // namespace dsv4::cuda
