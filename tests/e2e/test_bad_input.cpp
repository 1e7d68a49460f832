// Bad input: each case exits with status 2 and a message naming the file, key or line,
// and leaves nothing half-written.
#include "support/catch.h"

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <utility>

#include "cli_runner.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using cbtm::test::cbtm_cli;
using cbtm::test::write_text;

namespace {
const std::string kData = cbtm::test::source_path("data/devpile-mini");

std::string base_config(const std::string& train, const std::string& extra = "") {
  return "data:\n  train: " + train + "\n  eval: " + kData + "/eval.jsonl.zst\n  max_train_docs: 300\n"
         "tokenizer: {type: bpe, vocab_size: 300}\n"
         "embedder: {type: tfidf, dims: 8}\n"
         "clusterer: {type: balanced_kmeans, k: 2}\n"
         "model: {type: opt, d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, max_positions: 64}\n"
         "branch: {tokens: 2000, trainer: {type: lm, batch_size: 2, seq_len: 32}}\n" + extra;
}

cbtm::test::CliResult run(const cbtm::test::TempDir& t, const std::string& config, const std::string& cmd = "run") {
  write_text(t / "run.yaml", config);
  return cbtm_cli(cmd + " " + t / "run.yaml" + " --out " + t / "out");
}
}  // namespace

TEST_CASE("bad input: malformed YAML names the line") {
  cbtm::test::TempDir t("bad");
  auto r = run(t, "data:\n  train: [a, b\n  eval: x\n");
  CHECK(r.status == 2);
  CHECK(r.output.find("run.yaml:") != std::string::npos);
  CHECK(r.output.find("YAML syntax error") != std::string::npos);
}

TEST_CASE("bad input: unknown plugin and unknown key") {
  cbtm::test::TempDir t("bad");
  auto r = run(t, base_config(kData + "/train.jsonl.zst", "baselines: [{type: switch}]\n"));
  CHECK(r.status == 2);
  CHECK(r.output.find("unknown baseline 'switch'") != std::string::npos);
  CHECK(r.output.find("dense") != std::string::npos);
  r = run(t, base_config(kData + "/train.jsonl.zst") + "eval: {docs: 5, ensembels: {}}\n");
  CHECK(r.status == 2);
  CHECK(r.output.find("run.yaml:10:") != std::string::npos);
  CHECK(r.output.find("eval.ensembels") != std::string::npos);
  r = cbtm_cli("config " + t / "run.yaml");
  CHECK(r.status == 2);
  CHECK_FALSE(fs::exists(t / "out"));
}

TEST_CASE("bad input: missing and empty corpora") {
  cbtm::test::TempDir t("bad");
  auto r = run(t, base_config(t / "nope.jsonl"));
  CHECK(r.status == 2);
  CHECK(r.output.find("nope.jsonl: no such file") != std::string::npos);
  write_text(t / "empty.jsonl", "\n");
  r = run(t, base_config(t / "empty.jsonl"));
  CHECK(r.status == 2);
  CHECK(r.output.find("empty.jsonl has no usable documents") != std::string::npos);
}

TEST_CASE("bad input: invalid JSON or UTF-8 lines are skipped and counted - or fail per option") {
  cbtm::test::TempDir t("bad");
  std::string corpus;
  for (int i = 0; i < 40; ++i) corpus += "{\"text\": \"the kernel scheduler runs task " + std::to_string(i) + " on a cpu\"}\n";
  corpus += "{\"text\": \"broken \xc3\x28 utf8\"}\n{oops\n";
  for (int i = 0; i < 40; ++i) corpus += "{\"text\": \"a small bird sings song " + std::to_string(i) + " in the garden\"}\n";
  write_text(t / "c.jsonl", corpus);
  auto r = run(t, base_config(t / "c.jsonl"), "cluster");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("skipped 2 bad line(s)") != std::string::npos);
  CHECK(r.output.find("c.jsonl:41") != std::string::npos);
  fs::remove_all(t / "out");
  r = cbtm_cli("cluster " + t / "run.yaml" + " --out " + t / "out" + " --set data.on_bad_document=fail");
  CHECK(r.status == 2);
  CHECK(r.output.find("c.jsonl:41: invalid UTF-8") != std::string::npos);
  CHECK_FALSE(fs::exists(t / "out/clusterer.safetensors"));
}

TEST_CASE("bad input: more clusters than documents") {
  cbtm::test::TempDir t("bad");
  write_text(t / "three.jsonl", "{\"text\": \"one doc\"}\n{\"text\": \"two docs\"}\n{\"text\": \"three docs\"}\n");
  write_text(t / "run.yaml", base_config(t / "three.jsonl"));
  auto r = cbtm_cli("cluster " + t / "run.yaml" + " --out " + t / "out" + " --set clusterer.k=5");
  CHECK(r.status == 2);
  CHECK(r.output.find("k = 5 is larger than the number of documents") != std::string::npos);
}

TEST_CASE("bad input: a cluster with no data stops only its expert, naming the cluster") {
  cbtm::test::TempDir t("bad-empty-cluster");
  const std::string cfg = cbtm::test::tiny_config() + " --set runtime.threads=1 --out " + t / "o";
  REQUIRE(cbtm_cli("cluster " + cfg).status == 0);
  REQUIRE(cbtm_cli("assign " + cfg).status == 0);
  REQUIRE(cbtm_cli("train " + cfg + " --seed").status == 0);
  fs::remove_all(t / "o/clusters/cluster-001");
  fs::create_directories(t / "o/clusters/cluster-001");
  auto r = cbtm_cli("train " + cfg + " --expert 1");
  CHECK(r.status == 2);
  CHECK(r.output.find("cluster 1 has no documents") != std::string::npos);
  CHECK_FALSE(fs::exists(t / "o/experts/expert-001/final"));
  r = cbtm_cli("train " + cfg + " --expert 0");
  CHECK(r.status == 0);
  CHECK(fs::exists(t / "o/experts/expert-000/final/model.safetensors"));
}

namespace {
// stdout alone (stderr dropped), and the exit status
std::pair<int, std::string> stdout_of(const std::string& args) {
  std::string out;
  FILE* p = popen((std::string(CBTM_BINARY_DIR) + "/bin/cbtm " + args + " 2>/dev/null").c_str(), "r");
  if (!p) return {-1, out};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}
}  // namespace

TEST_CASE("bad input: command lines exit 2 with a message on stderr - stdout carries results only") {
  cbtm::test::TempDir t("bad");
  auto r = cbtm_cli("nosuch");
  CHECK(r.status == 2);
  CHECK(r.output.find("unknown command 'nosuch'") != std::string::npos);
  CHECK(r.output.find("run, cluster") != std::string::npos);
  r = cbtm_cli("config " + t / "missing.yaml");
  CHECK(r.status == 2);
  CHECK(r.output.find("missing.yaml") != std::string::npos);
  r = cbtm_cli("generate " + t.path() + " --max-tokens -5");
  CHECK(r.status == 2);
  CHECK(r.output.find("--max-tokens: must be >= 0, got -5") != std::string::npos);
  CHECK(cbtm_cli("--help").status == 0);
  // a bad value given by --set names the override, not a line of the file
  write_text(t / "run.yaml", base_config(kData + "/train.jsonl.zst"));
  r = cbtm_cli("config " + t / "run.yaml" + " --set clusterer.k=abc");
  CHECK(r.status == 2);
  CHECK(r.output.find("--set 'clusterer.k=abc': clusterer.k: expected an integer") != std::string::npos);
  // an unknown plugin names the file, line and key
  write_text(t / "bad.yaml", base_config(kData + "/train.jsonl.zst") + "baselines: [{type: switch}]\n");
  r = cbtm_cli("config " + t / "bad.yaml");
  CHECK(r.output.find("bad.yaml:10:") != std::string::npos);
  CHECK(r.output.find("baselines.0.type: unknown baseline 'switch'") != std::string::npos);
  // contradicting flags and unknown kinds are errors, not silent no-ops
  r = cbtm_cli("train " + t / "run.yaml" + " --out " + t / "o" + " --seed --expert 1");
  CHECK(r.status == 2);
  CHECK(r.output.find("--seed trains the seed LM only") != std::string::npos);
  r = cbtm_cli("plugins --kind routr");
  CHECK(r.status == 2);
  CHECK(r.output.find("kinds: baseline, clusterer") != std::string::npos);
  // errors go to stderr: stdout stays empty (a redirected `cbtm config` is never an error text)
  const auto [status, out] = stdout_of("config " + t / "bad.yaml");
  CHECK(status == 2);
  CHECK(out.empty());
  const auto good = stdout_of("config " + t / "run.yaml");
  CHECK(good.first == 0);
  CHECK(good.second.find("clusterer:") != std::string::npos);
}
