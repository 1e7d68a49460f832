// The HTTP server and client: round trips, concurrent clients, malformed requests, limits.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "cbtm/error.h"
#include "cbtm/serve/http_server.h"

namespace {

struct Running {
  cbtm::HttpServer server;
  std::atomic<bool> stop{false};
  std::thread thread;
  Running(const cbtm::HttpServerOptions& o, cbtm::HttpHandler h) : server(o, std::move(h)), thread([this] { server.serve(stop); }) {}
  ~Running() {
    stop = true;
    thread.join();
  }
};

cbtm::HttpResponse echo(const cbtm::HttpRequest& r) {
  if (r.path == "/throw") throw std::runtime_error("boom");
  if (r.path == "/slow") std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return {200, r.method + " " + r.path + " " + r.body, "text/plain"};
}

}  // namespace

TEST_CASE("http server: round trip, query strings, binary-safe bodies, handler errors") {
  Running s({}, echo);
  REQUIRE(s.server.port() > 0);
  auto r = cbtm::http_call(s.server.port(), "POST", "/a?x=1", std::string("b\0c", 3));
  CHECK(r.status == 200);
  CHECK(r.body == std::string("POST /a b\0c", 11));
  CHECK(r.content_type == "text/plain");
  r = cbtm::http_call(s.server.port(), "GET", "/throw");
  CHECK(r.status == 500);
  CHECK(r.body.find("boom") != std::string::npos);
  CHECK(r.content_type == "application/json");
}

TEST_CASE("http server: malformed requests get 4xx without reaching the handler") {
  std::atomic<int> calls{0};
  cbtm::HttpServerOptions o;
  o.max_body = 100;
  o.read_timeout_s = 0.5;
  Running s(o, [&](const cbtm::HttpRequest& r) {
    ++calls;
    return echo(r);
  });
  const int p = s.server.port();
  CHECK(cbtm::http_call(p, "", "", "", 10, "NONSENSE\r\n\r\n").status == 400);
  CHECK(cbtm::http_call(p, "", "", "", 10, "GET / HTTP/1.1\r\nno colon here\r\n\r\n").status == 400);
  CHECK(cbtm::http_call(p, "", "", "", 10, "POST / HTTP/1.1\r\n\r\n").status == 411);
  CHECK(cbtm::http_call(p, "", "", "", 10, "POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\n").status == 400);
  CHECK(cbtm::http_call(p, "POST", "/", std::string(101, 'x')).status == 413);
  // a body shorter than announced (the client closes): 400 after the read, not a hang
  auto r = cbtm::http_call(p, "", "", "", 10, "POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\nshort");
  CHECK(r.status == 400);
  CHECK(r.body.find("5 of 50") != std::string::npos);
  CHECK(calls == 0);
  CHECK(cbtm::http_call(p, "POST", "/", std::string(100, 'x')).status == 200);
}

TEST_CASE("http server: concurrent clients each get their own answer, queued beyond max_connections, 503 after the queue timeout") {
  cbtm::HttpServerOptions o;
  o.max_connections = 4;
  o.max_queue = 12;
  o.queue_timeout_s = 0.1;
  Running s(o, echo);
  const int p = s.server.port();
  std::vector<std::thread> t;
  std::vector<std::string> got(16);
  for (int i = 0; i < 16; ++i)
    t.emplace_back([&, i] {
      auto r = cbtm::http_call(p, "POST", "/c", std::to_string(i));
      got[i] = r.status == 200 ? r.body : "";
    });
  for (auto& x : t) x.join();
  int ok = 0;
  for (int i = 0; i < 16; ++i) ok += got[i] == "POST /c " + std::to_string(i);
  CHECK(ok == 16);  // quick requests: those beyond 4 waited for a slot
  // hold 4 slow requests (300 ms, over the 100 ms queue timeout): a fifth waits, then gets 503
  std::vector<std::thread> slow;
  std::atomic<int> slow_ok{0};
  for (int i = 0; i < 4; ++i)
    slow.emplace_back([&] { slow_ok += cbtm::http_call(p, "GET", "/slow").status == 200; });
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  const int busy = cbtm::http_call(p, "GET", "/x").status;
  for (auto& x : slow) x.join();
  CHECK(slow_ok == 4);
  CHECK(busy == 503);
  CHECK(cbtm::http_call(p, "GET", "/x").status == 200);
}

TEST_CASE("http server: a port in use or a bad address fails clearly") {
  Running s({}, echo);
  cbtm::HttpServerOptions o;
  o.port = s.server.port();
  CHECK_THROWS_WITH(cbtm::HttpServer(o, echo), Catch::Contains("cannot listen on 127.0.0.1:" + std::to_string(o.port)));
  o.port = 0;
  o.host = "localhost";
  CHECK_THROWS_WITH(cbtm::HttpServer(o, echo), Catch::Contains("not an IPv4 address"));
  CHECK(cbtm::http_call(1, "GET", "/").status == -1);
}
