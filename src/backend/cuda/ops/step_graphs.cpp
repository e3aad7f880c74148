// StepGraphs; see step_graphs.h.
#include "backend/cuda/ops/step_graphs.h"

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_paths.h"
#include "core/check.h"

namespace dsv4::cuda {
namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point& t) {
  const Clock::time_point now = Clock::now();
  const double ms = std::chrono::duration<double, std::milli>(now - t).count();
  t = now;
  return ms;
}
uint64_t mix(uint64_t h, uint64_t v) {
  return (h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2))) * 0x100000001b3ull;
}
}  // namespace

StepGraphs::StepGraphs(CudaContext& ctx) : ctx_(ctx) {
  DSV4_CUDA_CHECK(cudaEventCreateWithFlags(&step_done_, cudaEventDisableTiming));
}

StepGraphs::~StepGraphs() {
  abort();
  clear();
  if (step_done_) cudaEventDestroy(step_done_);
}

void StepGraphs::clear() {
  if (execs_.empty()) return;
  cudaStreamSynchronize(ctx_.stream());  // no cached graph is still running
  for (auto& [key, exec] : execs_) cudaGraphExecDestroy(exec);
  execs_.clear();
}

bool StepGraphs::begin(int64_t n_rows) {
  check(!active_, "internal error: a graph step begun inside another");
  if (!kernel_paths().graphs) return false;
  if (warm_.insert(n_rows).second) {
    ++stats_.eager_steps;
    return false;
  }
  // The previous graph step's copies have read their staged bytes once its last segment ran.
  DSV4_CUDA_CHECK(cudaEventSynchronize(step_done_));
  ctx_.reset_staging();
  if (execs_.size() > kMaxExecs) clear();
  active_ = true;
  n_rows_ = n_rows;
  segment_ = 0;
  breaks_ = 0;
  target_ = 1;
  ++stats_.graph_steps;
  start_capture();
  return true;
}

void StepGraphs::start_capture() {
  ctx_.begin_capture();
  capture_start_ = Clock::now();
}

void StepGraphs::launch_segment() {
  Clock::time_point t = capture_start_;
  stats_.capture_ms += ms_since(t);
  uint64_t sig = 0;
  cudaGraph_t g = ctx_.end_capture(&sig);
  size_t n_nodes = 0;
  DSV4_CUDA_CHECK(cudaGraphGetNodes(g, nullptr, &n_nodes));
  stats_.end_capture_ms += ms_since(t);
  uint64_t key = mix(mix(mix(static_cast<uint64_t>(n_rows_), static_cast<uint64_t>(segment_)), sig), n_nodes);
  cudaGraphExec_t& exec = execs_[key];
  bool fresh = exec == nullptr;
  if (!fresh) {
    cudaGraphExecUpdateResultInfo info{};
    if (cudaGraphExecUpdate(exec, g, &info) == cudaSuccess) {
      ++stats_.updated;
    } else {
      cudaGetLastError();
      ++stats_.update_failed;
      DSV4_CUDA_CHECK(cudaGraphExecDestroy(exec));
      fresh = true;
    }
    stats_.update_ms += ms_since(t);
  }
  if (fresh) {
    DSV4_CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
    ++stats_.instantiated;
    stats_.instantiate_ms += ms_since(t);
  }
  DSV4_CUDA_CHECK(cudaGraphLaunch(exec, ctx_.stream()));
  ++stats_.launches;
  stats_.nodes += static_cast<int64_t>(n_nodes);
  stats_.launch_ms += ms_since(t);
  DSV4_CUDA_CHECK(cudaGraphDestroy(g));
  ctx_.release_deferred();
  stats_.destroy_ms += ms_since(t);
  if (on_launch_) on_launch_(segment_);
}

void StepGraphs::next_segment() {
  if (!active_) return;
  if (++breaks_ < target_ && !split_every_break_) return;
  launch_segment();
  ++segment_;
  breaks_ = 0;
  if (segment_ >= 2) target_ *= 2;
  start_capture();
}

void StepGraphs::end() {
  if (!active_) return;
  active_ = false;
  launch_segment();
  DSV4_CUDA_CHECK(cudaEventRecord(step_done_, ctx_.stream()));
}

void StepGraphs::abort() noexcept {
  if (!active_) return;
  active_ = false;
  ctx_.abort_capture();
}

}  // namespace dsv4::cuda
