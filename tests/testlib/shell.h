// Runs a shell command for the end-to-end tests and captures its output and exit code.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace dsv4::testlib {

struct ShellResult {
  int code = -1;     // exit status (-1 if the command did not exit normally)
  std::string out;   // what it wrote to stdout (redirect 2>&1 in the command for stderr too)
};

inline ShellResult shell(const std::string& cmd) {
  ShellResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace dsv4::testlib
