// Per-tensor binding rules (bind_tensor.h).
#include "weights/bind_tensor.h"

#include <cstring>

namespace dsv4::weights {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

bool ends_with(const std::string& s, std::string_view p) {
  return s.size() >= p.size() && std::string_view(s).substr(s.size() - p.size()) == p;
}

std::string allowed(Kind k) {
  switch (k) {
    case Kind::Fp8Linear: return "{F8_E4M3 (+ block scale), BF16, F16, F32}";
    case Kind::Expert: return "{I8 packed MXFP4 (+ e8m0 scale), F8_E4M3 (+ block scale), BF16, F16, F32}";
    case Kind::Bf16: return "{BF16, F16, F32}";
    case Kind::F32: return "{F32, BF16}";
    case Kind::TokenMap: return "{I64, I32}";
  }
  return "{}";
}

bool plain_ok(Kind k, DType dt) {
  switch (k) {
    case Kind::Fp8Linear:
    case Kind::Expert:
    case Kind::Bf16: return dt == DType::BF16 || dt == DType::F16 || dt == DType::F32;
    case Kind::F32: return dt == DType::F32 || dt == DType::BF16;
    case Kind::TokenMap: return dt == DType::I64 || dt == DType::I32;
  }
  return false;
}

std::string where(const std::string& name, const std::filesystem::path& file) {
  return "tensor '" + name + "' in " + file.string();
}

}  // namespace

std::optional<TensorBinder::Found> TensorBinder::lookup(const std::vector<std::string>& names) const {
  for (const std::string& n : names)
    if (auto ref = ckpt_.find(n)) return Found{n, *ref};
  return std::nullopt;
}

bool TensorBinder::has(const std::string& official) const {
  return lookup(disk_names(naming_, official)).has_value();
}

bool TensorBinder::has_disk(const std::vector<std::string>& names) const { return lookup(names).has_value(); }

Status TensorBinder::bind(Weight& w, const std::string& official, const Shape& shape, Kind kind) {
  const std::vector<std::string> names = disk_names(naming_, official);
  auto t = names.empty() ? std::nullopt : lookup(names);
  if (!t) {
    std::string shown = names.empty() ? official : names.front();
    return make_error("missing tensor '" + shown + "'" +
                      (shown == official ? std::string() : " (official name '" + official + "')") +
                      " in checkpoint " + ckpt_.dir().string());
  }
  std::vector<std::string> scales;
  if (ends_with(official, ".weight"))
    scales = disk_names(naming_, official.substr(0, official.size() - 7) + ".scale");
  return bind_found(w, *t, shape, kind, scales);
}

Status TensorBinder::bind_disk(Weight& w, const std::vector<std::string>& names, const Shape& shape, Kind kind,
                               std::vector<std::string> (*scale_names)(const std::string&)) {
  auto t = lookup(names);
  if (!t) return make_error("missing tensor '" + names.front() + "' in checkpoint " + ckpt_.dir().string());
  return bind_found(w, *t, shape, kind, scale_names(t->name));
}

Status TensorBinder::bind_found(Weight& w, const Found& t, const Shape& shape, Kind kind,
                                const std::vector<std::string>& scale_names) {
  used_.insert(t.name);
  const DType dt = t.ref.info->dtype;
  const Shape& stored = t.ref.info->shape;
  const bool fp8 = (kind == Kind::Fp8Linear || kind == Kind::Expert) && dt == DType::F8_E4M3;
  const bool mxfp4 = kind == Kind::Expert && dt == DType::I8;
  const std::string at = where(t.name, *t.ref.file);
  if (!plain_ok(kind, dt) && !fp8 && !mxfp4)
    return make_error(at + ": dtype " + std::string(dtype_name(dt)) + " is not allowed here; expected one of " +
                      allowed(kind));
  if ((fp8 || mxfp4) && shape.size() < 2)
    return make_error(at + ": a quantized " + std::string(dtype_name(dt)) + " tensor must be a matrix");
  Shape want = shape;
  if (mxfp4) {
    if (shape.back() % 32 != 0)
      return make_error(at + ": MXFP4 needs an input dim divisible by 32, the config implies " + shape_str(shape));
    want.back() = shape.back() / 2;
  }
  if (stored != want)
    return make_error(at + ": shape " + shape_str(stored) + " but the config implies " + shape_str(want) +
                      (mxfp4 ? " (packed MXFP4 bytes of logical " + shape_str(shape) + ")" : std::string()));
  w = Weight{};
  w.name = t.name;
  w.dtype = dt;
  w.shape = shape;
  w.data = t.ref.data;
  if (!fp8 && !mxfp4) return Ok{};
  w.quant = fp8 ? Quant::Fp8Block128 : Quant::Mxfp4;
  Shape sshape = shape;
  const size_t n = shape.size();
  if (fp8) {
    sshape[n - 2] = ceil_div(shape[n - 2], 128);
    sshape[n - 1] = ceil_div(shape[n - 1], 128);
  } else {
    sshape[n - 1] = shape[n - 1] / 32;
  }
  return bind_scale(w, t, scale_names, sshape);
}

Status TensorBinder::bind_scale(Weight& w, const Found& t, const std::vector<std::string>& scale_names,
                                const Shape& shape) {
  const std::string at = where(t.name, *t.ref.file);
  auto s = lookup(scale_names);
  if (!s)
    return make_error(at + ": " + std::string(dtype_name(w.dtype)) + " weight needs its block scale '" +
                      (scale_names.empty() ? std::string("?") : scale_names.front()) + "', which is missing");
  used_.insert(s->name);
  const DType sdt = s->ref.info->dtype;
  const bool ok = sdt == DType::F8_E8M0 || (w.quant == Quant::Fp8Block128 && sdt == DType::F32);
  const std::string sat = where(s->name, *s->ref.file);
  if (!ok)
    return make_error(sat + ": scale dtype " + std::string(dtype_name(sdt)) + " is not allowed; expected " +
                      (w.quant == Quant::Fp8Block128 ? "{F8_E8M0, F32}" : "{F8_E8M0}") + " for " + t.name);
  if (s->ref.info->shape != shape)
    return make_error(sat + ": scale shape " + shape_str(s->ref.info->shape) + " but weight '" + t.name + "' " +
                      shape_str(w.shape) + " needs " + shape_str(shape));
  w.scale = s->ref.data;
  w.scale_dtype = sdt;
  w.scale_shape = shape;
  return Ok{};
}

Status TensorBinder::check_tid2eid(const Weight& w, int64_t n_experts) const {
  const int64_t rows = w.rows(), k = w.cols();
  const size_t esize = dtype_size(w.dtype);
  const auto* base = static_cast<const uint8_t*>(w.data);
  auto ref = ckpt_.find(w.name);
  const std::string at = ref ? where(w.name, *ref->file) : "tensor '" + w.name + "'";
  std::vector<int64_t> seen_in_row(static_cast<size_t>(n_experts), -1);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < k; ++j) {
      int64_t id = 0;
      const uint8_t* p = base + static_cast<size_t>(r * k + j) * esize;
      if (w.dtype == DType::I64) {
        std::memcpy(&id, p, 8);
      } else {
        int32_t v = 0;
        std::memcpy(&v, p, 4);
        id = v;
      }
      if (id < 0 || id >= n_experts)
        return make_error(at + ": row " + std::to_string(r) + " (token id " + std::to_string(r) +
                          ") holds expert id " + std::to_string(id) + " outside [0, " + std::to_string(n_experts) +
                          ")");
      if (seen_in_row[static_cast<size_t>(id)] == r)
        return make_error(at + ": row " + std::to_string(r) + " (token id " + std::to_string(r) +
                          ") names expert " + std::to_string(id) + " twice; each row must hold distinct experts");
      seen_in_row[static_cast<size_t>(id)] = r;
    }
  }
  return Ok{};
}

Result<Weight> slice_expert(const Weight& fused, int64_t e, int64_t row0, int64_t rows, const std::string& tag) {
  const int64_t R = fused.shape.at(1), C = fused.shape.at(2);
  Weight out;
  out.name = fused.name + "[" + std::to_string(e) + "]" + tag;
  out.quant = fused.quant;
  out.dtype = fused.dtype;
  out.shape = {rows, C};
  const int64_t row_bytes = fused.quant == Quant::Mxfp4 ? C / 2 : C * static_cast<int64_t>(dtype_size(fused.dtype));
  out.data = static_cast<const uint8_t*>(fused.data) + (e * R + row0) * row_bytes;
  if (fused.quant == Quant::None) return out;
  out.scale_dtype = fused.scale_dtype;
  const int64_t ssize = static_cast<int64_t>(dtype_size(fused.scale_dtype));
  const auto* sbase = static_cast<const uint8_t*>(fused.scale);
  if (fused.quant == Quant::Fp8Block128) {
    if (row0 % 128 != 0)
      return make_error("tensor '" + fused.name + "': cannot split FP8 expert " + std::to_string(e) + " at row " +
                        std::to_string(row0) + ": the gate/up boundary must fall on a 128-row scale block "
                        "(moe_intermediate_size must be a multiple of 128 for fused FP8 experts)");
    const int64_t SR = fused.scale_shape.at(1), SC = fused.scale_shape.at(2);
    out.scale = sbase + ((e * SR + row0 / 128) * SC) * ssize;
    out.scale_shape = {ceil_div(rows, 128), SC};
  } else {
    const int64_t SC = C / 32;
    out.scale = sbase + ((e * R + row0) * SC) * ssize;
    out.scale_shape = {rows, SC};
  }
  return out;
}

}  // namespace dsv4::weights
