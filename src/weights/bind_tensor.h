// Binding one checkpoint tensor into a Weight: look it up under its on-disk name(s), check the dtype against
// the tensor's class, the shape against the config, attach and check block scales, and record the name as
// used. The structure walk over layers lives in binder.cpp; this is the per-tensor rule book.
// Dtype classes (spec §7.2): Fp8Linear = F8_E4M3 + 128x128 block scale, or BF16/F16/F32; Expert = I8 MXFP4
// + 1x32 e8m0 scale, or the Fp8Linear formats; Bf16 = BF16/F16/F32; F32 = F32/BF16; TokenMap = I64/I32.
#pragma once
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"
#include "weights/checkpoint.h"
#include "weights/model_weights.h"
#include "weights/names.h"

namespace dsv4::weights {

enum class Kind { Fp8Linear, Expert, Bf16, F32, TokenMap };

class TensorBinder {
 public:
  TensorBinder(const Checkpoint& ckpt, Naming naming) : ckpt_(ckpt), naming_(naming) {}

  // Binds the tensor with official name `official`; `shape` is the logical shape ([out, in] for matrices,
  // leading expert dim allowed for Expert). Fails when missing, misshapen, of a wrong dtype, or when a
  // quantized tensor's scale is missing or misshapen.
  Status bind(Weight& w, const std::string& official, const Shape& shape, Kind kind);
  // Same for a tensor looked up under explicit on-disk names (HF fused experts); `scale_names` gives the
  // scale's on-disk names for a tensor found under a given name.
  Status bind_disk(Weight& w, const std::vector<std::string>& names, const Shape& shape, Kind kind,
                   std::vector<std::string> (*scale_names)(const std::string&));
  bool has(const std::string& official) const;
  bool has_disk(const std::vector<std::string>& names) const;

  // Checks a bound tid2eid table: every row holds distinct expert ids in [0, n_experts).
  Status check_tid2eid(const Weight& w, int64_t n_experts) const;

  Naming naming() const { return naming_; }
  const Checkpoint& checkpoint() const { return ckpt_; }
  const std::set<std::string>& used() const { return used_; }
  void mark_used(const std::string& disk_name) { used_.insert(disk_name); }

 private:
  struct Found {
    std::string name;
    TensorRef ref;
  };
  std::optional<Found> lookup(const std::vector<std::string>& names) const;
  Status bind_found(Weight& w, const Found& t, const Shape& shape, Kind kind,
                    const std::vector<std::string>& scale_names);
  Status bind_scale(Weight& w, const Found& t, const std::vector<std::string>& scale_names, const Shape& shape);

  const Checkpoint& ckpt_;
  Naming naming_;
  std::set<std::string> used_;
};

// A 2-D view of rows [row0, row0 + rows) of matrix `e` of a bound 3-D weight [E, R, C] (no copy). For
// Fp8Block128 the row range must start on a 128-row block; the scale view is sliced along with it.
Result<Weight> slice_expert(const Weight& fused, int64_t e, int64_t row0, int64_t rows, const std::string& tag);

}  // namespace dsv4::weights
