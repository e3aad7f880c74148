// CudaOps construction and weight upload; the ops themselves are in ops_*.cu (see cuda_ops.h).
#include "backend/cuda/ops/cuda_ops.h"

namespace dsv4::backend {

CudaOps::CudaOps(Numerics numerics) : ctx_(cuda::CudaContext::get()), numerics_(numerics), graphs_(ctx_) {}

CudaOps::~CudaOps() {
  graphs_.abort();
  ctx_.sync();
}

void CudaOps::upload_weights(const weights::ModelWeights& w, const cuda::DeviceWeights::Progress& progress) {
  dw_.upload_all(w, progress);
}

}  // namespace dsv4::backend
