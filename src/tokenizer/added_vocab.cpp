// Added-token matching with a byte trie (see added_vocab.h). Leftmost-longest: scan positions left to right,
// and at the first position where some token starts, take the longest one there.
#include "tokenizer/added_vocab.h"

#include <algorithm>

#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

namespace dsv4::tokenizer {
namespace {

// Last / first code point of a string (for lstrip, rstrip and single_word).
char32_t last_char(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (static_cast<uint8_t>(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i > 0) --i;
  return s.empty() ? 0 : utf8_decode(s, i).cp;
}

bool is_word_char(char32_t c) { return c == '_' || (char_classes(c) & (kClassL | kClassN)) != 0; }
bool is_space(char32_t c) { return (char_classes(c) & kClassSpace) != 0; }

}  // namespace

void AddedVocab::assign_id(AddedToken& t, int32_t model_id, int32_t model_size) {
  const int32_t declared = t.id;
  if (model_id >= 0) {
    t.id = model_id;
  } else if (max_assigned_ < 0) {
    t.id = model_size;
  } else {
    t.id = (max_assigned_ >= model_size || model_size == 0) ? max_assigned_ + 1 : model_size;
  }
  (void)declared;
  max_assigned_ = std::max(max_assigned_, t.id);
}

void AddedVocab::Trie::insert(std::string_view s, int32_t token) {
  int32_t node = 0;
  for (char ch : s) {
    const auto b = static_cast<uint8_t>(ch);
    auto& kids = nodes[node].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), b, [](const auto& kv, uint8_t v) { return kv.first < v; });
    if (it != kids.end() && it->first == b) {
      node = it->second;
      continue;
    }
    const auto child = static_cast<int32_t>(nodes.size());
    kids.insert(it, {b, child});
    nodes.push_back(Node{});
    node = child;
  }
  nodes[node].token = token;
  first_byte[static_cast<uint8_t>(s[0])] = true;
}

int32_t AddedVocab::Trie::longest_at(std::string_view text, size_t pos, size_t& len) const {
  int32_t node = 0, best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<uint8_t>(text[i]);
    const auto& kids = nodes[node].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), b, [](const auto& kv, uint8_t v) { return kv.first < v; });
    if (it == kids.end() || it->first != b) break;
    node = it->second;
    if (nodes[node].token >= 0) {
      best = nodes[node].token;
      len = i + 1 - pos;
    }
  }
  return best;
}

int32_t AddedVocab::find(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? -1 : it->second;
}

void AddedVocab::split_with(const Trie& trie, std::string_view text, size_t base, std::vector<AddedSplit>& out) const {
  size_t gap_start = 0;  // end of the last emitted piece
  size_t pos = 0;        // where the next search starts (after the last match, as HF's find_iter)
  while (pos < text.size()) {
    if (!trie.first_byte[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    size_t len = 0;
    const int32_t index = trie.longest_at(text, pos, len);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens_[index];
    size_t start = pos, stop = pos + len;
    pos = stop;
    if (tok.single_word) {
      const bool start_ok = start == 0 || !is_word_char(last_char(text.substr(0, start)));
      const bool stop_ok = stop == text.size() || !is_word_char(utf8_decode(text, stop).cp);
      if (!start_ok || !stop_ok) continue;
    }
    if (tok.lstrip) {
      while (start > gap_start) {
        std::string_view before = text.substr(gap_start, start - gap_start);
        const char32_t c = last_char(before);
        if (!is_space(c)) break;
        std::string enc;
        utf8_append(enc, c);
        start -= enc.size();
      }
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        Utf8Char c = utf8_decode(text, stop);
        if (!c.valid || !is_space(c.cp)) break;
        stop += c.len;
      }
      pos = stop;
    }
    if (start > gap_start) out.push_back({{base + gap_start, base + start}, -1});
    out.push_back({{base + start, base + stop}, tok.id});
    gap_start = stop;
  }
  if (gap_start < text.size()) out.push_back({{base + gap_start, base + text.size()}, -1});
}

void AddedVocab::split(std::string_view text, std::vector<AddedSplit>& out) const {
  if (tokens_.empty()) {
    if (!text.empty()) out.push_back({{0, text.size()}, -1});
    return;
  }
  std::vector<AddedSplit> first;
  split_with(raw_, text, 0, first);
  for (const AddedSplit& s : first) {
    if (s.id >= 0) {
      out.push_back(s);
      continue;
    }
    split_with(normalized_, text.substr(s.span.begin, s.span.end - s.span.begin), s.span.begin, out);
  }
}

}  // namespace dsv4::tokenizer
