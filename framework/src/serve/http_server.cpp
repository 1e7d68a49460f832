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
#include <cstring>
#include <mutex>
#include <thread>

#include "cbtm/error.h"

namespace cbtm {

namespace {

constexpr size_t kMaxHead = 64 * 1024;

void set_timeout(int fd, double s) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(s);
  tv.tv_usec = static_cast<suseconds_t>((s - static_cast<double>(tv.tv_sec)) * 1e6);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string json_error(const std::string& msg) {
  std::string out = "{\"error\": \"";
  for (char c : msg) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"}";
}

std::string format_response(const HttpResponse& r) {
  std::string s = "HTTP/1.1 " + std::to_string(r.status) + " " + http_reason(r.status) + "\r\n";
  s += "Content-Type: " + r.content_type + "\r\n";
  s += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  s += "Connection: close\r\n\r\n";
  return s + r.body;
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

// Reads one request; on a protocol error fills `error` with the response to send.
bool read_request(int fd, const HttpServerOptions& opt, HttpRequest& req, HttpResponse& error) {
  std::string buf;
  char chunk[8192];
  size_t head_end = std::string::npos;
  while (head_end == std::string::npos) {
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = {400, json_error(buf.empty() ? "empty request" : "the request ended inside its header (or timed out)")};
      return false;
    }
    buf.append(chunk, static_cast<size_t>(n));
    head_end = buf.find("\r\n\r\n");
    if (head_end == std::string::npos && buf.size() > kMaxHead) {
      error = {431, json_error("request header over 64 KiB")};
      return false;
    }
  }
  const std::string head = buf.substr(0, head_end);
  std::string body = buf.substr(head_end + 4);
  size_t line_end = head.find("\r\n");
  const std::string line = head.substr(0, line_end);
  const size_t s1 = line.find(' '), s2 = line.rfind(' ');
  if (s1 == std::string::npos || s2 == s1 || line.compare(s2 + 1, 5, "HTTP/") != 0) {
    error = {400, json_error("malformed request line: '" + line.substr(0, 200) + "'")};
    return false;
  }
  req.method = line.substr(0, s1);
  req.path = line.substr(s1 + 1, s2 - s1 - 1);
  if (const size_t q = req.path.find('?'); q != std::string::npos) req.path.resize(q);
  while (line_end != std::string::npos) {
    const size_t next = head.find("\r\n", line_end + 2);
    const std::string h = head.substr(line_end + 2, next == std::string::npos ? std::string::npos : next - line_end - 2);
    line_end = next;
    if (h.empty()) continue;
    const size_t colon = h.find(':');
    if (colon == std::string::npos) {
      error = {400, json_error("malformed header line: '" + h.substr(0, 200) + "'")};
      return false;
    }
    req.headers[lower(trim(h.substr(0, colon)))] = trim(h.substr(colon + 1));
  }
  size_t length = 0;
  const auto cl = req.headers.find("content-length");
  if (cl != req.headers.end()) {
    const std::string& v = cl->second;
    if (v.empty() || v.size() > 15 || v.find_first_not_of("0123456789") != std::string::npos) {
      error = {400, json_error("bad Content-Length: '" + v.substr(0, 40) + "'")};
      return false;
    }
    length = std::stoull(v);
  } else if (req.method == "POST" || req.method == "PUT") {
    error = {411, json_error("a " + req.method + " request needs a Content-Length header")};
    return false;
  }
  if (req.headers.count("transfer-encoding")) {
    error = {501, json_error("Transfer-Encoding is not supported; send a Content-Length body")};
    return false;
  }
  if (length > opt.max_body) {
    error = {413, json_error("request body of " + std::to_string(length) + " bytes is over the limit of " +
                             std::to_string(opt.max_body))};
    return false;
  }
  while (body.size() < length) {
    const ssize_t n = ::recv(fd, chunk, std::min(sizeof chunk, length - body.size()), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = {400, json_error("the body ended after " + std::to_string(body.size()) + " of " + std::to_string(length) +
                               " bytes (or timed out)")};
      return false;
    }
    body.append(chunk, static_cast<size_t>(n));
  }
  body.resize(length);
  req.body = std::move(body);
  return true;
}

}  // namespace

const char* http_reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

HttpServer::HttpServer(const HttpServerOptions& opt, HttpHandler handler) : opt_(opt), handler_(std::move(handler)) {
  if (opt.max_connections < 1) throw Error("serve: max_connections must be >= 1");
  if (opt.max_queue < 0) throw Error("serve: max_queue must be >= 0");
  if (!(opt.queue_timeout_s >= 0)) throw Error("serve: queue_timeout_s must be >= 0");
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

bool HttpServer::acquire_slot() {
  std::unique_lock<std::mutex> lock(slot_mu_);
  const bool got = slot_cv_.wait_for(lock, std::chrono::duration<double>(opt_.queue_timeout_s),
                                     [this] { return active_ < opt_.max_connections; });
  if (got) ++active_;
  return got;
}

void HttpServer::release_slot() {
  {
    std::lock_guard<std::mutex> lock(slot_mu_);
    --active_;
  }
  slot_cv_.notify_one();
}

void HttpServer::handle(int fd) {
  set_timeout(fd, opt_.read_timeout_s);
  HttpRequest req;
  HttpResponse resp;
  // the request is read before waiting for a slot, so that a refusal reaches the client
  // (closing a socket with unread input resets the connection)
  if (read_request(fd, opt_, req, resp)) {
    if (!acquire_slot()) {
      resp = {503, json_error("busy: " + std::to_string(opt_.max_connections) + " requests in flight for over " +
                              std::to_string(opt_.queue_timeout_s) + " s; retry")};
    } else {
      try {
        resp = handler_(req);
      } catch (const std::exception& e) {
        resp = {500, json_error(std::string("internal error: ") + e.what())};
      }
      release_slot();
    }
  }
  send_all(fd, format_response(resp));
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
  ++served_;
}

void HttpServer::serve(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, 100);
    if (r <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (connections_.load() >= opt_.max_connections + opt_.max_queue) {
      set_timeout(fd, 1);
      send_all(fd, format_response({503, json_error("busy: " + std::to_string(opt_.max_connections) +
                                                    " requests in flight and " + std::to_string(opt_.max_queue) +
                                                    " waiting; retry")}));
      ::close(fd);
      continue;
    }
    ++connections_;
    std::thread([this, fd] {
      handle(fd);
      --connections_;
    }).detach();
  }
  while (connections_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
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
  if (!send_all(fd, req)) {
    out.body = std::string("send: ") + std::strerror(errno);
    ::close(fd);
    return out;
  }
  ::shutdown(fd, SHUT_WR);
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
  const size_t ct = lower(buf.substr(0, head_end)).find("content-type:");
  if (ct != std::string::npos) out.content_type = trim(buf.substr(ct + 13, buf.find("\r\n", ct) - ct - 13));
  return out;
}

}  // namespace cbtm
