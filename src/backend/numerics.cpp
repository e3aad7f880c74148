// String forms of the Numerics options (CLI flags --kv-cache-dtype, --indexer-dtype, --act-dtype).
#include "backend/ops.h"

namespace dsv4::backend {

Result<KvCacheDtype> parse_kv_cache_dtype(const std::string& s) {
  if (s == "f32") return KvCacheDtype::F32;
  if (s == "bf16") return KvCacheDtype::Bf16;
  if (s == "fp8") return KvCacheDtype::Fp8;
  return make_error("kv cache dtype \"" + s + "\" is not supported: allowed are f32, bf16, fp8");
}

Result<IndexerDtype> parse_indexer_dtype(const std::string& s) {
  if (s == "f32") return IndexerDtype::F32;
  if (s == "bf16") return IndexerDtype::Bf16;
  if (s == "fp4") return IndexerDtype::Fp4;
  return make_error("indexer dtype \"" + s + "\" is not supported: allowed are f32, bf16, fp4");
}

Result<ActDtype> parse_act_dtype(const std::string& s) {
  if (s == "f32") return ActDtype::F32;
  if (s == "bf16") return ActDtype::Bf16;
  return make_error("activation dtype \"" + s + "\" is not supported: allowed are f32, bf16");
}

std::string to_string(KvCacheDtype d) {
  return d == KvCacheDtype::F32 ? "f32" : d == KvCacheDtype::Bf16 ? "bf16" : "fp8";
}
std::string to_string(IndexerDtype d) {
  return d == IndexerDtype::F32 ? "f32" : d == IndexerDtype::Bf16 ? "bf16" : "fp4";
}
std::string to_string(ActDtype d) { return d == ActDtype::F32 ? "f32" : "bf16"; }

}  // namespace dsv4::backend
