// JSON text exactly as Python's json.dumps(value, ensure_ascii=False) writes it, which is what DeepSeek's
// reference chat encoding embeds in prompts (tool schemas, non-string tool arguments, response formats).
// Byte-exact prompts matter for prefix-cache reuse. Separators ", " and ": ", key order as given (use
// nlohmann::ordered_json), floats as Python's repr (shortest round-trip, "1.0", "1e-05", "1e+16").
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace dsv4::tokenizer {

std::string py_json_dumps(const nlohmann::ordered_json& value);
std::string py_float_repr(double x);

}  // namespace dsv4::tokenizer
