// BPE merge loop (see bpe.h). The loop is the one of HF's Word::merge_all: a min-heap of (rank, position)
// candidates, stale entries skipped when the pair at that position changed, so the result is the classic
// "lowest rank, leftmost first" BPE in O(n log n) even for very long pre-tokens.
#include "tokenizer/bpe.h"

#include <algorithm>

#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace dsv4::tokenizer {
namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}


}  // namespace

Result<BpeModel> BpeModel::create(const BpeSpec& spec) {
  BpeModel m;
  m.ignore_merges_ = spec.ignore_merges;
  int32_t max_id = -1;
  for (const auto& [token, id] : spec.vocab) {
    if (id < 0) return make_error("BPE vocabulary entry '" + token + "' has negative id " + std::to_string(id));
    max_id = std::max(max_id, id);
  }
  m.id_to_token_.resize(static_cast<size_t>(max_id + 1));
  m.has_token_.assign(static_cast<size_t>(max_id + 1), 0);
  for (const auto& [token, id] : spec.vocab) {
    m.token_to_id_[token] = id;
    m.id_to_token_[id] = token;
    m.has_token_[id] = 1;
  }
  m.n_entries_ = static_cast<int32_t>(m.token_to_id_.size());
  std::fill(std::begin(m.byte_id_), std::end(m.byte_id_), -1);
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    utf8_append(ch, byte_to_char(static_cast<uint8_t>(b)));
    if (auto it = m.token_to_id_.find(ch); it != m.token_to_id_.end()) m.byte_id_[b] = it->second;
  }
  if (m.ignore_merges_) {
    for (const auto& [token, id] : spec.vocab) {
      if (auto bytes = byte_level_to_bytes(token)) m.bytes_to_id_[*bytes] = id;
    }
  }
  size_t cap = 1;
  while (cap < spec.merges.size() * 2 + 16) cap <<= 1;
  m.pairs_.assign(cap, PairEntry{kEmpty, 0, 0});
  m.pair_mask_ = cap - 1;
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const auto& [a, b] = spec.merges[rank];
    auto ia = m.token_to_id_.find(a), ib = m.token_to_id_.find(b), inew = m.token_to_id_.find(a + b);
    if (ia == m.token_to_id_.end() || ib == m.token_to_id_.end()) {
      return make_error("merge " + std::to_string(rank) + " ('" + a + "' '" + b + "') uses a token that is not in the vocabulary");
    }
    if (inew == m.token_to_id_.end()) {
      return make_error("merge " + std::to_string(rank) + " ('" + a + "' '" + b + "') produces '" + a + b +
                        "', which is not in the vocabulary");
    }
    m.insert_pair(ia->second, ib->second, static_cast<uint32_t>(rank), inew->second);
  }
  return m;
}

const BpeModel::PairEntry* BpeModel::find_pair(int32_t left, int32_t right) const {
  const uint64_t key = pair_key(left, right);
  for (uint64_t i = mix(key) & pair_mask_;; i = (i + 1) & pair_mask_) {
    const PairEntry& e = pairs_[i];
    if (e.key == key) return &e;
    if (e.key == kEmpty) return nullptr;
  }
}

// A duplicated merge takes the later rank, as in HF (its merge map is collected from the list in order).
void BpeModel::insert_pair(int32_t left, int32_t right, uint32_t rank, int32_t new_id) {
  const uint64_t key = pair_key(left, right);
  uint64_t i = mix(key) & pair_mask_;
  while (pairs_[i].key != kEmpty && pairs_[i].key != key) i = (i + 1) & pair_mask_;
  pairs_[i] = PairEntry{key, rank, new_id};
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = token_to_id_.find(std::string(token));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= id_end() || !has_token_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::encode_word(std::string_view bytes, std::vector<int32_t>& out, BpeScratch& s) const {
  if (bytes.size() == 1) {
    const int32_t id = byte_id_[static_cast<uint8_t>(bytes[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  if (ignore_merges_) {
    if (auto it = bytes_to_id_.find(std::string(bytes)); it != bytes_to_id_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  auto& sym = s.symbols;
  auto& heap = s.heap;
  sym.clear();
  heap.clear();
  for (char c : bytes) {
    const int32_t id = byte_id_[static_cast<uint8_t>(c)];
    if (id < 0) continue;
    const auto pos = static_cast<int32_t>(sym.size());
    sym.push_back({id, pos - 1, pos + 1, 1});
  }
  if (sym.empty()) return;
  sym.back().next = -1;
  // Min-heap on (rank, pos): std heap functions build a max-heap, so the comparator is inverted.
  auto later = [](const BpeScratch::Merge& a, const BpeScratch::Merge& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  auto push = [&](uint32_t pos, int32_t left, int32_t right) {
    if (const PairEntry* e = find_pair(left, right)) {
      heap.push_back({e->rank, pos, e->new_id});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };
  for (size_t i = 0; i + 1 < sym.size(); ++i) push(static_cast<uint32_t>(i), sym[i].id, sym[i + 1].id);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const BpeScratch::Merge top = heap.back();
    heap.pop_back();
    auto& cur = sym[top.pos];
    if (cur.len == 0 || cur.next < 0) continue;
    const int32_t next_pos = cur.next;
    const auto right = sym[next_pos];
    const PairEntry* e = find_pair(cur.id, right.id);
    if (e == nullptr || e->new_id != top.new_id) continue;  // stale candidate
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    sym[next_pos].len = 0;
    if (right.next >= 0) sym[right.next].prev = static_cast<int32_t>(top.pos);
    if (cur.prev >= 0) push(static_cast<uint32_t>(cur.prev), sym[cur.prev].id, cur.id);
    if (cur.next >= 0) push(top.pos, cur.id, sym[cur.next].id);
  }
  for (const auto& x : sym) {
    if (x.len != 0) out.push_back(x.id);
  }
}

}  // namespace dsv4::tokenizer
