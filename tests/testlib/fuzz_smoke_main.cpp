// Bounded fuzz smoke driver (no libFuzzer needed): feeds LLVMFuzzerTestOneInput with seeded random byte
// strings and with random mutations of the files in the optional corpus directory argv[2].
// Usage: fuzz_smoke_X N [corpus_dir]. A crash or sanitizer report fails the test; returning means pass.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  long n = argc > 1 ? std::atol(argv[1]) : 10000;
  std::vector<std::string> corpus;
  if (argc > 2 && std::filesystem::is_directory(argv[2])) {
    for (auto& e : std::filesystem::directory_iterator(argv[2])) {
      std::ifstream f(e.path(), std::ios::binary);
      corpus.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
  }
  std::mt19937_64 rng(12345);
  for (long i = 0; i < n; ++i) {
    std::string s;
    if (!corpus.empty() && (i % 2 == 0)) {
      s = corpus[rng() % corpus.size()];
      int edits = 1 + static_cast<int>(rng() % 8);
      for (int k = 0; k < edits && !s.empty(); ++k) {
        size_t pos = rng() % s.size();
        switch (rng() % 3) {
          case 0: s[pos] = static_cast<char>(rng()); break;
          case 1: s.erase(pos, 1 + rng() % 4); break;
          default: s.insert(pos, 1, static_cast<char>(rng())); break;
        }
      }
    } else {
      size_t len = rng() % 256;
      s.resize(len);
      for (auto& c : s) c = static_cast<char>(rng());
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  std::printf("fuzz smoke: %ld inputs\n", n);
  return 0;
}
