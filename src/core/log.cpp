// stderr logger behind log.h.
#include "core/log.h"

#include <cstdio>
#include <mutex>

#include "core/options.h"

namespace dsv4::log {
namespace {
int level() {
  static const int lv = [] {
    const std::string& s = options().log_level;
    if (s == "error") return 0;
    if (s == "warn") return 1;
    if (s == "debug") return 3;
    return 2;
  }();
  return lv;
}
void emit(int lv, const char* tag, const std::string& msg) {
  if (lv > level()) return;
  static std::mutex mu;
  std::lock_guard lk(mu);
  std::fprintf(stderr, "[dsv4 %s] %s\n", tag, msg.c_str());
}
}  // namespace

void error(const std::string& m) { emit(0, "error", m); }
void warn(const std::string& m) { emit(1, "warn", m); }
void info(const std::string& m) { emit(2, "info", m); }
void debug(const std::string& m) { emit(3, "debug", m); }

}  // namespace dsv4::log
