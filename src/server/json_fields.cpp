// Typed JSON field access with API errors (see json_fields.h).
#include "server/json_fields.h"

#include <cmath>

namespace dsv4::server {
namespace {

// Nesting depth of `body` counted over brackets outside strings; stops early past the limit.
bool depth_within(std::string_view body, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

ApiError wrong_type(const std::string& path, const char* want, const Json& got) {
  return api_error(ApiErrorKind::kInvalidType, "'" + path + "' must be " + want + ", not " + type_name(got), path);
}

}  // namespace

ApiResult<Json> parse_json_body(std::string_view body) {
  if (!depth_within(body, kMaxJsonDepth))
    return api_error(ApiErrorKind::kInvalidJson, "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return api_error(ApiErrorKind::kInvalidJson, "the request body is not valid JSON");
  if (!j.is_object()) return api_error(ApiErrorKind::kInvalidJson, "the request body must be a JSON object");
  return j;
}

const Json* field(const Json& obj, std::string_view name) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string type_name(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::string: return "a string";
    case Json::value_t::array: return "an array";
    case Json::value_t::object: return "an object";
    default: return j.is_number() ? "a number" : "a JSON value";
  }
}

ApiResult<std::optional<bool>> opt_bool(const Json& obj, std::string_view name, const std::string& path) {
  const Json* f = field(obj, name);
  if (f == nullptr) return std::optional<bool>();
  if (!f->is_boolean()) return wrong_type(path, "a boolean", *f);
  return std::optional<bool>(f->get<bool>());
}

ApiResult<std::optional<double>> opt_number(const Json& obj, std::string_view name, const std::string& path) {
  const Json* f = field(obj, name);
  if (f == nullptr) return std::optional<double>();
  if (!f->is_number()) return wrong_type(path, "a number", *f);
  const double v = f->get<double>();
  if (!std::isfinite(v)) return api_error(ApiErrorKind::kInvalidValue, "'" + path + "' must be finite", path);
  return std::optional<double>(v);
}

ApiResult<std::optional<int64_t>> opt_int(const Json& obj, std::string_view name, const std::string& path) {
  const Json* f = field(obj, name);
  if (f == nullptr) return std::optional<int64_t>();
  if (f->is_number_unsigned()) {
    const uint64_t u = f->get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return api_error(ApiErrorKind::kInvalidValue, "'" + path + "' is too large", path);
    return std::optional<int64_t>(static_cast<int64_t>(u));
  }
  if (f->is_number_integer()) return std::optional<int64_t>(f->get<int64_t>());
  if (f->is_number_float()) {
    const double d = f->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) return std::optional<int64_t>(static_cast<int64_t>(d));
  }
  return wrong_type(path, "an integer", *f);
}

ApiResult<std::optional<std::string>> opt_string(const Json& obj, std::string_view name, const std::string& path) {
  const Json* f = field(obj, name);
  if (f == nullptr) return std::optional<std::string>();
  if (!f->is_string()) return wrong_type(path, "a string", *f);
  return std::optional<std::string>(f->get<std::string>());
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace dsv4::server
