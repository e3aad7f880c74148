// End-to-end tests of `dsv4 run` and `dsv4 chat` on the embedded default model (models/dsv4-tiny): a
// streamed completion with speed stats, seeded reproducibility, the default model when -m is omitted, chat
// commands over stdin, and Ctrl-C stopping the generation rather than killing the program.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <sys/wait.h>

#include "testlib/shell.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;

using RunResult = testlib::ShellResult;
using testlib::shell;

std::string model() { return (fs::path(DSV4_TEST_DATA) / ".." / ".." / "models" / "dsv4-tiny").string(); }
std::string bin() { return DSV4_BINARY; }

TEST(CliRun, StreamsACompletionWithStats) {
  RunResult r = shell(bin() + " run -m " + model() + " -p 'In the beginning God created' -n 12 --temp 0 2>&1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.find("In the beginning God created"), r.out.find("In the beginning"));
  EXPECT_NE(r.out.find("generated in"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tok/s"), std::string::npos) << r.out;
  EXPECT_GT(r.out.size(), std::string("In the beginning God created").size() + 10);
}

TEST(CliRun, SameSeedSameTextAndDefaultModel) {
  std::string args = " run -p 'The meaning of life is' -n 16 --temp 0.8 --seed 7 2>/dev/null";
  RunResult a = shell(bin() + " -m " + model() + args);  // -m before the subcommand is not accepted
  RunResult b = shell(bin() + " run -m " + model() + " -p 'The meaning of life is' -n 16 --temp 0.8 --seed 7 2>/dev/null");
  RunResult c = shell("DSV4_MODEL=" + model() + " " + bin() + args);  // no -m: the default model
  ASSERT_EQ(b.code, 0);
  ASSERT_EQ(c.code, 0) << c.out;
  EXPECT_EQ(b.out, c.out);
  EXPECT_NE(a.code, 0);  // options of a subcommand are not accepted before it
}

TEST(CliChat, CommandsAndATurnOverStdin) {
  RunResult r = shell("printf '/help\\nHello there\\n/think\\n/reset\\n/quit\\n' | " + bin() + " chat -m " + model() +
                      " -n 8 --temp 0 2>&1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("commands:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[thinking mode on]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[conversation reset]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("generated in"), std::string::npos) << r.out;
}

TEST(CliRun, CtrlCStopsTheGenerationNotTheProgram) {
  RunResult r = shell("(" + bin() + " run -m " + model() +
                      " -p 'Once' -n 60000 --ignore-eos --kv-memory 256MiB 2>&1 & pid=$!; "
                      "sleep 2; kill -INT $pid; wait $pid; echo \"rc=$?\")");
  EXPECT_NE(r.out.find("cancelled"), std::string::npos) << r.out.substr(r.out.size() > 2000 ? r.out.size() - 2000 : 0);
  EXPECT_NE(r.out.find("rc=0"), std::string::npos) << r.out.substr(r.out.size() > 2000 ? r.out.size() - 2000 : 0);
}

}  // namespace
}  // namespace dsv4

namespace dsv4 {
namespace {

// On the golden checkpoints (no tokenizer) `run` takes token ids and streams ids: greedy output equals
// `dsv4 generate`.
TEST(CliRun, GoldenCheckpointsWithTokenIds) {
  fs::path ids = fs::temp_directory_path() / ("dsv4_run_ids_" + std::to_string(::getpid()) + ".json");
  FILE* f = std::fopen(ids.c_str(), "w");
  std::fputs("[0, 5, 17, 3, 9, 250, 11]", f);
  std::fclose(f);
  for (std::string g : {"v4_tiny_bf16", "v4_tiny_fp8_mtp", "v4_tiny_hf_f32"}) {
    std::string dir = (fs::path(DSV4_TEST_DATA) / "golden" / g).string();
    RunResult r = shell(bin() + " run -m " + dir + " --prompt-ids " + ids.string() + " -n 8 --temp 0 2>/dev/null");
    RunResult gen = shell(bin() + " generate -m " + dir + " --tokens " + ids.string() + " -n 8 2>/dev/null");
    ASSERT_EQ(r.code, 0) << g;
    ASSERT_EQ(gen.code, 0) << g;
    std::string as_json = "[" + r.out.substr(0, r.out.find('\n')) + "]";
    for (size_t p = as_json.find(' '); p != std::string::npos; p = as_json.find(' ', p + 1)) as_json[p] = ',';
    EXPECT_EQ(as_json + "\n", gen.out) << g;
    RunResult text = shell(bin() + " run -m " + dir + " -p hello -n 2 2>&1");
    EXPECT_EQ(text.code, 1);
    EXPECT_NE(text.out.find("--prompt-ids"), std::string::npos) << text.out;
  }
  fs::remove(ids);
}

}  // namespace
}  // namespace dsv4
