// `cbtm assign` at corpus scale: input shards assigned by separate invocations (as a Slurm
// job array runs them) and merged by a command give exactly the single-run result; a killed
// assign resumes after its last committed part; `cbtm inspect` reports the analysis; a
// corrupted or wrong-version clusterer artifact is refused with its path named.
#include "support/catch.h"

#include <filesystem>
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "cbtm/corpus.h"
#include "cbtm/fs.h"
#include "cbtm/token_shard.h"
#include "cli_runner.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using cbtm::test::cbtm_cli;
using nlohmann::json;

namespace {

const std::string kData = cbtm::test::source_path("data/devpile-mini");

// 1200 documents of the shipped slice (every 9th: several domains), as one file and as three
// input shards of 400 documents.
void write_corpora(const cbtm::test::TempDir& t) {
  cbtm::CorpusReader r(kData + "/train.jsonl.zst", {});
  std::vector<std::string> lines;
  cbtm::Document d;
  for (int64_t i = 0; lines.size() < 1200 && r.next(d); ++i) {
    if (i % 9) continue;
    json j = {{"id", d.id}, {"text", d.text}, {"domain", d.field("domain")}};
    lines.push_back(j.dump() + "\n");
  }
  REQUIRE(lines.size() == 1200);
  std::string all;
  fs::create_directories(t / "shards");
  for (int s = 0; s < 3; ++s) {
    std::string part;
    for (int i = 0; i < 400; ++i) part += lines[s * 400 + i];
    cbtm::test::write_text(t / ("shards/train-" + std::to_string(s) + ".jsonl"), part);
    all += part;
  }
  cbtm::test::write_text(t / "all.jsonl", all);
}

std::string config(const cbtm::test::TempDir& t) {
  cbtm::test::write_text(t / "run.yaml",
                         "data:\n  train: all.jsonl\n  eval: " + kData + "/eval.jsonl.zst\n"
                         "  tokenizer_docs: 400\n  cluster_docs: 400\n  assign_part_docs: 150\n  assign_batch_docs: 64\n"
                         "tokenizer: {type: bpe, vocab_size: 400}\n"
                         "embedder: {type: tfidf, dims: 12}\n"
                         "clusterer: {type: balanced_kmeans, k: 3}\n"
                         "model: {type: opt, d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, max_positions: 64}\n"
                         "branch: {tokens: 2000, trainer: {type: lm, batch_size: 2, seq_len: 32}}\n");
  return t / "run.yaml";
}

std::vector<std::vector<int32_t>> docs_of(const std::string& dir) {
  std::vector<std::vector<int32_t>> out;
  cbtm::TokenShardReader r(dir);
  std::vector<int32_t> d;
  while (r.next(d)) out.push_back(d);
  return out;
}

void require_same_clusters(const std::string& a, const std::string& b, int k) {
  CHECK(cbtm::read_file(a + "/clusters/assignments.tsv") == cbtm::read_file(b + "/clusters/assignments.tsv"));
  for (int j = 0; j < k; ++j) {
    const std::string c = "/clusters/cluster-00" + std::to_string(j);
    CHECK(docs_of(a + c) == docs_of(b + c));
  }
}

int lines_of(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  std::string l;
  while (std::getline(in, l)) ++n;
  return n;
}

}  // namespace

TEST_CASE("e2e assign: shards by separate invocations + merge == one run - resume after a kill - inspect") {
  cbtm::test::TempDir t("e2e-assign");
  write_corpora(t);
  const std::string cfg = config(t);
  const std::string shards = " --set 'data.train=" + t / "shards/train-*.jsonl'";

  // The reference: one file, one invocation.
  REQUIRE(cbtm_cli("cluster " + cfg + " --out " + t / "one").status == 0);
  auto r = cbtm_cli("assign " + cfg + " --out " + t / "one");
  REQUIRE(r.status == 0);
  CHECK(lines_of(t / "one/clusters/assignments.tsv") == 1201);  // header + every document
  const json one = json::parse(cbtm::read_file(t / "one/stages/assign.json"))["summary"];
  CHECK(one["docs"] == 1200);
  CHECK(one["parts"] == 8);  // 1200 documents in parts of 150
  CHECK(one.contains("nmi"));

  // Three input shards, assigned out of order by separate invocations, then merged.
  const std::string out = " --out " + t / "many";
  REQUIRE(cbtm_cli("cluster " + cfg + out + shards).status == 0);
  r = cbtm_cli("assign " + cfg + out + shards + " --count-shards");
  REQUIRE(r.status == 0);
  CHECK(r.output.find("3\n") != std::string::npos);
  r = cbtm_cli("assign " + cfg + out + shards + " --merge");
  CHECK(r.status == 2);
  CHECK(r.output.find("3 of 3 input shard(s) are not assigned yet (0, 1, 2)") != std::string::npos);
  r = cbtm_cli("assign " + cfg + out + shards + " --shard 3");
  CHECK(r.status == 2);
  CHECK(r.output.find("shards are 0..2") != std::string::npos);
  REQUIRE(cbtm_cli("assign " + cfg + out + shards + " --shard 2").status == 0);
  REQUIRE(cbtm_cli("assign " + cfg + out + shards + " --shard 0").status == 0);
  r = cbtm_cli("assign " + cfg + out + shards + " --merge");
  CHECK(r.status == 2);
  CHECK(r.output.find("(1)") != std::string::npos);
  CHECK_FALSE(fs::exists(t / "many/clusters"));
  REQUIRE(cbtm_cli("assign " + cfg + out + shards + " --shard 1").status == 0);
  REQUIRE(cbtm_cli("assign " + cfg + out + shards + " --merge").status == 0);
  require_same_clusters(t / "one", t / "many", 3);

  // A killed shard: its last parts and its completion record are gone, a temporary part is
  // left over. The rerun resumes after the committed parts and ends with the same output.
  const std::string s1 = t / "many/assign/shard-00001";
  REQUIRE(fs::exists(s1 + "/part-00002"));
  fs::remove(s1 + "/shard.json");
  fs::remove_all(s1 + "/part-00002");
  fs::create_directories(s1 + "/part-00002.tmp-999-0/cluster-000");
  r = cbtm_cli("assign " + cfg + out + shards + " --redo assign");
  REQUIRE(r.status == 0);
  // --redo assign recomputes every shard from scratch...
  CHECK(r.output.find("resuming") == std::string::npos);
  require_same_clusters(t / "one", t / "many", 3);
  fs::remove(s1 + "/shard.json");
  fs::remove_all(s1 + "/part-00002");
  fs::create_directories(s1 + "/part-00002.tmp-999-0/cluster-000");
  fs::remove(t / "many/stages/assign.json");
  // ...while a plain rerun resumes the killed shard after its 2 committed parts.
  r = cbtm_cli("assign " + cfg + out + shards);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("[assign shard-00001] resuming after 2 committed part(s), 300 documents") != std::string::npos);
  CHECK(r.output.find("[assign shard-00000] finished earlier") != std::string::npos);
  CHECK_FALSE(fs::exists(s1 + "/part-00002.tmp-999-0"));
  require_same_clusters(t / "one", t / "many", 3);

  // A real kill in the middle of a shard (parts of 20 documents, so it cannot finish first).
  r = cbtm_cli("cluster " + cfg + " --out " + t / "killed");
  REQUIRE(r.status == 0);
  const bool killed = cbtm::test::cbtm_kill_when(
      "assign " + cfg + " --out " + t / "killed" + " --set data.assign_part_docs=20 --set data.assign_batch_docs=20",
      t / "killed/assign/shard-00000/part-00003", 120);
  r = cbtm_cli("assign " + cfg + " --out " + t / "killed" + " --set data.assign_part_docs=20 --set data.assign_batch_docs=20");
  REQUIRE(r.status == 0);
  if (killed) CHECK(r.output.find("resuming after") != std::string::npos);
  require_same_clusters(t / "one", t / "killed", 3);

  // inspect: sizes, top terms, the overlap table with NMI and purity.
  r = cbtm_cli("inspect " + t / "one");
  REQUIRE(r.status == 0);
  CHECK(r.output.find("whole corpus (assign)") != std::string::npos);
  CHECK(r.output.find("NMI") != std::string::npos);
  CHECK(r.output.find("purity") != std::string::npos);
  // with --compare the size rows stay in columns: every row as long as the first
  r = cbtm_cli("inspect " + t / "one --compare " + t / "many");
  REQUIRE(r.status == 0);
  {
    std::istringstream in(r.output);
    std::vector<size_t> widths;
    for (std::string l; std::getline(in, l);)
      if (l.find("nearest centre") != std::string::npos || l.find("(assign)") != std::string::npos ||
          l.find("(--compare)") != std::string::npos)
        widths.push_back(l.size());
    REQUIRE(widths.size() == 4);
    for (size_t w : widths) CHECK(w == widths[0]);
  }
  r = cbtm_cli("inspect " + t / "one --json --compare " + t / "many");
  REQUIRE(r.status == 0);
  const json a = json::parse(r.output.substr(r.output.find('{')));
  CHECK(a["assigned"]["sizes"].size() == 3);
  CHECK(a["assigned"]["nmi"].get<double>() == Approx(one["nmi"].get<double>()));
  CHECK(a["compare"]["assigned"]["sizes"] == a["assigned"]["sizes"]);
  CHECK(a["top_terms"].size() == 3);
}

TEST_CASE("e2e assign: shards follow their input files - a changed file list is noticed - one process per shard") {
  cbtm::test::TempDir t("e2e-assign-inputs");
  write_corpora(t);
  const std::string cfg = config(t);
  const std::string out = " --out " + t / "run" + " --set 'data.train=" + t / "shards/train-*.jsonl'";
  REQUIRE(cbtm_cli("cluster " + cfg + out).status == 0);
  for (int s = 0; s < 3; ++s) REQUIRE(cbtm_cli("assign " + cfg + out + " --shard " + std::to_string(s)).status == 0);
  REQUIRE(cbtm_cli("assign " + cfg + out + " --merge").status == 0);
  const std::string first = cbtm::read_file(t / "run/clusters/assignments.tsv");

  // A file renamed so that it sorts last: every shard number now names another file.
  fs::rename(t / "shards/train-0.jsonl", t / "shards/train-9.jsonl");
  auto r = cbtm_cli("assign " + cfg + out);
  CHECK(r.status == 2);
  CHECK(r.output.find("has changed since the assign stage finished") != std::string::npos);
  CHECK(r.output.find("--redo assign") != std::string::npos);
  // --merge --redo keeps the shards but will not merge those made from other files
  r = cbtm_cli("assign " + cfg + out + " --merge --redo assign");
  CHECK(r.status == 2);
  CHECK(r.output.find("3 of 3 input shard(s) are not assigned yet (0 (made from train-0.jsonl") != std::string::npos);
  CHECK(fs::exists(t / "run/assign/shard-00000/shard.json"));
  // a shard task discards output made from another file, naming both
  r = cbtm_cli("assign " + cfg + out + " --shard 0");
  REQUIRE(r.status == 0);
  CHECK(r.output.find("it was assigned from train-0.jsonl") != std::string::npos);
  CHECK(r.output.find("is now train-1.jsonl") != std::string::npos);

  // while another process holds a shard, a second one for it stops, naming the holder
  {
    cbtm::FileLock held(t / "run/locks/assign-shard-00001.lock", false);
    REQUIRE(held.locked());
    r = cbtm_cli("assign " + cfg + out + " --shard 1");
    CHECK(r.status == 2);
    CHECK(r.output.find("assign shard-00001 of " + t / "run" + " is being run by pid ") != std::string::npos);
  }
  for (int s = 1; s < 3; ++s) REQUIRE(cbtm_cli("assign " + cfg + out + " --shard " + std::to_string(s)).status == 0);
  REQUIRE(cbtm_cli("assign " + cfg + out + " --merge").status == 0);
  // the same documents, in the new file order: train-0's 400 now come last
  const std::string again = cbtm::read_file(t / "run/clusters/assignments.tsv");
  CHECK(lines_of(t / "run/clusters/assignments.tsv") == 1201);
  CHECK(again != first);
  std::vector<std::string> a, b;
  std::istringstream ia(first), ib(again);
  for (std::string l; std::getline(ia, l);) a.push_back(l);
  for (std::string l; std::getline(ib, l);) b.push_back(l);
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  CHECK(a == b);

  // The merge checks each shard's parts against its shard.json: a part gone is named, not
  // merged without its documents.
  const std::string s2 = t / "run/assign/shard-00002";
  REQUIRE(fs::exists(s2 + "/part-00002/part.json"));
  fs::rename(s2 + "/part-00002", t / "part-aside");
  fs::remove(t / "run/stages/assign.json");
  r = cbtm_cli("assign " + cfg + out + " --merge");
  CHECK(r.status == 2);
  CHECK(r.output.find("shard-00002: its shard.json counts 3 part(s) and 400 documents, but 2 part(s) with 300") !=
        std::string::npos);
  fs::rename(t / "part-aside", s2 + "/part-00002");
  // ... and will not merge a shard that a task is (re)assigning now
  {
    cbtm::FileLock held(t / "run/locks/assign-shard-00001.lock", false);
    REQUIRE(held.locked());
    r = cbtm_cli("assign " + cfg + out + " --merge");
    CHECK(r.status == 2);
    CHECK(r.output.find("assign shard-00001 of " + t / "run" + " is being run by pid ") != std::string::npos);
  }
  // A part folder without its part.json (a removal killed half-way) is removed, and the shard
  // resumes after its committed parts.
  fs::remove(s2 + "/shard.json");
  fs::remove(s2 + "/part-00002/part.json");
  r = cbtm_cli("assign " + cfg + out + " --shard 2");
  REQUIRE(r.status == 0);
  CHECK(r.output.find("a part folder without part.json") != std::string::npos);
  CHECK(r.output.find("resuming after 2 committed part(s), 300 documents") != std::string::npos);
  REQUIRE(cbtm_cli("assign " + cfg + out + " --merge").status == 0);
  CHECK(cbtm::read_file(t / "run/clusters/assignments.tsv") == again);

  // A shard whose every line is bad is an error (as reading a corpus is), not 0 documents.
  cbtm::test::write_text(t / "shards/train-5.jsonl", "not json\n{\"no_text\": 1}\n");
  const std::string bad = " --out " + t / "bad" + " --set 'data.train=" + t / "shards/train-*.jsonl'";
  REQUIRE(cbtm_cli("cluster " + cfg + bad).status == 0);
  r = cbtm_cli("assign " + cfg + bad + " --shard 2");  // train-5.jsonl, after train-1, train-2
  CHECK(r.status == 2);
  CHECK(r.output.find("train-5.jsonl: no usable documents: all 2 line(s) were bad") != std::string::npos);
  CHECK_FALSE(fs::exists(t / "bad/assign/shard-00002/shard.json"));
}

TEST_CASE("e2e assign: a corrupted or wrong-version clusterer artifact is refused - nothing written") {
  cbtm::test::TempDir t("e2e-assign-bad");
  write_corpora(t);
  const std::string cfg = config(t);
  const std::string out = " --out " + t / "run";
  REQUIRE(cbtm_cli("cluster " + cfg + out).status == 0);
  const std::string art = t / "run/clusterer.safetensors";
  const std::string good = cbtm::read_file(art);

  // Wrong version: the same file with format_version 1 -> 9 (same length, valid header).
  std::string bad = good;
  const size_t at = bad.find("\"format_version\":\"1\"");
  REQUIRE(at != std::string::npos);
  bad[at + std::string("\"format_version\":\"").size()] = '9';
  cbtm::test::write_text(art, bad);
  auto r = cbtm_cli("assign " + cfg + out);
  CHECK(r.status == 2);
  CHECK(r.output.find("clusterer.safetensors") != std::string::npos);
  CHECK(r.output.find("version") != std::string::npos);
  CHECK_FALSE(fs::exists(t / "run/clusters"));

  // Truncated.
  cbtm::test::write_text(art, good.substr(0, good.size() / 2));
  r = cbtm_cli("assign " + cfg + out);
  CHECK(r.status == 2);
  CHECK(r.output.find("clusterer.safetensors") != std::string::npos);
  CHECK_FALSE(fs::exists(t / "run/clusters"));
}

TEST_CASE("e2e assign: the metadata clusterer puts every document of a chosen domain in its cluster") {
  cbtm::test::TempDir t("e2e-assign-meta");
  write_corpora(t);
  std::string cfg = cbtm::read_file(config(t));
  cfg.replace(cfg.find("clusterer: {type: balanced_kmeans, k: 3}"), std::string("clusterer: {type: balanced_kmeans, k: 3}").size(),
              "clusterer: {type: metadata, field: domain, k: 3}");
  cbtm::test::write_text(t / "meta.yaml", cfg);
  const std::string out = " --out " + t / "run";
  REQUIRE(cbtm_cli("cluster " + t / "meta.yaml" + out).status == 0);
  REQUIRE(cbtm_cli("assign " + t / "meta.yaml" + out).status == 0);
  auto r = cbtm_cli("inspect " + t / "run --json");
  REQUIRE(r.status == 0);
  const json a = json::parse(r.output.substr(r.output.find('{')));
  CHECK(a["clusterer"] == "metadata");
  // The k most frequent domains of the 400 fit documents each fill exactly one cluster.
  const json& fit_overlap = a["fit"]["overlap"];
  std::vector<std::pair<int64_t, std::string>> freq;
  for (const auto& [dom, row] : fit_overlap.items()) {
    int64_t n = 0;
    for (const auto& v : row) n += v.get<int64_t>();
    freq.emplace_back(-n, dom);
  }
  std::sort(freq.begin(), freq.end());
  REQUIRE(freq.size() >= 3);
  std::set<int> used;
  for (int i = 0; i < 3; ++i) {
    const json& row = a["assigned"]["overlap"][freq[i].second];
    int nonzero = 0, where = -1;
    for (int j = 0; j < 3; ++j)
      if (row[j].get<int64_t>() > 0) ++nonzero, where = j;
    CHECK(nonzero == 1);
    used.insert(where);
  }
  CHECK(used.size() == 3);
}
