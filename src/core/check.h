// Invariant checks. check() is for conditions that are bugs when false (the program cannot continue
// meaningfully); it reports file:line and aborts via an exception of type InvariantError so tests can
// observe it. User-facing failures use Result<T> (result.h) instead.
#pragma once
#include <stdexcept>
#include <string>
#include <type_traits>
#include <version>
#if defined(__cpp_lib_source_location)
#include <source_location>
#endif

namespace dsv4 {

// std::source_location where the standard library has it; otherwise (clang 14 with libstdc++ 12, used for
// the libFuzzer builds) the same interface over the compiler builtins.
#if defined(__cpp_lib_source_location)
using SourceLocation = std::source_location;
#else
struct SourceLocation {
  static constexpr SourceLocation current(const char* file = __builtin_FILE(), unsigned line = __builtin_LINE()) {
    SourceLocation l;
    l.file_ = file;
    l.line_ = line;
    return l;
  }
  constexpr const char* file_name() const { return file_; }
  constexpr unsigned line() const { return line_; }

 private:
  const char* file_ = "";
  unsigned line_ = 0;
};
#endif

struct InvariantError : std::logic_error {
  using std::logic_error::logic_error;
};

[[noreturn]] void panic(const std::string& msg,
                        SourceLocation loc = SourceLocation::current());

inline void check(bool cond, const char* msg,
                  SourceLocation loc = SourceLocation::current()) {
  if (!cond) [[unlikely]] panic(msg, loc);
}
inline void check(bool cond, const std::string& msg,
                  SourceLocation loc = SourceLocation::current()) {
  if (!cond) [[unlikely]] panic(msg, loc);
}
// The message built only on failure: check(ok, [&] { return "x " + std::to_string(v); }). For hot paths, where
// building a std::string on every call would cost more than the checked work (per-op checks of the CUDA
// backend run hundreds of times per decode step).
template <typename MakeMsg>
  requires std::is_invocable_r_v<std::string, MakeMsg>
inline void check(bool cond, MakeMsg&& make_msg, SourceLocation loc = SourceLocation::current()) {
  if (!cond) [[unlikely]] panic(make_msg(), loc);
}

}  // namespace dsv4
