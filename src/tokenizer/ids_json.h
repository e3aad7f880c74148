// Token ids as JSON text, for the CLI and tools: "[1, 2, 3]" out; in, a JSON array of integers or an object
// with "ids" / "input_ids" holding one.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace dsv4::tokenizer {

std::string ids_to_json(std::span<const int32_t> ids);
Result<std::vector<int32_t>> parse_ids_json(std::string_view text);

}  // namespace dsv4::tokenizer
