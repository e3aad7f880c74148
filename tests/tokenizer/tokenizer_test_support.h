// Shared helpers of the tokenizer tests: where the reference tokenizer files and goldens are, and loading them
// once per process. The real DeepSeek tokenizer lives in <repo>/../shared (not in the repository); tests that
// need it skip when it is absent.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace dsv4::tokenizer::testing {

inline std::filesystem::path data_dir() { return std::filesystem::path(DSV4_TEST_DATA) / "tokenizer"; }
inline std::filesystem::path deepseek_v3_dir() {
  return std::filesystem::path(DSV4_TEST_DATA) / ".." / ".." / ".." / "shared" / "tokenizers" / "deepseek-v3";
}
inline bool have_deepseek_v3() { return std::filesystem::exists(deepseek_v3_dir() / "tokenizer.json"); }

// The DeepSeek-V3 tokenizer (the BPE of V4), loaded once per engine; nullptr when the files are absent.
const Tokenizer* deepseek_v3(RegexEngine engine = RegexEngine::kAuto);
// The V4 test fixture: the V3 tokenizer with V4's added tokens appended (as tools/gen_tokenizer_goldens.py
// builds it for the goldens); nullptr when the V3 files are absent.
const Tokenizer* deepseek_v4_fixture();

struct GoldenCase {
  std::string name;
  std::string text;
  std::vector<int32_t> ids;
  std::string decoded;  // what HF's decode gives back (== text unless the golden says otherwise)
};
std::vector<GoldenCase> load_golden(const std::filesystem::path& jsonl);
std::string read_text(const std::filesystem::path& path);

#define DSV4_REQUIRE_DEEPSEEK_TOKENIZER()                                                  \
  do {                                                                                     \
    if (!::dsv4::tokenizer::testing::have_deepseek_v3())                                   \
      GTEST_SKIP() << "DeepSeek tokenizer files not found at ../shared/tokenizers";        \
  } while (0)

}  // namespace dsv4::tokenizer::testing
