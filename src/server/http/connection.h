// One client connection of the HttpServer (internal): reads requests one after another (keep-alive,
// pipelined bytes kept for the next request), hands each to the Handler with itself as the ResponseWriter,
// and writes the answer. Owns the socket; runs on its own thread.
#pragma once
#include <atomic>
#include <string>

#include "server/http/http_server.h"

namespace dsv4::server::http {

class Connection final : public ResponseWriter {
 public:
  Connection(Fd fd, std::string peer, const HttpServerOptions& opts, const Handler& handler,
             const std::atomic<bool>& stop);
  void run();

  void send(int status, std::string_view content_type, std::string_view body) override;
  bool begin_stream(int status, std::string_view content_type) override;
  bool write(std::string_view data) override;
  void end_stream() override;
  bool client_gone() override;
  Clock::time_point last_write() const override { return last_write_; }
  void annotate(std::string note) override;

 private:
  enum class ReadOutcome { kRequest, kClosed, kError };
  ReadOutcome read_request(HttpRequest& req, ApiError& error);
  ReadOutcome read_body(HttpRequest& req, size_t head_bytes, Clock::time_point deadline, ApiError& error);
  void send_error(const ApiError& e);
  std::string head(int status, std::string_view content_type) const;
  bool put(std::string_view data);
  void linger_close();
  void log_request(const HttpRequest& req, Clock::time_point t0) const;

  Fd fd_;
  std::string peer_;
  const HttpServerOptions& opts_;
  const Handler& handler_;
  const std::atomic<bool>& stop_;
  std::string buf_;  // received bytes not yet consumed

  // State of the current response.
  int status_ = 0;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool streaming_ = false;
  bool responded_ = false;
  bool broken_ = false;  // a write failed: the client is gone
  size_t bytes_out_ = 0;
  Clock::time_point last_write_;
  std::string notes_;
};

}  // namespace dsv4::server::http
