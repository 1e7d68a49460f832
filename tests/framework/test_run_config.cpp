#include "support/catch.h"

#include "cbtm/pipeline/run_config.h"
#include "cbtm/runtime.h"
#include "support/test_support.h"

namespace {
const char* kMinimal =
    "data:\n"
    "  train: train.jsonl\n"
    "  eval: eval.jsonl\n"
    "branch:\n"
    "  tokens: 1000\n";

cbtm::RunConfig parse(const std::string& y, const std::vector<std::string>& set = {}) {
  return cbtm::RunConfig::parse(y, "/cfg/run.yaml", set, cbtm::test::plugins());
}
std::string error_of(const std::string& y, const std::vector<std::string>& set = {}) {
  try {
    parse(y, set);
  } catch (const cbtm::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("run config: defaults are resolved for every section and component") {
  auto c = parse(kMinimal);
  const YAML::Node r = c.resolved();
  CHECK(r["data"]["train"].as<std::string>() == "/cfg/train.jsonl");  // relative to the config file
  CHECK(r["tokenizer"]["type"].as<std::string>() == "bpe");
  CHECK(r["embedder"]["type"].as<std::string>() == "tfidf");
  CHECK(r["clusterer"]["type"].as<std::string>() == "balanced_kmeans");
  CHECK(r["clusterer"]["k"]);  // plugin defaults are filled in
  CHECK(r["model"]["type"].as<std::string>() == "opt");
  CHECK(r["seed_lm"]["trainer"]["type"].as<std::string>() == "lm");
  CHECK(r["branch"]["expert_batch"].as<std::string>() == "split");
  CHECK(r["baselines"][0]["type"].as<std::string>() == "dense");
  CHECK(c.ensemble_names == std::vector<std::string>{"all", "top1", "top2"});
  CHECK(r["eval"]["ensembles"]["top1"]["top_k"].as<int>() == 1);
  CHECK(r["eval"]["ensembles"]["top1"]["temperature"].as<double>() == 0.1);
  // the resolved YAML parses back to the same resolved config
  auto again = cbtm::RunConfig::parse(c.yaml(), "/cfg/run.yaml", {}, cbtm::test::plugins());
  CHECK(again.yaml() == c.yaml());
}

TEST_CASE("run config: --set overrides - including new keys and list items") {
  auto c = parse(std::string(kMinimal) + "baselines: [{type: dense}]\n",
                 {"clusterer.k=3", "eval.ensembles.top1.temperature=0.5", "baselines.0.type=dense",
                  "data.eval=/abs/e.jsonl", "runtime.threads=1"});
  CHECK(c.resolved()["clusterer"]["k"].as<int>() == 3);
  CHECK(c.resolved()["eval"]["ensembles"]["top1"]["temperature"].as<double>() == 0.5);
  CHECK(c.data.eval == "/abs/e.jsonl");
  CHECK(c.runtime.threads == 1);
  CHECK(error_of(kMinimal, {"clusterer.k"}).find("expected key.path=value") != std::string::npos);
  CHECK(error_of(std::string(kMinimal) + "baselines: [{type: dense}]\n", {"baselines.3.type=dense"}).find("past the end") !=
        std::string::npos);
  CHECK(error_of(kMinimal, {"baselines.0.type=dense"}).find("no list") != std::string::npos);
  // a section made only by --set gets its default plugin
  CHECK(c.resolved()["clusterer"]["type"].as<std::string>() == "balanced_kmeans");
}

TEST_CASE("run config: errors name file - line - key and plugin") {
  std::string e = error_of(std::string(kMinimal) + "clusterer:\n  type: balanced_kmeans\n  kay: 4\n");
  CHECK(e.find("/cfg/run.yaml:8:3") != std::string::npos);
  CHECK(e.find("clusterer.kay") != std::string::npos);
  CHECK(e.find("clusterer 'balanced_kmeans'") != std::string::npos);

  e = error_of(std::string(kMinimal) + "embedder: {type: word2vec}\n");
  CHECK(e.find("unknown embedder 'word2vec'") != std::string::npos);
  CHECK(e.find("tfidf") != std::string::npos);

  e = error_of(std::string(kMinimal) + "clustr: {}\n");
  CHECK(e.find("/cfg/run.yaml:6:1") != std::string::npos);
  CHECK(e.find("unknown top-level key") != std::string::npos);

  e = error_of("data:\n  train: a\n  eval: b\nbranch:\n  tokens: 10\n  expert_batch: half\n");
  CHECK(e.find("/cfg/run.yaml:6:17") != std::string::npos);
  CHECK(e.find("branch.expert_batch") != std::string::npos);

  e = error_of("data:\n  train: a\nbranch: {tokens: 5}\n");
  CHECK(e.find("data.eval") != std::string::npos);
  CHECK(e.find("required") != std::string::npos);

  e = error_of("data: {train: a, eval: b}\nbranch: {tokens: 5}\n  bad indent: [\n");
  CHECK(e.find("/cfg/run.yaml:") != std::string::npos);
  CHECK(e.find("YAML syntax error") != std::string::npos);

  e = error_of(std::string(kMinimal) + "eval:\n  ensembles:\n    top1: {type: cluster_distance, temperature: -1}\n");
  CHECK(e.find("eval.ensembles.top1.temperature") != std::string::npos);
  CHECK(e.find("must be > 0") != std::string::npos);

  e = error_of(kMinimal, {"data.cluster_text=prefixes"});
  CHECK(e.find("data.cluster_text") != std::string::npos);
  CHECK(e.find("prefix") != std::string::npos);
  e = error_of(kMinimal, {"data.cluster_text=window", "data.cluster_text_chars=0"});
  CHECK(e.find("data.cluster_text_chars") != std::string::npos);

  // a framework section is not a plugin: `type` there is an unknown key, not silently dropped
  e = error_of(std::string(kMinimal) + "runtime:\n  type: fast\n");
  CHECK(e.find("/cfg/run.yaml:7:3") != std::string::npos);
  CHECK(e.find("runtime.type") != std::string::npos);
  CHECK(e.find("not a plugin") != std::string::npos);

  e = error_of(std::string(kMinimal) + "seed_lm:\n  trainer: {type: lm, learning_rate: 1}\n");
  CHECK(e.find("seed_lm.trainer.learning_rate") != std::string::npos);
  CHECK(e.find("trainer 'lm'") != std::string::npos);
}

TEST_CASE("run config: apply_override builds missing maps") {
  YAML::Node root = YAML::Load("a: {b: 1}");
  cbtm::apply_override(root, "a.c.d=[1, 2]");
  cbtm::apply_override(root, "x=hello");
  CHECK(root["a"]["b"].as<int>() == 1);
  CHECK(root["a"]["c"]["d"][1].as<int>() == 2);
  CHECK(root["x"].as<std::string>() == "hello");
}

TEST_CASE("run config: runtime.device and runtime.expert_devices - cuda:N accepted - expert j on entry j mod n") {
  auto c = parse(std::string(kMinimal) + "runtime:\n  device: cuda:1\n  expert_devices: [cuda:0, cuda:1, cpu]\n");
  CHECK(c.runtime.device == "cuda:1");
  CHECK(c.runtime.expert_devices == std::vector<std::string>{"cuda:0", "cuda:1", "cpu"});
  CHECK(parse(kMinimal).runtime.expert_devices.empty());  // default: every expert on runtime.device
  CHECK(error_of(std::string(kMinimal) + "runtime:\n  device: gpu\n").find("runtime.device") != std::string::npos);
  CHECK(error_of(std::string(kMinimal) + "runtime:\n  device: cuda:x\n").find("cuda:N") != std::string::npos);
  const std::string e = error_of(std::string(kMinimal) + "runtime:\n  expert_devices: [cuda:0, auto]\n");
  CHECK(e.find("expert_devices") != std::string::npos);
  CHECK(e.find("entry 1") != std::string::npos);

  const cbtm::Runtime saved = cbtm::runtime();
  cbtm::runtime() = c.runtime;
  CHECK(cbtm::expert_device(0) == "cuda:0");
  CHECK(cbtm::expert_device(2) == "cpu");
  CHECK(cbtm::expert_device(4) == "cuda:1");
  cbtm::runtime().expert_devices.clear();
  CHECK(cbtm::expert_device(3).empty());
  cbtm::runtime() = saved;
}

TEST_CASE("run config: a key given twice in one map is an error naming both lines") {
  // yaml-cpp keeps both and reads the first: k 4 would run where the user's last word was 8
  std::string e = error_of(std::string(kMinimal) + "clusterer:\n  type: balanced_kmeans\n  k: 4\n  k: 8\n");
  CHECK(e.find("/cfg/run.yaml:9:3") != std::string::npos);
  CHECK(e.find("key 'k' appears twice in 'clusterer' (first at line 8)") != std::string::npos);
  e = error_of(std::string(kMinimal) + "eval:\n  ensembles:\n    a: {type: uniform}\n    a: {type: random}\n");
  CHECK(e.find("key 'a' appears twice in 'eval.ensembles'") != std::string::npos);
  e = error_of(std::string(kMinimal) + "seed: 1\nseed: 2\n");
  CHECK(e.find("appears twice in 'the top level'") != std::string::npos);
  CHECK(error_of(std::string(kMinimal) + "clusterer: {type: balanced_kmeans, k: 4}\n").empty());
}
