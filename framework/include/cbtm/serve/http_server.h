#pragma once
/// \file http_server.h
/// A small HTTP/1.1 server for `cbtm serve`: loopback by default, one thread per connection,
/// at most max_connections requests handled at once; up to max_queue more wait (at most
/// queue_timeout_s) for a free slot, and beyond that they get 503. One request per connection
/// (`Connection: close`), bodies by Content-Length.
///
/// Header lines may end in CRLF or a bare LF. A request that does not reach the handler gets:
/// 400 when malformed (a header name with whitespace and a repeated Content-Length included),
/// 408 when its header did not arrive within header_timeout_s or the whole request within
/// request_timeout_s (deadlines from the accept, however the client trickles it), 411 a POST
/// or PUT without Content-Length, 413 a body over max_body, 417 an Expect other than
/// 100-continue, 431 a header over 64 KiB, 501 a Transfer-Encoding. A handler that throws gets
/// 500. The answer to a HEAD request has no body (its headers are those of the full answer).
/// After every answer the server ends its sending side and reads what the client still sends
/// (until it closes, 4 MiB or 1 s; the connection no longer counts against the limits) before
/// closing, so that the client receives the answer instead of a connection reset. Waiting
/// requests get the free slots in arrival order. When stopped, the server closes its
/// listening socket (new clients are refused), ends the reading of requests still arriving
/// and answers queued ones with 503, and lets the requests being handled finish (a handler can
/// tell its client has gone with HttpRequest::client_gone). Plus a matching client, for tests
/// and benchmarks.
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
  /// True once the client has hung up: closed its connection, reset it, or ended its sending
  /// side (the server cannot tell a close from a half-close before it answers; HTTP clients
  /// that wait for the answer do not half-close). Cheap (one poll); for a long handler to give
  /// up between steps. Set by HttpServer for the handler call only: do not keep it past the call.
  std::function<bool()> client_gone = {};
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
  int port = 0;                    ///< 0 to 65535; 0: any free port (see HttpServer::port)
  int max_connections = 16;        ///< requests handled at once
  int max_queue = 64;              ///< connections waiting for a slot; more get 503 at once
  double queue_timeout_s = 30;     ///< a queued connection gets 503 after waiting this long (over kHttpNoTimeout: never)
  size_t max_body = size_t(1) << 20;
  /// The whole request (header and body) must arrive within this many seconds of the
  /// connection being accepted, else 408 (over kHttpNoTimeout: no limit). The answer, too,
  /// must be sent within this long (a client that does not read it is dropped).
  double request_timeout_s = 10;
  /// The request's header (through its blank line) must arrive within this many seconds of the
  /// connection being accepted, else 408 (over kHttpNoTimeout: no limit; request_timeout_s
  /// still bounds it). A connection counts against max_connections + max_queue while it is
  /// read, so this short limit is what stops idle connections from locking clients out.
  double header_timeout_s = 2;
};

class HttpServer {
 public:
  /// Binds and listens (Error naming the address if that fails, or the option out of range:
  /// a port outside 0 to 65535, a timeout that is not positive, ...).
  HttpServer(const HttpServerOptions& opt, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  int port() const { return port_; }
  /// Serves until `stop` becomes true (checked every 100 ms); then closes the listening
  /// socket, shuts down the reading of requests still arriving (they get 503, as do the
  /// queued ones) and waits for the requests being handled to finish (and for the connections
  /// being closed, at most 1 s more). Call once.
  void serve(const std::atomic<bool>& stop);
  /// Requests answered so far.
  long long served() const { return served_.load(); }
  /// Requests read and waiting for a slot now (queued behind max_connections).
  size_t waiting() const {
    std::lock_guard<std::mutex> lock(slot_mu_);
    return slot_waiters_.size();
  }

 private:
  void handle(int fd);
  void answer(int fd, const HttpResponse& resp, bool head_only);
  void refuse(int fd, const HttpResponse& resp);
  bool acquire_slot();
  void release_slot();
  void start_reading(int fd);
  void done_reading(int fd);
  void begin_stop();
  HttpServerOptions opt_;
  HttpHandler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int64_t> connections_{0};  ///< being read, queued or handled (the limit counts these)
  std::atomic<int64_t> threads_{0};      ///< connection threads still running, closing ones included
  std::atomic<int64_t> closing_{0};      ///< threads that only close a refused connection
  std::atomic<bool> stopping_{false};    ///< set once serve()'s accept loop has ended
  mutable std::mutex slot_mu_;
  std::condition_variable slot_cv_;
  int active_ = 0;                       ///< handled now (guarded by slot_mu_)
  uint64_t next_ticket_ = 0;             ///< the arrival number of the next slot waiter (guarded by slot_mu_)
  std::set<uint64_t> slot_waiters_;      ///< the tickets of the waiters, earliest first (guarded by slot_mu_)
  std::mutex reading_mu_;
  std::set<int> reading_;                ///< sockets whose request is being read (guarded by reading_mu_)
  std::atomic<long long> served_{0};
};

/// The reason phrase of a status code ("OK", "Bad Request", ...).
const char* http_reason(int status);

/// One request to 127.0.0.1:port (Content-Length body, Connection: close); status -1 and the
/// error in body if the connection fails. `raw`, when non-empty, is sent verbatim instead of a
/// well-formed request (to test malformed input), and is followed by the end of the client's
/// sending side (so that a request cut short ends); a well-formed request is not (the server
/// would take it for a client that hung up: HttpRequest::client_gone). timeout_s bounds the
/// connecting, the sending of the request and each receive.
HttpResponse http_call(int port, const std::string& method, const std::string& path,
                       const std::string& body = "", double timeout_s = 60, const std::string& raw = "");

}  // namespace cbtm
