// SIGINT flag; see interrupt.h.
#include "cli/interrupt.h"

#include <csignal>
#include <cstdlib>
#include <unistd.h>

namespace dsv4::cli {
namespace {
std::atomic<bool> g_interrupted{false};
std::atomic<bool> g_generating{false};
extern "C" void on_sigint(int) {
  if (!g_generating.load()) _exit(130);
  g_interrupted.store(true);
}
}  // namespace

void install_interrupt_handler() { std::signal(SIGINT, on_sigint); }
bool take_interrupt() { return g_interrupted.exchange(false); }
void set_generating(bool on) { g_generating.store(on); }

}  // namespace dsv4::cli
