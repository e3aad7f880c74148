// fuzz-link: dsv4_server
// Fuzz target for the server's input handling: HTTP request parsing (head, Content-Length and chunked bodies,
// limits), JSON request validation of /v1/chat/completions and /v1/completions (with prompt rendering and
// tokenization by the test tokenizer), and the chat output translation (DSML tool calls, reasoning, special
// tokens). Nothing may crash, and the invariants checked below must hold. The first byte picks the target;
// bytes >= 0xF0 splice in fragments (JSON fields, HTTP framing, DSML markers), and a structured mode builds
// requests field by field, so the deep states are reached.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <string>
#include <vector>

#include "server/chat_choice.h"
#include "server/chat_request.h"
#include "server/completion_request.h"
#include "server/http/request_parser.h"

namespace {

using namespace dsv4::server;

const char* const kJson[] = {
    R"({"messages": [)", R"({"role": "user", "content": "hi"})", R"({"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]})",
    R"({"role": "tool", "tool_call_id": "c", "content": "r"})", R"("tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}])",
    R"("tool_choice": "auto")", R"("response_format": {"type": "json_object"})", R"("temperature": )", R"("max_tokens": )",
    R"("n": )", R"("stream": true)", R"("logprobs": true, "top_logprobs": )", R"("prompt": )", R"([1, 2, 3])", "1e309", "-1",
};
const char* const kHttp[] = {"POST /v1/chat/completions HTTP/1.1\r\n", "Content-Length: ", "Transfer-Encoding: chunked\r\n",
                             "\r\n", "5\r\nhello\r\n", "0\r\n\r\n", "Expect: 100-continue\r\n", "Connection: close\r\n",
                             "ffffffffffffffff\r\n", "HTTP/1.0", ": ", "\n"};
const char* const kChat[] = {"</think>", "\n\n<｜DSML｜tool_calls>\n", "<｜DSML｜invoke name=\"f\">\n",
                             "<｜DSML｜parameter name=\"a\" string=\"false\">1</｜DSML｜parameter>\n", "</｜DSML｜invoke>\n",
                             "</｜DSML｜tool_calls>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<think>", "<｜", "｜>"};

template <size_t N>
std::string splice(const uint8_t* data, size_t size, const char* const (&frags)[N]) {
  std::string s;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] >= 0xF0) {
      s += frags[data[i] % N];
    } else {
      s.push_back(static_cast<char>(data[i]));
    }
  }
  return s;
}

const dsv4::tokenizer::Tokenizer& tokenizer() {
  static const dsv4::tokenizer::Tokenizer tok = [] {
    auto t = dsv4::tokenizer::Tokenizer::load(std::filesystem::path(DSV4_TEST_DATA) / "server");
    if (!t.ok()) std::abort();
    return std::move(t.value());
  }();
  return tok;
}

void fuzz_http(const std::string& s) {
  http::HttpLimits lim{.max_head_bytes = 512, .max_body_bytes = 256};
  http::HttpRequest req;
  size_t used = 0;
  const http::HeadResult r = http::parse_request(s, lim, req, used);
  if (r.state == http::HeadResult::State::kComplete && (used > s.size() || req.body.size() > lim.max_body_bytes)) std::abort();
  if (r.state == http::HeadResult::State::kError && http_status(r.error.kind) < 400) std::abort();
}

void fuzz_requests(const std::string& s, bool chat) {
  const RequestLimits lim{.model_names = {"m"}, .vocab_size = 512, .max_n = 4};
  auto body = parse_json_body(s);
  if (!body.ok()) return;
  if (chat) {
    auto req = parse_chat_request(*body, lim);
    if (!req.ok()) return;
    auto ids = render_chat_prompt(*req, tokenizer());
    if (ids.ok()) {
      for (int32_t id : *ids) {
        if (id < 0 || id >= 512) std::abort();
      }
    }
  } else {
    auto req = parse_completion_request(*body, lim, &tokenizer());
    if (req.ok() && req->prompts.empty()) std::abort();
  }
}

void fuzz_chat_output(const std::string& text, uint8_t mode_byte) {
  static const SpecialStrings specials({"<｜end▁of▁sentence｜>", "<｜User｜>", "<think>", "</think>", "｜DSML｜"});
  const auto mode = (mode_byte & 1) ? dsv4::tokenizer::ThinkingMode::kThinking : dsv4::tokenizer::ThinkingMode::kChat;
  const size_t chunk = 1 + (mode_byte >> 1) % 8;
  ChatChoice whole(mode, &specials, [] { return std::string("call"); });
  ChatChoice pieces(mode, nullptr, [] { return std::string("call"); });
  std::vector<Json> d1, d2;
  whole.push(text, d1);
  whole.finish(d1);
  for (size_t i = 0; i < text.size(); i += chunk) pieces.push(std::string_view(text).substr(i, chunk), d2);
  pieces.finish(d2);
  // The deltas sum to the message (whatever the chunking; how the chat parser splits malformed DSML is its own
  // contract, fuzzed by chat_parse.cpp).
  std::string content;
  size_t calls = 0;
  for (const Json& d : d2) {
    if (d.contains("content")) content += d["content"].get<std::string>();
    if (d.contains("tool_calls")) calls += d["tool_calls"].size();
  }
  const Json msg = pieces.message();
  if (msg["content"].is_string() && content != msg["content"].get<std::string>()) std::abort();
  if (calls != pieces.n_tool_calls() || (calls > 0) != msg.contains("tool_calls")) std::abort();
  (void)dump(msg);
  (void)dump(whole.message());
}

// A structured request: each byte picks a field and a value (valid or not), so validation is reached deeply.
void fuzz_structured(const uint8_t* data, size_t size) {
  static const char* const kFields[] = {"temperature", "top_p", "top_k", "min_p", "max_tokens", "n", "seed", "stop",
                                        "logprobs", "top_logprobs", "presence_penalty", "tool_choice", "tools",
                                        "response_format", "thinking", "reasoning_effort", "chat_template_kwargs",
                                        "stream", "logit_bias", "model", "prompt", "echo", "suffix", "stop_token_ids"};
  static const Json values[] = {0, 1, -1, 2.5, 1e30, 0.5, 20, 21, true, false, nullptr, "auto", "none", "max", "x", "",
                         Json::array(), Json::object(), Json::array({1, 2}), Json::array({"a", ""}),
                         Json{{"type", "json_object"}}, Json{{"type", "enabled"}}, Json{{"thinking", true}},
                         Json::array({Json{{"type", "function"}, {"function", {{"name", "f"}}}}}), Json{{"5", 1}}};
  static const Json kMessages[] = {
      Json{{"role", "user"}, {"content", "hi"}}, Json{{"role", "system"}, {"content", "s"}},
      Json{{"role", "assistant"}, {"content", nullptr}, {"reasoning_content", "r"},
           {"tool_calls", Json::array({Json{{"id", "c"}, {"function", {{"name", "f"}, {"arguments", "{}"}}}}})}},
      Json{{"role", "tool"}, {"tool_call_id", "c"}, {"content", "x"}}, Json{{"role", "user"}, {"content", ""}},
      Json{{"role", "developer"}, {"content", "d"}}, Json{{"role", "user"}, {"content", Json::array({Json{{"type", "text"}, {"text", "t"}}})}}};
  Json body = Json::object();
  Json messages = Json::array();
  for (size_t i = 0; i + 1 < size; i += 2) {
    if (data[i] & 0x80) {
      messages.push_back(kMessages[data[i + 1] % std::size(kMessages)]);
    } else {
      body[kFields[data[i] % std::size(kFields)]] = values[data[i + 1] % std::size(values)];
    }
  }
  body["messages"] = messages;
  fuzz_requests(dump(body), true);
  body.erase("messages");
  fuzz_requests(dump(body), false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  switch (data[0] % 5) {
    case 4: fuzz_structured(data + 1, size - 1); break;
    case 0: fuzz_http(splice(data + 1, size - 1, kHttp)); break;
    case 1: fuzz_requests(splice(data + 1, size - 1, kJson), true); break;
    case 2: fuzz_requests(splice(data + 1, size - 1, kJson), false); break;
    default: fuzz_chat_output(splice(data + 2, size - 2, kChat), data[1]); break;
  }
  return 0;
}
