// Ctrl-C handling for interactive commands: SIGINT sets a flag (the only process-wide mutable state the CLI
// has, because a signal handler can do nothing else safely) that the command polls to cancel the request in
// flight instead of dying. A second Ctrl-C while no generation is running exits as usual.
#pragma once
#include <atomic>

namespace dsv4::cli {

void install_interrupt_handler();
bool take_interrupt();   // true (and clears the flag) if Ctrl-C was pressed since the last call
void set_generating(bool on);  // while off, Ctrl-C terminates the process

}  // namespace dsv4::cli
