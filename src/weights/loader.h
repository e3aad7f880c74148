// Loading a DeepSeek-V4 checkpoint directory into ModelWeights: open (mmap) the safetensors files, detect the
// naming, bind every tensor against the config. The result owns the mappings; loading copies no tensor data.
#pragma once
#include <filesystem>

#include "core/result.h"
#include "model/config.h"
#include "weights/model_weights.h"

namespace dsv4::weights {

Result<ModelWeights> load_weights(const std::filesystem::path& dir, const model::ModelConfig& cfg);

}  // namespace dsv4::weights
