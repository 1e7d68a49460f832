// The `bpe` tokenizer as a component: round trips, save/load, registry, concurrency.
#include "support/catch.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bpe_tokenizer.h"
#include "cbtm/artifact.h"
#include "cbtm/tensor_file.h"
#include "devpile_sample.h"
#include "support/test_support.h"

using cbtm::Error;
using cbtm::Tokenizer;
using cbtm::bpe::BpeTokenizer;
using cbtm::bpe::kFirstMergeId;

namespace {

std::vector<std::string> sample_texts(int n) {
  std::vector<std::string> texts;
  if (cbtm::test::have_devpile()) return tok_test::spread_texts(n);
  const char* words[] = {"the", "tokenizer", "learns", "merges", "from", "text", "and", "numbers",
                         "42", "quickly", "don't", "stop", "caf\xC3\xA9", "na\xC3\xAFve", "!!"};
  std::mt19937 rng(3);
  for (int i = 0; i < n; ++i) {
    std::string t;
    for (int w = 0; w < 40; ++w) t += (w ? " " : "") + std::string(words[rng() % 15]);
    texts.push_back(t + "\n");
  }
  return texts;
}

BpeTokenizer trained(int vocab, int docs) {
  BpeTokenizer::Options o;
  o.vocab_size = vocab;
  BpeTokenizer tok(o);
  tok.train(sample_texts(docs));
  return tok;
}

cbtm::ConfigNode node(const std::string& yaml) {
  return cbtm::ConfigNode{YAML::Load(yaml), "tokenizer", "test.yaml"};
}

std::string saved_file(const cbtm::test::TempDir& dir, const BpeTokenizer& tok) {
  cbtm::TensorFileWriter w;
  tok.save(w, "tokenizer");
  const std::string path = dir / "tok.safetensors";
  w.write(path);
  return path;
}

}  // namespace

TEST_CASE("bpe: specials - bytes and an untrained vocabulary", "[bpe]") {
  BpeTokenizer tok(BpeTokenizer::Options{});
  CHECK(tok.vocab_size() == 260);
  CHECK(tok.bos_id() == 2);
  CHECK(tok.eos_id() == 2);
  CHECK(tok.pad_id() == 1);
  for (int id = 0; id < 4; ++id) CHECK(tok.piece(id).empty());
  CHECK(tok.piece(4) == std::string(1, '\0'));
  CHECK(tok.piece(4 + 'A') == "A");
  CHECK(tok.encode("Hi!") == std::vector<int32_t>{4 + 'H', 4 + 'i', 4 + '!'});
  CHECK_THROWS_AS(tok.piece(260), Error);
  CHECK_THROWS_AS(tok.piece(-1), Error);
  CHECK(tok.decode({2, 4 + 'o', 1, 4 + 'k', 3, 0}) == "ok");
}

TEST_CASE("bpe: decode(encode(x)) == x on devpile - invalid UTF-8 and empty text", "[bpe]") {
  const BpeTokenizer tok = trained(1024, 400);
  CHECK(tok.vocab_size() == 1024);
  CHECK(tok.encode("").empty());
  CHECK(tok.decode({}).empty());
  std::mt19937 rng(5);
  for (int t = 0; t < 500; ++t) {  // random bytes, mostly invalid UTF-8
    std::string s(rng() % 64, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 256);
    REQUIRE(tok.decode(tok.encode(s)) == s);
  }
  for (std::string s : {std::string("\xFF\xFE\x80 abc \xC3"), std::string("a\0b", 3),
                        std::string("\xED\xA0\x80\xF4\x90\x80\x80"), std::string(5000, ' '),
                        std::string(3000, 'a') + "\n\n\n"})
    REQUIRE(tok.decode(tok.encode(s)) == s);
  if (!cbtm::test::have_devpile()) {
    WARN("devpile absent: skipped");
    return;
  }
  size_t bytes = 0, tokens = 0;
  const auto docs = tok_test::spread_texts(2000, 7);  // none of them in the training sample
  REQUIRE(docs.size() == 2000);
  for (const auto& text : docs) {
    const auto ids = tok.encode(text);
    REQUIRE(tok.decode(ids) == text);
    for (int32_t id : ids) REQUIRE((id >= 4 && id < tok.vocab_size()));
    bytes += text.size();
    tokens += ids.size();
  }
  CHECK(static_cast<double>(tokens) / bytes < 0.5);  // a 1k vocabulary compresses well
}

TEST_CASE("bpe: save/load round trip and consistency checks", "[bpe]") {
  const BpeTokenizer tok = trained(700, 200);
  cbtm::test::TempDir dir("bpe");
  const std::string path = saved_file(dir, tok);
  BpeTokenizer back(BpeTokenizer::Options{});
  back.load(cbtm::TensorFile::read(path), "tokenizer");
  CHECK(back.model().merges() == tok.model().merges());
  CHECK(back.vocab_size() == tok.vocab_size());
  for (const auto& t : sample_texts(50)) CHECK(back.encode(t) == tok.encode(t));

  SECTION("truncated file") {
    const auto size = std::filesystem::file_size(path);
    std::filesystem::resize_file(path, size - 10);
    CHECK_THROWS_AS(cbtm::TensorFile::read(path), Error);
  }
  SECTION("vocab_size does not match the merges") {
    cbtm::TensorFileWriter w;
    w.add_i32("tokenizer.merges", {1, 2}, {4 + 'a', 4 + 'b'});
    w.add_i32("tokenizer.vocab_size", {1}, {262});
    w.write(dir / "bad.safetensors");
    CHECK_THROWS_WITH(back.load(cbtm::TensorFile::read(dir / "bad.safetensors"), "tokenizer"),
                      ContainsText("bad.safetensors") && ContainsText("vocab_size"));
  }
  SECTION("a merge uses an id that is not defined yet") {
    cbtm::TensorFileWriter w;
    w.add_i32("tokenizer.merges", {2, 2}, {4 + 'a', 261, 4 + 'a', 4 + 'b'});
    w.add_i32("tokenizer.vocab_size", {1}, {262});
    w.write(dir / "bad.safetensors");
    CHECK_THROWS_WITH(back.load(cbtm::TensorFile::read(dir / "bad.safetensors"), "tokenizer"),
                      ContainsText("bad.safetensors") && ContainsText("merge 0"));
  }
  SECTION("a merge of specials, or a repeated merge") {
    cbtm::TensorFileWriter w;
    w.add_i32("tokenizer.merges", {1, 2}, {2, 4});
    w.add_i32("tokenizer.vocab_size", {1}, {261});
    w.add_i32("dup.merges", {2, 2}, {5, 6, 5, 6});
    w.add_i32("dup.vocab_size", {1}, {262});
    w.write(dir / "bad.safetensors");
    const auto f = cbtm::TensorFile::read(dir / "bad.safetensors");
    CHECK_THROWS_WITH(back.load(f, "tokenizer"), ContainsText("bad.safetensors"));
    CHECK_THROWS_WITH(back.load(f, "dup"), ContainsText("already exists"));
  }
  SECTION("wrong shape or missing tensor") {
    cbtm::TensorFileWriter w;
    w.add_i32("tokenizer.merges", {3}, {4, 5, 6});
    w.add_i32("tokenizer.vocab_size", {1}, {260});
    w.add_i32("other.merges", {0, 2}, {});
    w.write(dir / "bad.safetensors");
    const auto f = cbtm::TensorFile::read(dir / "bad.safetensors");
    CHECK_THROWS_WITH(back.load(f, "tokenizer"), ContainsText("I32 [n, 2]"));
    CHECK_THROWS_WITH(back.load(f, "other"), ContainsText("other.vocab_size"));
  }
}

TEST_CASE("bpe: created from YAML through the plugin registry", "[bpe][plugin]") {
  auto& reg = cbtm::test::plugins().registry();
  REQUIRE(reg.has("tokenizer", "bpe"));
  auto tok = reg.create<Tokenizer>(node("{type: bpe, vocab_size: 300, min_frequency: 1}"));
  tok->train(sample_texts(100));
  CHECK(tok->vocab_size() == 300);
  const std::string text = "merges learned from text";
  CHECK(tok->decode(tok->encode(text)) == text);
  CHECK(tok->encode(text).size() < text.size());

  const YAML::Node resolved = reg.resolve("tokenizer", node("{type: bpe}"));
  CHECK(resolved["vocab_size"].as<int>() == 8192);
  CHECK(resolved["min_frequency"].as<int>() == 2);
  CHECK(resolved["max_train_bytes"].as<int64_t>() == 50000000);

  CHECK_THROWS_WITH(reg.create<Tokenizer>(node("{type: bpe, vocab_sise: 300}")),
                    ContainsText("vocab_sise"));
  CHECK_THROWS_WITH(reg.create<Tokenizer>(node("{type: bpe, vocab_size: 100}")),
                    ContainsText("vocab_size"));
  CHECK_THROWS_WITH(reg.create<Tokenizer>(node("{type: bpe, min_frequency: 0}")),
                    ContainsText("min_frequency"));
  CHECK_THROWS_WITH(reg.create<Tokenizer>(node("{type: bpe, max_train_bytes: 0}")),
                    ContainsText("max_train_bytes"));

  // An artifact written with the plugin's state recreates the same tokenizer.
  cbtm::test::TempDir dir("bpe-artifact");
  cbtm::ArtifactWriter w("tokenizer", YAML::Node());
  const std::string yaml = "{type: bpe, vocab_size: 300, min_frequency: 1}";
  w.add("tokenizer", *tok, reg.resolve("tokenizer", node(yaml)));
  w.write(dir / "tokenizer.safetensors");
  cbtm::ArtifactReader r(dir / "tokenizer.safetensors", "tokenizer");
  auto back = r.load<Tokenizer>(reg, "tokenizer");
  CHECK(back->vocab_size() == 300);
  CHECK(back->encode(text) == tok->encode(text));
}

TEST_CASE("bpe: concurrent encode equals single-threaded encode", "[bpe][threads]") {
  const BpeTokenizer tok = trained(2000, 300);
  const auto texts = sample_texts(600);
  // Reference from a fresh copy (loaded from the same merges, so its cache starts empty).
  cbtm::test::TempDir dir("bpe-threads");
  BpeTokenizer ref(BpeTokenizer::Options{});
  ref.load(cbtm::TensorFile::read(saved_file(dir, tok)), "tokenizer");
  std::vector<std::vector<int32_t>> expect;
  for (const auto& t : texts) expect.push_back(ref.encode(t));

  const int threads = 8;
  std::vector<std::vector<std::vector<int32_t>>> got(threads);
  std::vector<std::thread> pool;
  for (int k = 0; k < threads; ++k)
    pool.emplace_back([&, k] {
      // Each thread walks the texts from a different start, twice (cold and warm cache).
      for (int rep = 0; rep < 2; ++rep)
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t j = (i + k * texts.size() / threads) % texts.size();
          auto ids = tok.encode(texts[j]);
          if (rep == 1) got[k].push_back(ids);
          if (rep == 0 && ids != expect[j]) got[k].push_back({-1});
        }
    });
  for (auto& t : pool) t.join();
  for (int k = 0; k < threads; ++k) {
    REQUIRE(got[k].size() == texts.size());
    for (size_t i = 0; i < texts.size(); ++i)
      REQUIRE(got[k][i] == expect[(i + k * texts.size() / threads) % texts.size()]);
  }
}
