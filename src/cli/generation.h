// Streaming one request through the engine for the interactive commands: prints text deltas as they come,
// shows prefill progress for long prompts on stderr, cancels on Ctrl-C, and reports speed at the end.
#pragma once
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "runtime/engine.h"

namespace dsv4::cli {

struct SamplingFlags {
  int n_tokens = 256;
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = 0;
  float min_p = 0.0f;
  int64_t seed = -1;
  bool ignore_eos = false;
};
void add_sampling_options(CLI::App* cmd, SamplingFlags& f);
sampling::SamplingParams to_params(const SamplingFlags& f);

struct GenerationOutcome {
  std::string text;           // everything printed
  std::string finish_reason;  // stop, length, cancelled, error
  bool ok = false;
};

// Submits and streams to stdout (text deltas, or token ids when print_ids); show_stats prints the closing
// speed line on stderr.
GenerationOutcome stream_generation(runtime::Engine& engine, std::vector<int32_t> prompt,
                                    const sampling::SamplingParams& params, bool show_stats,
                                    bool skip_special_tokens = true, bool print_ids = false);

}  // namespace dsv4::cli
