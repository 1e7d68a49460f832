// The JSON API's answers to bad requests and failures, over a fake ensemble: 400 for what the
// client sent wrong (numbers out of range included), 405 with Allow, 422 for a request the
// ensemble cannot do, 503 when the server is shutting down or the client has gone, 500 for the
// ensemble's own failures.
#include "support/catch.h"

#include <cstdint>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "cbtm/error.h"
#include "cbtm/serve/ensemble_api.h"

namespace {

// Texts and prompts name what the fake does: "fail" throws cbtm::Error (a model or router
// failing), "crash" std::runtime_error, "long" (prompts) UnprocessableRequest, "stopping"
// ShuttingDown; "wait" asks the options' cancel check before each of up to 1000 tokens.
cbtm::EnsembleBackend fake() {
  cbtm::EnsembleBackend b;
  b.info = [] { return nlohmann::json{{"ensemble", "fake"}}; };
  b.score = [](const std::string& text) {
    if (text == "fail") throw cbtm::Error("router returned weights for 3 experts; the ensemble has 2");
    if (text == "crash") throw std::runtime_error("bad_alloc, say");
    cbtm::TextScore s;
    s.tokens = 2;
    s.nll = 1;
    s.ppl = 1.6487;
    s.bytes = 4;
    return s;
  };
  b.score_many = [b](const std::vector<std::string>& texts) {
    std::vector<cbtm::TextScore> out;
    for (const auto& t : texts) out.push_back(b.score(t));
    return out;
  };
  b.generate = [](const std::string& prompt, const cbtm::GenerateOptions& o) {
    if (prompt == "long") throw cbtm::UnprocessableRequest("the prompt has 300 tokens; the model's length is 64");
    if (prompt == "fail") throw cbtm::Error("mix_next_token: no expert has weight");
    if (prompt == "stopping") throw cbtm::ShuttingDown(cbtm::kShuttingDownNotRun);
    if (prompt == "wait")
      for (int64_t t = 0; t < 1000; ++t)
        if (o.cancelled && o.cancelled()) throw cbtm::GenerationCancelled("generation cancelled after " + std::to_string(t) + " tokens");
    cbtm::Generation g;
    g.text = std::string(static_cast<size_t>(o.max_tokens), 'x');
    g.stop_reason = "max_tokens";
    return g;
  };
  return b;
}

const cbtm::HttpHandler& api() {
  static const cbtm::HttpHandler handler = cbtm::ensemble_api(fake());
  return handler;
}

cbtm::HttpResponse call(const std::string& method, const std::string& path, const std::string& body = "") {
  cbtm::HttpRequest r;
  r.method = method;
  r.path = path;
  r.body = body;
  return api()(r);
}

// The answer's "error" (the body must be JSON).
std::string error_of(const cbtm::HttpResponse& r) { return nlohmann::json::parse(r.body).value("error", ""); }

}  // namespace

TEST_CASE("ensemble api: well-formed requests reach the ensemble") {
  auto r = call("GET", "/health");
  CHECK(r.status == 200);
  CHECK(nlohmann::json::parse(r.body)["status"] == "ok");
  r = call("POST", "/score", R"({"texts": ["a", "b"]})");
  CHECK(r.status == 200);
  CHECK(nlohmann::json::parse(r.body)["tokens"] == 4);
  r = call("POST", "/generate", R"({"prompt": "a", "max_tokens": 4096})");
  CHECK(r.status == 200);
  CHECK(nlohmann::json::parse(r.body)["text"].get<std::string>().size() == 4096);
}

TEST_CASE("ensemble api: numbers out of range - bad values and wrong methods are the client's errors") {
  for (const char* body : {R"({"text": "a", "tokens": 1e400})", R"({"text": -1e999})"}) {
    auto r = call("POST", "/score", body);
    INFO(body << " -> " << r.body);
    CHECK(r.status == 400);
    CHECK(error_of(r).find("not JSON") != std::string::npos);
  }
  auto r = call("POST", "/generate", R"({"prompt": "a", "temperature": 1e400})");
  CHECK(r.status == 400);
  r = call("POST", "/generate", R"({"prompt": "a", "max_tokens": 4097})");
  CHECK(r.status == 400);
  CHECK(error_of(r).find("[0, 4096]") != std::string::npos);
  r = call("GET", "/score");
  CHECK(r.status == 405);
  CHECK(r.headers["Allow"] == "POST");
  r = call("POST", "/health");
  CHECK(r.status == 405);
  CHECK(r.headers["Allow"] == "GET, HEAD");
  CHECK(call("GET", "/nope").status == 404);
}

TEST_CASE("ensemble api: a request the ensemble cannot do gets 422 - the ensemble's own failures get 500") {
  auto r = call("POST", "/generate", R"({"prompt": "long"})");
  CHECK(r.status == 422);
  CHECK(error_of(r).find("the prompt has 300 tokens") != std::string::npos);
  r = call("POST", "/generate", R"({"prompt": "fail"})");
  CHECK(r.status == 500);
  CHECK(error_of(r).find("internal error: mix_next_token") != std::string::npos);
  r = call("POST", "/score", R"({"text": "fail"})");
  CHECK(r.status == 500);
  r = call("POST", "/score", R"({"texts": ["a", "crash"]})");
  CHECK(r.status == 500);
  CHECK(error_of(r).find("bad_alloc, say") != std::string::npos);
}

TEST_CASE("ensemble api: HEAD /health - 503 when the server is shutting down - a client that hung up cancels its generation") {
  auto r = call("HEAD", "/health");  // the server drops the body
  CHECK(r.status == 200);
  r = call("HEAD", "/score");
  CHECK(r.status == 405);
  CHECK(r.headers["Allow"] == "POST");
  r = call("POST", "/generate", R"({"prompt": "stopping"})");
  CHECK(r.status == 503);
  CHECK(error_of(r).find("shutting down") != std::string::npos);
  // the request's client_gone is the generation's cancel check
  int asked = 0;
  cbtm::HttpRequest req;
  req.method = "POST";
  req.path = "/generate";
  req.body = R"({"prompt": "wait"})";
  req.client_gone = [&asked] { return ++asked > 3; };
  r = api()(req);
  CHECK(r.status == 503);
  CHECK(error_of(r).find("cancelled after 3 tokens") != std::string::npos);
  CHECK(asked == 4);
  req.client_gone = nullptr;  // none: nothing to ask, the generation runs
  r = api()(req);
  CHECK(r.status == 200);
}
