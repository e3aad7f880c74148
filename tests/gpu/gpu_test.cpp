// Comparison, report and host random helpers of the GPU op test.
#include "gpu_test.h"

#include <cmath>
#include <cstdarg>
#include <fstream>

#include "core/dtype.h"

namespace dsv4::gpu_test {

std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof(buf), f, ap);
  va_end(ap);
  return buf;
}

Compare compare(const float* got, const float* ref, size_t n) {
  Compare c;
  c.n = n;
  double d2 = 0, r2 = 0;
  for (size_t i = 0; i < n; ++i) {
    const bool fg = std::isfinite(got[i]), fr = std::isfinite(ref[i]);
    c.nonfinite += !fg;
    c.ref_nonfinite += !fr;
    if (!fg || !fr) continue;
    const double d = static_cast<double>(got[i]) - ref[i];
    d2 += d * d;
    r2 += static_cast<double>(ref[i]) * ref[i];
    c.max_abs = std::max(c.max_abs, std::fabs(d));
  }
  c.rel_err = r2 > 0 ? std::sqrt(d2 / r2) : (d2 > 0 ? INFINITY : 0.0);
  return c;
}

bool Report::check(const std::string& name, const std::string& detail, const Compare& c, double tol, bool extra_ok,
                   const std::string& note) {
  const bool pass = c.n > 0 && c.nonfinite == 0 && c.ref_nonfinite == 0 && c.rel_err <= tol && extra_ok;
  failures_ += !pass;
  std::string metric = fmt("rel_err=%.3g (tol %.0e) max_abs=%.3g n=%zu", c.rel_err, tol, c.max_abs, c.n);
  if (c.nonfinite || c.ref_nonfinite) metric += fmt(" NONFINITE got=%zu ref=%zu", c.nonfinite, c.ref_nonfinite);
  checks_.push_back({"check", name, detail, pass ? "PASS" : "FAIL", metric, note});
  printf("[%s] %-22s %-34s %s%s%s\n", pass ? "PASS" : "FAIL", name.c_str(), detail.c_str(), metric.c_str(),
         note.empty() ? "" : "  ", note.c_str());
  fflush(stdout);
  return pass;
}

bool Report::exact(const std::string& name, const std::string& detail, size_t n, size_t mismatches,
                   const std::string& note) {
  const bool pass = n > 0 && mismatches == 0;
  failures_ += !pass;
  const std::string metric = fmt("bitwise: %zu of %zu differ", mismatches, n);
  checks_.push_back({"exact", name, detail, pass ? "PASS" : "FAIL", metric, note});
  printf("[%s] %-22s %-34s %s%s%s\n", pass ? "PASS" : "FAIL", name.c_str(), detail.c_str(), metric.c_str(),
         note.empty() ? "" : "  ", note.c_str());
  fflush(stdout);
  return pass;
}

void Report::skip(const std::string& name, const std::string& detail, const std::string& why) {
  checks_.push_back({"skip", name, detail, "SKIP", why, ""});
  printf("[SKIP] %-22s %-34s %s\n", name.c_str(), detail.c_str(), why.c_str());
  fflush(stdout);
}

void Report::perf(const std::string& name, const std::string& detail, const cuda::Timing& t, double bytes,
                  double flops, const Ceilings& ceil) {
  const double s = t.median_ms * 1e-3;
  std::string metric = fmt("%9.2f us", t.median_ms * 1e3);
  if (bytes > 0) {
    const double gbps = bytes / s * 1e-9;
    metric += fmt(" | %7.0f GB/s", gbps);
    if (ceil.copy_gbps > 0) metric += fmt(" (%3.0f%% of copy)", 100.0 * gbps / ceil.copy_gbps);
  }
  if (flops > 0) {
    const double tf = flops / s * 1e-12;
    metric += fmt(" | %6.1f TFLOP/s", tf);
    if (ceil.bf16_tflops > 0) metric += fmt(" (%3.0f%% of bf16", 100.0 * tf / ceil.bf16_tflops);
    if (ceil.fp8_tflops > 0) metric += fmt(", %3.0f%% of fp8", 100.0 * tf / ceil.fp8_tflops);
    if (ceil.bf16_tflops > 0) metric += ")";
  }
  metric += fmt(" [median of %d x %d calls, min %.2f us]", t.samples, t.calls_per_sample, t.min_ms * 1e3);
  perfs_.push_back({"perf", name, detail, "", metric, ""});
  printf("[PERF] %-22s %-34s %s\n", name.c_str(), detail.c_str(), metric.c_str());
  fflush(stdout);
}

void Report::note(const std::string& line) {
  notes_.push_back(line);
  printf("[NOTE] %s\n", line.c_str());
  fflush(stdout);
}

void Report::print_summary(FILE* f) const {
  fprintf(f, "\n==== dsv4_gpu_ops summary ====\n");
  for (const auto& n : notes_) fprintf(f, "note: %s\n", n.c_str());
  fprintf(f, "-- performance --\n");
  for (const auto& r : perfs_) fprintf(f, "%-22s %-34s %s\n", r.name.c_str(), r.detail.c_str(), r.metric.c_str());
  fprintf(f, "-- correctness --\n");
  int pass = 0, fail = 0, skip = 0;
  for (const auto& r : checks_) {
    pass += r.status == "PASS";
    fail += r.status == "FAIL";
    skip += r.status == "SKIP";
    if (r.status != "PASS")
      fprintf(f, "%s %-22s %-34s %s %s\n", r.status.c_str(), r.name.c_str(), r.detail.c_str(), r.metric.c_str(),
              r.note.c_str());
  }
  fprintf(f, "checks: %d passed, %d failed, %d skipped\n", pass, fail, skip);
}

void Report::write(const std::string& dir) const {
  std::ofstream md(dir + "/summary.md");
  md << "# dsv4_gpu_ops\n\n";
  for (const auto& n : notes_) md << "- " << n << "\n";
  md << "\n## Performance\n\n| op | shape | time and rate |\n|---|---|---|\n";
  for (const auto& r : perfs_) md << "| " << r.name << " | " << r.detail << " | " << r.metric << " |\n";
  md << "\n## Correctness\n\n| status | op | shape | result | note |\n|---|---|---|---|---|\n";
  for (const auto& r : checks_)
    md << "| " << r.status << " | " << r.name << " | " << r.detail << " | " << r.metric << " | " << r.note << " |\n";
  std::ofstream csv(dir + "/results.csv");
  csv << "kind,status,name,detail,metric,note\n";
  auto q = [](const std::string& s) {
    std::string o = "\"";
    for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
    return o + "\"";
  };
  for (const auto* rows : {&checks_, &perfs_})
    for (const auto& r : *rows)
      csv << r.kind << "," << r.status << "," << q(r.name) << "," << q(r.detail) << "," << q(r.metric) << ","
          << q(r.note) << "\n";
}

std::vector<float> random_bf16_values(std::mt19937_64& rng, size_t n, float sigma) {
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = round_bf16(nd(rng));
  return v;
}

std::vector<float> random_activations(std::mt19937_64& rng, int64_t rows, int64_t cols) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> ex(-4, 4);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float s = std::ldexp(1.0f, ex(rng));
    for (int64_t c = 0; c < cols; ++c) v[static_cast<size_t>(r * cols + c)] = round_bf16(nd(rng) * s);
  }
  return v;
}

std::vector<uint16_t> to_bf16_bits(const std::vector<float>& v) {
  std::vector<uint16_t> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = f32_to_bf16(v[i]);
  return o;
}

std::vector<float> bf16_bits_to_f32(const std::vector<uint16_t>& v) {
  std::vector<float> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = bf16_to_f32(v[i]);
  return o;
}

Tensor host_tensor(Shape s, std::vector<float> v) {
  Tensor t(std::move(s));
  check(static_cast<int64_t>(v.size()) == t.numel(), "host_tensor: value count differs from the shape");
  t.vec() = std::move(v);
  return t;
}

Tensor poisoned(Shape s) {
  Tensor y(Device::Cuda, s);
  y.resize(s, NAN);
  return y;
}

Compare compare_tensors(const Tensor& got_dev, const Tensor& ref) {
  const Tensor got = got_dev.to(Device::Host);
  if (got.numel() != ref.numel()) return Compare{0, 1e9, 0, 1, 0};
  return compare(got.data(), ref.data(), static_cast<size_t>(ref.numel()));
}

}  // namespace dsv4::gpu_test
