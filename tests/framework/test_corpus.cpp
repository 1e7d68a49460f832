#include "support/catch.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cbtm/corpus.h"
#include "cbtm/fs.h"
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

// Compresses `src` to `dst` with the zstd tool (one frame).
void zstd_file(const std::string& src, const std::string& dst) {
  REQUIRE(std::system(("zstd -q -f " + src + " -o " + dst).c_str()) == 0);
}

std::vector<std::string> ids_of(const std::vector<cbtm::Document>& docs) {
  std::vector<std::string> out;
  for (const auto& d : docs) out.push_back(d.id);
  return out;
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

TEST_CASE("corpus: a truncated zstd file fails naming the file - it is no silent end of file") {
  TempDir t("corpus-zst");
  // Over 128 KiB decoded, so the decoder's output buffer fills and must be drained.
  std::string content;
  for (int i = 0; i < 20000; ++i) content += "{\"text\": \"document number " + std::to_string(i) + "\"}\n";
  write_text(t / "big.jsonl", content);
  zstd_file(t / "big.jsonl", t / "big.jsonl.zst");
  REQUIRE(cbtm::read_corpus(t / "big.jsonl.zst", {}).size() == 20000);

  // Two frames one after the other (e.g. `cat a.zst b.zst`) are one valid file.
  write_text(t / "one.jsonl", "{\"text\": \"from frame one\"}\n");
  write_text(t / "two.jsonl", "{\"text\": \"from frame two\"}\n");
  zstd_file(t / "one.jsonl", t / "one.jsonl.zst");
  zstd_file(t / "two.jsonl", t / "two.jsonl.zst");
  write_text(t / "frames.jsonl.zst", cbtm::read_file(t / "one.jsonl.zst") + cbtm::read_file(t / "two.jsonl.zst"));
  const auto both = cbtm::read_corpus(t / "frames.jsonl.zst", {});
  REQUIRE(both.size() == 2);
  CHECK(both[1].text == "from frame two");

  // Cut in the middle of its frame: an Error, also with on_bad_document: skip.
  const auto size = std::filesystem::file_size(t / "big.jsonl.zst");
  std::filesystem::copy_file(t / "big.jsonl.zst", t / "cut.jsonl.zst");
  std::filesystem::resize_file(t / "cut.jsonl.zst", size / 2);
  const std::string e = error_of(t / "cut.jsonl.zst", {});
  CHECK_THAT(e, ContainsText("cut.jsonl.zst"));
  CHECK_THAT(e, ContainsText("truncated zstd frame"));
  CHECK_THAT(e, ContainsText(std::to_string(size / 2) + " bytes read"));
  // Cut 3 bytes into the second of two frames: the first is whole, the second is not.
  const std::string frames = cbtm::read_file(t / "frames.jsonl.zst");
  write_text(t / "cut2.jsonl.zst", frames.substr(0, std::filesystem::file_size(t / "one.jsonl.zst") + 3));
  CHECK_THAT(error_of(t / "cut2.jsonl.zst", {}), ContainsText("truncated zstd frame"));
}

TEST_CASE("corpus: default ids stay unique when files of one corpus share a stem") {
  TempDir t("corpus-ids");
  write_text(t / "x/train.jsonl", "{\"text\": \"x one\"}\n{\"text\": \"x two\"}\n");
  write_text(t / "y/train.jsonl", "{\"text\": \"y one\"}\n");
  write_text(t / "z/other.jsonl", "{\"text\": \"z one\"}\n");
  const std::string pattern = t / "*/*.jsonl";
  auto docs = cbtm::read_corpus(pattern, {});
  CHECK(ids_of(docs) == std::vector<std::string>{"x/train.jsonl:1", "x/train.jsonl:2", "y/train.jsonl:1", "other:1"});

  // One file of that corpus read alone gives the same ids when id_corpus names the corpus.
  cbtm::CorpusOptions o;
  o.id_corpus = pattern;
  CHECK(ids_of(cbtm::read_corpus(t / "y/train.jsonl", o)) == std::vector<std::string>{"y/train.jsonl:1"});
  CHECK(ids_of(cbtm::read_corpus(t / "y/train.jsonl", {})) == std::vector<std::string>{"train:1"});
  o.id_corpus = t / "x/train.jsonl";
  CHECK_THAT(error_of(t / "y/train.jsonl", o), ContainsText("is not one of the files of"));

  // The prefix rule itself: stems where they differ, relative paths where they clash.
  using V = std::vector<std::string>;
  CHECK(cbtm::corpus_id_prefixes({"/data/c.jsonl.zst"}) == V{"c"});
  CHECK(cbtm::corpus_id_prefixes({"d/a.jsonl", "d/b.json", "e/c.jsonl.zst"}) == V{"a", "b", "c"});
  CHECK(cbtm::corpus_id_prefixes({"d/a.jsonl", "d/a.jsonl.zst", "d/b.json"}) == V{"a.jsonl", "a.jsonl.zst", "b"});
  CHECK(cbtm::corpus_id_prefixes({"/s/p/x/t.jsonl", "/s/p/y/t.jsonl"}) == V{"x/t.jsonl", "y/t.jsonl"});
  CHECK(cbtm::corpus_id_prefixes({"x/t.jsonl", "./y//t.jsonl"}) == V{"x/t.jsonl", "y/t.jsonl"});
  // a.jsonl.json's stem "a.jsonl" clashes with a.jsonl's relative path, so it switches too.
  CHECK(cbtm::corpus_id_prefixes({"d/a.jsonl", "d/a.jsonl.json", "d/a.jsonl.zst"}) ==
        V{"a.jsonl", "a.jsonl.json", "a.jsonl.zst"});
}

TEST_CASE("corpus: an explicit id with a tab or line break fails naming file and line") {
  TempDir t("corpus-ids");
  for (const char* bad : {"a\\tb", "a\\rb", "a\\nb"}) {
    INFO(bad);
    write_text(t / "ids.jsonl", "{\"text\": \"fine\", \"id\": \"ok\"}\n{\"text\": \"t\", \"id\": \"" + std::string(bad) + "\"}\n");
    const std::string e = error_of(t / "ids.jsonl", {});
    CHECK_THAT(e, ContainsText("ids.jsonl:2"));
    CHECK_THAT(e, ContainsText("tab or line break"));
  }
}

TEST_CASE("corpus: an existing path with glob characters is read literally") {
  TempDir t("corpus-glob");
  write_text(t / "doc1.jsonl", "{\"text\": \"plain\"}\n");
  write_text(t / "doc[1].jsonl", "{\"text\": \"bracket\"}\n");
  auto docs = cbtm::read_corpus(t / "doc[1].jsonl", {});
  REQUIRE(docs.size() == 1);
  CHECK(docs[0].text == "bracket");
  CHECK(cbtm::corpus_files(t / "doc[1].jsonl") == std::vector<std::string>{t / "doc[1].jsonl"});
  // A path that does not exist is still a pattern: doc?.jsonl matches doc1.jsonl only.
  CHECK(cbtm::corpus_files(t / "doc?.jsonl") == std::vector<std::string>{t / "doc1.jsonl"});
  // The same for a directory.
  write_text(t / "dir2/a.jsonl", "{\"text\": \"in dir2\"}\n");
  write_text(t / "dir[2]/b.jsonl", "{\"text\": \"in dir[2]\"}\n");
  docs = cbtm::read_corpus(t / "dir[2]", {});
  REQUIRE(docs.size() == 1);
  CHECK(docs[0].text == "in dir[2]");
}

TEST_CASE("corpus: a line over max_line_bytes is skipped and counted - or fails naming file and line") {
  TempDir t("corpus-long");
  auto doc_line = [](size_t bytes) {  // a JSON line of exactly `bytes` bytes
    return "{\"text\": \"" + std::string(bytes - 12, 'x') + "\"}";
  };
  // Line 2 spans several 64 KiB reads; line 4, the last, has no newline.
  const std::string body = doc_line(1000) + "\n" + doc_line(200000) + "\n" + doc_line(1001) + "\n" + doc_line(300000);
  write_text(t / "long.jsonl", body);
  zstd_file(t / "long.jsonl", t / "long.jsonl.zst");
  cbtm::CorpusOptions o;
  o.max_line_bytes = 1000;
  for (const std::string f : {"long.jsonl", "long.jsonl.zst"}) {
    INFO(f);
    cbtm::CorpusReader r(t / f, o);
    cbtm::Document d;
    std::vector<std::string> ids;
    while (r.next(d)) ids.push_back(d.id);
    CHECK(ids == std::vector<std::string>{"long:1"});  // exactly 1000 bytes is not too long
    CHECK(r.stats().lines == 4);
    CHECK(r.stats().bad.at("line too long") == 3);
    CHECK_THAT(r.stats().first_bad, ContainsText(f + ":2: line too long"));
  }
  o.on_bad_document = "fail";
  CHECK_THAT(error_of(t / "long.jsonl", o), ContainsText("long.jsonl:2: line too long"));
  // Under the default limit the same lines are whole documents.
  const auto docs = cbtm::read_corpus(t / "long.jsonl.zst", {});
  REQUIRE(docs.size() == 4);
  CHECK(docs[1].text.size() == 200000 - 12);
  CHECK(docs[3].text.size() == 300000 - 12);
  o.max_line_bytes = 0;
  CHECK_THAT(error_of(t / "long.jsonl", o), ContainsText("max_line_bytes must be > 0"));
}

TEST_CASE("corpus: max_total_docs caps the documents in all while max_docs stays per file") {
  TempDir t("corpus");
  write_text(t / "a.jsonl", "{\"text\": \"a1\"}\n{\"text\": \"a2\"}\n{\"text\": \"a3\"}\n");
  write_text(t / "b.jsonl", "{\"text\": \"b1\"}\n{\"text\": \"b2\"}\n");
  cbtm::CorpusOptions o;
  o.max_docs = 2;
  o.max_docs_per_file = true;
  o.max_total_docs = 3;  // the first 3 of (a1 a2 | b1 b2): not the first 2 of the corpus
  CHECK(ids_of(cbtm::read_corpus(t.path(), o)) == std::vector<std::string>{"a:1", "a:2", "b:1"});
  o.max_total_docs = 0;
  CHECK(ids_of(cbtm::read_corpus(t.path(), o)) == std::vector<std::string>{"a:1", "a:2", "b:1", "b:2"});
}
