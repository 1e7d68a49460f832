// The "opt" model-architecture plugin, loaded from the plugin directory.

#include "support/catch_torch.h"  // first: see the header

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>

#include "cbtm/fs.h"
#include "cbtm/language_model.h"
#include "cbtm/runtime.h"
#include "opt/opt.h"
#include "opt/opt_language_model.h"
#include "opt_test_util.h"
#include "support/test_support.h"

using namespace cbtm;

namespace {

std::unique_ptr<ModelArchitecture> make_arch(const std::string& yaml) {
  ConfigNode node{YAML::Load(yaml), "model", "test.yaml"};
  return test::plugins().registry().create<ModelArchitecture>(node);
}

const char* kYaml =
    "{type: opt, d_model: 32, n_layers: 2, n_heads: 4, d_ff: 64, max_positions: 24}";

/// Restores runtime().bf16 on scope exit.
struct Bf16Setting {
  bool saved = runtime().bf16;
  explicit Bf16Setting(bool on) { runtime().bf16 = on; }
  ~Bf16Setting() { runtime().bf16 = saved; }
};

/// log p(s[t] | s[<t]) for t >= 1, straight from OptLM's logits.
std::vector<float> direct_scores(models::OptLM& m, const std::vector<int32_t>& s) {
  torch::NoGradGuard g;
  const torch::Tensor tokens = torch::tensor(std::vector<int64_t>(s.begin(), s.end()));
  const torch::Tensor lp = torch::log_softmax(m->forward(tokens.unsqueeze(0))[0], -1);
  std::vector<float> out;
  for (size_t t = 1; t < s.size(); ++t) out.push_back(lp[t - 1][s[t]].item<float>());
  return out;
}

/// A fresh checkpoint of kYaml (vocabulary 50, seeded) written under `dir`, loaded.
std::unique_ptr<LanguageModel> fresh_model(const std::string& dir, uint64_t seed) {
  auto arch = make_arch(kYaml);
  arch->init_checkpoint(dir, 50, seed);
  return arch->load(dir);
}

std::vector<int32_t> seq(int n, int start) {
  std::vector<int32_t> s{2};
  for (int i = 1; i < n; ++i) s.push_back((start + 7 * i) % 50);
  return s;
}

}  // namespace

TEST_CASE("plugin 'opt' creates - loads and scores checkpoints", "[opt][plugin]") {
  Bf16Setting fp32(false);
  test::TempDir tmp("opt-plugin");
  auto arch = make_arch(kYaml);
  models::OptConfig c;
  c.vocab_size = 50;
  c.d_model = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.d_ff = 64;
  c.max_positions = 24;
  CHECK(arch->parameters(50) == models::count_parameters(c));

  arch->init_checkpoint(tmp / "ckpt", 50, 5);
  arch->init_checkpoint(tmp / "same", 50, 5);
  CHECK(read_file(tmp / "ckpt/model.safetensors") == read_file(tmp / "same/model.safetensors"));
  CHECK(models::read_config(tmp / "ckpt").d_model == 32);
  CHECK(models::read_checkpoint_extra(tmp / "ckpt")["init_seed"] == 5);

  auto lm = arch->load(tmp / "ckpt");
  CHECK(lm->max_length() == 24);
  CHECK(lm->parameters() == models::count_parameters(c));
  models::OptLM direct = models::load_checkpoint(tmp / "ckpt");

  const std::vector<std::vector<int32_t>> seqs = {seq(9, 3), seq(24, 1), {2}, seq(2, 5),
                                                  seq(17, 4), {}, seq(9, 8)};
  const auto scores = lm->score(seqs);
  REQUIRE(scores.size() == seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    INFO("sequence " << i);
    const std::vector<float> want = direct_scores(direct, seqs[i]);
    REQUIRE(scores[i].size() == (seqs[i].empty() ? 0 : seqs[i].size() - 1));
    for (size_t t = 0; t < want.size(); ++t) CHECK(scores[i][t] == Approx(want[t]).margin(1e-5));
    // ... and the same one at a time.
    const auto alone = lm->score({seqs[i]});
    for (size_t t = 0; t < want.size(); ++t) CHECK(alone[0][t] == Approx(scores[i][t]).margin(1e-5));
  }

  SECTION("too long or out-of-vocabulary sequences are Errors") {
    CHECK_THROWS_WITH(lm->score({seq(5, 1), seq(25, 1)}), ContainsText("max_positions"));
    CHECK_THROWS_WITH(lm->score({{2, 50}}), ContainsText("50"));
  }
  SECTION("the framework loads it by its config.json") {
    auto again = load_language_model(test::plugins().registry(), tmp / "ckpt");
    const auto s = again->score({seqs[0]});
    for (size_t t = 0; t < s[0].size(); ++t) CHECK(s[0][t] == Approx(scores[0][t]).margin(1e-6));
  }
  SECTION("... onto a named device (runtime.expert_devices); an absent one is an Error naming it") {
    auto on_cpu = load_language_model(test::plugins().registry(), tmp / "ckpt", "cpu");
    const auto s = on_cpu->score({seqs[0]});
    for (size_t t = 0; t < s[0].size(); ++t) CHECK(s[0][t] == Approx(scores[0][t]).margin(1e-6));
    const int64_t gpus = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    const std::string absent = "cuda:" + std::to_string(gpus);
    CHECK_THROWS_WITH(load_language_model(test::plugins().registry(), tmp / "ckpt", absent), ContainsText(absent));
  }
  SECTION("bf16 autocast stays close to fp32") {
    Bf16Setting bf16(true);
    const auto s = lm->score(seqs);
    double worst = 0;
    for (size_t i = 0; i < seqs.size(); ++i)
      for (size_t t = 0; t < s[i].size(); ++t)
        worst = std::max(worst, static_cast<double>(std::abs(s[i][t] - scores[i][t])));
    CHECK(worst < 0.05);
  }
}

TEST_CASE("plugin 'opt' score_positions: the output layer only where wanted, the same values as score()", "[opt][plugin]") {
  for (bool bf16 : {false, true}) {
    INFO("bf16 " << bf16);
    Bf16Setting setting(bf16);
    test::TempDir tmp("opt-positions");
    auto lm = fresh_model(tmp / "ckpt", 7);
    const std::vector<std::vector<int32_t>> seqs = {seq(9, 3), seq(24, 1), seq(2, 5), seq(17, 4), {2}, seq(6, 8)};
    std::vector<std::vector<uint8_t>> wanted;
    std::mt19937 rng(11);
    for (const auto& s : seqs) {
      wanted.emplace_back(s.empty() ? 0 : s.size() - 1);
      for (auto& w : wanted.back()) w = rng() % 3 == 0;
    }
    wanted[5].assign(5, 0);  // nothing wanted: the row is not run
    wanted[2] = {1};
    const auto all = lm->score(seqs);
    const auto some = lm->score_positions(seqs, wanted);
    REQUIRE(some.size() == seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i) {
      INFO("sequence " << i);
      REQUIRE(some[i].size() == all[i].size());
      for (size_t t = 0; t < all[i].size(); ++t) {
        if (wanted[i][t]) CHECK(some[i][t] == Approx(all[i][t]).margin(1e-5));
        else CHECK(std::isnan(some[i][t]));
      }
    }
    CHECK_THROWS_WITH(lm->score_positions(seqs, {}), ContainsText("position masks"));
  }
}

TEST_CASE("plugin 'opt' continuation: incremental next-token distributions equal recomputing the whole sequence", "[opt][plugin]") {
  for (bool bf16 : {false, true}) {
    INFO("bf16 " << bf16);
    Bf16Setting setting(bf16);
    test::TempDir tmp("opt-continuation");
    auto lm = fresh_model(tmp / "ckpt", 3);
    auto cont = lm->continuation();
    const int threads = at::get_num_threads();
    std::vector<int32_t> row;
    // the prompt, one token at a time four times, then three at once
    for (const std::vector<int32_t>& add : std::vector<std::vector<int32_t>>{{2, 11, 7, 30, 4}, {9}, {41}, {3}, {17}, {5, 6, 28}}) {
      row.insert(row.end(), add.begin(), add.end());
      const auto got = cont->extend(add);
      const auto want = lm->next_token_log_probs({row})[0];
      REQUIRE(got.size() == want.size());
      double worst = 0;
      for (size_t v = 0; v < got.size(); ++v) worst = std::max(worst, static_cast<double>(std::abs(got[v] - want[v])));
      INFO("after " << row.size() << " tokens");
      CHECK(worst < (bf16 ? 0.05 : 2e-5));
      CHECK(at::get_num_threads() == threads);  // a small step runs on one thread, then restores the count
    }
    CHECK_THROWS_WITH(cont->extend({}), ContainsText("at least one token"));
    CHECK_THROWS_WITH(cont->extend(std::vector<int32_t>(14, 3)), ContainsText("max_positions 24"));  // 13 + 14 > 24
    CHECK_THROWS_WITH(lm->continuation()->extend({2, 50}), ContainsText("50"));
  }
}

TEST_CASE("plugin 'opt' validates its options", "[opt][plugin]") {
  CHECK_THROWS_WITH(make_arch("{type: opt, d_model: 30, n_heads: 4}"),
                    ContainsText("n_heads") && ContainsText("test.yaml"));
  CHECK_THROWS_WITH(make_arch("{type: opt, vocab_size: 100}"), ContainsText("vocab_size"));
  CHECK_THROWS_AS(make_arch(kYaml)->init_checkpoint("unused", 0, 1), Error);
}

TEST_CASE("opt scoring batches: padded tokens + overhead per batch are minimal, against every partition") {
  using LM = cbtm::models::OptLanguageModel;
  std::mt19937 rng(7);
  for (int trial = 0; trial < 80; ++trial) {
    const int64_t cap = trial % 2 ? LM::kBatchTokens : LM::kBatchTokensGpu;
    const size_t n = 1 + rng() % 10;
    std::vector<std::vector<int32_t>> seqs;
    for (size_t i = 0; i < n; ++i) seqs.emplace_back(static_cast<size_t>(2 + rng() % (trial < 40 ? 300 : 9000)), 5);
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return seqs[a].size() > seqs[b].size(); });
    auto cost = [&](size_t b, size_t e) -> int64_t {  // -1: over the batch budget
      const int64_t rows = static_cast<int64_t>(e - b), len = static_cast<int64_t>(seqs[order[b]].size());
      if (rows > 1 && rows * len > cap) return -1;
      return rows * len + LM::kBatchOverheadTokens;
    };
    // Every way to cut the sorted list (a bit per gap).
    int64_t best = std::numeric_limits<int64_t>::max();
    for (uint32_t cuts = 0; cuts < (1u << (n - 1)); ++cuts) {
      int64_t total = 0;
      size_t b = 0;
      for (size_t i = 1; i <= n && total >= 0; ++i)
        if (i == n || (cuts >> (i - 1) & 1u)) {
          const int64_t c = cost(b, i);
          total = c < 0 ? -1 : total + c;
          b = i;
        }
      if (total >= 0) best = std::min(best, total);
    }
    const auto plan = LM::plan_batches(seqs, order, cap);
    int64_t got = 0;
    size_t next = 0;
    for (const auto& [b, e] : plan) {
      REQUIRE(b == next);
      REQUIRE(e > b);
      const int64_t c = cost(b, e);
      REQUIRE(c >= 0);
      got += c;
      next = e;
    }
    CHECK(next == n);
    CHECK(got == best);
  }
}
