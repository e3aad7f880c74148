// fp8_scales_ok: moe_fp8_scales.h.
#include "backend/moe_fp8_scales.h"

#include <algorithm>

namespace dsv4::backend {

bool fp8_scales_ok(std::span<const weights::ExpertWeights> experts, std::vector<uint32_t>& tensor_ref) {
  const size_t E = experts.size();
  std::vector<uint32_t> refs(2 * E, 0);
  bool tensor_ok = true;
  for (size_t ei = 0; ei < E; ++ei) {
    const auto& e = experts[ei];
    for (const weights::Weight* w : {&e.w1, &e.w3, &e.w2}) {
      if (w->quant != weights::Quant::Mxfp4 || w->scale_dtype != DType::F8_E8M0 || w->scale == nullptr) return false;
      const int64_t blocks = w->cols() / 32;
      if (blocks % 4 != 0) return false;
      const uint8_t* s = static_cast<const uint8_t*>(w->scale);
      const int64_t n = w->rows() * blocks;
      int bad = 0;  // branch-free per weight: ~3.5x faster than an early exit per block (the common case passes)
      uint8_t all_mx = 0, all_mn = 255;
      for (int64_t i = 0; i < n; i += 4) {
        const uint8_t mx = std::max(std::max(s[i], s[i + 1]), std::max(s[i + 2], s[i + 3]));
        const uint8_t mn = std::min(std::min(s[i], s[i + 1]), std::min(s[i + 2], s[i + 3]));
        bad |= (mx - mn > 12) | (mx < 7) | (mx == 255);
        all_mx = std::max(all_mx, mx);
        all_mn = std::min(all_mn, mn);
      }
      if (bad) return false;
      tensor_ok = tensor_ok && all_mx - all_mn <= 12 && all_mx >= 64 && all_mx <= 196;
      if (w == &e.w3) refs[ei] |= static_cast<uint32_t>(all_mx) << 8;
      else refs[w == &e.w1 ? ei : E + ei] |= all_mx;
    }
  }
  if (tensor_ok) tensor_ref = std::move(refs);
  return true;
}

}  // namespace dsv4::backend
