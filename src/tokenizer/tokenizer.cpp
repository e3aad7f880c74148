// Tokenizer assembly and the encode / decode pipelines (see tokenizer.h). Encode: added tokens are split out
// first, the gaps are pre-tokenized, and each piece goes through BPE, with a per-call cache of pieces seen
// before (text repeats its words, so most pieces hit it).
#include "tokenizer/tokenizer.h"

#include <fstream>
#include <sstream>
#include <unordered_map>

#include "core/log.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/utf8.h"

namespace dsv4::tokenizer {
namespace {

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error("cannot open " + path.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return make_error("cannot read " + path.string());
  return ss.str();
}

constexpr size_t kMaxCachedPiece = 64;  // bytes; longer pieces are rare and not worth hashing

}  // namespace

Result<Tokenizer> Tokenizer::load(const std::filesystem::path& dir, const LoadOptions& opts) {
  const auto tok_path = dir / "tokenizer.json";
  if (!std::filesystem::exists(tok_path)) {
    return make_error("no tokenizer.json in " + dir.string() + " (expected a Hugging Face model directory)");
  }
  DSV4_TRY(tok_text, read_file(tok_path));
  std::string cfg_text, model_text;
  if (std::filesystem::exists(dir / "tokenizer_config.json")) {
    DSV4_TRY(t, read_file(dir / "tokenizer_config.json"));
    cfg_text = std::move(t);
  }
  if (std::filesystem::exists(dir / "config.json")) {
    DSV4_TRY(t, read_file(dir / "config.json"));
    model_text = std::move(t);
  }
  return from_json(tok_text, cfg_text, model_text, opts, tok_path.string());
}

Result<Tokenizer> Tokenizer::from_json(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                                       std::string_view model_config_json, const LoadOptions& opts,
                                       const std::string& source) {
  DSV4_TRY(spec, parse_tokenizer_json(tokenizer_json, source));
  Tokenizer t;
  DSV4_TRY(bpe, BpeModel::create(spec.bpe));
  t.bpe_ = std::move(bpe);
  DSV4_TRY(pre, PreTokenizer::create(spec.pre_tokenizer, opts.regex_engine));
  t.pre_ = std::move(pre);
  const BpeModel& model = t.bpe_;
  t.added_.build(spec.added_tokens, [&](const std::string& s) { return model.token_to_id(s).value_or(-1); },
                 model.n_entries());
  for (const AddedToken& declared : spec.added_tokens) {
    const int32_t got = t.added_.find(declared.content);
    if (declared.id >= 0 && got != declared.id) {
      log::warn(source + ": added token '" + declared.content + "' declares id " + std::to_string(declared.id) +
                " but gets id " + std::to_string(got) + " (ids follow HF's assignment)");
    }
  }
  t.n_tokens_ = model.id_end();
  for (const AddedToken& a : t.added_.tokens()) t.n_tokens_ = std::max(t.n_tokens_, a.id + 1);
  t.bytes_.assign(static_cast<size_t>(t.n_tokens_), std::string());
  t.special_.assign(static_cast<size_t>(t.n_tokens_), 0);
  for (int32_t id = 0; id < model.id_end(); ++id) {
    if (const std::string* tok = model.id_to_token(id)) t.bytes_[id] = byte_level_token_bytes(*tok);
  }
  for (const AddedToken& a : t.added_.tokens()) {
    t.bytes_[a.id] = byte_level_token_bytes(a.content);
    t.special_[a.id] = a.special ? 1 : 0;
  }
  t.vocab_size_ = t.n_tokens_;
  if (!model_config_json.empty()) {
    DSV4_TRY(vs, parse_model_vocab_size(model_config_json, "config.json"));
    if (vs > INT32_MAX) return make_error("config.json: vocab_size " + std::to_string(vs) + " is too large");
    t.vocab_size_ = std::max<int32_t>(t.vocab_size_, static_cast<int32_t>(vs));
  }
  if (!tokenizer_config_json.empty()) {
    DSV4_TRY(cfg, parse_tokenizer_config(tokenizer_config_json, "tokenizer_config.json"));
    t.add_bos_ = cfg.add_bos;
    if (!cfg.bos_token.empty()) t.bos_id_ = t.token_to_id(cfg.bos_token);
    if (!cfg.eos_token.empty()) t.eos_id_ = t.token_to_id(cfg.eos_token);
    if (!cfg.bos_token.empty() && !t.bos_id_) {
      return make_error("tokenizer_config.json: bos_token '" + cfg.bos_token + "' is not a token of " + source);
    }
    if (!cfg.eos_token.empty() && !t.eos_id_) {
      return make_error("tokenizer_config.json: eos_token '" + cfg.eos_token + "' is not a token of " + source);
    }
  }
  return t;
}

void Tokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<AddedSplit> splits;
  added_.split(text, splits);
  std::vector<Span> pieces;
  BpeScratch scratch;
  std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> cache;  // piece -> range in cached
  std::vector<int32_t> cached;
  for (const AddedSplit& s : splits) {
    if (s.id >= 0) {
      out.push_back(s.id);
      continue;
    }
    pieces.clear();
    pre_.split(text.substr(s.span.begin, s.span.end - s.span.begin), pieces);
    for (const Span& p : pieces) {
      std::string_view word = text.substr(s.span.begin + p.begin, p.end - p.begin);
      if (word.size() == 1 || word.size() > kMaxCachedPiece) {
        bpe_.encode_word(word, out, scratch);
        continue;
      }
      auto it = cache.find(word);
      if (it == cache.end()) {
        const auto begin = static_cast<uint32_t>(cached.size());
        bpe_.encode_word(word, cached, scratch);
        it = cache.emplace(word, std::make_pair(begin, static_cast<uint32_t>(cached.size()))).first;
      }
      out.insert(out.end(), cached.begin() + it->second.first, cached.begin() + it->second.second);
    }
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  encode(text, ids);
  return ids;
}

Status Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size_) {
    return make_error("token id " + std::to_string(id) + " is out of range [0, " + std::to_string(vocab_size_) + ")");
  }
  return Ok{};
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= n_tokens_) return {};
  return bytes_[id];
}

Result<std::string> Tokenizer::decode(std::span<const int32_t> ids, const DecodeOptions& opts) const {
  std::string bytes;
  for (int32_t id : ids) {
    DSV4_TRY_STATUS(check_id(id));
    if (opts.skip_special_tokens && is_special(id)) continue;
    bytes += token_bytes(id);
  }
  return utf8_lossy(bytes);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const int32_t added = added_.find(token);
  if (added >= 0) return added;
  return bpe_.token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  for (const AddedToken& a : added_.tokens()) {
    if (a.id == id) return a.content;
  }
  if (const std::string* t = bpe_.id_to_token(id)) return *t;
  return std::nullopt;
}

bool Tokenizer::is_special(int32_t id) const { return id >= 0 && id < n_tokens_ && special_[id] != 0; }

}  // namespace dsv4::tokenizer
