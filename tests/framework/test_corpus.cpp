#include "support/catch.h"

#include <cmath>
#include <cstdlib>
#include <map>

#include "cbtm/corpus.h"
#include "support/test_support.h"

using cbtm::test::TempDir;
using cbtm::test::write_text;

namespace {
std::string error_of(const std::string& path, cbtm::CorpusOptions o) {
  try {
    cbtm::read_corpus(path, o);
  } catch (const cbtm::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("corpus: JSONL with metadata - ids and blank lines") {
  TempDir t("corpus");
  write_text(t / "c.jsonl",
             "{\"text\": \"alpha beta\", \"domain\": \"a\", \"label\": null}\n"
             "\n"
             "{\"text\": \"gamma\", \"domain\": \"b\", \"id\": \"doc-7\", \"n\": 3}\n"
             "{\"text\": \"no newline at end\"}");
  auto docs = cbtm::read_corpus(t / "c.jsonl", {});
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].text == "alpha beta");
  CHECK(docs[0].id == "c:1");  // <file stem>:<line>, never an absolute path
  CHECK(docs[0].field("domain") == "a");
  CHECK(docs[0].meta.count("label") == 0);  // null fields are dropped
  CHECK(docs[1].id == "doc-7");
  CHECK(docs[1].field("n") == "3");
  CHECK(docs[2].id == "c:4");
  CHECK(docs[2].text == "no newline at end");
}

TEST_CASE("corpus: bad lines are skipped and counted - or fail naming file and line") {
  TempDir t("corpus");
  write_text(t / "bad.jsonl",
             "{\"text\": \"ok one\"}\n"
             "{not json\n"
             "{\"text\": \"bad utf8 \xff\xfe\"}\n"
             "{\"txt\": \"wrong field\"}\n"
             "{\"text\": 12}\n"
             "{\"text\": \"\"}\n"
             "[1, 2]\n"
             "{\"text\": \"ok two\"}\n");
  cbtm::CorpusReader r(t / "bad.jsonl", {});
  cbtm::Document d;
  std::vector<std::string> texts;
  while (r.next(d)) texts.push_back(d.text);
  CHECK(texts == std::vector<std::string>{"ok one", "ok two"});
  const auto& s = r.stats();
  CHECK(s.docs == 2);
  CHECK(s.bad_total() == 6);
  CHECK(s.bad.at("invalid JSON") == 1);
  CHECK(s.bad.at("invalid UTF-8") == 1);
  CHECK(s.bad.at("no 'text' field") == 1);
  CHECK(s.bad.at("'text' is not a string") == 1);
  CHECK(s.bad.at("empty text") == 1);
  CHECK(s.bad.at("not a JSON object") == 1);
  CHECK(s.first_bad.find("bad.jsonl:2: invalid JSON") != std::string::npos);

  cbtm::CorpusOptions fail;
  fail.on_bad_document = "fail";
  const std::string e = error_of(t / "bad.jsonl", fail);
  CHECK(e.find("bad.jsonl:2: invalid JSON") != std::string::npos);
}

TEST_CASE("corpus: zstd input - limits - and missing/empty corpora") {
  TempDir t("corpus");
  std::string content;
  for (int i = 0; i < 3000; ++i) content += "{\"text\": \"document number " + std::to_string(i) + "\"}\n";
  write_text(t / "big.jsonl", content);
  REQUIRE(std::system(("zstd -q -f " + t / "big.jsonl" + " -o " + t / "big.jsonl.zst").c_str()) == 0);
  auto docs = cbtm::read_corpus(t / "big.jsonl.zst", {});
  REQUIRE(docs.size() == 3000);
  CHECK(docs[2999].text == "document number 2999");
  CHECK(docs[2999].id == "big:3000");
  cbtm::CorpusOptions o;
  o.skip_docs = 10;
  o.max_docs = 5;
  docs = cbtm::read_corpus(t / "big.jsonl.zst", o);
  REQUIRE(docs.size() == 5);
  CHECK(docs[0].text == "document number 10");

  CHECK(error_of(t / "missing.jsonl", {}).find("missing.jsonl: no such file") != std::string::npos);
  write_text(t / "empty.jsonl", "\n\n");
  CHECK(error_of(t / "empty.jsonl", {}).find("has no usable documents") != std::string::npos);
  write_text(t / "corrupt.jsonl.zst", "this is not zstd data at all");
  CHECK(error_of(t / "corrupt.jsonl.zst", {}).find("corrupt zstd") != std::string::npos);
}

TEST_CASE("corpus: reads the real devpile slice shipped with the repo") {
  auto docs = cbtm::read_corpus(cbtm::test::source_path("data/devpile-mini/eval.jsonl.zst"), {});
  CHECK(docs.size() == 400);
  for (const auto& d : docs) {
    CHECK_FALSE(d.text.empty());
    CHECK(d.id.rfind("devpile:", 0) == 0);
    CHECK_FALSE(d.field("domain").empty());
  }
}

TEST_CASE("corpus: sample_corpus is uniform over every file - seeded - in corpus order") {
  TempDir t("corpus-sample");
  // Two files of 100 documents each: a first-N read would take only file a.
  for (const char* f : {"a", "b"}) {
    std::string body;
    for (int i = 0; i < 100; ++i) body += "{\"text\": \"" + std::string(f) + std::to_string(i) + "\"}\n";
    write_text(t / (std::string(f) + ".jsonl"), body);
  }
  const std::string dir = t.path();
  const auto s1 = cbtm::sample_corpus(dir, {}, 20, 7);
  REQUIRE(s1.size() == 20);
  const auto again = cbtm::sample_corpus(dir, {}, 20, 7);
  for (size_t i = 0; i < s1.size(); ++i) CHECK(again[i].id == s1[i].id);
  // Corpus order: file a before b, lines ascending.
  auto pos = [](const cbtm::Document& d) { return (d.id[0] == 'b' ? 1000 : 0) + std::stoi(d.id.substr(2)); };
  for (size_t i = 1; i < s1.size(); ++i) CHECK(pos(s1[i - 1]) < pos(s1[i]));
  const auto other = cbtm::sample_corpus(dir, {}, 20, 8);
  int same = 0;
  for (size_t i = 0; i < s1.size(); ++i) same += other[i].id == s1[i].id;
  CHECK(same < 20);

  // Inclusion frequency over 400 seeds: every document is drawn with probability 20/200 =
  // 0.1, i.e. ~40 times (binomial sd 6: each count within 5 sd, and their spread that of a
  // binomial); the two files share the draws evenly.
  std::map<std::string, int> count;
  int from_b = 0;
  for (uint64_t seed = 0; seed < 400; ++seed)
    for (const auto& d : cbtm::sample_corpus(dir, {}, 20, seed)) {
      ++count[d.id];
      from_b += d.id[0] == 'b';
    }
  CHECK(count.size() == 200);
  double var = 0;
  for (const auto& [id, n] : count) {
    INFO(id);
    CHECK(n >= 40 - 30);
    CHECK(n <= 40 + 30);
    var += (n - 40.0) * (n - 40.0) / 200;
  }
  CHECK(std::sqrt(var) > 4.5);
  CHECK(std::sqrt(var) < 8.0);
  CHECK(std::abs(from_b - 4000) < 300);  // 8000 draws, half from b (sd ~45)

  // A corpus no larger than the sample comes back whole; max_docs applies per file.
  CHECK(cbtm::sample_corpus(dir, {}, 500, 1).size() == 200);
  cbtm::CorpusOptions o;
  o.max_docs = 10;
  o.max_docs_per_file = true;
  const auto capped = cbtm::sample_corpus(dir, o, 15, 1);
  REQUIRE(capped.size() == 15);
  for (const auto& d : capped) CHECK(std::stoi(d.id.substr(2)) <= 10);
  CHECK_THROWS_WITH(cbtm::sample_corpus(dir, {}, 0, 1), ContainsText("sample size"));
}
