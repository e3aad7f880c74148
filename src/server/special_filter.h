// SpecialTextFilter removes special-token strings (the tokenizer's added special tokens, e.g. "<｜User｜>")
// from a stream of text deltas: chat output is decoded with special tokens shown so the chat parser can see
// </think> and the DSML markers, and what remains of them afterwards is not text for the client. A tail that
// may be the start of a special token is held back until the next delta decides it; finish() releases it.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace dsv4::server {

// The strings to remove, grouped by first byte for matching. Immutable; shared by all requests.
class SpecialStrings {
 public:
  SpecialStrings() = default;
  explicit SpecialStrings(std::vector<std::string> strings);
  bool empty() const { return strings_.empty(); }
  // Length of the special string starting at text[pos], or 0.
  size_t match_at(std::string_view text, size_t pos) const;
  // Length of the longest tail of `text` that is a proper prefix of a special string.
  size_t partial_tail(std::string_view text) const;

 private:
  std::vector<std::string> strings_;
  std::vector<std::vector<size_t>> by_first_byte_ = std::vector<std::vector<size_t>>(256);
  size_t max_len_ = 0;
};

class SpecialTextFilter {
 public:
  explicit SpecialTextFilter(const SpecialStrings* specials) : specials_(specials) {}  // nullptr = pass-through
  std::string push(std::string_view text);
  std::string finish();

 private:
  const SpecialStrings* specials_;
  std::string pending_;
};

}  // namespace dsv4::server
