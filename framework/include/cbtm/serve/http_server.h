#pragma once
/// \file http_server.h
/// A small HTTP/1.1 server for `cbtm serve`: loopback by default, one thread per connection,
/// at most max_connections requests handled at once; up to max_queue more wait (at most
/// queue_timeout_s) for a free slot, and beyond that they get 503. One request per connection
/// (`Connection: close`), bodies by Content-Length. Malformed requests get 400 (411 without a
/// length on POST, 413 over max_body) without reaching the handler; a handler that throws
/// gets 500. Plus a matching client, for tests and benchmarks.
///
/// \code
///   HttpServer server({.port = 0}, [](const HttpRequest& r) { return HttpResponse{200, "{}"}; });
///   std::atomic<bool> stop{false};
///   std::thread t([&] { server.serve(stop); });
///   auto resp = http_call(server.port(), "GET", "/health");
/// \endcode
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace cbtm {

struct HttpRequest {
  std::string method;                         ///< e.g. "POST"
  std::string path;                           ///< e.g. "/score" (the query string, if any, removed)
  std::map<std::string, std::string> headers; ///< names lower-cased
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";  ///< the address to listen on
  int port = 0;                    ///< 0: any free port (see HttpServer::port)
  int max_connections = 16;        ///< requests handled at once
  int max_queue = 64;              ///< connections waiting for a slot; more get 503 at once
  double queue_timeout_s = 30;     ///< a queued connection gets 503 after waiting this long
  size_t max_body = size_t(1) << 20;
  double read_timeout_s = 10;      ///< a client that sends nothing for this long is dropped
};

class HttpServer {
 public:
  /// Binds and listens (Error naming the address if that fails).
  HttpServer(const HttpServerOptions& opt, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  int port() const { return port_; }
  /// Serves until `stop` becomes true (checked every 100 ms), then waits for the requests in
  /// flight to finish.
  void serve(const std::atomic<bool>& stop);
  /// Requests answered so far.
  long long served() const { return served_.load(); }

 private:
  void handle(int fd);
  HttpServerOptions opt_;
  HttpHandler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  bool acquire_slot();
  void release_slot();
  std::atomic<int> connections_{0};  ///< handled + queued
  std::mutex slot_mu_;
  std::condition_variable slot_cv_;
  int active_ = 0;                   ///< handled now (guarded by slot_mu_)
  std::atomic<long long> served_{0};
};

/// The reason phrase of a status code ("OK", "Bad Request", ...).
const char* http_reason(int status);

/// One request to 127.0.0.1:port (Content-Length body, Connection: close); status -1 and the
/// error in body if the connection fails. `raw`, when non-empty, is sent verbatim instead of a
/// well-formed request (to test malformed input).
HttpResponse http_call(int port, const std::string& method, const std::string& path,
                       const std::string& body = "", double timeout_s = 60, const std::string& raw = "");

}  // namespace cbtm
