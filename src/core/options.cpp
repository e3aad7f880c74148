// Reads Options from the environment once.
#include "core/options.h"

#include <cstdlib>
#include <thread>

namespace dsv4 {

const Options& options() {
  static const Options opts = [] {
    Options o;
    o.n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (const char* t = std::getenv("DSV4_THREADS")) {
      int v = std::atoi(t);
      if (v > 0) o.n_threads = v;
    }
    if (const char* l = std::getenv("DSV4_LOG")) o.log_level = l;
    if (const char* m = std::getenv("DSV4_MODEL")) o.default_model = m;
    if (const char* c = std::getenv("DSV4_CUDA_PATHS")) o.cuda_paths = c;
    return o;
  }();
  return opts;
}

}  // namespace dsv4
