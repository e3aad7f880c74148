// Reading request JSON with OpenAI-style errors: the body must be a JSON object (kInvalidJson), and each
// known field, when present and not null, must have its type (kInvalidType naming the field's path, e.g.
// "messages[2].content"). Unknown fields are never looked at. Nesting deeper than kMaxJsonDepth is refused
// before parsing, so no later recursive walk (rendering tool schemas) can exhaust the stack.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace dsv4::server {

using Json = nlohmann::ordered_json;  // keeps key order: tool schemas are rendered as sent

inline constexpr int kMaxJsonDepth = 64;

ApiResult<Json> parse_json_body(std::string_view body);

// `obj[name]` when present and not null, else nullptr.
const Json* field(const Json& obj, std::string_view name);

// Optional typed fields: nullopt when absent or null; kInvalidType when present with another type.
// Integers accept integral floats (3.0); `path` is the field's name in error messages.
ApiResult<std::optional<bool>> opt_bool(const Json& obj, std::string_view name, const std::string& path);
ApiResult<std::optional<double>> opt_number(const Json& obj, std::string_view name, const std::string& path);
ApiResult<std::optional<int64_t>> opt_int(const Json& obj, std::string_view name, const std::string& path);
ApiResult<std::optional<std::string>> opt_string(const Json& obj, std::string_view name, const std::string& path);

std::string type_name(const Json& j);  // "string", "number", "object", ... for messages

// Serialises `j` (invalid UTF-8 replaced, never throws).
std::string dump(const Json& j);

}  // namespace dsv4::server
