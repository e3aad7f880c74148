// Streaming a request to the terminal; see generation.h.
#include "cli/generation.h"

#include <chrono>
#include <cstdio>
#include <iostream>

#include "cli/interrupt.h"

namespace dsv4::cli {

void add_sampling_options(CLI::App* cmd, SamplingFlags& f) {
  cmd->add_option("-n,--n-tokens", f.n_tokens, "maximum tokens to generate")->capture_default_str();
  cmd->add_option("--temp,--temperature", f.temperature, "sampling temperature (0 = greedy)")->capture_default_str();
  cmd->add_option("--top-p", f.top_p, "nucleus sampling mass")->capture_default_str();
  cmd->add_option("--top-k", f.top_k, "keep the k most likely tokens (0 = off)")->capture_default_str();
  cmd->add_option("--min-p", f.min_p, "drop tokens below min_p * p_max")->capture_default_str();
  cmd->add_option("--seed", f.seed, "sampling seed (default: random)");
  cmd->add_flag("--ignore-eos", f.ignore_eos, "keep generating after the end-of-sentence token");
}

sampling::SamplingParams to_params(const SamplingFlags& f) {
  sampling::SamplingParams p;
  p.max_tokens = f.n_tokens;
  p.temperature = f.temperature;
  p.top_p = f.top_p;
  p.top_k = f.top_k;
  p.min_p = f.min_p;
  if (f.seed >= 0) p.seed = static_cast<uint64_t>(f.seed);
  p.ignore_eos = f.ignore_eos;
  return p;
}

GenerationOutcome stream_generation(runtime::Engine& engine, std::vector<int32_t> prompt,
                                    const sampling::SamplingParams& params, bool show_stats,
                                    bool skip_special_tokens, bool print_ids) {
  GenerationOutcome out;
  auto stream = std::make_shared<runtime::RequestStream>();
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  auto t0 = std::chrono::steady_clock::now();
  auto id = engine.submit({.prompt = std::move(prompt), .params = params, .skip_special_tokens = skip_special_tokens}, stream);
  if (!id.ok()) {
    std::cerr << "error: " << id.message() << "\n";
    out.finish_reason = "error";
    return out;
  }
  set_generating(true);
  take_interrupt();
  std::chrono::steady_clock::time_point t_first;
  int64_t n_gen = 0;
  bool progress_shown = false;
  runtime::Event ev;
  for (;;) {
    if (take_interrupt()) engine.cancel(*id);
    if (!stream->next(ev, std::chrono::milliseconds(100))) continue;
    if (ev.kind == runtime::EventKind::Progress) {
      std::fprintf(stderr, "\r[prefill %lld/%lld tokens]", static_cast<long long>(ev.usage.prompt_tokens),
                   static_cast<long long>(n_prompt));
      progress_shown = true;
      continue;
    }
    if (progress_shown) {
      std::fprintf(stderr, "\r%*s\r", 40, "");
      progress_shown = false;
    }
    if (ev.kind == runtime::EventKind::Token) {
      if (n_gen++ == 0) t_first = std::chrono::steady_clock::now();
      if (print_ids)
        for (int32_t id : ev.token_ids) ev.text += (n_gen > 1 ? " " : "") + std::to_string(id);
      std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
      std::fflush(stdout);
      out.text += ev.text;
      continue;
    }
    if (ev.kind == runtime::EventKind::Error) {
      std::cerr << "\nerror: " << ev.error << "\n";
      out.finish_reason = "error";
      break;
    }
    std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
    out.text += ev.text;
    out.finish_reason = ev.finish_reason;
    out.ok = true;
    break;
  }
  set_generating(false);
  std::printf("\n");
  std::fflush(stdout);
  if (show_stats && n_gen > 0) {
    auto t1 = std::chrono::steady_clock::now();
    double prefill = std::chrono::duration<double>(t_first - t0).count();
    double decode = std::chrono::duration<double>(t1 - t_first).count();
    std::fprintf(stderr, "[%lld prompt tokens in %.2f s (%.1f tok/s); %lld generated in %.2f s (%.1f tok/s); %s]\n",
                 static_cast<long long>(n_prompt), prefill, static_cast<double>(n_prompt) / prefill,
                 static_cast<long long>(n_gen), decode,
                 n_gen > 1 ? static_cast<double>(n_gen - 1) / decode : 0.0, out.finish_reason.c_str());
  }
  return out;
}

}  // namespace dsv4::cli
