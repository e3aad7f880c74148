// Loading and simple single-sequence driving of the model; see local_model.h.
#include "runtime/local_model.h"

#include <algorithm>
#include <fstream>

#include "backend/cpu/cpu_ops.h"
#include "weights/loader.h"
#ifdef DSV4_HAVE_CUDA
#include "backend/cuda/ops/cuda_ops.h"
#endif

namespace dsv4::runtime {

bool cuda_available() {
#ifdef DSV4_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

int64_t free_memory_bytes(Device device) {
  if (device == Device::Cuda) {
#ifdef DSV4_HAVE_CUDA
    return cuda::CudaContext::get().free_bytes();
#else
    return 0;
#endif
  }
  std::ifstream f("/proc/meminfo");
  std::string key, unit;
  int64_t kib = 0;
  while (f >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

Result<Device> parse_device(const std::string& s) {
  if (s == "cpu") return Device::Host;
  if (s == "cuda") {
    if (!cuda_available())
      return make_error("--device cuda: this dsv4 was built without the CUDA backend (configure with "
                        "-DDSV4_CUDA=ON, e.g. cmake --preset cuda)");
#ifdef DSV4_HAVE_CUDA
    if (std::string why = cuda::cuda_device_problem(); !why.empty())
      return make_error("--device cuda: " + why + "; use --device cpu");
#endif
    return Device::Cuda;
  }
  return make_error("unknown device '" + s + "': expected cpu or cuda");
}

Result<std::unique_ptr<LocalModel>> load_local_model(const std::filesystem::path& dir, backend::Numerics numerics,
                                                     Device device, const LoadProgress& progress) {
  if (device == Device::Cuda)
    if (auto d = parse_device("cuda"); !d.ok()) return d.error();
  auto m = std::make_unique<LocalModel>();
  auto cfg = model::load_config(dir);
  if (!cfg.ok()) return cfg.error();
  m->cfg = std::move(cfg.value());
  auto w = weights::load_weights(dir, m->cfg);
  if (!w.ok()) return w.error();
  m->weights = std::move(w.value());
  if (device == Device::Host) {
    m->ops = std::make_unique<backend::CpuOps>(numerics);
  } else {
#ifdef DSV4_HAVE_CUDA
    auto ops = std::make_unique<backend::CudaOps>(numerics);
    ops->upload_weights(m->weights, progress);
    m->ops = std::move(ops);
#endif
  }
  m->transformer = std::make_unique<model::Transformer>(m->cfg, m->weights, *m->ops);
  return m;
}

Status validate_tokens(const model::ModelConfig& cfg, std::span<const int32_t> tokens) {
  if (tokens.empty()) return make_error("the token list is empty");
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= cfg.vocab_size)
      return make_error("token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                        " is out of range: the vocabulary has " + std::to_string(cfg.vocab_size) + " ids");
  return Ok{};
}

HostTensor all_logits(LocalModel& m, std::span<const int32_t> tokens, int64_t chunk) {
  model::SequenceState seq(m.cfg, m.ops->device());
  int64_t n = static_cast<int64_t>(tokens.size());
  if (chunk <= 0) chunk = n;
  HostTensor out({n, m.cfg.vocab_size});
  for (int64_t b = 0; b < n; b += chunk) {
    int64_t e = std::min(n, b + chunk);
    model::ForwardOutput fo;
    m.transformer->forward(model::single_batch(seq, tokens.subspan(b, e - b)), {.all_logits = true}, fo);
    std::copy(fo.logits.data(), fo.logits.data() + fo.logits.numel(), out.row(b));
  }
  return out;
}

Result<HostTensor> mtp_logits(LocalModel& m, std::span<const int32_t> tokens) {
  if (m.weights.mtp.empty()) return make_error("this checkpoint has no MTP block (mtp.0.* tensors)");
  if (tokens.size() < 2) return make_error("MTP logits need at least 2 tokens");
  model::SequenceState seq(m.cfg, m.ops->device());
  model::ForwardOutput fo;
  m.transformer->forward(model::single_batch(seq, tokens.first(tokens.size() - 1)), {.keep_hidden = true}, fo);
  HostTensor logits;
  m.transformer->mtp_forward(model::single_batch(seq, tokens.subspan(1), true), fo.hidden, logits);
  return logits;
}

namespace {
int32_t argmax(const float* v, int64_t n) {
  return static_cast<int32_t>(std::max_element(v, v + n) - v);
}
}  // namespace

std::vector<int32_t> generate_greedy(LocalModel& m, std::span<const int32_t> prompt, int64_t n_new) {
  model::SequenceState seq(m.cfg, m.ops->device());
  std::vector<int32_t> out;
  model::ForwardOutput fo;
  m.transformer->forward(model::single_batch(seq, prompt), {}, fo);
  for (int64_t i = 0; i < n_new; ++i) {
    int32_t next = argmax(fo.logits.data(), m.cfg.vocab_size);
    out.push_back(next);
    if (i + 1 == n_new) break;
    std::vector<int32_t> one{next};
    m.transformer->forward(model::single_batch(seq, one), {}, fo);
  }
  return out;
}

}  // namespace dsv4::runtime
