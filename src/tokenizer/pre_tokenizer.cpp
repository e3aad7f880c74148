// Pre-tokenization (see pre_tokenizer.h). Each Split step turns the matches of its pattern in a piece into
// sub-pieces with the delimiter behaviour of HF's NormalizedString::split, dropping empty ones.
#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <utility>

#include "tokenizer/utf8.h"

namespace dsv4::tokenizer {
namespace {

// GPT-2's split, used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct Flagged {
  Span span;
  bool flag;  // is a match (before behaviour), or "remove" (after)
};

// Matches and the gaps between them, covering the whole piece (HF's Pattern::find_matches).
void cover(const std::vector<Span>& matches, size_t n, bool invert, std::vector<Flagged>& out) {
  size_t prev = 0;
  for (const Span& m : matches) {
    if (m.begin != prev) out.push_back({{prev, m.begin}, invert});
    out.push_back({m, !invert});
    prev = m.end;
  }
  if (prev != n) out.push_back({{prev, n}, invert});
  if (out.empty()) out.push_back({{0, 0}, invert});
}

// HF's SplitDelimiterBehavior applied to the covering; the result's flag means "remove".
void behave(SplitBehavior b, std::vector<Flagged>& m, std::vector<Flagged>& out) {
  bool prev_match = false;
  switch (b) {
    case SplitBehavior::kIsolated:
      for (auto& f : m) out.push_back({f.span, false});
      return;
    case SplitBehavior::kRemoved:
      out = m;
      return;
    case SplitBehavior::kContiguous:
      for (auto& f : m) {
        if (f.flag == prev_match && !out.empty()) {
          out.back().span.end = f.span.end;
        } else {
          out.push_back({f.span, false});
        }
        prev_match = f.flag;
      }
      return;
    case SplitBehavior::kMergedWithPrevious:
      for (auto& f : m) {
        if (f.flag && !prev_match && !out.empty()) {
          out.back().span.end = f.span.end;
        } else {
          out.push_back({f.span, false});
        }
        prev_match = f.flag;
      }
      return;
    case SplitBehavior::kMergedWithNext:
      for (auto it = m.rbegin(); it != m.rend(); ++it) {
        if (it->flag && !prev_match && !out.empty()) {
          out.back().span.begin = it->span.begin;
        } else {
          out.push_back({it->span, false});
        }
        prev_match = it->flag;
      }
      std::reverse(out.begin(), out.end());
      return;
  }
}

}  // namespace

Result<PreTokenizer> PreTokenizer::create(const std::vector<PreTokenizerStep>& steps, RegexEngine engine) {
  PreTokenizer pt;
  for (const PreTokenizerStep& s : steps) {
    if (const auto* bl = std::get_if<ByteLevelStep>(&s)) {
      if (bl->add_prefix_space) {
        return make_error("pre_tokenizer ByteLevel with add_prefix_space=true is not supported");
      }
      if (!bl->use_regex) continue;
      DSV4_TRY(re, Pcre2Regex::compile(kGpt2Pattern));
      pt.steps_.push_back({std::move(re), SplitBehavior::kIsolated, false});
      continue;
    }
    const auto& split = std::get<SplitStep>(s);
    if (!split.is_regex) {
      if (split.pattern.empty()) return make_error("pre_tokenizer Split has an empty String pattern");
      pt.steps_.push_back({Literal{split.pattern}, split.behavior, split.invert});
      continue;
    }
    auto rule = engine == RegexEngine::kAuto ? match_deepseek_rule(split.pattern) : std::nullopt;
    if (rule) {
      pt.steps_.push_back({*rule, split.behavior, split.invert});
      continue;
    }
    DSV4_TRY(re, Pcre2Regex::compile(split.pattern));
    pt.steps_.push_back({std::move(re), split.behavior, split.invert});
  }
  return pt;
}

int PreTokenizer::n_handwritten() const {
  int n = 0;
  for (const Step& s : steps_) n += std::holds_alternative<DeepseekRule>(s.matcher) ? 1 : 0;
  return n;
}

void PreTokenizer::apply(const Step& step, std::string_view text, const std::vector<Span>& in,
                         std::vector<Span>& out) const {
  std::vector<Span> matches;
  std::vector<Flagged> covering, result;
  for (const Span& piece : in) {
    std::string_view s = text.substr(piece.begin, piece.end - piece.begin);
    matches.clear();
    covering.clear();
    result.clear();
    if (const auto* re = std::get_if<Pcre2Regex>(&step.matcher)) {
      re->find_all(s, matches);
    } else if (const auto* rule = std::get_if<DeepseekRule>(&step.matcher)) {
      deepseek_find_all(*rule, s, matches);
    } else {
      const std::string& lit = std::get<Literal>(step.matcher).text;
      for (size_t p = s.find(lit); p != std::string_view::npos; p = s.find(lit, p + lit.size())) {
        matches.push_back({p, p + lit.size()});
      }
    }
    cover(matches, s.size(), step.invert, covering);
    behave(step.behavior, covering, result);
    for (const Flagged& f : result) {
      if (!f.flag && f.span.end > f.span.begin) out.push_back({piece.begin + f.span.begin, piece.begin + f.span.end});
    }
  }
}

void PreTokenizer::split_valid(std::string_view text, size_t base, std::vector<Span>& out) const {
  std::vector<Span> cur{{base, base + text.size()}}, next;
  for (const Step& step : steps_) {
    next.clear();
    apply(step, std::string_view(text.data() - base, base + text.size()), cur, next);
    std::swap(cur, next);
  }
  out.insert(out.end(), cur.begin(), cur.end());
}

void PreTokenizer::split(std::string_view text, std::vector<Span>& out) const {
  size_t run = 0, i = 0;
  while (i < text.size()) {
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    Utf8Char c = utf8_decode(text, i);
    if (c.valid) {
      i += c.len;
      continue;
    }
    if (i > run) split_valid(text.substr(run, i - run), run, out);
    for (int k = 0; k < c.len; ++k) out.push_back({i + k, i + k + 1});
    i += c.len;
    run = i;
  }
  if (i > run) split_valid(text.substr(run, i - run), run, out);
}

}  // namespace dsv4::tokenizer
