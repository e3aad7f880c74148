// Process-wide options read from the environment. This is the only place in dsv4 that calls getenv.
//   DSV4_THREADS  number of CPU worker threads (default: hardware concurrency)
//   DSV4_LOG      log level: error, warn, info (default), debug
//   DSV4_MODEL    model directory used when a command is given none (default: the embedded model)
#pragma once
#include <string>

namespace dsv4 {

struct Options {
  int n_threads = 1;
  std::string log_level = "info";
  std::string default_model;
  std::string cuda_paths;  // DSV4_CUDA_PATHS: CUDA kernel path switches (backend/cuda/common/kernel_paths.h)
};

const Options& options();

}  // namespace dsv4
