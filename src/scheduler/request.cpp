// Names of the request states and finish reasons (logs, events, test messages).
#include "scheduler/request.h"

namespace dsv4::scheduler {

const char* to_string(RequestState s) {
  switch (s) {
    case RequestState::Waiting: return "waiting";
    case RequestState::Running: return "running";
    case RequestState::Preempted: return "preempted";
  }
  return "?";
}

const char* to_string(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "?";
}

}  // namespace dsv4::scheduler
