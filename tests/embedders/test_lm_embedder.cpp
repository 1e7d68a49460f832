// The lm embedder: embed() against hidden states pooled by hand, batching and padding
// invariance, truncation, empty texts, standardize, save/load through the plugin, and the
// errors for missing or replaced checkpoints and tokenizers.

#include "support/catch_torch.h"  // first: see the header
#include <chrono>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>


#include "byte_tokenizer.h"
#include "cbtm/artifact.h"
#include "cbtm/config_node.h"
#include "cbtm/embedder.h"
#include "cbtm/error.h"
#include "cbtm/plugin.h"
#include "cbtm/runtime.h"
#include "devpile_slices.h"
#include "document_tokens.h"
#include "lm_embedder.h"
#include "opt/opt.h"
#include "support/test_support.h"

using namespace cbtm::lm_embed;
using cbtm::Matrix;
namespace fs = std::filesystem;
namespace models = cbtm::models;

namespace {

constexpr int64_t kMaxPositions = 48;

/// A random 2-layer OPT over the byte vocabulary, a byte tokenizer artifact, and a registry
/// that knows the `byte` tokenizer.
struct Fixture {
  cbtm::test::TempDir dir{"lm_embedder"};
  cbtm::Registry registry;
  std::string checkpoint = dir / "ckpt";
  std::string tokenizer = dir / "tokenizer.safetensors";
  models::OptLM model{nullptr};

  explicit Fixture(uint64_t seed = 7) {
    registry.add(cbtm::make_plugin<cbtm::byte_tok::ByteTokenizer>("byte", "bytes"));
    model = make_model(seed);
    models::save_checkpoint(model, checkpoint);
    cbtm::ArtifactWriter w("tokenizer", YAML::Node());
    YAML::Node opts;
    opts["type"] = "byte";
    w.add("tokenizer", cbtm::byte_tok::ByteTokenizer(), opts);
    w.write(tokenizer);
  }

  static models::OptLM make_model(uint64_t seed) {
    models::OptConfig c;
    c.vocab_size = cbtm::byte_tok::ByteTokenizer::kVocabSize;
    c.d_model = 16;
    c.n_layers = 2;
    c.n_heads = 2;
    c.d_ff = 32;
    c.max_positions = kMaxPositions;
    c.init_std = 0.3;  // large weights: documents embed far apart
    models::OptLM m(c);
    m->init_weights(seed);
    m->eval();
    return m;
  }

  /// fp32, no normaliser: embed() is the pooled state itself.
  LmOptions options() const {
    LmOptions o;
    o.checkpoint = checkpoint;
    o.tokenizer = tokenizer;
    o.precision = "fp32";
    o.normalize = "none";
    return o;
  }
};

/// The independent reference: byte ids by hand (4 + byte), </s> first, OptLM::hidden_states
/// (or the embeddings for layer 0), then the mean over positions 1..n or position n.
std::vector<float> reference(models::OptLM& m, const std::string& text, int64_t max_tokens,
                             const std::string& pooling, int64_t layer = -1) {
  std::vector<int64_t> ids{2};
  for (unsigned char ch : text)
    if (static_cast<int64_t>(ids.size()) <= max_tokens) ids.push_back(4 + ch);
  torch::NoGradGuard g;
  const torch::Tensor tokens = torch::tensor(ids, torch::kLong).unsqueeze(0);
  torch::Tensor h;
  if (layer == 0) {
    auto params = m->named_parameters();
    const int64_t T = static_cast<int64_t>(ids.size());
    h = params["embed_tokens.weight"].index_select(0, tokens.squeeze(0)) +
        params["embed_positions.weight"].slice(0, 2, T + 2);
  } else {
    h = m->hidden_states(tokens).squeeze(0);
  }
  const torch::Tensor v = pooling == "mean" ? h.slice(0, 1).mean(0) : h[h.size(0) - 1];
  return std::vector<float>(v.data_ptr<float>(), v.data_ptr<float>() + v.numel());
}

double max_diff(const float* a, const float* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

double norm(const float* a, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * a[i];
  return std::sqrt(s);
}

const std::vector<std::string> kDocs = {
    "The kernel schedules tasks.",
    "def f(x):\n    return x * 2",
    "a",
    "Straße, café, λόγος — 日本語 text with multi-byte characters.",
    "A somewhat longer document about memory pages, garbage collectors and packets.",
    "short one"};

}  // namespace

// ---- document_tokens -------------------------------------------------------------------

TEST_CASE("lm embedder: leading_tokens equals the prefix of the full encoding") {
  cbtm::byte_tok::ByteTokenizer tok;
  std::string text;
  for (int i = 0; i < 400; ++i) text += (i % 7 == 0) ? "λό " : "ab ";  // multi-byte pieces
  for (int64_t max_tokens : {1, 5, 37, 64, 2000}) {
    std::vector<int32_t> full = tok.encode(text);
    if (static_cast<int64_t>(full.size()) > max_tokens) full.resize(static_cast<size_t>(max_tokens));
    CHECK(leading_tokens(tok, text, max_tokens) == full);
  }
  CHECK(leading_tokens(tok, "", 8).empty());
}

TEST_CASE("lm embedder: pack_batches sorts by length and bounds padded tokens") {
  const std::vector<int64_t> lengths = {5, 0, 30, 12, 30, 1, 7, 0, 19};
  const auto batches = pack_batches(lengths, 64, 1);
  std::vector<size_t> seen;
  int64_t previous = 1 << 30;
  for (const auto& b : batches) {
    REQUIRE(!b.docs.empty());
    CHECK(b.longest == lengths[b.docs.front()]);
    CHECK((static_cast<int64_t>(b.docs.size()) * (b.longest + 1) <= 64 || b.docs.size() == 1));
    for (size_t i : b.docs) {
      CHECK(lengths[i] <= previous);
      previous = lengths[i];
      seen.push_back(i);
    }
  }
  CHECK(seen == std::vector<size_t>{2, 4, 8, 3, 6, 0, 5});  // stable, empty ones left out
  // A document longer than batch_tokens still gets a batch of its own.
  const auto big = pack_batches({100, 3}, 10, 1);
  REQUIRE(big.size() == 2);
  CHECK(big[0].docs == std::vector<size_t>{0});
}

// ---- embed() ---------------------------------------------------------------------------

TEST_CASE("lm embedder: mean pooling equals hidden states averaged by hand") {
  Fixture f;
  LmEmbedder e(f.options(), f.registry);
  e.fit({});
  REQUIRE(e.dim() == 16);
  const Matrix y = e.embed(kDocs);
  REQUIRE(y.rows == static_cast<int64_t>(kDocs.size()));
  REQUIRE(y.cols == 16);
  for (size_t i = 0; i < kDocs.size(); ++i) {
    const std::vector<float> want = reference(f.model, kDocs[i], kMaxPositions - 1, "mean");
    INFO("doc " << i);
    CHECK(max_diff(y.row(int64_t(i)), want.data(), 16) < 1e-5);
  }
  // Different documents embed differently (the test would pass for a constant otherwise).
  CHECK(max_diff(y.row(0), y.row(1), 16) > 1e-2);
}

TEST_CASE("lm embedder: last pooling l2 normaliser and layer 0") {
  Fixture f;
  LmOptions o = f.options();
  o.pooling = "last";
  o.normalize = "l2";
  LmEmbedder last(o, f.registry);
  last.fit({});
  const Matrix y = last.embed(kDocs);
  for (size_t i = 0; i < kDocs.size(); ++i) {
    std::vector<float> want = reference(f.model, kDocs[i], kMaxPositions - 1, "last");
    const double n = norm(want.data(), 16);
    for (float& v : want) v = static_cast<float>(v / n);
    CHECK(max_diff(y.row(int64_t(i)), want.data(), 16) < 1e-5);
    CHECK(norm(y.row(int64_t(i)), 16) == Approx(1.0).epsilon(1e-5));
  }

  o = f.options();
  o.layer = 0;  // the embeddings
  LmEmbedder l0(o, f.registry);
  l0.fit({});
  const Matrix z = l0.embed(kDocs);
  for (size_t i = 0; i < kDocs.size(); ++i) {
    const std::vector<float> want = reference(f.model, kDocs[i], kMaxPositions - 1, "mean", 0);
    CHECK(max_diff(z.row(int64_t(i)), want.data(), 16) < 1e-5);
  }
  // layer = n_layers is the final LayerNorm output, as -1.
  o.layer = 2;
  LmEmbedder l2(o, f.registry);
  l2.fit({});
  LmEmbedder dflt(f.options(), f.registry);
  dflt.fit({});
  const Matrix a = l2.embed(kDocs), b = dflt.embed(kDocs);
  CHECK(max_diff(a.data.data(), b.data.data(), a.rows * a.cols) == 0.0);
  // layer 1 is neither.
  o.layer = 1;
  LmEmbedder l1(o, f.registry);
  l1.fit({});
  const Matrix c = l1.embed(kDocs);
  CHECK(max_diff(c.data.data(), b.data.data(), c.rows * c.cols) > 1e-2);
  CHECK(max_diff(c.data.data(), z.data.data(), c.rows * c.cols) > 1e-2);

  // layer 1 by hand: a 1-block model with the same embeddings, block 0 and final LayerNorm
  // computes final_LN(state after block 1), so LN(last-token embedding at layer 1) = its
  // last hidden state.
  models::OptConfig c1 = f.model->config();
  c1.n_layers = 1;
  models::OptLM one(c1);
  {
    torch::NoGradGuard g;
    auto src = f.model->named_parameters();
    for (auto& p : one->named_parameters()) p.value().copy_(src[p.key()]);
  }
  one->eval();
  o.pooling = "last";
  LmEmbedder l1_last(o, f.registry);
  l1_last.fit({});
  const Matrix s1 = l1_last.embed(kDocs);
  auto params = f.model->named_parameters();
  for (size_t i = 0; i < kDocs.size(); ++i) {
    const std::vector<float> want = reference(one, kDocs[i], kMaxPositions - 1, "last");
    torch::Tensor got = torch::from_blob(const_cast<float*>(s1.row(int64_t(i))), {16}).clone();
    got = torch::layer_norm(got, {16}, params["final_layer_norm.weight"],
                            params["final_layer_norm.bias"], 1e-5);
    CHECK(max_diff(got.data_ptr<float>(), want.data(), 16) < 1e-5);
  }
}

TEST_CASE("lm embedder: an embedding does not depend on its batch or padding") {
  Fixture f;
  for (const char* pooling : {"mean", "last"}) {
    LmOptions o = f.options();
    o.pooling = pooling;
    LmEmbedder alone_e(o, f.registry);
    alone_e.fit({});
    o.batch_tokens = 100;  // a few documents per batch, padded to the longest
    LmEmbedder batched_e(o, f.registry);
    batched_e.fit({});
    std::vector<std::string> mixed;
    for (int r = 0; r < 3; ++r)
      for (const auto& d : kDocs) mixed.push_back(d + std::string(size_t(r * 5), '!'));
    const Matrix together = batched_e.embed(mixed);
    const Matrix big = alone_e.embed(mixed);  // one batch
    for (size_t i = 0; i < mixed.size(); ++i) {
      const Matrix alone = alone_e.embed({mixed[i]});
      INFO(pooling << " doc " << i);
      CHECK(max_diff(alone.row(0), together.row(int64_t(i)), 16) < 1e-5);
      CHECK(max_diff(alone.row(0), big.row(int64_t(i)), 16) < 1e-5);
    }
  }
}

TEST_CASE("lm embedder: only the first max_tokens tokens are embedded") {
  Fixture f;
  LmOptions o = f.options();
  o.max_tokens = 10;
  LmEmbedder e(o, f.registry);
  e.fit({});
  CHECK(e.effective_max_tokens() == 10);
  const std::string doc = "0123456789abcdefghijklmnopqrstuvwxyz";
  const Matrix y = e.embed({doc, doc.substr(0, 10), doc.substr(0, 11)});
  CHECK(max_diff(y.row(0), y.row(1), 16) < 1e-6);
  const std::vector<float> want = reference(f.model, doc, 10, "mean");
  CHECK(max_diff(y.row(0), want.data(), 16) < 1e-5);
  LmEmbedder full(f.options(), f.registry);
  full.fit({});
  CHECK(max_diff(full.embed({doc}).row(0), y.row(0), 16) > 1e-3);

  // max_tokens beyond the model's positions: max_positions - 1 (</s> goes first).
  o.max_tokens = 512;
  LmEmbedder clamped(o, f.registry);
  CHECK(clamped.effective_max_tokens() == kMaxPositions - 1);
  clamped.fit({});
  const std::string long_doc(200, 'x');
  const Matrix z = clamped.embed({long_doc, long_doc.substr(0, kMaxPositions - 1)});
  CHECK(max_diff(z.row(0), z.row(1), 16) < 1e-6);
}

TEST_CASE("lm embedder: a text without tokens embeds to the zero vector") {
  Fixture f;
  for (const char* normalize : {"none", "l2", "standardize"}) {
    LmOptions o = f.options();
    o.normalize = normalize;
    LmEmbedder e(o, f.registry);
    e.fit(kDocs);
    const Matrix y = e.embed({kDocs[0], "", kDocs[1]});
    INFO(normalize);
    CHECK(norm(y.row(1), 16) == 0.0);
    CHECK(norm(y.row(0), 16) > 0.1);
    CHECK(e.embed({""}).data == std::vector<float>(16, 0.f));
  }
}

TEST_CASE("lm embedder: standardize gives mean 0 and std 1 on the fit texts") {
  Fixture f;
  LmOptions o = f.options();
  o.normalize = "standardize";
  LmEmbedder e(o, f.registry);
  std::vector<std::string> texts = kDocs;
  texts.push_back("");  // left out of the statistics
  e.fit(texts);
  const Matrix y = e.embed(kDocs);
  for (int64_t k = 0; k < 16; ++k) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < y.rows; ++i) s += y.at(i, k);
    const double m = s / double(y.rows);
    for (int64_t i = 0; i < y.rows; ++i) s2 += (y.at(i, k) - m) * (y.at(i, k) - m);
    CHECK(std::abs(m) < 1e-4);
    CHECK(std::sqrt(s2 / double(y.rows)) == Approx(1.0).epsilon(1e-4));
  }
  LmEmbedder none(o, f.registry);
  CHECK_THROWS_WITH(none.fit({"", ""}), ContainsText("standardize needs at least one"));
}

TEST_CASE("lm embedder: bf16 autocast stays close to fp32") {
  Fixture f;
  LmOptions o = f.options();
  LmEmbedder fp32(o, f.registry);
  fp32.fit({});
  o.precision = "bf16";
  LmEmbedder bf16(o, f.registry);
  bf16.fit({});
  const Matrix a = fp32.embed(kDocs), b = bf16.embed(kDocs);
  for (int64_t i = 0; i < a.rows; ++i) {
    double dot = 0;
    for (int64_t k = 0; k < 16; ++k) dot += double(a.at(i, k)) * b.at(i, k);
    CHECK(dot / (norm(a.row(i), 16) * norm(b.row(i), 16)) > 0.99);
  }
}

// ---- save / load, the plugin -------------------------------------------------------------

TEST_CASE("lm embedder: save and load through the plugin round-trip") {
  Fixture f;
  cbtm::PluginHost& host = cbtm::test::plugins();
  cbtm::ConfigNode node;
  node.node = YAML::Load("{type: lm, checkpoint: '" + f.checkpoint + "', tokenizer: '" +
                         f.tokenizer + "', normalize: standardize, precision: fp32, max_tokens: 20}");
  node.path = "embedder";
  auto e = host.registry().create<cbtm::Embedder>(node);
  CHECK(e->dim() == 16);
  e->fit(kDocs);
  const Matrix want = e->embed(kDocs);
  cbtm::ArtifactWriter w("clusterer", YAML::Node());
  w.add("embedder", *e, host.registry().resolve("embedder", node));
  const std::string art = f.dir / "clusterer.safetensors";
  w.write(art);

  cbtm::ArtifactReader r(art, "clusterer");
  auto back = r.load<cbtm::Embedder>(host.registry(), "embedder");
  const Matrix got = back->embed(kDocs);
  CHECK(got.data == want.data);

  SECTION("a moved checkpoint fails naming the path") {
    fs::rename(f.checkpoint, f.dir / "moved");
    CHECK_THROWS_WITH(r.load<cbtm::Embedder>(host.registry(), "embedder"),
                      ContainsText(f.checkpoint) && ContainsText("does not exist") &&
                          ContainsText("option checkpoint") && ContainsText(art));
  }
  SECTION("a missing tokenizer fails naming the path") {
    fs::remove(f.tokenizer);
    CHECK_THROWS_WITH(r.load<cbtm::Embedder>(host.registry(), "embedder"),
                      ContainsText(f.tokenizer) && ContainsText("option tokenizer"));
  }
  SECTION("a retrained checkpoint at the same path is refused") {
    models::OptLM other = Fixture::make_model(99);
    fs::remove_all(f.checkpoint);
    models::save_checkpoint(other, f.checkpoint);
    CHECK_THROWS_WITH(r.load<cbtm::Embedder>(host.registry(), "embedder"),
                      ContainsText(f.checkpoint) && ContainsText("is not the one the embedder was fitted with"));
  }
}

TEST_CASE("lm embedder: errors name the option and the path") {
  Fixture f;
  LmOptions o = f.options();
  o.checkpoint = f.dir / "no-such-checkpoint";
  LmEmbedder missing(o, f.registry);
  CHECK_THROWS_AS(missing.fit({}), cbtm::Error);
  CHECK_THROWS_WITH(missing.fit({}), ContainsText(o.checkpoint) && ContainsText("option checkpoint"));
  CHECK_THROWS_WITH(missing.embed({"x"}), ContainsText("before fit() or load()"));

  o = f.options();
  o.checkpoint = cbtm::test::source_path("tests/data/opt-tiny");  // vocabulary of 50
  LmEmbedder small(o, f.registry);
  CHECK_THROWS_WITH(small.fit({}), ContainsText("has 260 ids") && ContainsText("vocabulary of 50"));

  o = f.options();
  o.layer = 3;
  LmEmbedder deep(o, f.registry);
  CHECK_THROWS_WITH(deep.fit({}), ContainsText("layer = 3") && ContainsText("has 2 blocks"));

  o = f.options();
  o.pooling = "max";
  CHECK_THROWS_WITH(LmEmbedder(o, f.registry), ContainsText("pooling"));
  o = f.options();
  o.checkpoint = "";
  CHECK_THROWS_WITH(LmEmbedder(o, f.registry), ContainsText("checkpoint") && ContainsText("required"));

  cbtm::ConfigNode node;
  node.node = YAML::Load("{type: lm, tokenizer: t.safetensors}");
  node.path = "embedder";
  CHECK_THROWS_WITH(cbtm::test::plugins().registry().create<cbtm::Embedder>(node),
                    ContainsText("embedder.checkpoint") && ContainsText("required"));
}

// ---- throughput (run by hand: test_lm_embedder "[.bench]") --------------------------------

TEST_CASE("lm embedder: throughput on devpile", "[.bench]") {
  if (!cbtm::test::have_devpile()) return;
  const std::vector<std::string> texts = cbtm::test::devpile_slices({{0, 500}, {100000, 500},
                                                                    {200000, 500}, {300000, 500}});
  Fixture f;
  models::OptConfig c;  // OptConfig's defaults: d_model 256, 4 layers, 512 positions
  c.vocab_size = cbtm::byte_tok::ByteTokenizer::kVocabSize;
  models::OptLM small(c);
  const std::string small_dir = f.dir / "small";
  models::save_checkpoint(small, small_dir);
  struct Case { std::string name, checkpoint; int64_t max_tokens; };
  for (const Case& k : {Case{"tiny d16 L2", f.checkpoint, kMaxPositions - 1},
                        Case{"small d256 L4", small_dir, 511}})
    for (const char* precision : {"fp32", "bf16"}) {
      LmOptions o = f.options();
      o.checkpoint = k.checkpoint;
      o.precision = precision;
      o.max_tokens = k.max_tokens;
      LmEmbedder e(o, f.registry);
      e.fit({});
      const auto t0 = std::chrono::steady_clock::now();
      const Matrix y = e.embed(texts);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      WARN(k.name << ", " << k.max_tokens << " tokens, " << precision << ": " << texts.size()
                  << " docs in " << s << " s = " << double(texts.size()) / s << " docs/s ("
                  << cbtm::runtime().resolved_threads() << " threads)");
      CHECK(y.rows == static_cast<int64_t>(texts.size()));
    }
}
