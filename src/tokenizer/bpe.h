// Byte-level BPE with merge ranks, as HF tokenizers' BPE model applies it: a pre-token's bytes start as
// one symbol each (a byte with no vocabulary entry is dropped, as HF does without unk/byte_fallback); then the
// adjacent pair with the lowest merge rank, leftmost first, is merged until no pair has a rank. Owns the
// vocabulary (id <-> token) and the merge table; immutable after create(), so encode is thread-safe.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/result.h"

namespace dsv4::tokenizer {

struct BpeSpec {
  std::vector<std::pair<std::string, int32_t>> vocab;       // token in the byte-level alphabet -> id
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  bool ignore_merges = false;  // a pre-token that is itself in the vocabulary becomes that token
};

// Reusable buffers for encode_word (one per thread / call).
struct BpeScratch {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    uint32_t len;  // 0 once merged into its left neighbour
  };
  struct Merge {
    uint32_t rank;
    uint32_t pos;
    int32_t new_id;
  };
  std::vector<Symbol> symbols;
  std::vector<Merge> heap;
};

class BpeModel {
 public:
  static Result<BpeModel> create(const BpeSpec& spec);

  // Appends the ids of one pre-token given as raw bytes.
  void encode_word(std::string_view bytes, std::vector<int32_t>& out, BpeScratch& scratch) const;

  // Number of vocabulary entries (HF's get_vocab_size() of the model) and the id bound (max id + 1).
  int32_t n_entries() const { return n_entries_; }
  int32_t id_end() const { return static_cast<int32_t>(id_to_token_.size()); }
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // Token text in the byte-level alphabet; nullptr for an id without an entry.
  const std::string* id_to_token(int32_t id) const;

 private:
  struct PairEntry {
    uint64_t key;  // (left id << 32) | right id; kEmpty when free
    uint32_t rank;
    int32_t new_id;
  };
  static constexpr uint64_t kEmpty = ~0ull;
  const PairEntry* find_pair(int32_t left, int32_t right) const;
  void insert_pair(int32_t left, int32_t right, uint32_t rank, int32_t new_id);

  std::unordered_map<std::string, int32_t> token_to_id_;
  std::unordered_map<std::string, int32_t> bytes_to_id_;  // only for ignore_merges
  std::vector<std::string> id_to_token_;
  std::vector<uint8_t> has_token_;
  int32_t byte_id_[256];
  std::vector<PairEntry> pairs_;  // open addressing, power-of-two size
  uint64_t pair_mask_ = 0;
  int32_t n_entries_ = 0;
  bool ignore_merges_ = false;
};

}  // namespace dsv4::tokenizer
