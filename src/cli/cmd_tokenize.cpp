// `dsv4 tokenize -m DIR [TEXT]`: the token ids of TEXT (or of stdin) as a JSON array, exactly as HF's
// Tokenizer.encode(text, add_special_tokens=False); --bos prepends the BOS id. With --jsonl FILE, encodes the
// "text" of every line and prints one id array per line (used by the differential tests).
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "tokenizer/ids_json.h"
#include "tokenizer/tokenizer.h"

namespace dsv4::cli {
namespace {

struct TokenizeArgs {
  std::string model;
  std::string text;
  std::string jsonl;
  bool bos = false;
};

int run_jsonl(const tokenizer::Tokenizer& tok, const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "error: cannot open " << path << "\n";
    return 1;
  }
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string()) {
      std::cerr << "error: " << path << ":" << n << ": expected an object with a string \"text\"\n";
      return 1;
    }
    std::cout << tokenizer::ids_to_json(tok.encode(j["text"].get<std::string>())) << "\n";
  }
  return 0;
}

int run_tokenize(const TokenizeArgs& a, bool text_given) {
  auto tok = tokenizer::Tokenizer::load(a.model);
  if (!tok.ok()) {
    std::cerr << "error: " << tok.message() << "\n";
    return 1;
  }
  if (!a.jsonl.empty()) return run_jsonl(*tok, a.jsonl);
  std::string text = a.text;
  if (!text_given) text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  std::vector<int32_t> ids;
  if (a.bos) {
    if (!tok->bos_id()) {
      std::cerr << "error: --bos: the tokenizer has no bos_token (tokenizer_config.json)\n";
      return 1;
    }
    ids.push_back(*tok->bos_id());
  }
  tok->encode(text, ids);
  std::cout << tokenizer::ids_to_json(ids) << "\n";
  return 0;
}

}  // namespace

void register_tokenize(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("tokenize", "print the token ids of a text (argument or stdin) as JSON");
  auto args = std::make_shared<TokenizeArgs>();
  cmd->add_option("-m,--model", args->model, "model directory with tokenizer.json")->required();
  auto* text_opt = cmd->add_option("text", args->text, "text to encode (default: stdin)");
  cmd->add_option("--jsonl", args->jsonl, "encode the \"text\" of each line of a JSONL file, one array per line");
  cmd->add_flag("--bos", args->bos, "prepend the BOS token");
  cmd->callback([args, text_opt, &ctx] { ctx.exit_code = run_tokenize(*args, text_opt->count() > 0); });
}

}  // namespace dsv4::cli
