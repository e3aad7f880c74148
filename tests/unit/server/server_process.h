// Runs a real `dsv4 serve` process for end-to-end tests: builds a model directory from the golden tiny
// checkpoint (config and safetensors symlinked) plus the test tokenizer of tests/data/server, starts the
// server on a free loopback port (--port 0, the port read from its "listening on" line), and stops it with a
// signal, reporting the exit code. Header-only; included as "unit/server/server_process.h".
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "unit/server/http_test_client.h"

namespace dsv4::testing {

namespace fs = std::filesystem;

// DIR with the golden v4_tiny_fp8_mtp weights and the test tokenizer (created once per process, removed at exit).
inline fs::path server_model_dir() {
  struct ModelDir {
    fs::path root = fs::temp_directory_path() / ("dsv4_server_model_" + std::to_string(::getpid()));
    fs::path dir = root / "tiny-test";
    ModelDir() {
      const fs::path src = fs::path(DSV4_TEST_DATA) / "golden" / "v4_tiny_fp8_mtp";
      fs::remove_all(root);
      fs::create_directories(dir);
      for (const char* f : {"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                            "model.safetensors.index.json"})
        fs::create_symlink(src / f, dir / f);
      for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
        fs::copy_file(fs::path(DSV4_TEST_DATA) / "server" / f, dir / f);
    }
    ~ModelDir() {
      std::error_code ec;
      fs::remove_all(root, ec);
    }
  };
  static const ModelDir d;
  return d.dir;
}

class ServerProcess {
 public:
  explicit ServerProcess(const std::vector<std::string>& extra_args = {}) {
    log_ = fs::temp_directory_path() / ("dsv4_serve_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++) + ".log");
    int out[2];
    if (::pipe(out) != 0) return;
    std::vector<std::string> args = {DSV4_BINARY, "serve", "-m", server_model_dir().string(), "--port", "0"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a test process that died
      ::dup2(out[1], 1);
      const int err = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(err, 2);
      ::close(out[0]);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    stdout_ = out[0];
    read_port();
  }
  ~ServerProcess() {
    if (pid_ > 0 && exit_code_ == kRunning) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdout_ >= 0) ::close(stdout_);
    std::error_code ec;
    fs::remove(log_, ec);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const {
    std::ifstream f(log_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  // Sends `sig` and waits up to `timeout` for the exit; the exit code, or -1 when it did not exit (or crashed).
  int stop(int sig = SIGTERM, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    if (pid_ <= 0) return -1;
    if (sig != 0) ::kill(pid_, sig);
    return wait_exit(timeout);
  }
  int wait_exit(std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (exit_code_ == kRunning && std::chrono::steady_clock::now() < end) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return exit_code_ == kRunning ? -1 : exit_code_;
  }
  bool alive() {
    int st = 0;
    return exit_code_ == kRunning && ::waitpid(pid_, &st, WNOHANG) == 0;
  }
  // GET /metrics as name{labels} -> value.
  std::map<std::string, double> metrics() const {
    std::map<std::string, double> m;
    HttpResponse r = http_request(port_, "GET", "/metrics");
    std::istringstream in(r.body);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      const size_t sp = line.rfind(' ');
      if (sp != std::string::npos) m[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    }
    return m;
  }

 private:
  static constexpr int kRunning = -1000;
  static int& counter() {
    static int n = 0;
    return n;
  }
  void read_port() {
    std::string out;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < end && out.find('\n') == std::string::npos) {
      pollfd p{stdout_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[512];
      const ssize_t n = ::read(stdout_, buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    const size_t at = out.find("127.0.0.1:");
    if (at != std::string::npos) port_ = std::atoi(out.c_str() + at + 10);
  }

  pid_t pid_ = -1;
  int stdout_ = -1;
  int port_ = 0;
  int exit_code_ = kRunning;
  fs::path log_;
};

}  // namespace dsv4::testing
