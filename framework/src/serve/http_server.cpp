// A minimal threaded HTTP/1.1 server and client over POSIX sockets (see http_server.h).
#include "cbtm/serve/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

#include "cbtm/error.h"

namespace cbtm {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHead = 64 * 1024;
constexpr size_t kDiscardBytes = size_t(4) << 20;  // read and dropped after an answer, at most
constexpr double kDiscardSeconds = 1;              // ... for at most this long
constexpr ssize_t kTimedOut = -2;                  // recv_until: the deadline passed
constexpr int64_t kMaxClosing = 64;                // refused connections closed on threads of their own, at most

#ifndef POLLRDHUP
#define POLLRDHUP 0  // not Linux: peer_closed's peek sees the end of the input instead
#endif

// "0.5", "30", "1e+10": seconds for messages.
std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

// `s` seconds from now; Clock::time_point::max() (never) when s is over kHttpNoTimeout.
Clock::time_point deadline_in(double s) {
  if (!(s <= kHttpNoTimeout)) return Clock::time_point::max();
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// Sets SO_RCVTIMEO and SO_SNDTIMEO (http_call's blocking socket); over kHttpNoTimeout: none.
void set_timeout(int fd, double s) {
  timeval tv{};  // zero: no timeout
  if (s <= kHttpNoTimeout) {
    const double us = std::max(1.0, std::round(s * 1e6));  // never 0 (which would mean none)
    tv.tv_sec = static_cast<time_t>(us / 1e6);
    tv.tv_usec = static_cast<suseconds_t>(us - static_cast<double>(tv.tv_sec) * 1e6);
  }
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Waits until `fd` has `events` (POLLIN or POLLOUT; or an error or hang-up, which the next
// recv/send reports) or `deadline` passes: true if ready, false at the deadline or on an error.
bool wait_ready(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    int wait_ms = -1;
    if (deadline != Clock::time_point::max()) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      wait_ms = static_cast<int>(std::min<long long>(left, 3600 * 1000));
    }
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, wait_ms);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
    // interrupted, or the wait ended: the deadline is checked again
  }
}

// Sends all of `data` by `deadline` (however slowly the client reads); false if it could not.
bool send_all(int fd, const std::string& data, Clock::time_point deadline) {
  size_t off = 0;
  while (off < data.size()) {
    if (!wait_ready(fd, POLLOUT, deadline)) return false;
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// recv() that waits until `deadline` at the latest: the bytes read (> 0), 0 when the client
// ended its side (or the server shut reading down), -1 on an error, kTimedOut.
ssize_t recv_until(int fd, char* buf, size_t n, Clock::time_point deadline) {
  for (;;) {
    if (!wait_ready(fd, POLLIN, deadline)) return Clock::now() >= deadline ? kTimedOut : -1;
    const ssize_t got = ::recv(fd, buf, n, MSG_DONTWAIT);
    if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    return got;
  }
}

// Reads and drops what has already arrived, up to `cap` bytes, without waiting.
void drop_pending(int fd, size_t cap) {
  char buf[16384];
  for (size_t total = 0; total < cap;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    total += static_cast<size_t>(n);
  }
}

// After an answer (one sent before the request was read in full -- 408, 411, 413, 431, ... --
// or after it): ends the sending side, so that the client sees the whole answer, then reads
// and drops what the client still sends until it closes, kDiscardBytes or kDiscardSeconds.
// Closing a socket with unread input resets the connection, and the client may then lose the
// answer (Python's http.client reports BrokenPipe or ConnectionReset instead of the 413).
void discard_input(int fd) {
  ::shutdown(fd, SHUT_WR);
  const Clock::time_point deadline = deadline_in(kDiscardSeconds);
  char buf[16384];
  for (size_t total = 0; total < kDiscardBytes;) {
    const ssize_t n = recv_until(fd, buf, sizeof buf, deadline);
    if (n <= 0) return;
    total += static_cast<size_t>(n);
  }
}

// Whether the client of `fd` has hung up (closed or reset its connection, or ended its sending
// side), without waiting or reading its input (HttpRequest::client_gone).
bool peer_closed(int fd) {
  pollfd p{fd, static_cast<short>(POLLIN | POLLRDHUP), 0};
  int r = 0;
  do {
    r = ::poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  if (r <= 0) return false;  // nothing new (or poll failed: no reason to abandon the work)
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
  if (!(p.revents & POLLIN)) return false;
  // input, or its end: peek at it, leaving it for discard_input
  char c;
  const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

// The length of the well-formed UTF-8 character at s[i] (1 to 4 bytes), 0 if there is none.
size_t utf8_length(const std::string& s, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = at(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range (narrower after E0, ED, F0, F4)
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // over U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size() || at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  return n;
}

// {"error": msg} as valid JSON whatever bytes `msg` holds (it may quote the client's bytes, cut
// anywhere): control characters are escaped, bytes that are not UTF-8 become U+FFFD.
std::string json_error(const std::string& msg) {
  std::string out = "{\"error\": \"";
  for (size_t i = 0; i < msg.size();) {
    const unsigned char c = static_cast<unsigned char>(msg[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else if (c >= 0x80) {
      const size_t n = utf8_length(msg, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(msg, i, n);
        i += n;
      }
      continue;
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  return out + "\"}";
}

// The answer's bytes; head_only (the answer to HEAD): without the body, but with the
// Content-Length the body would have.
std::string format_response(const HttpResponse& r, bool head_only) {
  std::string s = "HTTP/1.1 " + std::to_string(r.status) + " " + http_reason(r.status) + "\r\n";
  s += "Content-Type: " + r.content_type + "\r\n";
  s += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  for (const auto& [name, value] : r.headers) s += name + ": " + value + "\r\n";
  s += "Connection: close\r\n\r\n";
  return head_only ? s : s + r.body;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  const size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

enum class Read {
  complete,  // the request is in `req`
  failed,    // `error` holds the answer; input may remain unread
  ended,     // the client (or the server, stopping) ended the input before the request was complete; `error` holds a 400
};

// Where the header in `buf` ends: at its first empty line ("\r\n", or a bare "\n": a client
// that ends its lines with LF alone is understood instead of left waiting for the 408).
// Returns the header's length (the lines before the empty one) and sets `body` to the byte
// after the empty line; npos while that has not arrived. `from` (a line start, 0 at first)
// carries the scan over calls, so that a header arriving in pieces is scanned once.
size_t find_head_end(const std::string& buf, size_t& from, size_t& body) {
  for (;;) {
    const size_t nl = buf.find('\n', from);
    if (nl == std::string::npos) return std::string::npos;
    if (nl == from || (nl == from + 1 && buf[from] == '\r')) {
      body = nl + 1;
      return from;
    }
    from = nl + 1;
  }
}

// The line of `head` that starts at `at`, without its "\n" or a "\r" before that; `at` moves
// to the next line (head.size() after the last).
std::string next_line(const std::string& head, size_t& at) {
  const size_t nl = head.find('\n', at);
  std::string line = head.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  at = nl == std::string::npos ? head.size() : nl + 1;
  return line;
}

// Reads one request, all of it: its header by `header_deadline`, the whole by `deadline`.
// req.method is set as soon as the request line is read (an early answer to HEAD has no body).
Read read_request(int fd, const HttpServerOptions& opt, Clock::time_point header_deadline, Clock::time_point deadline,
                  HttpRequest& req, HttpResponse& error) {
  auto timed_out = [&](const std::string& where) {
    error = {408, json_error("the request did not arrive within " + seconds(opt.request_timeout_s) + " s (" + where + ")")};
    return Read::failed;
  };
  std::string buf;
  char chunk[8192];
  size_t head_end = std::string::npos, body_start = 0, scanned = 0;
  while (head_end == std::string::npos) {
    const ssize_t n = recv_until(fd, chunk, sizeof chunk, header_deadline);
    if (n == kTimedOut) {
      const std::string got = std::to_string(buf.size()) + " bytes of its header received";
      if (!(opt.header_timeout_s < opt.request_timeout_s)) return timed_out(got);  // the earlier deadline passed
      error = {408, json_error("the request header did not arrive within " + seconds(opt.header_timeout_s) + " s (" + got + ")")};
      return Read::failed;
    }
    if (n <= 0) {
      error = {400, json_error(buf.empty() ? "empty request" : "the request ended inside its header")};
      return Read::ended;
    }
    buf.append(chunk, static_cast<size_t>(n));
    head_end = find_head_end(buf, scanned, body_start);
    if ((head_end == std::string::npos && buf.size() > kMaxHead) || (head_end != std::string::npos && head_end > kMaxHead)) {
      error = {431, json_error("request header over 64 KiB")};
      return Read::failed;
    }
  }
  const std::string head = buf.substr(0, head_end);
  std::string body = buf.substr(body_start);
  size_t at = 0;
  const std::string line = next_line(head, at);
  const size_t s1 = line.find(' '), s2 = line.rfind(' ');
  if (s1 == std::string::npos || s2 == s1 || line.compare(s2 + 1, 5, "HTTP/") != 0) {
    error = {400, json_error("malformed request line: '" + line.substr(0, 200) + "'")};
    return Read::failed;
  }
  req.method = line.substr(0, s1);
  req.path = line.substr(s1 + 1, s2 - s1 - 1);
  if (const size_t q = req.path.find('?'); q != std::string::npos) req.path.resize(q);
  int lengths = 0;  // Content-Length headers seen
  while (at < head.size()) {
    const std::string h = next_line(head, at);
    if (h.empty()) continue;
    const size_t colon = h.find(':');
    if (colon == std::string::npos) {
      error = {400, json_error("malformed header line: '" + h.substr(0, 200) + "'")};
      return Read::failed;
    }
    // "Content-Length : 5" is not Content-Length to every reader: proxies and servers that
    // disagree on a request's length disagree on where the next one starts
    const std::string name = h.substr(0, colon);
    if (name.empty() || name.find_first_of(" \t") != std::string::npos) {
      error = {400, json_error("malformed header line (an empty header name, or one with spaces or tabs): '" + h.substr(0, 200) + "'")};
      return Read::failed;
    }
    const std::string key = lower(name);
    if (key == "content-length" && ++lengths > 1) {
      error = {400, json_error("more than one Content-Length header")};
      return Read::failed;
    }
    req.headers[key] = trim(h.substr(colon + 1));
  }
  // before the Content-Length checks: a chunked POST has no length, and is told why
  if (req.headers.count("transfer-encoding")) {
    error = {501, json_error("Transfer-Encoding is not supported; send a Content-Length body")};
    return Read::failed;
  }
  const auto expect = req.headers.find("expect");
  const bool wants_continue = expect != req.headers.end() && lower(expect->second) == "100-continue";
  if (expect != req.headers.end() && !wants_continue) {
    error = {417, json_error("Expect: '" + expect->second.substr(0, 100) + "' is not supported (only 100-continue is)")};
    return Read::failed;
  }
  size_t length = 0;
  const auto cl = req.headers.find("content-length");
  if (cl != req.headers.end()) {
    const std::string& v = cl->second;
    if (v.empty() || v.size() > 15 || v.find_first_not_of("0123456789") != std::string::npos) {
      error = {400, json_error("bad Content-Length: '" + v.substr(0, 40) + "'")};
      return Read::failed;
    }
    length = std::stoull(v);
  } else if (req.method == "POST" || req.method == "PUT") {
    error = {411, json_error("a " + req.method + " request needs a Content-Length header")};
    return Read::failed;
  }
  if (length > opt.max_body) {
    error = {413, json_error("request body of " + std::to_string(length) + " bytes is over the limit of " +
                             std::to_string(opt.max_body))};
    return Read::failed;
  }
  // A client that asks (curl does for bodies over 1 MiB) waits for this before sending the
  // body -- about a second when nobody answers
  if (wants_continue && body.size() < length && !send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", deadline))
    return timed_out("while sending 100 Continue");
  while (body.size() < length) {
    const ssize_t n = recv_until(fd, chunk, std::min(sizeof chunk, length - body.size()), deadline);
    if (n == kTimedOut)
      return timed_out(std::to_string(body.size()) + " of " + std::to_string(length) + " bytes of its body received");
    if (n <= 0) {
      error = {400, json_error("the body ended after " + std::to_string(body.size()) + " of " + std::to_string(length) + " bytes")};
      return Read::ended;
    }
    body.append(chunk, static_cast<size_t>(n));
  }
  body.resize(length);
  req.body = std::move(body);
  return Read::complete;
}

HttpResponse stopping_response() { return {503, json_error("the server is stopping")}; }

}  // namespace

const char* http_reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

HttpServer::HttpServer(const HttpServerOptions& opt, HttpHandler handler) : opt_(opt), handler_(std::move(handler)) {
  // (htons would take 70000 for 4464)
  if (opt.port < 0 || opt.port > 65535)
    throw Error("serve: port must be 0 to 65535 (0: any free port), not " + std::to_string(opt.port));
  if (opt.max_connections < 1) throw Error("serve: max_connections must be >= 1");
  if (opt.max_queue < 0) throw Error("serve: max_queue must be >= 0");
  if (!(opt.queue_timeout_s >= 0)) throw Error("serve: queue_timeout_s must be >= 0");
  if (!(opt.request_timeout_s > 0)) throw Error("serve: request_timeout_s must be > 0");
  if (!(opt.header_timeout_s > 0)) throw Error("serve: header_timeout_s must be > 0");
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw Error(std::string("serve: socket(): ") + std::strerror(errno));
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(opt.port));
  if (inet_pton(AF_INET, opt.host.c_str(), &addr.sin_addr) != 1) {
    ::close(listen_fd_);
    throw Error("serve: '" + opt.host + "' is not an IPv4 address");
  }
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || ::listen(listen_fd_, 128) < 0) {
    const std::string why = std::strerror(errno);
    ::close(listen_fd_);
    throw Error("serve: cannot listen on " + opt.host + ":" + std::to_string(opt.port) + ": " + why);
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
}

HttpServer::~HttpServer() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

// Waits (at most queue_timeout_s) for a free slot; false if none came or the server is stopping.
// Slots go in arrival order: each waiter takes a ticket, and only the earliest waiting ticket
// may take a free slot -- otherwise a request arriving as a slot frees could take it while
// earlier ones, woken too late, time out.
bool HttpServer::acquire_slot() {
  std::unique_lock<std::mutex> lock(slot_mu_);
  const uint64_t ticket = next_ticket_++;
  slot_waiters_.insert(ticket);
  const auto my_turn = [this, ticket] {
    return stopping_.load() || (*slot_waiters_.begin() == ticket && active_ < opt_.max_connections);
  };
  bool turn = true;
  if (opt_.queue_timeout_s > kHttpNoTimeout)  // a duration that large would overflow wait_for's clock
    slot_cv_.wait(lock, my_turn);
  else
    turn = slot_cv_.wait_for(lock, std::chrono::duration<double>(opt_.queue_timeout_s), my_turn);
  slot_waiters_.erase(ticket);
  const bool got = turn && !stopping_;
  if (got) ++active_;
  // the next waiter may go now: a slot is still free, or this one gave up its turn
  if (!slot_waiters_.empty() && active_ < opt_.max_connections) slot_cv_.notify_all();
  return got;
}

void HttpServer::release_slot() {
  {
    std::lock_guard<std::mutex> lock(slot_mu_);
    --active_;
  }
  slot_cv_.notify_all();  // every waiter checks whether it is the earliest: notify_one might wake another
}

// Registers a socket whose request is being read, so that stopping can end the read; when the
// server is already stopping, ends it at once.
void HttpServer::start_reading(int fd) {
  std::lock_guard<std::mutex> lock(reading_mu_);
  if (stopping_) ::shutdown(fd, SHUT_RD);
  reading_.insert(fd);
}

void HttpServer::done_reading(int fd) {
  std::lock_guard<std::mutex> lock(reading_mu_);
  reading_.erase(fd);
}

// Ends the reads in progress (their recv() sees the end of the input) and wakes the queued
// requests, which then get 503.
void HttpServer::begin_stop() {
  {
    std::lock_guard<std::mutex> lock(reading_mu_);
    stopping_ = true;
    for (int fd : reading_) ::shutdown(fd, SHUT_RD);
  }
  {
    // taken once the flag is set: each waiter has either seen it or is waiting, and is woken
    std::lock_guard<std::mutex> lock(slot_mu_);
  }
  slot_cv_.notify_all();
}

// Sends `resp` (a client that does not read it is dropped at the deadline), gives up the
// connection's place, then ends the sending side and reads what the client still sends
// (discard_input) before the caller closes: closing a socket with unread input resets the
// connection, and a client still sending (bytes after its request, a body not read) would
// get ECONNRESET instead of the answer.
void HttpServer::answer(int fd, const HttpResponse& resp, bool head_only) {
  const bool sent = send_all(fd, format_response(resp, head_only), deadline_in(opt_.request_timeout_s));
  ++served_;
  --connections_;  // answered: lingering does not hold a place
  if (sent) discard_input(fd);
}

// Answers a connection that is not read (the server is full, or no thread could start): drops
// what the request sent so far, answers, and closes after discard_input, on a thread of its own
// so that the accept loop does not wait; with kMaxClosing such threads running (or none to be
// had), only what has already arrived is dropped.
void HttpServer::refuse(int fd, const HttpResponse& resp) {
  drop_pending(fd, kMaxHead);
  const bool sent = send_all(fd, format_response(resp, false), deadline_in(1));
  if (sent && closing_.load() < kMaxClosing) {
    ++threads_;
    ++closing_;
    try {
      std::thread([this, fd] {
        discard_input(fd);
        ::close(fd);
        --closing_;
        --threads_;  // last: serve() may return (and the server go) once no thread is left
      }).detach();
      return;
    } catch (const std::system_error&) {  // no thread to be had: close here
      --closing_;
      --threads_;
    }
  }
  ::shutdown(fd, SHUT_WR);
  drop_pending(fd, kDiscardBytes);
  ::close(fd);
}

void HttpServer::handle(int fd) {
  const Clock::time_point deadline = deadline_in(opt_.request_timeout_s);
  // an idle connection holds a place among the limits only this long (slowloris)
  const Clock::time_point header_deadline = std::min(deadline, deadline_in(opt_.header_timeout_s));
  HttpRequest req;
  HttpResponse resp;
  start_reading(fd);
  const Read got = read_request(fd, opt_, header_deadline, deadline, req, resp);
  const bool head_only = req.method == "HEAD";  // a HEAD answer has no body, whatever its status
  if (got != Read::complete) {
    if (got == Read::ended && stopping_) resp = stopping_response();
    answer(fd, resp, head_only);  // still registered: stopping ends its discard too
    done_reading(fd);             // before the close: the number may be reused at once
    ::close(fd);
    return;
  }
  done_reading(fd);
  // the request is read before waiting for a slot, so that a refusal reaches the client
  // (closing a socket with unread input resets the connection)
  if (!acquire_slot()) {
    resp = stopping_ ? stopping_response()
                     : HttpResponse{503, json_error("busy: " + std::to_string(opt_.max_connections) + " requests in flight for over " +
                                                    seconds(opt_.queue_timeout_s) + " s; retry")};
  } else {
    req.client_gone = [fd] { return peer_closed(fd); };
    try {
      resp = handler_(req);
    } catch (const std::exception& e) {
      resp = {500, json_error(std::string("internal error: ") + e.what())};
    } catch (...) {
      resp = {500, json_error("internal error")};
    }
    req.client_gone = nullptr;
    release_slot();
  }
  answer(fd, resp, head_only);
  ::close(fd);
}

void HttpServer::serve(const std::atomic<bool>& stop) {
  const int64_t limit = static_cast<int64_t>(opt_.max_connections) + opt_.max_queue;  // no int overflow
  while (!stop.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // out of descriptors or memory: the connection stays in the backlog, and retrying at
      // once would spin until some are released
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    if (connections_.load() >= limit) {
      // (connections being read count: a slow client holds its place until the 408 deadline,
      // one that has not sent its header until header_timeout_s)
      refuse(fd, {503, json_error("busy: " + std::to_string(limit) + " connections open (" + std::to_string(opt_.max_connections) +
                                  " handled at once, " + std::to_string(opt_.max_queue) + " more read or queued); retry")});
      continue;
    }
    ++connections_;  // handle() gives it up once answered
    ++threads_;
    try {
      std::thread([this, fd] {
        handle(fd);
        --threads_;  // last: serve() may return (and the server go) once no thread is left
      }).detach();
    } catch (const std::system_error& e) {  // no thread to be had (resource limits)
      --connections_;
      --threads_;
      refuse(fd, {503, json_error(std::string("busy: cannot start a thread for the connection (") + e.what() + "); retry")});
    }
  }
  // new clients are refused from now on, rather than left in the backlog during the drain
  ::close(listen_fd_);
  listen_fd_ = -1;
  begin_stop();
  while (threads_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

HttpResponse http_call(int port, const std::string& method, const std::string& path, const std::string& body,
                       double timeout_s, const std::string& raw) {
  HttpResponse out;
  out.status = -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    out.body = std::strerror(errno);
    return out;
  }
  set_timeout(fd, timeout_s);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    out.body = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return out;
  }
  const std::string req = !raw.empty() ? raw
                                       : method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                                                "Content-Length: " + std::to_string(body.size()) +
                                             "\r\nConnection: close\r\n\r\n" + body;
  errno = 0;
  if (!send_all(fd, req, deadline_in(timeout_s))) {
    out.body = std::string("send: ") + (errno ? std::strerror(errno) : "timed out");
    ::close(fd);
    return out;
  }
  // a request cut short must end; a well-formed one must not look like a client that hung up
  if (!raw.empty()) ::shutdown(fd, SHUT_WR);
  std::string buf;
  char chunk[8192];
  for (;;) {
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t head_end = buf.find("\r\n\r\n");
  if (buf.compare(0, 9, "HTTP/1.1 ") != 0 || head_end == std::string::npos) {
    out.body = "malformed response: '" + buf.substr(0, 200) + "'";
    return out;
  }
  out.status = std::atoi(buf.c_str() + 9);
  out.body = buf.substr(head_end + 4);
  const std::string head = buf.substr(0, head_end);
  for (size_t at = head.find("\r\n"); at != std::string::npos;) {
    const size_t next = head.find("\r\n", at + 2);
    const std::string h = head.substr(at + 2, next == std::string::npos ? std::string::npos : next - at - 2);
    at = next;
    const size_t colon = h.find(':');
    if (colon != std::string::npos) out.headers[lower(trim(h.substr(0, colon)))] = trim(h.substr(colon + 1));
  }
  if (const auto ct = out.headers.find("content-type"); ct != out.headers.end()) out.content_type = ct->second;
  return out;
}

}  // namespace cbtm
