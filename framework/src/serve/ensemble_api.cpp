// The JSON endpoints of `cbtm serve` (see ensemble_api.h).
#include "cbtm/serve/ensemble_api.h"

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cbtm/error.h"
#include "cbtm/serve/run_ensemble.h"

namespace cbtm {

namespace {

constexpr size_t kMaxTexts = 256;      // texts per /score request
constexpr int64_t kMaxTokens = 4096;   // /generate's max_tokens at most

struct BadRequest : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Token pieces may split a UTF-8 character: invalid bytes are sent as U+FFFD.
HttpResponse reply(int status, const nlohmann::json& j) {
  return {status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
}

nlohmann::json parse_object(const HttpRequest& req, const std::set<std::string>& allowed) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::exception& e) {  // parse errors, and numbers out of range (1e400)
    throw BadRequest(std::string("the request body is not JSON: ") + e.what());
  }
  if (!j.is_object()) throw BadRequest("the request body must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!allowed.count(it.key())) {
      std::string known;
      for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
      throw BadRequest("unknown key '" + it.key() + "' (" + req.path + " takes: " + known + ")");
    }
  return j;
}

std::string get_string(const nlohmann::json& j, const std::string& key) {
  if (!j.contains(key)) throw BadRequest("'" + key + "' (a string) is required");
  if (!j[key].is_string()) throw BadRequest("'" + key + "' must be a string");
  return j[key].get<std::string>();
}

template <class T>
T get_number(const nlohmann::json& j, const std::string& key, T def) {
  if (!j.contains(key)) return def;
  const auto& v = j[key];
  if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) throw BadRequest("'" + key + "' must be an integer");
  } else {
    if (!v.is_number()) throw BadRequest("'" + key + "' must be a number");
  }
  return v.get<T>();
}

HttpResponse handle(const EnsembleBackend& ens, const HttpRequest& req) {
  const bool known = req.path == "/health" || req.path == "/score" || req.path == "/generate";
  if (!known) return reply(404, {{"error", "no endpoint " + req.path + " (try GET /health, POST /score, POST /generate)"}});
  // HEAD as GET: the server sends the headers of the answer without its body
  const bool get = req.path == "/health";
  if (get ? (req.method != "GET" && req.method != "HEAD") : req.method != "POST") {
    const std::string want = get ? "GET" : "POST";
    HttpResponse r = reply(405, {{"error", req.path + " takes " + want + ", not " + req.method}});
    r.headers["Allow"] = get ? "GET, HEAD" : "POST";
    return r;
  }
  if (req.path == "/health") {
    nlohmann::json j = ens.info();
    j["status"] = "ok";
    return reply(200, j);
  }
  if (req.path == "/score") {
    const auto j = parse_object(req, {"text", "texts", "tokens"});
    bool tokens = false;
    if (j.contains("tokens")) {
      if (!j["tokens"].is_boolean()) throw BadRequest("'tokens' must be true or false");
      tokens = j["tokens"].get<bool>();
    }
    auto score_json = [&](const TextScore& s) {
      nlohmann::json out = {{"tokens", s.tokens}, {"nll", s.nll}, {"ppl", s.ppl},
                            {"bits_per_byte", s.bytes ? s.nll / (static_cast<double>(s.bytes) * std::log(2.0)) : 0.0},
                            {"mean_active_experts", s.mean_active_experts}};
      if (tokens) {
        out["token_logprobs"] = s.logp;
        out["token_pieces"] = s.pieces;
      }
      return out;
    };
    if (j.contains("text") == j.contains("texts")) throw BadRequest("give exactly one of 'text' (a string) or 'texts' (a list of strings)");
    if (j.contains("text")) return reply(200, score_json(ens.score(get_string(j, "text"))));
    const auto& list = j["texts"];
    if (!list.is_array() || list.empty() || list.size() > kMaxTexts)
      throw BadRequest("'texts' must be a list of 1 to " + std::to_string(kMaxTexts) + " strings");
    std::vector<std::string> texts;
    for (size_t i = 0; i < list.size(); ++i) {
      if (!list[i].is_string()) throw BadRequest("'texts'[" + std::to_string(i) + "] must be a string");
      texts.push_back(list[i].get<std::string>());
    }
    const auto scores = ens.score_many(texts);
    nlohmann::json results = nlohmann::json::array();
    double nll = 0;
    int64_t n = 0, bytes = 0;
    for (const auto& s : scores) {
      results.push_back(score_json(s));
      nll += s.nll;
      n += s.tokens;
      bytes += s.bytes;
    }
    return reply(200, {{"results", results}, {"tokens", n}, {"nll", nll}, {"ppl", n ? std::exp(nll / static_cast<double>(n)) : 0.0},
                       {"bits_per_byte", bytes ? nll / (static_cast<double>(bytes) * std::log(2.0)) : 0.0}});
  }
  const auto j = parse_object(req, {"prompt", "max_tokens", "temperature", "top_p", "seed"});
  GenerateOptions o;
  const std::string prompt = get_string(j, "prompt");
  o.max_tokens = get_number<int64_t>(j, "max_tokens", o.max_tokens);
  o.temperature = get_number<double>(j, "temperature", o.temperature);
  o.top_p = get_number<double>(j, "top_p", o.top_p);
  const int64_t seed = get_number<int64_t>(j, "seed", 0);
  if (o.max_tokens < 0 || o.max_tokens > kMaxTokens) throw BadRequest("'max_tokens' must be in [0, " + std::to_string(kMaxTokens) + "]");
  if (o.temperature < 0) throw BadRequest("'temperature' must be >= 0");
  if (!(o.top_p > 0 && o.top_p <= 1)) throw BadRequest("'top_p' must be in (0, 1]");
  o.seed = static_cast<uint64_t>(seed);
  o.cancelled = req.client_gone;  // checked between tokens: nobody waits for the rest
  const Generation g = ens.generate(prompt, o);
  return reply(200, {{"text", g.text}, {"tokens", g.tokens.size()}, {"stop_reason", g.stop_reason}, {"experts", g.experts}});
}

}  // namespace

HttpHandler ensemble_api(EnsembleBackend backend) {
  return [ens = std::move(backend)](const HttpRequest& req) -> HttpResponse {
    try {
      return handle(ens, req);
    } catch (const BadRequest& e) {
      return reply(400, {{"error", e.what()}});
    } catch (const UnprocessableRequest& e) {
      return reply(422, {{"error", e.what()}});
    } catch (const ShuttingDown& e) {  // not run, or stopped early: the server is stopping
      return reply(503, {{"error", e.what()}});
    } catch (const GenerationCancelled& e) {  // its client hung up: the answer reaches nobody
      return reply(503, {{"error", e.what()}});
    } catch (const std::exception& e) {  // the ensemble failed (a model, a router): not the client's doing
      spdlog::error("[serve] {} {}: internal error: {}", req.method, req.path, e.what());
      return reply(500, {{"error", std::string("internal error: ") + e.what()}});
    }
  };
}

HttpHandler ensemble_api(RunEnsemble& ens) {
  EnsembleBackend b;
  b.info = [&ens] { return ens.info(); };
  b.score = [&ens](const std::string& text) { return ens.score(text); };
  b.score_many = [&ens](const std::vector<std::string>& texts) { return ens.score_many(texts); };
  b.generate = [&ens](const std::string& prompt, const GenerateOptions& o) {
    try {
      return ens.generate(prompt, o);
    } catch (const PromptTooLong& e) {  // the one Error of a generation the request causes
      throw UnprocessableRequest(e.what());
    }
  };
  return ensemble_api(std::move(b));
}

}  // namespace cbtm
