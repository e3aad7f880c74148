// Minimal leveled logging to stderr (progress and diagnostics); the level comes from core/options.
#pragma once
#include <string>

namespace dsv4::log {

void info(const std::string& msg);
void warn(const std::string& msg);
void error(const std::string& msg);
void debug(const std::string& msg);

}  // namespace dsv4::log
