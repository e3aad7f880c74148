// UTF-8 helpers against the Unicode standard: ill-formed sequences are replaced per "maximal subpart"
// (Unicode 15, §3.9, Table 3-8 and the U+FFFD substitution examples), as Rust's from_utf8_lossy does.
#include <gtest/gtest.h>

#include "tokenizer/utf8.h"

namespace dsv4::tokenizer {
namespace {

const std::string kR = "\xEF\xBF\xBD";  // U+FFFD

TEST(Utf8, LossyFollowsMaximalSubpart) {
  EXPECT_EQ(utf8_lossy("abc"), "abc");
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), kR + kR);                  // C0 is never a lead byte
  EXPECT_EQ(utf8_lossy("\xE0\x80\xAF"), kR + kR + kR);         // overlong: E0 needs A0..BF
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), kR + kR + kR);         // surrogate
  EXPECT_EQ(utf8_lossy("\xF4\x90\x80\x80"), kR + kR + kR + kR);  // > U+10FFFF
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98"), kR);                    // truncated 4-byte sequence: one subpart
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98" "A"), kR + "A");
  EXPECT_EQ(utf8_lossy("\xE4\xBD" "\xE5\xA5\xBD"), kR + "\xE5\xA5\xBD");
  // Table 3-8 example: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 -> a FFFD FFFD FFFD b FFFD c FFFD FFFD d
  EXPECT_EQ(utf8_lossy("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + kR + kR + kR + "b" + kR + "c" + kR + kR + "d");
}

TEST(Utf8, StablePrefixHoldsOnlyIncompleteSequences) {
  EXPECT_EQ(utf8_stable_prefix("ab"), 2u);
  EXPECT_EQ(utf8_stable_prefix("a\xE4\xBD"), 1u);      // waiting for the third byte
  EXPECT_EQ(utf8_stable_prefix("a\xF0\x9F\x98"), 1u);
  EXPECT_EQ(utf8_stable_prefix("a\xE4\xBD\xA0"), 4u);
  EXPECT_EQ(utf8_stable_prefix("a\xC0"), 2u);          // can never become valid
  EXPECT_EQ(utf8_stable_prefix("a\xE0\x80"), 3u);      // E0 80 is already ill-formed
  EXPECT_EQ(utf8_stable_prefix("\x80\x80\x80\x80"), 4u);
}

TEST(Utf8, DecodeAndAppendRoundTrip) {
  for (char32_t cp : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    std::string s;
    utf8_append(s, cp);
    Utf8Char c = utf8_decode(s, 0);
    EXPECT_TRUE(c.valid);
    EXPECT_EQ(c.cp, cp);
    EXPECT_EQ(static_cast<size_t>(c.len), s.size());
  }
  EXPECT_FALSE(utf8_valid("\xED\xA0\x80"));
  EXPECT_TRUE(utf8_valid("héllo 😀"));
}

}  // namespace
}  // namespace dsv4::tokenizer
