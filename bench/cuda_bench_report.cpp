// Markdown and CSV rendering of the GPU benchmark's rows; see cuda_bench_report.h.
#include "cuda_bench_report.h"

#include <cstdio>
#include <fstream>
#include <string>

namespace dsv4::bench {

namespace {

std::string num(double v, const char* fmt = "%.3f") {
  if (v == 0) return "";
  char b[64];
  std::snprintf(b, sizeof(b), fmt, v);
  return b;
}

std::string pct(const Row& r) {
  return r.ms > 0 && r.floor_ms > 0 ? num(100.0 * r.floor_ms / r.ms, "%.1f%%") : std::string();
}

std::string ctx_str(int64_t n) {
  if (n == 0) return "";
  if (n % (1 << 20) == 0) return std::to_string(n >> 20) + "M";
  if (n % 1024 == 0) return std::to_string(n / 1024) + "K";
  return std::to_string(n);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

void print_table(const std::vector<Row>& rows, const std::string& section, const char* title) {
  bool any = false;
  for (const Row& r : rows) any = any || r.section == section;
  if (!any) return;
  std::printf("\n### %s\n\n", title);
  if (section == "ceiling") {
    std::printf("| ceiling | value | method |\n|---|---|---|\n");
    for (const Row& r : rows)
      if (r.section == section) std::printf("| %s | %.1f | %s |\n", r.op.c_str(), r.value, r.note.c_str());
    return;
  }
  if (section == "op") {
    // Rows come sorted by time within (condition, kind); the table keeps the top kTopOps of each, the CSV all.
    constexpr int kTopOps = 12;
    std::printf("| condition | layer kind | op | calls/step | ms/step | host ms/step |\n|---|---|---|---|---|---|\n");
    std::string group;
    int shown = 0;
    for (const Row& r : rows) {
      if (r.section != section) continue;
      const std::string cond = (r.prompt ? "prefill " + ctx_str(r.prompt) : "decode ctx " + ctx_str(r.context)) +
                               " B=" + std::to_string(r.batch);
      if (cond + r.kind != group) {
        group = cond + r.kind;
        shown = 0;
      }
      if (shown++ >= kTopOps) continue;
      std::printf("| %s | %s | %s | %s | %s | %s |\n", cond.c_str(), r.kind.c_str(), r.op.c_str(),
                  num(r.calls, "%.0f").c_str(), num(r.ms).c_str(), num(r.host_ms).c_str());
    }
    return;
  }
  std::printf("| kind | batch | context | prompt | cache | ms | floor ms | floor/ms | tok/s | GB read | TFLOP | note |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    if (r.section != section) continue;
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.kind.c_str(),
                r.batch ? std::to_string(r.batch).c_str() : "", ctx_str(r.context).c_str(), ctx_str(r.prompt).c_str(),
                r.cache.c_str(), num(r.ms).c_str(), num(r.floor_ms).c_str(), pct(r).c_str(), num(r.tok_s, "%.1f").c_str(),
                num(r.bytes * 1e-9).c_str(), num(r.flops * 1e-12).c_str(), r.note.c_str());
  }
}

}  // namespace

void Report::print_markdown(const std::string& header) const {
  std::printf("\n## dsv4 CUDA benchmark\n\n%s\n", header.c_str());
  print_table(rows_, "ceiling", "Ceilings (measured in this run)");
  print_table(rows_, "decode", "Decode: time per layer of each kind, and embed+head, per step");
  print_table(rows_, "decode_model", "Decode: full DeepSeek-V4-Flash step (43 layers, estimated from the kinds)");
  print_table(rows_, "prefill", "Prefill: time per layer of each kind over the whole prompt");
  print_table(rows_, "prefill_model", "Prefill: full DeepSeek-V4-Flash prompt (estimated from the kinds)");
  print_table(rows_, "op", "Per-op time per step (ops mode: every op bracketed by events; top 12 per layer kind, all in the CSV)");
  if (!notes_.empty()) {
    std::printf("\n### Notes\n\n");
    for (const auto& n : notes_) std::printf("- %s\n", n.c_str());
  }
  std::fflush(stdout);
}

bool Report::write_csv(const std::string& path) const {
  std::ofstream f(path);
  if (!f) return false;
  f << "section,kind,op,batch,context,prompt,cache,ms,floor_ms,floor_over_ms,tok_s,bytes,flops,calls,value,host_ms,"
       "note\n";
  for (const Row& r : rows_) {
    char b[512];
    std::snprintf(b, sizeof(b), "%lld,%lld,%lld,%s,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g",
                  static_cast<long long>(r.batch), static_cast<long long>(r.context),
                  static_cast<long long>(r.prompt), csv_field(r.cache).c_str(), r.ms, r.floor_ms,
                  r.ms > 0 ? r.floor_ms / r.ms : 0.0, r.tok_s, r.bytes, r.flops, r.calls, r.value, r.host_ms);
    f << csv_field(r.section) << ',' << csv_field(r.kind) << ',' << csv_field(r.op) << ',' << b << ','
      << csv_field(r.note) << '\n';
  }
  for (const auto& n : notes_) f << "note,,,,,,,,,,,,,,," << csv_field(n) << '\n';
  return static_cast<bool>(f);
}

}  // namespace dsv4::bench
