// A small HTTP/1.1 server for the OpenAI API: one thread per connection (a slow client only ever holds its
// own thread), keep-alive, Expect: 100-continue, chunked responses for streaming, request limits (head and
// body size, read timeouts, a connection cap answered with 503), and a stop() that closes the listener and
// idle connections while requests in flight run to completion. It knows nothing of the API: every complete
// request goes to one Handler with a ResponseWriter for its answer; malformed HTTP is answered here with the
// same OpenAI-style error JSON (api_error.h). One access-log line per request.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "core/result.h"
#include "server/http/request_parser.h"
#include "server/http/socket_io.h"

namespace dsv4::server::http {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0 = any free port (see HttpServer::port)
  HttpLimits limits;
  int max_connections = 1024;
  std::chrono::milliseconds keep_alive_timeout{30000};  // idle time between requests on a connection
  std::chrono::milliseconds request_timeout{30000};     // to receive one request's head and body
  std::chrono::milliseconds write_timeout{30000};       // for a client to accept one write
  bool access_log = true;
};

// The answer to one request. Either send() once, or begin_stream() + write()* + end_stream().
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  virtual void send(int status, std::string_view content_type, std::string_view body) = 0;
  // Chunked transfer for HTTP/1.1 (close-delimited for 1.0); false once the client is gone.
  virtual bool begin_stream(int status, std::string_view content_type) = 0;
  virtual bool write(std::string_view data) = 0;
  virtual void end_stream() = 0;
  // Non-blocking: has the client closed its connection (or did a write fail)?
  virtual bool client_gone() = 0;
  // When bytes of this response last went out (the request's arrival before the first).
  virtual Clock::time_point last_write() const = 0;
  // Extra words for this request's access-log line ("prompt=12 completion=16").
  virtual void annotate(std::string note) = 0;
};

using Handler = std::function<void(const HttpRequest&, ResponseWriter&)>;

class HttpServer {
 public:
  HttpServer(HttpServerOptions opts, Handler handler);
  ~HttpServer();  // stops and waits for every connection thread
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status bind();  // creates the listening socket; the error names host and port
  int port() const { return port_; }
  // Accepts connections until stop(); then closes the listener and returns (connections may still be open).
  void serve();
  void stop();  // thread-safe
  bool stopping() const { return stop_.load(); }
  // Waits up to `timeout` for every connection to close; the number still open.
  int wait_connections(std::chrono::milliseconds timeout);
  int open_connections() const;

 private:
  void run_connection(Fd fd, std::string peer);
  void reject_connection(Fd fd);

  HttpServerOptions opts_;
  Handler handler_;
  Fd listener_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int n_open_ = 0;  // connection threads alive
};

}  // namespace dsv4::server::http
