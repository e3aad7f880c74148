// Result rows of the GPU benchmark (bench/cuda_bench.cpp) and their two renderings: markdown tables on stdout
// (one per section) and one CSV file with every row. A row is one measured or derived number with its
// conditions; empty/zero fields are "not applicable".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsv4::bench {

struct Row {
  std::string section;  // ceiling | decode | decode_model | prefill | prefill_model | op | info
  std::string kind;     // swa | csa | hca | embed+head | model | 3-layer step | ...
  std::string op;       // op label (section op), ceiling name
  int64_t batch = 0;
  int64_t context = 0;  // decode: tokens before the new one
  int64_t prompt = 0;   // prefill prompt length
  std::string cache;    // per-seq | shared | -
  double ms = 0;        // measured (or estimated for *_model) time
  double floor_ms = 0;  // bytes / HBM copy rate (decode) or FLOPs / tensor-core rate (prefill)
  double tok_s = 0;
  double bytes = 0;
  double flops = 0;
  double calls = 0;     // per step (op rows)
  double host_ms = 0;   // op rows: CPU time in the op call per step
  double value = 0;     // ceilings: GB/s or TFLOP/s
  std::string note;
};

class Report {
 public:
  void add(Row r) { rows_.push_back(std::move(r)); }
  void note(std::string s) { notes_.push_back(std::move(s)); }
  const std::vector<Row>& rows() const { return rows_; }
  void print_markdown(const std::string& header) const;
  bool write_csv(const std::string& path) const;

 private:
  std::vector<Row> rows_;
  std::vector<std::string> notes_;
};

}  // namespace dsv4::bench
