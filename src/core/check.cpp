// Implementation of panic(): formats file:line and throws InvariantError.
#include "core/check.h"

namespace dsv4 {

void panic(const std::string& msg, SourceLocation loc) {
  throw InvariantError(std::string(loc.file_name()) + ":" + std::to_string(loc.line()) + ": " + msg);
}

}  // namespace dsv4
