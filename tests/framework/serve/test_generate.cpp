// Generation with a routed ensemble (generate.h): routing sessions and incremental expert
// scores give exactly what re-routing and re-scoring the whole text at every token gives.
#include "support/catch.h"

#include <cmath>
#include <memory>
#include <random>

#include "cbtm/error.h"
#include "cbtm/clusterer.h"
#include "cbtm/embedder.h"
#include "cbtm/router.h"
#include "cbtm/serve/generate.h"
#include "support/fewshot_toys.h"
#include "support/routing_toys.h"
#include "support/test_support.h"

namespace {

using cbtm::test::ByteTokenizer;

// Next-token distribution over the letters a-e and </s> (everything else ~ -30), a fixed
// function of the expert's salt, the last token and the length: different experts disagree.
class LetterLM : public cbtm::LanguageModel {
 public:
  explicit LetterLM(int salt) : salt_(salt) {}
  std::vector<std::vector<float>> score(const std::vector<std::vector<int32_t>>& seqs) override {
    std::vector<std::vector<float>> out;
    for (const auto& s : seqs) {
      ++score_calls;
      scored_tokens += static_cast<int64_t>(s.size());
      std::vector<float> lp;
      for (size_t t = 1; t < s.size(); ++t) lp.push_back(dist(std::vector<int32_t>(s.begin(), s.begin() + t))[s[t]]);
      out.push_back(lp);
    }
    return out;
  }
  std::vector<std::vector<float>> next_token_log_probs(const std::vector<std::vector<int32_t>>& seqs) override {
    std::vector<std::vector<float>> out;
    for (const auto& s : seqs) out.push_back(dist(s));
    return out;
  }
  int64_t max_length() const override { return 64; }
  int64_t parameters() const override { return 0; }
  int score_calls = 0;
  int64_t scored_tokens = 0;

 private:
  std::vector<float> dist(const std::vector<int32_t>& ctx) const {
    std::vector<double> logit(259, -30.0);
    const double last = ctx.back(), len = static_cast<double>(ctx.size());
    for (int32_t v : {2, 'a' + 3, 'b' + 3, 'c' + 3, 'd' + 3, 'e' + 3})
      logit[v] = 2.0 * std::sin(0.7 * salt_ * (v + 1) + 0.13 * last + 0.29 * len) - (v == 2 ? 1.5 : 0.0);
    double m = -1e30, s = 0;
    for (double x : logit) m = std::max(m, x);
    for (double x : logit) s += std::exp(x - m);
    std::vector<float> lp(259);
    for (size_t v = 0; v < lp.size(); ++v) lp[v] = static_cast<float>(logit[v] - m - std::log(s));
    return lp;
  }
  int salt_;
};

using cbtm::test::FixedCenters;
using cbtm::test::LetterEmbedder;

cbtm::Matrix identity3() {
  cbtm::Matrix c(3, 3);
  for (int j = 0; j < 3; ++j) c.at(j, j) = 1.f;
  return c;
}

// The definition: before every token, route the whole text (route() or, for a scoring router,
// route_scored() on every expert's scores of the whole text), run the weighted experts (all of
// them for a scoring router) on the whole text, mix and sample.
cbtm::Generation reference(std::vector<cbtm::LanguageModel*> experts, const cbtm::Router& router, const std::string& prompt,
                           const cbtm::GenerateOptions& opt) {
  ByteTokenizer tok;
  std::vector<int32_t> row = {2};
  for (int32_t t : tok.encode(prompt)) row.push_back(t);
  std::vector<std::string> pieces = {""};
  for (size_t t = 1; t < row.size(); ++t) pieces.push_back(tok.piece(row[t]));
  std::mt19937_64 rng(opt.seed);
  cbtm::Generation g;
  g.stop_reason = "max_tokens";
  const size_t k = experts.size();
  for (int64_t step = 0; step < opt.max_tokens; ++step) {
    cbtm::Matrix w;
    if (router.needs_expert_scores()) {
      std::vector<std::vector<float>> lp(k);
      for (size_t j = 0; j < k; ++j) {
        lp[j] = row.size() >= 2 ? experts[j]->score({row})[0] : std::vector<float>{};
        lp[j].push_back(0.f);
      }
      w = router.route_scored({}, pieces, lp);
    } else {
      w = router.route({}, pieces);
    }
    std::vector<float> last(w.row(w.rows - 1), w.row(w.rows - 1) + k);
    std::vector<std::vector<float>> next(k);
    std::vector<int32_t> ran;
    for (size_t j = 0; j < k; ++j)
      if (last[j] > 0.f || router.needs_expert_scores()) {
        next[j] = experts[j]->next_token_log_probs({row})[0];
        ran.push_back(static_cast<int32_t>(j));
      }
    const int32_t t = cbtm::sample_token(cbtm::mix_next_token(next, last), opt.temperature, opt.top_p, rng);
    if (opt.stop_at_eos && t == 2) {
      g.stop_reason = "eos";
      break;
    }
    row.push_back(t);
    g.tokens.push_back(t);
    g.experts.push_back(ran);
    pieces.push_back(tok.piece(t));
  }
  g.text = tok.decode(g.tokens);
  return g;
}

std::unique_ptr<cbtm::Router> make_router(const std::string& yaml, const cbtm::RoutingContext& ctx) {
  cbtm::ConfigNode n;
  n.node = YAML::Load(yaml);
  n.path = "eval.ensembles.x";
  auto r = cbtm::test::plugins().registry().create<cbtm::Router>(n);
  r->bind(ctx);
  return r;
}

}  // namespace

TEST_CASE("generate: routing sessions and incremental scores give what re-routing the whole text at every token gives") {
  LetterLM e0(1), e1(2), e2(3);
  std::vector<cbtm::LanguageModel*> experts = {&e0, &e1, &e2};
  LetterEmbedder emb;
  FixedCenters cl(identity3());
  const cbtm::RoutingContext ctx{&emb, &cl, 3};
  ByteTokenizer tok;
  for (const std::string yaml :
       {"{type: cluster_distance, temperature: 0.3, top_k: 1}", "{type: cluster_distance, temperature: 0.3, top_k: 2, freeze_after: 0.5}",
        "{type: cluster_distance, temperature: 0.3, top_k: 1, fix_experts_after: 4}", "{type: cluster_distance, temperature: 1.0}",
        "{type: uniform}", "{type: cached_prior, calibration_docs: 0}", "{type: cached_prior, calibration_docs: 0, top_k: 1}"}) {
    auto router = make_router(yaml, ctx);
    for (uint64_t seed : {1u, 7u}) {
      cbtm::GenerateOptions opt;
      opt.max_tokens = 25;
      opt.seed = seed;
      opt.temperature = seed == 7 ? 0.0 : 1.0;
      INFO(yaml << ", seed " << seed);
      const cbtm::Generation want = reference(experts, *router, "ab", opt);
      const cbtm::Generation got = cbtm::generate(experts, *router, tok, 64, "ab", opt);
      CHECK(got.tokens == want.tokens);
      CHECK(got.experts == want.experts);
      CHECK(got.stop_reason == want.stop_reason);
      CHECK(got.text == want.text);
    }
  }
}

TEST_CASE("generate: a scoring router's experts score the prompt once, then read each new token from their predictions") {
  LetterLM e0(1), e1(2);
  std::vector<cbtm::LanguageModel*> experts = {&e0, &e1};
  ByteTokenizer tok;
  auto router = make_router("{type: cached_prior, calibration_docs: 0}", {nullptr, nullptr, 2});
  cbtm::GenerateOptions opt;
  opt.max_tokens = 20;
  opt.stop_at_eos = false;
  const auto g = cbtm::generate(experts, *router, tok, 64, "abc", opt);
  CHECK(g.tokens.size() == 20);
  CHECK(e0.score_calls == 1);  // the prompt, [</s> a b c]
  CHECK(e0.scored_tokens == 4);
  CHECK(e1.score_calls == 1);
  for (const auto& ran : g.experts) CHECK(ran == std::vector<int32_t>{0, 1});
}

TEST_CASE("Router::session: the default routes the pieces so far - a scoring router has none") {
  // uniform has no session of its own: the default pushes through route()
  auto uniform = make_router("{type: uniform}", {nullptr, nullptr, 4});
  auto s = uniform->session({});
  for (const std::string p : {"", "x", "yz"}) CHECK(s->push(p) == std::vector<float>(4, 0.25f));
  auto prior = make_router("{type: cached_prior, calibration_docs: 0}", {nullptr, nullptr, 2});
  CHECK_THROWS_WITH(prior->session({}), ContainsText("route_scored"));
}

TEST_CASE("generate: bad options and a prompt that leaves no room fail clearly") {
  LetterLM e0(1);
  std::vector<cbtm::LanguageModel*> experts = {&e0};
  ByteTokenizer tok;
  auto router = make_router("{type: uniform}", {nullptr, nullptr, 1});
  cbtm::GenerateOptions opt;
  opt.top_p = 0;
  CHECK_THROWS_WITH(cbtm::generate(experts, *router, tok, 64, "a", opt), ContainsText("top_p"));
  opt = {};
  CHECK_THROWS_WITH(cbtm::generate(experts, *router, tok, 4, "abc", opt), ContainsText("3 tokens"));
  auto two = make_router("{type: uniform}", {nullptr, nullptr, 2});
  CHECK_THROWS_WITH(cbtm::generate(experts, *two, tok, 64, "a", opt), ContainsText("2 experts"));
}

TEST_CASE("generate: a cancel callback asked before the prompt and every token stops the generation") {
  LetterLM e0(1);
  std::vector<cbtm::LanguageModel*> experts = {&e0};
  ByteTokenizer tok;
  auto router = make_router("{type: uniform}", {nullptr, nullptr, 1});
  cbtm::GenerateOptions opt;
  opt.max_tokens = 20;
  opt.stop_at_eos = false;
  int asked = 0;
  opt.cancelled = [&asked] { return ++asked > 3; };  // yes on the 4th question: before the 3rd token
  CHECK_THROWS_AS(cbtm::generate(experts, *router, tok, 64, "ab", opt), cbtm::GenerationCancelled);
  CHECK(asked == 4);
  asked = 0;
  CHECK_THROWS_WITH(cbtm::generate(experts, *router, tok, 64, "ab", opt), ContainsText("cancelled after 2 tokens"));
  opt.cancelled = [] { return false; };
  CHECK(cbtm::generate(experts, *router, tok, 64, "ab", opt).tokens.size() == 20);
}
