// `dsv4 detokenize -m DIR [IDS.json]`: the text of a JSON array of token ids (file, or stdin when absent or
// "-"), as HF's Tokenizer.decode. Ids outside [0, vocab_size) are an error; --skip-special hides special
// tokens; --stream prints the streaming decoder's deltas one JSON string per line instead.
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "tokenizer/ids_json.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace dsv4::cli {
namespace {

struct DetokenizeArgs {
  std::string model;
  std::string ids_path = "-";
  bool skip_special = false;
  bool stream = false;
};

int run_detokenize(const DetokenizeArgs& a) {
  auto tok = tokenizer::Tokenizer::load(a.model);
  if (!tok.ok()) {
    std::cerr << "error: " << tok.message() << "\n";
    return 1;
  }
  std::string text;
  if (a.ids_path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream f(a.ids_path, std::ios::binary);
    if (!f) {
      std::cerr << "error: cannot open " << a.ids_path << "\n";
      return 1;
    }
    std::ostringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  auto ids = tokenizer::parse_ids_json(text);
  if (!ids.ok()) {
    std::cerr << "error: " << a.ids_path << ": " << ids.message() << "\n";
    return 1;
  }
  const tokenizer::DecodeOptions opts{.skip_special_tokens = a.skip_special};
  if (a.stream) {
    tokenizer::StreamDecoder dec(*tok, opts);
    for (int32_t id : *ids) {
      auto delta = dec.push(id);
      if (!delta.ok()) {
        std::cerr << "error: " << delta.message() << "\n";
        return 1;
      }
      std::cout << nlohmann::json(*delta).dump() << "\n";
    }
    std::cout << nlohmann::json(dec.finish()).dump() << "\n";
    return 0;
  }
  auto out = tok->decode(*ids, opts);
  if (!out.ok()) {
    std::cerr << "error: " << out.message() << "\n";
    return 1;
  }
  std::cout << *out;
  return 0;
}

}  // namespace

void register_detokenize(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("detokenize", "print the text of a JSON array of token ids");
  auto args = std::make_shared<DetokenizeArgs>();
  cmd->add_option("-m,--model", args->model, "model directory with tokenizer.json")->required();
  cmd->add_option("ids", args->ids_path, "JSON file with the ids (default: stdin)");
  cmd->add_flag("--skip-special", args->skip_special, "leave special tokens out");
  cmd->add_flag("--stream", args->stream, "print the streaming decoder's text deltas, one JSON string per line");
  cmd->callback([args, &ctx] { ctx.exit_code = run_detokenize(*args); });
}

}  // namespace dsv4::cli
