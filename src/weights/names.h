// Tensor naming schemes of DeepSeek-V4 checkpoints and the translation from the official names (the HF-hub
// release and inference/model.py: `layers.L.attn.wq_a.weight`, `.scale` scales) to HF-transformers state_dict
// names (`model.layers.L.self_attn.q_a_proj.weight`, `.weight_scale_inv` scales, fused experts).
// The binder always asks for a tensor by its official name; disk_names() gives the names to look for on disk,
// canonical first, then accepted variants (older transformers revisions). `mtp.*` names are the same in both
// schemes (transformers has no MTP module) and do not take part in detection.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace dsv4::weights {

enum class Naming { Official, Transformers };

std::string_view naming_name(Naming n);  // "official" / "transformers"

// Decides the scheme from the tensor names of a checkpoint. Fails when names of both schemes are present
// (naming one of each) or none is recognized. `origin` names the checkpoint in messages.
Result<Naming> detect_naming(const std::vector<std::string>& names, const std::string& origin);

// Names to look up on disk for the tensor with official name `official`, canonical first.
std::vector<std::string> disk_names(Naming naming, const std::string& official);

// HF fused routed-expert tensors of main layer `il`: gate_up_proj [E, 2I, D] (gate rows first) or
// down_proj [E, D, I]; and the names of their block scales given the weight's on-disk name.
std::vector<std::string> fused_expert_names(int64_t il, bool gate_up);
std::vector<std::string> fused_scale_names(const std::string& weight_disk_name);

bool is_mtp_name(std::string_view name);

}  // namespace dsv4::weights
