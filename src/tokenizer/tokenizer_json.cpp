// tokenizer.json / tokenizer_config.json parsing (see tokenizer_json.h). nlohmann exceptions stay inside
// this file: every failure becomes an Error naming the file and the field.
#include "tokenizer/tokenizer_json.h"

#include <nlohmann/json.hpp>

namespace dsv4::tokenizer {
namespace {

using nlohmann::json;

Error field_error(const std::string& source, const std::string& field, const std::string& what) {
  return make_error(source + ": " + field + ": " + what);
}

Result<json> parse(std::string_view text, const std::string& source) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(source + ": not valid JSON");
  if (!j.is_object()) return make_error(source + ": expected a JSON object at the top level");
  return j;
}

std::string type_of(const json& j) { return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : ""; }

Result<SplitBehavior> parse_behavior(const json& b, const std::string& source) {
  const std::string s = b.is_string() ? b.get<std::string>() : "";
  if (s == "Removed") return SplitBehavior::kRemoved;
  if (s == "Isolated") return SplitBehavior::kIsolated;
  if (s == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (s == "Contiguous") return SplitBehavior::kContiguous;
  return field_error(source, "pre_tokenizer.Split.behavior", "unknown behavior '" + s + "'");
}

Status parse_pre_tokenizer(const json& p, const std::string& source, std::vector<PreTokenizerStep>& out) {
  const std::string type = type_of(p);
  if (type == "Sequence") {
    if (!p.contains("pretokenizers") || !p["pretokenizers"].is_array()) {
      return field_error(source, "pre_tokenizer.pretokenizers", "expected an array");
    }
    for (const json& s : p["pretokenizers"]) DSV4_TRY_STATUS(parse_pre_tokenizer(s, source, out));
    return Ok{};
  }
  if (type == "ByteLevel") {
    ByteLevelStep step;
    step.add_prefix_space = p.value("add_prefix_space", false);
    step.use_regex = p.value("use_regex", true);
    out.emplace_back(step);
    return Ok{};
  }
  if (type == "Split") {
    SplitStep s;
    const json& pat = p.contains("pattern") ? p["pattern"] : json();
    if (pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string()) {
      s.pattern = pat["Regex"].get<std::string>();
    } else if (pat.is_object() && pat.contains("String") && pat["String"].is_string()) {
      s.pattern = pat["String"].get<std::string>();
      s.is_regex = false;
    } else {
      return field_error(source, "pre_tokenizer.Split.pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    DSV4_TRY(behavior, parse_behavior(p.contains("behavior") ? p["behavior"] : json(), source));
    s.behavior = behavior;
    s.invert = p.value("invert", false);
    out.push_back(std::move(s));
    return Ok{};
  }
  return field_error(source, "pre_tokenizer.type",
                     "unsupported pre-tokenizer '" + type + "' (dsv4 supports Sequence, Split, ByteLevel)");
}

Status check_normalizer(const json& n, const std::string& source) {
  if (n.is_null()) return Ok{};
  const std::string type = type_of(n);
  if (type == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
    for (const json& s : n["normalizers"]) DSV4_TRY_STATUS(check_normalizer(s, source));
    return Ok{};
  }
  return field_error(source, "normalizer.type", "unsupported normalizer '" + type + "' (only none is supported)");
}

Status check_decoder(const json& d, const std::string& source) {
  const std::string type = type_of(d);
  if (type == "ByteLevel") return Ok{};
  if (type == "Sequence" && d.contains("decoders") && d["decoders"].is_array() && d["decoders"].size() == 1) {
    return check_decoder(d["decoders"][0], source);
  }
  return field_error(source, "decoder.type", "unsupported decoder '" + type + "' (dsv4 supports ByteLevel)");
}

Status parse_model(const json& m, const std::string& source, BpeSpec& bpe) {
  if (!m.is_object()) return field_error(source, "model", "missing or not an object");
  const std::string type = type_of(m);
  if (type != "BPE" && !(type.empty() && m.contains("merges"))) {
    return field_error(source, "model.type", "unsupported model '" + type + "' (dsv4 supports BPE)");
  }
  if (m.value("byte_fallback", false)) return field_error(source, "model.byte_fallback", "true is not supported");
  for (const char* f : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (m.contains(f) && !m[f].is_null() && !(m[f].is_string() && m[f].get<std::string>().empty())) {
      return field_error(source, std::string("model.") + f, "not supported");
    }
  }
  if (m.contains("dropout") && m["dropout"].is_number() && m["dropout"].get<double>() > 0) {
    return field_error(source, "model.dropout", "BPE dropout is not supported");
  }
  bpe.ignore_merges = m.value("ignore_merges", false);
  if (!m.contains("vocab") || !m["vocab"].is_object()) return field_error(source, "model.vocab", "expected an object");
  for (const auto& [token, id] : m["vocab"].items()) {
    if (!id.is_number_integer()) return field_error(source, "model.vocab[" + token + "]", "id is not an integer");
    bpe.vocab.emplace_back(token, id.get<int32_t>());
  }
  if (!m.contains("merges") || !m["merges"].is_array()) return field_error(source, "model.merges", "expected an array");
  for (const json& mg : m["merges"]) {
    if (mg.is_string()) {
      const std::string s = mg.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        return field_error(source, "model.merges", "entry '" + s + "' is not two tokens separated by one space");
      }
      bpe.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
      bpe.merges.emplace_back(mg[0].get<std::string>(), mg[1].get<std::string>());
    } else {
      return field_error(source, "model.merges", "entry " + mg.dump() + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }
  return Ok{};
}

// A token given as a string or as {"content": ...} (tokenizer_config.json uses both).
std::string token_text(const json& t) {
  if (t.is_string()) return t.get<std::string>();
  if (t.is_object() && t.contains("content") && t["content"].is_string()) return t["content"].get<std::string>();
  return "";
}

Result<TokenizerSpec> parse_spec(std::string_view text, const std::string& source) {
  DSV4_TRY(j, parse(text, source));
  TokenizerSpec spec;
  DSV4_TRY_STATUS(parse_model(j.contains("model") ? j["model"] : json(), source, spec.bpe));
  DSV4_TRY_STATUS(check_normalizer(j.contains("normalizer") ? j["normalizer"] : json(), source));
  DSV4_TRY_STATUS(check_decoder(j.contains("decoder") ? j["decoder"] : json(), source));
  const json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json();
  if (pre.is_null()) return field_error(source, "pre_tokenizer", "missing (a byte-level BPE needs ByteLevel)");
  DSV4_TRY_STATUS(parse_pre_tokenizer(pre, source, spec.pre_tokenizer));
  bool has_byte_level = false;
  for (const auto& s : spec.pre_tokenizer) has_byte_level |= std::holds_alternative<ByteLevelStep>(s);
  if (!has_byte_level) return field_error(source, "pre_tokenizer", "no ByteLevel step (only byte-level BPE is supported)");
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) return field_error(source, "added_tokens", "expected an array");
    for (const json& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("content") || !t["content"].is_string()) {
        return field_error(source, "added_tokens", "entry without a string 'content'");
      }
      AddedToken a;
      a.content = t["content"].get<std::string>();
      a.id = t.contains("id") && t["id"].is_number_integer() ? t["id"].get<int32_t>() : -1;
      a.special = t.value("special", false);
      a.normalized = t.value("normalized", !a.special);
      a.lstrip = t.value("lstrip", false);
      a.rstrip = t.value("rstrip", false);
      a.single_word = t.value("single_word", false);
      spec.added_tokens.push_back(std::move(a));
    }
  }
  return spec;
}

}  // namespace

Result<TokenizerSpec> parse_tokenizer_json(std::string_view text, const std::string& source) {
  try {
    return parse_spec(text, source);
  } catch (const nlohmann::json::exception& e) {
    return make_error(source + ": unexpected JSON structure: " + e.what());
  }
}

Result<TokenizerConfig> parse_tokenizer_config(std::string_view text, const std::string& source) {
  DSV4_TRY(j, parse(text, source));
  TokenizerConfig c;
  c.add_bos = j.contains("add_bos_token") && j["add_bos_token"].is_boolean() && j["add_bos_token"].get<bool>();
  c.add_eos = j.contains("add_eos_token") && j["add_eos_token"].is_boolean() && j["add_eos_token"].get<bool>();
  if (j.contains("bos_token")) c.bos_token = token_text(j["bos_token"]);
  if (j.contains("eos_token")) c.eos_token = token_text(j["eos_token"]);
  return c;
}

Result<int64_t> parse_model_vocab_size(std::string_view text, const std::string& source) {
  DSV4_TRY(j, parse(text, source));
  if (!j.contains("vocab_size")) return int64_t{0};
  if (!j["vocab_size"].is_number_integer() || j["vocab_size"].get<int64_t>() <= 0) {
    return field_error(source, "vocab_size", "expected a positive integer");
  }
  return j["vocab_size"].get<int64_t>();
}

}  // namespace dsv4::tokenizer
