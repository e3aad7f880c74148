// Added tokens (special and not) of a tokenizer.json and their matching in text, as HF's AddedVocabulary does
// it: tokens are found leftmost-longest, before any pre-tokenization; tokens with normalized=false are matched
// first on the raw text, then tokens with normalized=true on the remaining gaps (dsv4 supports only the
// identity normalizer, so both run on raw bytes). lstrip / rstrip / single_word follow HF's rules.
//
// Ids follow HF too: a token whose text is already in the vocabulary takes that id; every other token takes
// the next id after the largest one assigned so far (at least the model's vocabulary size), in file order.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/regex.h"

namespace dsv4::tokenizer {

struct AddedToken {
  std::string content;
  int32_t id = -1;  // as written in tokenizer.json; the assigned id may differ (see above)
  bool special = false;
  bool normalized = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// A piece of the input: either one added token (id >= 0) or a gap of ordinary text (id == -1).
struct AddedSplit {
  Span span;
  int32_t id = -1;
};

class AddedVocab {
 public:
  AddedVocab() = default;
  // `vocab_lookup(content)` gives the model's id for a text or -1; `model_size` is the model's entry count.
  template <typename Lookup>
  void build(const std::vector<AddedToken>& tokens, Lookup vocab_lookup, int32_t model_size);

  // Splits `text` into added tokens and gaps, in order; gaps are never empty.
  void split(std::string_view text, std::vector<AddedSplit>& out) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }  // with assigned ids
  int32_t find(std::string_view content) const;                      // id or -1
  bool empty() const { return tokens_.empty(); }

 private:
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
      int32_t token = -1;                                 // index into tokens_
    };
    std::vector<Node> nodes{Node{}};
    bool first_byte[256] = {};
    void insert(std::string_view s, int32_t token);
    // Index of the longest token starting at text[pos], or -1.
    int32_t longest_at(std::string_view text, size_t pos, size_t& len) const;
  };
  void split_with(const Trie& trie, std::string_view text, size_t base, std::vector<AddedSplit>& out) const;
  void assign_id(AddedToken& t, int32_t model_id, int32_t model_size);

  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, int32_t> by_content_;
  Trie raw_;         // normalized == false
  Trie normalized_;  // normalized == true
  int32_t max_assigned_ = -1;
};

template <typename Lookup>
void AddedVocab::build(const std::vector<AddedToken>& tokens, Lookup vocab_lookup, int32_t model_size) {
  for (const AddedToken& src : tokens) {
    if (src.content.empty()) continue;
    if (by_content_.count(src.content) != 0) continue;  // HF keeps the first definition of a text
    AddedToken t = src;
    assign_id(t, vocab_lookup(t.content), model_size);
    const auto index = static_cast<int32_t>(tokens_.size());
    by_content_.emplace(t.content, t.id);
    (t.normalized ? normalized_ : raw_).insert(t.content, index);
    tokens_.push_back(std::move(t));
  }
}

}  // namespace dsv4::tokenizer
