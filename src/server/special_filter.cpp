// Special-token removal from text streams (see special_filter.h).
#include "server/special_filter.h"

#include <algorithm>

namespace dsv4::server {

SpecialStrings::SpecialStrings(std::vector<std::string> strings) : strings_(std::move(strings)) {
  std::erase_if(strings_, [](const std::string& s) { return s.empty(); });
  for (size_t i = 0; i < strings_.size(); ++i) {
    by_first_byte_[static_cast<unsigned char>(strings_[i][0])].push_back(i);
    max_len_ = std::max(max_len_, strings_[i].size());
  }
}

size_t SpecialStrings::match_at(std::string_view text, size_t pos) const {
  size_t best = 0;
  for (size_t i : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
    const std::string& s = strings_[i];
    if (s.size() > best && text.compare(pos, s.size(), s) == 0) best = s.size();
  }
  return best;
}

size_t SpecialStrings::partial_tail(std::string_view text) const {
  if (max_len_ < 2) return 0;
  const size_t start = text.size() > max_len_ - 1 ? text.size() - (max_len_ - 1) : 0;
  for (size_t pos = start; pos < text.size(); ++pos) {
    const std::string_view tail = text.substr(pos);
    for (size_t i : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      const std::string& s = strings_[i];
      if (s.size() > tail.size() && s.compare(0, tail.size(), tail) == 0) return tail.size();
    }
  }
  return 0;
}

std::string SpecialTextFilter::push(std::string_view text) {
  if (specials_ == nullptr || specials_->empty()) return std::string(text);
  pending_.append(text);
  std::string out;
  size_t pos = 0;
  const size_t keep = specials_->partial_tail(pending_);
  const size_t end = pending_.size() - keep;
  while (pos < end) {
    const size_t n = specials_->match_at(pending_, pos);
    if (n > 0) {
      pos += n;
    } else {
      out.push_back(pending_[pos++]);
    }
  }
  pending_.erase(0, std::min(pos, pending_.size()));
  return out;
}

std::string SpecialTextFilter::finish() {
  std::string out;
  if (specials_ == nullptr) return out;
  for (size_t pos = 0; pos < pending_.size();) {
    const size_t n = specials_->empty() ? 0 : specials_->match_at(pending_, pos);
    if (n > 0) {
      pos += n;
    } else {
      out.push_back(pending_[pos++]);
    }
  }
  pending_.clear();
  return out;
}

}  // namespace dsv4::server
