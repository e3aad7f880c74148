// The pre-tokenizer of a byte-level BPE tokenizer.json: a sequence of steps, each applied to every piece the
// previous steps produced. Supported steps are HF's Split (regex or literal pattern, all five delimiter
// behaviours, invert) and ByteLevel (use_regex adds the GPT-2 split; add_prefix_space is not supported).
// ByteLevel's byte-to-character mapping itself is implicit: pieces stay raw bytes and the BPE works on bytes.
//
// Input that is not valid UTF-8 (HF can never receive it) is cut at each ill-formed subpart: every such byte
// becomes a piece of its own and the regexes only ever see valid UTF-8. Its bytes still map to byte tokens,
// so decode(encode(x)) == x for any byte string.
#pragma once
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.h"
#include "tokenizer/deepseek_split.h"
#include "tokenizer/regex.h"

namespace dsv4::tokenizer {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct SplitStep {
  std::string pattern;
  bool is_regex = true;  // false: a literal string
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
};

struct ByteLevelStep {
  bool add_prefix_space = false;
  bool use_regex = true;
};

using PreTokenizerStep = std::variant<SplitStep, ByteLevelStep>;

// Which engine runs Split regexes: kAuto uses the hand-written DeepSeek matchers where the pattern is one of
// theirs; kPcre2 always uses PCRE2 (tests compare the two).
enum class RegexEngine { kAuto, kPcre2 };

class PreTokenizer {
 public:
  static Result<PreTokenizer> create(const std::vector<PreTokenizerStep>& steps, RegexEngine engine = RegexEngine::kAuto);

  // Appends the pieces of `text` as byte spans, in order; pieces are never empty.
  void split(std::string_view text, std::vector<Span>& out) const;

  // Number of Split steps that run on the hand-written matchers (for tests).
  int n_handwritten() const;

 private:
  struct Literal {
    std::string text;
  };
  using Matcher = std::variant<Pcre2Regex, DeepseekRule, Literal>;
  struct Step {
    Matcher matcher;
    SplitBehavior behavior;
    bool invert;
  };
  void apply(const Step& step, std::string_view text, const std::vector<Span>& in, std::vector<Span>& out) const;
  void split_valid(std::string_view text, size_t base, std::vector<Span>& out) const;

  std::vector<Step> steps_;
};

}  // namespace dsv4::tokenizer
