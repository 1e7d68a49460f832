// The stage subcommands one at a time (as one job per stage or per expert would run them),
// a killed training job resuming from its checkpoint, and the plugins/config commands.
#include "support/catch.h"

#include <filesystem>
#include <regex>

#include <nlohmann/json.hpp>

#include "cbtm/fs.h"
#include "cbtm/pipeline/run_dir.h"
#include "cli_runner.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using cbtm::test::cbtm_cli;
using nlohmann::json;

TEST_CASE("e2e: stage subcommands in order - one expert per invocation - and resume after a kill") {
  cbtm::test::TempDir t("e2e-stages");
  const std::string cfg = cbtm::test::tiny_config();
  const std::string out = " --out " + t / "out";

  auto r = cbtm_cli("train " + cfg + out + " --expert 0");
  CHECK(r.status == 2);
  CHECK(r.output.find("cbtm assign") != std::string::npos);  // names the missing stage

  r = cbtm_cli("assign " + cfg + out);
  CHECK(r.status == 2);
  CHECK(r.output.find("cbtm cluster") != std::string::npos);

  REQUIRE(cbtm_cli("cluster " + cfg + out).status == 0);
  CHECK(fs::exists(t / "out/clusterer.safetensors"));
  REQUIRE(cbtm_cli("assign " + cfg + out).status == 0);
  CHECK(fs::exists(t / "out/clusters/assignments.tsv"));

  r = cbtm_cli("train " + cfg + out + " --expert 1");
  CHECK(r.status == 2);
  CHECK(r.output.find("--seed") != std::string::npos);

  // Kill the seed's training once its first checkpoint exists; the rerun resumes from it.
  REQUIRE(cbtm::test::cbtm_kill_when("train " + cfg + out + " --seed", t / "out/seed/step-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]", 300));  // a completed checkpoint, not its .tmp dir
  CHECK_FALSE(fs::exists(t / "out/seed/final"));
  r = cbtm_cli("train " + cfg + out + " --seed");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("seed: resuming from") != std::string::npos);
  CHECK(fs::exists(t / "out/seed/final/model.safetensors"));
  // the resumed seed is bit-identical to one trained without interruption
  const std::string ref = " --out " + t / "ref";
  REQUIRE(cbtm_cli("cluster " + cfg + ref).status == 0);
  REQUIRE(cbtm_cli("assign " + cfg + ref).status == 0);
  REQUIRE(cbtm_cli("train " + cfg + ref + " --seed").status == 0);
  CHECK(cbtm::read_file(t / "ref/seed/final/model.safetensors") == cbtm::read_file(t / "out/seed/final/model.safetensors"));

  REQUIRE(cbtm_cli("train " + cfg + out + " --expert 1").status == 0);
  json m = json::parse(cbtm::read_file(t / "out/manifest.json"));
  CHECK(m["experts"][0]["trained"] == false);
  CHECK(m["experts"][1]["trained"] == true);
  r = cbtm_cli("eval " + cfg + out);
  CHECK(r.status == 2);
  CHECK(r.output.find("expert-000") != std::string::npos);
  REQUIRE(cbtm_cli("train " + cfg + out + " --expert 0 --no-baselines").status == 0);
  REQUIRE(cbtm_cli("train " + cfg + out + " --baseline dense").status == 0);
  r = cbtm_cli("eval " + cfg + out);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(fs::exists(t / "out/results.json"));
  m = json::parse(cbtm::read_file(t / "out/manifest.json"));
  CHECK(m["experts"][0]["trained"] == true);

  // --redo of a stage this command only needs deletes nothing; a misspelt stage is named
  r = cbtm_cli("eval " + cfg + out + " --redo experts");
  CHECK(r.status == 2);
  CHECK(r.output.find("does not run stage 'expert-000'") != std::string::npos);
  CHECK(fs::exists(t / "out/experts/expert-000/final/model.safetensors"));
  r = cbtm_cli("eval " + cfg + out + " --redo expert-3");
  CHECK(r.status == 2);
  CHECK(r.output.find("--redo expert-3: no such stage") != std::string::npos);
  // a finished stage whose output is gone runs again
  fs::remove(t / "out/results.json");
  r = cbtm_cli("eval " + cfg + out);
  CHECK(r.status == 0);
  CHECK(r.output.find("its output " + t / "out/results.json" + " is gone: running it again") != std::string::npos);
  CHECK(fs::exists(t / "out/results.json"));
  // fp32 scoring gives other numbers: it evaluates again (once)
  r = cbtm_cli("eval " + cfg + out + " --set runtime.bf16=false");
  CHECK(r.status == 0);
  CHECK(r.output.find("[eval] finished earlier") == std::string::npos);
  r = cbtm_cli("eval " + cfg + out + " --set runtime.bf16=false");
  CHECK(r.status == 0);
  CHECK(r.output.find("[eval] finished earlier") != std::string::npos);
  // --set into a number is a clear error, not an internal one
  r = cbtm_cli("config " + cfg + " --set seed.value=2");
  CHECK(r.status == 2);
  CHECK(r.output.find("'seed' is not a map") != std::string::npos);

  // A second run that loads this run's tokenizer instead of training one tokenizes the
  // corpus identically.
  const std::string from = " --set data.tokenizer_from=" + t / "out/tokenizer.safetensors";
  r = cbtm_cli("cluster " + cfg + " --out " + t / "out2" + from);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("[tokenizer] loading") != std::string::npos);
  REQUIRE(cbtm_cli("assign " + cfg + " --out " + t / "out2" + from).status == 0);
  CHECK(cbtm::read_file(t / "out2/clusters/cluster-000/shard-00000.safetensors") ==
        cbtm::read_file(t / "out/clusters/cluster-000/shard-00000.safetensors"));
  r = cbtm_cli("assign " + cfg + " --out " + t / "out2" + " --redo tokenizer --set data.tokenizer_from=" + t / "nope.safetensors");
  CHECK(r.status == 2);
  CHECK(r.output.find("nope.safetensors") != std::string::npos);
}

TEST_CASE("e2e: `cbtm plugins` lists every kind with options - `cbtm config` resolves defaults") {
  auto r = cbtm_cli("plugins");
  REQUIRE(r.status == 0);
  for (const std::string s : {"tokenizer bpe", "embedder tfidf", "clusterer balanced_kmeans", "clusterer kmeans",
                              "clusterer random", "router cluster_distance", "model opt", "trainer lm", "baseline dense"})
    CHECK(r.output.find(s) != std::string::npos);
  CHECK(r.output.find("temperature") != std::string::npos);
  r = cbtm_cli("-q plugins --markdown");
  REQUIRE(r.status == 0);
  CHECK(r.output.find("## `data`") != std::string::npos);
  // docs/config.md is this output: regenerate it with `build/bin/cbtm plugins --markdown > docs/config.md`
  CHECK(r.output == cbtm::read_file(cbtm::test::source_path("docs/config.md")));
  r = cbtm_cli("config " + cbtm::test::tiny_config() + " --set clusterer.k=5");
  REQUIRE(r.status == 0);
  CHECK(r.output.find("k: 5") != std::string::npos);
  CHECK(r.output.find("temperature: 0.1") != std::string::npos);
  CHECK(r.output.find("expert_batch: split") != std::string::npos);
}

TEST_CASE("e2e: a finished stage whose unchanged settings a newer build resolves differently is kept, with a warning") {
  cbtm::test::TempDir t("e2e-defaults");
  const std::string cfg = cbtm::test::tiny_config();
  const std::string out = " --out " + t / "out";
  REQUIRE(cbtm_cli("cluster " + cfg + out).status == 0);
  // Rewrite the cluster stage's record as an older build would have written it: one without
  // balanced_kmeans's `tol` option (the resolved config lacked it; the user's config never
  // had it). Its fingerprint is the hash of that config text (the cluster stage has no input
  // stages: Pipeline::fp_with).
  const std::string path = t / "out/stages/cluster.json";
  json rec = json::parse(cbtm::read_file(path));
  REQUIRE(rec.contains("user_config"));
  CHECK(rec["user_config"].get<std::string>().find("tol") == std::string::npos);  // as written: no defaults
  REQUIRE(rec["fingerprint"] == cbtm::fingerprint(rec["config"]));
  const std::string old_config = std::regex_replace(rec["config"].get<std::string>(), std::regex(", tol: [^,}]*"), "");
  REQUIRE(old_config != rec["config"].get<std::string>());
  rec["config"] = old_config;
  rec["fingerprint"] = cbtm::fingerprint(old_config);
  cbtm::write_file_atomic(path, rec.dump(2));
  const std::string run_id = rec["run_id"];

  auto r = cbtm_cli("cluster " + cfg + out);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("[cluster] finished with the same settings as written") != std::string::npos);
  CHECK(r.output.find("--redo cluster") != std::string::npos);
  CHECK(json::parse(cbtm::read_file(path))["run_id"] == run_id);  // kept, not recomputed

  // A setting the user changed is still refused, naming the line.
  r = cbtm_cli("cluster " + cfg + out + " --set clusterer.max_iters=7");
  CHECK(r.status == 2);
  CHECK(r.output.find("different config") != std::string::npos);
  CHECK(r.output.find("max_iters: 7") != std::string::npos);
  // Made from other inputs (a fingerprint its config text does not give) it is recomputed,
  // neither kept nor refused.
  rec["fingerprint"] = "0123456789abcdef";
  cbtm::write_file_atomic(path, rec.dump(2));
  r = cbtm_cli("cluster " + cfg + out);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(json::parse(cbtm::read_file(path))["run_id"] != run_id);
  CHECK(json::parse(cbtm::read_file(path))["config"].get<std::string>().find("tol") != std::string::npos);
}
