// Token-id JSON (see ids_json.h).
#include "tokenizer/ids_json.h"

#include <nlohmann/json.hpp>

namespace dsv4::tokenizer {

std::string ids_to_json(std::span<const int32_t> ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(ids[i]);
  }
  return out + "]";
}

Result<std::vector<int32_t>> parse_ids_json(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error("token ids: not valid JSON (expected an array of integers)");
  if (j.is_object()) {
    if (j.contains("ids")) {
      j = j["ids"];
    } else if (j.contains("input_ids")) {
      j = j["input_ids"];
    }
  }
  if (!j.is_array()) return make_error("token ids: expected a JSON array of integers");
  std::vector<int32_t> ids;
  ids.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& v = j[i];
    if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX) {
      return make_error("token ids: element " + std::to_string(i) + " (" + v.dump() + ") is not a 32-bit integer");
    }
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return ids;
}

}  // namespace dsv4::tokenizer
