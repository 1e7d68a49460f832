#pragma once
/// \file http_server.h
/// A small HTTP/1.1 server for `cbtm serve`: loopback by default, one thread per connection,
/// at most max_connections requests handled at once; up to max_queue more wait (at most
/// queue_timeout_s) for a free slot, and beyond that they get 503. One request per connection
/// (`Connection: close`), bodies by Content-Length.
///
/// A request that does not reach the handler gets: 400 when malformed, 408 when its header and
/// body did not arrive within request_timeout_s (one deadline for the whole request, however
/// the client trickles it), 411 a POST or PUT without Content-Length, 413 a body over max_body,
/// 431 a header over 64 KiB, 501 a Transfer-Encoding. After such an early answer the server
/// stops sending and reads what the client still sends (up to 4 MiB or 1 s) before closing, so
/// that the client receives the answer instead of a connection reset. A handler that throws
/// gets 500. When stopped, the server closes its listening socket (new clients are refused),
/// ends the reading of requests still arriving and answers queued ones with 503, and lets the
/// requests being handled finish. Plus a matching client, for tests and benchmarks.
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
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
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
  /// Header lines sent besides Content-Type, Content-Length and Connection (e.g. {"Allow", "GET"}
  /// on a 405). http_call fills it with every header line of the answer, names lower-cased.
  std::map<std::string, std::string> headers = {};
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

/// Timeouts over this many seconds (or infinite) mean no limit.
constexpr double kHttpNoTimeout = 1e6;

struct HttpServerOptions {
  std::string host = "127.0.0.1";  ///< the address to listen on
  int port = 0;                    ///< 0: any free port (see HttpServer::port)
  int max_connections = 16;        ///< requests handled at once
  int max_queue = 64;              ///< connections waiting for a slot; more get 503 at once
  double queue_timeout_s = 30;     ///< a queued connection gets 503 after waiting this long (over kHttpNoTimeout: never)
  size_t max_body = size_t(1) << 20;
  /// The whole request (header and body) must arrive within this many seconds of the
  /// connection being accepted, else 408 (over kHttpNoTimeout: no limit). The answer, too,
  /// must be sent within this long (a client that does not read it is dropped).
  double request_timeout_s = 10;
};

class HttpServer {
 public:
  /// Binds and listens (Error naming the address if that fails, or the option out of range).
  HttpServer(const HttpServerOptions& opt, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  int port() const { return port_; }
  /// Serves until `stop` becomes true (checked every 100 ms); then closes the listening
  /// socket, shuts down the reading of requests still arriving (they get 503, as do the
  /// queued ones) and waits for the requests being handled to finish. Call once.
  void serve(const std::atomic<bool>& stop);
  /// Requests answered so far.
  long long served() const { return served_.load(); }

 private:
  void handle(int fd);
  bool acquire_slot();
  void release_slot();
  void start_reading(int fd);
  void done_reading(int fd);
  void begin_stop();
  HttpServerOptions opt_;
  HttpHandler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int64_t> connections_{0};  ///< being read, queued or handled
  std::atomic<bool> stopping_{false};    ///< set once serve()'s accept loop has ended
  std::mutex slot_mu_;
  std::condition_variable slot_cv_;
  int active_ = 0;                       ///< handled now (guarded by slot_mu_)
  std::mutex reading_mu_;
  std::set<int> reading_;                ///< sockets whose request is being read (guarded by reading_mu_)
  std::atomic<long long> served_{0};
};

/// The reason phrase of a status code ("OK", "Bad Request", ...).
const char* http_reason(int status);

/// One request to 127.0.0.1:port (Content-Length body, Connection: close); status -1 and the
/// error in body if the connection fails. `raw`, when non-empty, is sent verbatim instead of a
/// well-formed request (to test malformed input). timeout_s bounds the connecting, the sending
/// of the request and each receive.
HttpResponse http_call(int port, const std::string& method, const std::string& path,
                       const std::string& body = "", double timeout_s = 60, const std::string& raw = "");

}  // namespace cbtm
