// Invariant checks. check() is for conditions that are bugs when false (the program cannot continue
// meaningfully); it reports file:line and aborts via an exception of type InvariantError so tests can
// observe it. User-facing failures use Result<T> (result.h) instead.
#pragma once
#include <source_location>
#include <stdexcept>
#include <string>

namespace dsv4 {

struct InvariantError : std::logic_error {
  using std::logic_error::logic_error;
};

[[noreturn]] void panic(const std::string& msg,
                        std::source_location loc = std::source_location::current());

inline void check(bool cond, const char* msg,
                  std::source_location loc = std::source_location::current()) {
  if (!cond) [[unlikely]] panic(msg, loc);
}
inline void check(bool cond, const std::string& msg,
                  std::source_location loc = std::source_location::current()) {
  if (!cond) [[unlikely]] panic(msg, loc);
}

}  // namespace dsv4
