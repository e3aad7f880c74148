// A checkpoint directory as one name -> tensor table over mmapped safetensors files.
// Layouts: DIR/model.safetensors.index.json (weight_map: tensor name -> shard file), else DIR/model.safetensors,
// else every DIR/*.safetensors. Owns the mappings (it is the ModelWeights::storage), so every TensorRef
// pointer stays valid while the Checkpoint lives. Invariants after open(): each tensor name is unique across
// files, every index entry names a shard that exists and holds that tensor, every header passed validation.
#pragma once
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "weights/model_weights.h"
#include "weights/safetensors.h"

namespace dsv4::weights {

inline constexpr const char* kIndexFile = "model.safetensors.index.json";
inline constexpr const char* kSingleFile = "model.safetensors";

struct TensorRef {
  const TensorInfo* info = nullptr;
  const void* data = nullptr;                  // first byte of the tensor inside the mapping
  const std::filesystem::path* file = nullptr;  // the file holding it, for messages
};

class Checkpoint : public Storage {
 public:
  static Result<std::shared_ptr<Checkpoint>> open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& layout() const { return layout_; }  // "index", "single" or "multi"
  size_t n_files() const { return files_.size(); }
  std::optional<TensorRef> find(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted

 private:
  Checkpoint() = default;
  Status add_file(const std::filesystem::path& path);
  Status open_indexed(const std::filesystem::path& index_path);

  std::filesystem::path dir_;
  std::string layout_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::pair<size_t, const TensorInfo*>> tensors_;  // name -> (file, info)
};

}  // namespace dsv4::weights
