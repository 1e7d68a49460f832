// `cbtm run` on configs/tiny.yaml: every stage, every artifact, resume, config changes.
#include "support/catch.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cbtm/fs.h"
#include "cbtm/tensor_file.h"
#include "cbtm/token_shard.h"
#include "cli_runner.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using cbtm::test::cbtm_cli;
using nlohmann::json;

namespace {
json read_json(const std::string& p) { return json::parse(cbtm::read_file(p)); }
int count_lines(const std::string& p) {
  std::ifstream in(p);
  int n = 0;
  for (std::string l; std::getline(in, l);) ++n;
  return n;
}
const json* find_model(const json& results, const std::string& name) {
  for (const auto& m : results["models"])
    if (m["name"] == name) return &m;
  return nullptr;
}

// One full run per process: Catch re-enters the test case once per SECTION.
const cbtm::test::CliResult& shared_run(const std::string& out) {
  static const cbtm::test::CliResult r = cbtm_cli("run " + cbtm::test::tiny_config() + " --out " + out);
  return r;
}
}  // namespace

TEST_CASE("e2e: cbtm run performs every stage and writes every artifact") {
  static cbtm::test::TempDir t("e2e-run");
  const std::string out = t / "out";
  const std::string cfg = cbtm::test::tiny_config();
  const auto& r = shared_run(out);
  INFO(r.output);
  REQUIRE(r.status == 0);

  // the resolved config, the fitted clusterer and the tokenizer: self-describing artifacts
  CHECK(fs::exists(out + "/config.yaml"));
  auto cl = cbtm::TensorFile::read_artifact(out + "/clusterer.safetensors", "clusterer", 1);
  CHECK(cl.meta("components").find("tfidf") != std::string::npos);
  CHECK(cl.meta("components").find("balanced_kmeans") != std::string::npos);
  CHECK(cl.meta("config").find("devpile-mini") != std::string::npos);
  auto tok = cbtm::TensorFile::read_artifact(out + "/tokenizer.safetensors", "tokenizer", 1);
  CHECK(tok.meta("vocab_size") == "512");

  // per-cluster data: every training document lands in exactly one cluster
  CHECK(count_lines(out + "/clusters/assignments.tsv") == 1500 + 1);
  const json assign = read_json(out + "/stages/assign.json");
  const int64_t d0 = assign["summary"]["clusters"][0]["docs"], d1 = assign["summary"]["clusters"][1]["docs"];
  CHECK(d0 + d1 == 1500);
  CHECK(d0 > 0);
  CHECK(d1 > 0);
  CHECK_FALSE(cbtm::list_token_shards(out + "/clusters/cluster-000").empty());

  // seed, experts and the dense baseline: HF-layout checkpoints; training lowered the loss
  for (const std::string dir : {"seed/final", "experts/expert-000/final", "experts/expert-001/final", "baselines/dense/final"}) {
    CHECK(fs::exists(out + "/" + dir + "/config.json"));
    CHECK(fs::exists(out + "/" + dir + "/model.safetensors"));
    // a Hugging Face directory: the run's tokenizer beside the model, its ids in config.json
    for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"})
      CHECK(fs::exists(out + "/" + dir + "/" + f));
    const json cfg = read_json(out + "/" + dir + "/config.json");
    CHECK(cfg["bos_token_id"] == 2);
    CHECK(cfg["pad_token_id"] == 1);
    CHECK(read_json(out + "/" + dir + "/vocab.json").size() == cfg["vocab_size"].get<size_t>());
  }
  const json seed = read_json(out + "/stages/seed.json")["summary"];
  CHECK(seed["last_loss"].get<double>() < seed["first_loss"].get<double>() - 0.5);
  for (const std::string e : {"expert-000", "expert-001"}) {
    const json s = read_json(out + "/stages/" + e + ".json")["summary"];
    CHECK(s["tokens"].get<int64_t>() >= 20000);  // branch.tokens / k
    CHECK(s["last_loss"].get<double>() < seed["first_loss"].get<double>());
  }

  // the manifest lists experts by cluster id
  const json m = read_json(out + "/manifest.json");
  REQUIRE(m["experts"].size() == 2);
  for (int j = 0; j < 2; ++j) {
    CHECK(m["experts"][j]["cluster"] == j);
    CHECK(m["experts"][j]["trained"] == true);
    CHECK(fs::exists(out + "/" + m["experts"][j]["checkpoint"].get<std::string>() + "/model.safetensors"));
  }

  // results: dense, seed, c-BTM all/top-1/top-2, finite perplexities, sparsity as configured
  // results of the first run (later SECTIONs re-evaluate into the same file)
  static const json res = read_json(out + "/results.json");
  for (const std::string name : {"dense", "seed", "c-btm all", "c-btm top1", "c-btm top2"}) {
    const json* mm = find_model(res, name);
    REQUIRE(mm != nullptr);
    CHECK((*mm)["ppl"].get<double>() > 1.0);
    CHECK((*mm)["ppl"].get<double>() < 512.0);
    CHECK((*mm)["tokens"].get<int64_t>() == res["eval"]["tokens"].get<int64_t>());
    CHECK((*mm).contains("by_domain"));
  }
  CHECK((*find_model(res, "c-btm top1"))["mean_token_experts"].get<double>() == Approx(1.0));
  CHECK((*find_model(res, "c-btm all"))["mean_token_experts"].get<double>() == Approx(2.0));
  CHECK((*find_model(res, "dense"))["ppl"].get<double>() < (*find_model(res, "seed"))["ppl"].get<double>());
  CHECK(r.output.find("c-btm top1") != std::string::npos);

  // nothing half-written is left behind
  for (const auto& e : fs::recursive_directory_iterator(out))
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
  // the printed table has the c-BTM rows and the per-domain breakdown
  CHECK(r.output.find("per-domain perplexity") != std::string::npos);

  SECTION("rerunning skips every finished stage") {
    const auto before = fs::last_write_time(out + "/results.json");
    auto again = cbtm_cli("run " + cfg + " --out " + out);
    INFO(again.output);
    CHECK(again.status == 0);
    CHECK(again.output.find("[experts] all experts finished earlier; skipping") != std::string::npos);
    for (const std::string s : {"[tokenizer]", "[cluster]", "[assign]", "[seed]", "[baseline-dense]"})
      CHECK(again.output.find(s + " finished earlier; skipping") != std::string::npos);
    CHECK(fs::last_write_time(out + "/results.json") == before);
  }
  SECTION("a different clustering config is refused, naming the change") {
    auto changed = cbtm_cli("run " + cfg + " --out " + out + " --set clusterer.k=3");
    CHECK(changed.status == 2);
    CHECK(changed.output.find("different config") != std::string::npos);
    CHECK(changed.output.find("--redo cluster") != std::string::npos);
  }
  SECTION("data.sample picks the tokenizer's documents: changing it is a different config") {
    // tiny.yaml learns its tokenizer from tokenizer_docs = 1500 documents (a uniform sample by
    // default); cluster_docs is 0 (all), so only the tokenizer stage names the change.
    auto changed = cbtm_cli("run " + cfg + " --out " + out + " --set data.sample=first");
    CHECK(changed.status == 2);
    CHECK(changed.output.find("data.sample") != std::string::npos);
    CHECK(changed.output.find("--redo tokenizer") != std::string::npos);
  }
  SECTION("new evaluation settings re-evaluate without retraining") {
    auto ev = cbtm_cli("eval " + cfg + " --out " + out + " --set eval.ensembles.uniform.type=uniform");
    INFO(ev.output);
    CHECK(ev.status == 0);
    CHECK(ev.output.find("re-evaluating") != std::string::npos);
    const json res2 = read_json(out + "/results.json");
    CHECK(find_model(res2, "c-btm uniform") != nullptr);
    CHECK(find_model(res2, "c-btm top1") == nullptr);  // an explicit ensembles map replaces the defaults
    CHECK(find_model(res2, "dense") != nullptr);
    CHECK(ev.output.find("[seed] finished") == std::string::npos);  // nothing was retrained
  }
  SECTION("--redo seed retrains the seed and every stage that depends on it") {
    const std::string w = out + "/experts/expert-000/final/model.safetensors";
    const std::string before = cbtm::read_file(w);
    // a new seed config applied with --redo: the experts are retrained from the new seed
    auto changed = cbtm_cli("run " + cfg + " --out " + out + " --redo seed --set seed_lm.trainer.lr=0.004");
    INFO(changed.output);
    REQUIRE(changed.status == 0);
    CHECK(cbtm::read_file(w) != before);
    // and back: everything is retrained and, being deterministic, reproduces the first run
    auto again = cbtm_cli("run " + cfg + " --out " + out + " --redo seed");
    INFO(again.output);
    REQUIRE(again.status == 0);
    CHECK(again.output.find("[seed] pretraining") != std::string::npos);
    CHECK(again.output.find("[expert-000] branching from the seed") != std::string::npos);
    CHECK(again.output.find("[baseline-dense] training") != std::string::npos);
    CHECK(again.output.find("[cluster] finished earlier; skipping") != std::string::npos);
    CHECK(cbtm::read_file(w) == before);
    CHECK(again.output.find("discarding") != std::string::npos);
  }
  SECTION("a truncated expert checkpoint is reported by name") {
    const std::string w = out + "/experts/expert-001/final/model.safetensors";
    const std::string bytes = cbtm::read_file(w);
    cbtm::write_file_atomic(w, bytes.substr(0, bytes.size() / 2));
    auto ev = cbtm_cli("eval " + cfg + " --out " + out + " --redo eval");
    CHECK(ev.status == 2);
    CHECK(ev.output.find("expert-001/final/model.safetensors") != std::string::npos);
    CHECK(ev.output.find("truncated") != std::string::npos);
  }
}
