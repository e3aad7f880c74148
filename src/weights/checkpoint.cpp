// Checkpoint directory discovery and the sharded index (checkpoint.h).
#include "weights/checkpoint.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace dsv4::weights {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

Result<std::string> read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return make_error(p.string() + ": cannot open");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// weight_map of an index file: tensor name -> shard file name.
Result<std::map<std::string, std::string>> parse_index(const fs::path& index_path) {
  DSV4_TRY(text, read_text(index_path));
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    return make_error(index_path.string() + ": not valid JSON at byte " + std::to_string(e.byte) + ": " +
                      e.what());
  } catch (const json::exception& e) {  // e.g. out_of_range for a number literal that overflows
    return make_error(index_path.string() + ": not valid JSON: " + e.what());
  }
  auto wm = root.is_object() ? root.find("weight_map") : root.end();
  if (wm == root.end() || !wm->is_object())
    return make_error(index_path.string() + ": missing object 'weight_map'");
  std::map<std::string, std::string> out;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string())
      return make_error(index_path.string() + ": weight_map entry '" + it.key() + "' is not a string");
    const std::string shard = it->get<std::string>();
    const fs::path sp(shard);
    bool escapes = sp.is_absolute() || shard.empty();
    for (const auto& part : sp) escapes = escapes || part == "..";
    if (escapes)
      return make_error(index_path.string() + ": weight_map entry '" + it.key() + "' names shard '" + shard +
                        "', which is not a file inside the checkpoint directory");
    out[it.key()] = shard;
  }
  return out;
}

}  // namespace

Status Checkpoint::add_file(const fs::path& path) {
  DSV4_TRY(file, SafetensorsFile::open(path));
  const size_t idx = files_.size();
  files_.push_back(file);
  for (const TensorInfo& t : file->tensors()) {
    auto [it, inserted] = tensors_.emplace(t.name, std::make_pair(idx, &t));
    if (!inserted)
      return make_error("tensor '" + t.name + "' appears in both " + files_[it->second.first]->path().string() +
                        " and " + path.string());
  }
  return Ok{};
}

Status Checkpoint::open_indexed(const fs::path& index_path) {
  DSV4_TRY(weight_map, parse_index(index_path));
  if (weight_map.empty()) return make_error(index_path.string() + ": weight_map is empty");
  std::map<std::string, std::string> first_tensor;  // shard -> one tensor mapped to it, for messages
  for (const auto& [name, shard] : weight_map) first_tensor.emplace(shard, name);
  for (const auto& [shard, tensor] : first_tensor) {
    const fs::path p = dir_ / shard;
    if (!fs::is_regular_file(p))
      return make_error(index_path.string() + ": shard " + p.string() + " is missing (it holds e.g. tensor '" +
                        tensor + "')");
    DSV4_TRY_STATUS(add_file(p));
  }
  for (const auto& [name, shard] : weight_map) {
    auto it = tensors_.find(name);
    if (it == tensors_.end() || files_[it->second.first]->path() != dir_ / shard)
      return make_error(index_path.string() + ": maps tensor '" + name + "' to shard " + (dir_ / shard).string() +
                        ", which does not contain it" +
                        (it == tensors_.end() ? std::string()
                                              : " (found in " + files_[it->second.first]->path().string() + ")"));
  }
  return Ok{};
}

Result<std::shared_ptr<Checkpoint>> Checkpoint::open(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return make_error(dir.string() + ": not a checkpoint directory");
  std::shared_ptr<Checkpoint> ck(new Checkpoint());
  ck->dir_ = dir;
  if (fs::exists(dir / kIndexFile)) {
    ck->layout_ = "index";
    DSV4_TRY_STATUS(ck->open_indexed(dir / kIndexFile));
    return ck;
  }
  if (fs::is_regular_file(dir / kSingleFile)) {
    ck->layout_ = "single";
    DSV4_TRY_STATUS(ck->add_file(dir / kSingleFile));
    return ck;
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".safetensors") files.push_back(e.path());
  if (ec) return make_error(dir.string() + ": cannot list: " + ec.message());
  if (files.empty())
    return make_error(dir.string() + ": no " + kIndexFile + ", " + kSingleFile + " or *.safetensors file");
  std::sort(files.begin(), files.end());
  ck->layout_ = "multi";
  for (const auto& f : files) DSV4_TRY_STATUS(ck->add_file(f));
  return ck;
}

std::optional<TensorRef> Checkpoint::find(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return std::nullopt;
  const SafetensorsFile& f = *files_[it->second.first];
  return TensorRef{it->second.second, f.data(*it->second.second), &f.path()};
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, _] : tensors_) out.push_back(name);
  return out;
}

}  // namespace dsv4::weights
