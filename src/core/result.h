// Result<T>: the error channel for recoverable failures at module boundaries (config, checkpoint, files,
// tokenizer input, requests). An Error carries a message a user can act on: it names the file, tensor or
// field, and the expected and actual values. Exceptions never cross module boundaries.
#pragma once
#include <string>
#include <utility>
#include <variant>

namespace dsv4 {

struct Error {
  std::string message;
};

// E is the error type: Error everywhere except at the HTTP boundary (server::ApiError, a closed enum).
template <typename T, typename E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(E error) : v_(std::move(error)) {}          // NOLINT(google-explicit-constructor)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  const E& error() const { return std::get<1>(v_); }
  const std::string& message() const { return std::get<1>(v_).message; }

 private:
  std::variant<T, E> v_;
};

// Result<void>: success or an Error.
struct Ok {};
using Status = Result<Ok>;

inline Error make_error(std::string msg) { return Error{std::move(msg)}; }

}  // namespace dsv4

// Propagate an error from an expression returning Result<...>. Used only inside functions returning Result.
#define DSV4_TRY(var, expr)                          \
  auto var##_result_ = (expr);                       \
  if (!var##_result_.ok()) return var##_result_.error(); \
  auto& var = var##_result_.value()
#define DSV4_TRY_STATUS(expr)                        \
  do {                                               \
    auto s_ = (expr);                                \
    if (!s_.ok()) return s_.error();                 \
  } while (0)
