// Lookup tables for the regex character classes (see unicode_classes.h). The generated range lists are folded
// into a two-level table: stage1[cp >> 8] picks a deduplicated 256-entry block of class bits.
#include "tokenizer/unicode_classes.h"

#include <array>
#include <map>
#include <vector>

namespace dsv4::tokenizer {
namespace {

#include "tokenizer/generated/unicode_classes.inc"

constexpr char32_t kMaxCodepoint = 0x10FFFF;
constexpr int kBlockBits = 8;
constexpr int kBlockSize = 1 << kBlockBits;
constexpr int kBlocks = (kMaxCodepoint + 1) >> kBlockBits;

struct ClassTable {
  std::array<uint16_t, kBlocks> stage1{};  // block index per 256 code points
  std::vector<uint16_t> stage2;             // concatenated unique blocks
};

ClassTable build_table() {
  std::vector<uint16_t> flat(kMaxCodepoint + 1, 0);
  auto mark = [&](std::span<const CodepointRange> ranges, uint16_t bit) {
    for (const auto& r : ranges) {
      for (char32_t c = r.lo; c <= r.hi; ++c) flat[c] |= bit;
    }
  };
  mark(kClass_L, kClassL);
  mark(kClass_M, kClassM);
  mark(kClass_N, kClassN);
  mark(kClass_P, kClassP);
  mark(kClass_S, kClassS);
  mark(kClass_Z, kClassZ);
  mark(kClass_s, kClassSpace);
  mark(kClass_d, kClassDigit);
  mark(kClass_w, kClassWord);
  ClassTable t;
  std::map<std::vector<uint16_t>, uint16_t> seen;
  for (int b = 0; b < kBlocks; ++b) {
    std::vector<uint16_t> block(flat.begin() + b * kBlockSize, flat.begin() + (b + 1) * kBlockSize);
    auto [it, inserted] = seen.emplace(block, static_cast<uint16_t>(seen.size()));
    if (inserted) t.stage2.insert(t.stage2.end(), block.begin(), block.end());
    t.stage1[b] = it->second;
  }
  return t;
}

const ClassTable& table() {
  static const ClassTable t = build_table();
  return t;
}

}  // namespace

uint16_t char_classes(char32_t cp) {
  if (cp > kMaxCodepoint) return 0;
  const ClassTable& t = table();
  return t.stage2[static_cast<size_t>(t.stage1[cp >> kBlockBits]) * kBlockSize + (cp & (kBlockSize - 1))];
}

std::optional<std::span<const CodepointRange>> class_ranges(char name) {
  switch (name) {
    case 'L': return std::span<const CodepointRange>(kClass_L);
    case 'M': return std::span<const CodepointRange>(kClass_M);
    case 'N': return std::span<const CodepointRange>(kClass_N);
    case 'P': return std::span<const CodepointRange>(kClass_P);
    case 'S': return std::span<const CodepointRange>(kClass_S);
    case 'Z': return std::span<const CodepointRange>(kClass_Z);
    case 's': return std::span<const CodepointRange>(kClass_s);
    case 'd': return std::span<const CodepointRange>(kClass_d);
    case 'w': return std::span<const CodepointRange>(kClass_w);
    default: return std::nullopt;
  }
}

}  // namespace dsv4::tokenizer
