// `cbtm generate`, `cbtm serve` and `cbtm fewshot` on a finished tiny run, plus the eval of
// the routers that need expert scores (cached_prior) and of fixed expert sets
// (fix_experts_after).
#include "support/catch.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "cbtm/corpus.h"
#include "cbtm/fs.h"
#include "cbtm/plugin_host.h"
#include "cbtm/process_defaults.h"
#include "cbtm/serve/http_server.h"
#include "cbtm/serve/run_ensemble.h"
#include "cli_runner.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using cbtm::test::cbtm_cli;
using nlohmann::json;

namespace {

const json* find_model(const json& results, const std::string& name) {
  for (const auto& m : results["models"])
    if (m["name"] == name) return &m;
  return nullptr;
}

// `cbtm serve RUN --port 0 --port-file F` in the background.
struct Server {
  pid_t pid = -1;
  int port = -1;
  Server(const std::string& args, const std::string& port_file, const std::string& log) {
    pid = fork();
    if (pid == 0) {
      const std::string cmd = "exec " + std::string(CBTM_BINARY_DIR) + "/bin/cbtm serve " + args + " --port 0 --port-file " +
                              port_file + " > " + log + " 2>&1";
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 1200 && port < 0; ++i) {
      int st;
      if (waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        return;
      }
      if (fs::exists(port_file)) port = std::stoi(cbtm::read_file(port_file));
      else std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  int stop() {  // SIGTERM: a clean exit
    if (pid < 0) return -1;
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  ~Server() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

struct SharedRun {
  cbtm::test::TempDir t{"serve"};
  std::string data = cbtm::test::source_path("data/devpile-mini/");
  std::string out = t / "out";
  cbtm::test::CliResult r;
  SharedRun() {
    cbtm::test::write_text(t / "run.yaml", cbtm::read_file(cbtm::test::tiny_config()) +
                                               "  ensembles:\n"
                                               "    top1: {type: cluster_distance, top_k: 1}\n"
                                               "    fixed: {type: cluster_distance, top_k: 1, fix_experts_after: 4}\n"
                                               "    btm: {type: cached_prior, calibration_docs: 4}\n");
    r = cbtm_cli("run " + t / "run.yaml" + " --out " + out + " --set eval.docs=1 --set data.train=" + data +
                 "train.jsonl.zst --set data.eval=" + data + "eval.jsonl.zst");
  }
};
// One run per process: Catch re-enters the test case once per SECTION.
SharedRun& shared() {
  static SharedRun s;
  return s;
}

}  // namespace

TEST_CASE("e2e serve: a tiny run's ensemble scores as cbtm eval does, generates reproducibly, and rejects bad requests") {
  SharedRun& sr = shared();
  const auto& t = sr.t;
  const std::string& out = sr.out;
  const std::string& data = sr.data;
  const auto& r = sr.r;
  INFO(r.output);
  REQUIRE(r.status == 0);
  const json res = json::parse(cbtm::read_file(out + "/results.json"));
  const json* top1 = find_model(res, "c-btm top1");
  const json* fixed = find_model(res, "c-btm fixed");
  const json* btm = find_model(res, "c-btm btm");
  REQUIRE(top1);
  REQUIRE(fixed);
  REQUIRE(btm);
  CHECK(r.output.find("calibrating its router on 4 held-out documents") != std::string::npos);
  CHECK((*btm)["mean_token_experts"].get<double>() > 1.0);        // the prior mixes both experts
  CHECK((*btm)["expert_token_fraction"].get<double>() == 1.0);    // and needs both everywhere
  CHECK((*fixed)["ppl"].get<double>() > 1.0);
  // a fixed set after 4 tokens: the other expert runs on at most the first 4 positions
  const int64_t scored = res["eval"]["tokens"].get<int64_t>();
  CHECK((*fixed)["expert_token_fraction"].get<double>() <= (scored + 4.0) / (2.0 * scored) + 1e-9);

  SECTION("generate: same seed, same text; top-1 runs one expert per token") {
    const std::string cmd = "generate " + out + " -e top1 --prompt 'The history of' --max-tokens 12 --seed 5 --json";
    auto a = cbtm_cli("-q " + cmd), b = cbtm_cli("-q " + cmd);
    INFO(a.output);
    REQUIRE(a.status == 0);
    CHECK(a.output == b.output);
    const json g = json::parse(a.output);
    CHECK(g["tokens"].size() <= 12);
    CHECK((g["stop_reason"] == "max_tokens" || g["stop_reason"] == "eos"));
    if (g["stop_reason"] == "max_tokens") CHECK(g["tokens"].size() == 12);
    for (const auto& e : g["experts"]) CHECK(e.size() == 1);
    // --ignore-eos: exactly --max-tokens (the experts' key/value caches carried across 30 steps)
    auto full = cbtm_cli("-q generate " + out + " -e top1 --prompt 'The history of' --max-tokens 30 --seed 5 --ignore-eos --json");
    REQUIRE(full.status == 0);
    const json fg = json::parse(full.output);
    CHECK(fg["tokens"].size() == 30);
    CHECK(fg["stop_reason"] == "max_tokens");
    auto greedy = cbtm_cli("-q generate " + out + " -e btm --set eval.ensembles.btm.calibration_docs=0 --prompt 'x' "
                           "--max-tokens 3 --temperature 0 --json");
    INFO(greedy.output);
    CHECK(greedy.status == 0);
    auto bad = cbtm_cli("generate " + out + " -e nope --prompt x");
    CHECK(bad.status == 2);
    CHECK(bad.output.find("no ensemble 'nope'") != std::string::npos);
    // runtime.expert_devices places expert j on entry j mod n: an absent device is named
    bad = cbtm_cli("generate " + out + " -e top1 --set 'runtime.expert_devices=[cpu, cuda:97]' --prompt x");
    CHECK(bad.status == 2);
    CHECK(bad.output.find("cuda:97") != std::string::npos);
    auto placed = cbtm_cli("-q generate " + out + " -e top1 --set 'runtime.expert_devices=[cpu]' --prompt 'The history of' "
                           "--max-tokens 12 --seed 5 --json");
    CHECK(placed.status == 0);
    CHECK(placed.output == a.output);
    bad = cbtm_cli("generate " + out + " -e btm --prompt x");  // calibrates: not servable as is
    CHECK(bad.status == 2);
    CHECK(bad.output.find("calibration_docs") != std::string::npos);
  }

  SECTION("RunEnsemble: texts scored together get what each gets alone; texts waiting behind a generation share one evaluation") {
    cbtm::PluginHost host;
    host.load_builtin();
    auto ens = cbtm::RunEnsemble::open(out, "top1", {}, host);
    cbtm::CorpusOptions co;
    co.max_docs = 5;
    std::vector<std::string> texts;
    for (const auto& d : cbtm::read_corpus(data + "eval.jsonl.zst", co)) texts.push_back(d.text);
    texts.push_back("");  // nothing but the end of the document is scored
    texts.push_back("The history of the");
    std::vector<cbtm::TextScore> alone;
    for (const auto& x : texts) alone.push_back(ens->score_now({x}).front());
    const auto together = ens->score_now(texts);
    REQUIRE(together.size() == texts.size());
    auto same = [](const cbtm::TextScore& a, const cbtm::TextScore& b) {
      CHECK(a.tokens == b.tokens);
      CHECK(a.bytes == b.bytes);
      CHECK(a.mean_active_experts == b.mean_active_experts);
      CHECK(a.pieces == b.pieces);
      CHECK(a.nll == Approx(b.nll).epsilon(5e-3));  // batch shapes change only float rounding (bf16: ~2e-3 seen)
      REQUIRE(a.logp.size() == b.logp.size());
      for (size_t t = 0; t < a.logp.size(); ++t) CHECK(a.logp[t] == Approx(b.logp[t]).margin(0.02));
    };
    for (size_t i = 0; i < texts.size(); ++i) same(together[i], alone[i]);
    CHECK(alone[texts.size() - 2].tokens == 1);
    CHECK(ens->info()["max_batch"] == 16);
    CHECK_THROWS_WITH(ens->set_max_batch(0), ContainsText("max_batch must be >= 1"));

    // Concurrent score() calls that arrive while a generation holds the worker are scored
    // together once it ends.
    const int64_t requests0 = ens->info()["score_requests"], batches0 = ens->info()["score_batches"];
    cbtm::GenerateOptions go;
    go.max_tokens = ens->info()["max_length"].get<int64_t>() - 4;
    go.stop_at_eos = false;
    std::thread gen([&] { ens->generate("The", go); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::vector<cbtm::TextScore> got(texts.size());
    std::vector<std::thread> callers;
    for (size_t i = 0; i < texts.size(); ++i) callers.emplace_back([&, i] { got[i] = ens->score(texts[i]); });
    for (auto& c : callers) c.join();
    gen.join();
    for (size_t i = 0; i < texts.size(); ++i) same(got[i], alone[i]);
    const int64_t requests = ens->info()["score_requests"].get<int64_t>() - requests0;
    const int64_t batches = ens->info()["score_batches"].get<int64_t>() - batches0;
    CHECK(requests == static_cast<int64_t>(texts.size()));
    CHECK(batches < requests);
    UNSCOPED_INFO("texts " << requests << ", evaluations " << batches);
  }

  SECTION("serve: /score equals cbtm eval on the same document; concurrent clients; malformed requests get 4xx") {
    const std::string marker = t / "cpu.lock";  // the server holds the machine's marker while it runs
    setenv("CBTM_CPU_MARKER", marker.c_str(), 1);
    Server s(out + " -e top1", t / "port", t / "serve.log");
    unsetenv("CBTM_CPU_MARKER");
    INFO(cbtm::read_file(t / "serve.log"));
    REQUIRE(s.port > 0);
    CHECK(cbtm::hold_cpu_marker(marker));  // another process (the server) holds it
    auto h = cbtm::http_call(s.port, "GET", "/health");
    REQUIRE(h.status == 200);
    CHECK(json::parse(h.body)["ensemble"] == "top1");
    cbtm::CorpusOptions co;
    co.max_docs = 1;
    const auto docs = cbtm::read_corpus(data + "eval.jsonl.zst", co);
    const std::string req = json{{"text", docs[0].text}}.dump();
    auto sc = cbtm::http_call(s.port, "POST", "/score", req);
    INFO(sc.body);
    REQUIRE(sc.status == 200);
    const json j = json::parse(sc.body);
    CHECK(j["tokens"].get<int64_t>() == scored);
    CHECK(j["ppl"].get<double>() == Approx((*top1)["ppl"].get<double>()).epsilon(1e-4));
    // concurrent clients all get the same answer
    std::vector<std::thread> clients;
    std::vector<double> ppl(8, 0.0);
    for (int c = 0; c < 8; ++c)
      clients.emplace_back([&, c] {
        auto x = cbtm::http_call(s.port, "POST", "/score", req);
        if (x.status == 200) ppl[c] = json::parse(x.body)["ppl"].get<double>();
      });
    for (auto& c : clients) c.join();
    for (double p : ppl) CHECK(p == Approx(j["ppl"].get<double>()).epsilon(1e-6));
    // a bulk request: several texts scored as one evaluation, each as if alone
    const std::string other = "The history of the";
    auto single_other = cbtm::http_call(s.port, "POST", "/score", json{{"text", other}}.dump());
    REQUIRE(single_other.status == 200);
    auto bulk = cbtm::http_call(s.port, "POST", "/score", json{{"texts", {docs[0].text, other}}, {"tokens", true}}.dump());
    INFO(bulk.body);
    REQUIRE(bulk.status == 200);
    const json b = json::parse(bulk.body);
    REQUIRE(b["results"].size() == 2);
    CHECK(b["results"][0]["tokens"] == j["tokens"]);
    CHECK(b["results"][0]["ppl"].get<double>() == Approx(j["ppl"].get<double>()).epsilon(5e-3));
    CHECK(b["results"][1]["ppl"].get<double>() ==
          Approx(json::parse(single_other.body)["ppl"].get<double>()).epsilon(5e-3));
    CHECK(b["results"][1]["token_pieces"].size() == b["results"][1]["tokens"].get<size_t>());
    CHECK(b["tokens"].get<int64_t>() == b["results"][0]["tokens"].get<int64_t>() + b["results"][1]["tokens"].get<int64_t>());
    CHECK(b["nll"].get<double>() == Approx(b["results"][0]["nll"].get<double>() + b["results"][1]["nll"].get<double>()));
    for (const char* bad : {R"({"texts": []})", R"({"texts": "a"})", R"({"texts": ["a", 3]})", R"({"text": "a", "texts": ["b"]})", R"({})"}) {
      auto e = cbtm::http_call(s.port, "POST", "/score", bad);
      CHECK(e.status == 400);
      INFO(bad << " -> " << e.body);
      CHECK(json::parse(e.body)["error"].get<std::string>().find("text") != std::string::npos);
    }
    CHECK(json::parse(cbtm::http_call(s.port, "POST", "/score", R"({"texts": ["a", 3]})").body)["error"].get<std::string>().find("'texts'[1]") !=
          std::string::npos);
    auto g = cbtm::http_call(s.port, "POST", "/generate", R"({"prompt": "The", "max_tokens": 5, "seed": 1})");
    CHECK(g.status == 200);
    CHECK(json::parse(g.body)["tokens"].get<int>() <= 5);
    // bad requests
    auto e = cbtm::http_call(s.port, "POST", "/score", "{not json");
    CHECK(e.status == 400);
    CHECK(json::parse(e.body)["error"].get<std::string>().find("not JSON") != std::string::npos);
    e = cbtm::http_call(s.port, "POST", "/score", R"({"txt": "a"})");
    CHECK(e.status == 400);
    CHECK(json::parse(e.body)["error"].get<std::string>().find("unknown key 'txt'") != std::string::npos);
    e = cbtm::http_call(s.port, "POST", "/generate", R"({"prompt": "a", "top_p": 2})");
    CHECK(e.status == 400);
    e = cbtm::http_call(s.port, "POST", "/generate", json{{"prompt", [] { std::string p; for (int i = 0; i < 300; ++i) p += " the"; return p; }()}}.dump());
    CHECK(e.status == 422);  // longer than the model
    CHECK(cbtm::http_call(s.port, "GET", "/score").status == 405);
    CHECK(cbtm::http_call(s.port, "GET", "/nope").status == 404);
    CHECK(cbtm::http_call(s.port, "", "", "", 10, "GARBAGE\r\n\r\n").status == 400);
    CHECK(cbtm::http_call(s.port, "", "", "", 10, "POST /score HTTP/1.1\r\n\r\n").status == 411);
    // the server is still fine, and stops cleanly
    CHECK(cbtm::http_call(s.port, "GET", "/health").status == 200);
    CHECK(s.stop() == 0);
  }
}

TEST_CASE("e2e fewshot: cbtm fewshot on a tiny run writes self-describing accuracies and a bad suite exits 2") {
  SharedRun& sr = shared();
  INFO(sr.r.output);
  REQUIRE(sr.r.status == 0);
  const auto& t = sr.t;
  const std::string suite = t / "suite.yaml";
  cbtm::test::write_text(suite, "demonstrations: 2\nseeds: [1, 2]\ntest_examples: 6\n"
                                "ensembles:\n  top1: {type: cluster_distance, top_k: 1}\n"
                                "  perf: {type: performance, estimate: validation, probes: 2, top_k: 1}\n"
                                "tasks:\n  - name: spam\n    data: " + cbtm::test::source_path("data/tasks/spam.jsonl.zst") +
                                "\n    template: \"{text}\\nThis message is\"\n    max_chars: 60\n"
                                "    labels: {ham: \" legitimate\", spam: \" spam\"}\n");
  auto r = cbtm_cli("fewshot " + sr.out + " --suite " + suite);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("few-shot accuracy") != std::string::npos);
  const json res = json::parse(cbtm::read_file(sr.out + "/fewshot.json"));
  CHECK(res["format"] == "cbtm-fewshot");
  CHECK(res["routers"]["perf"] == "performance");
  CHECK(res["suite"].get<std::string>().find("probes: 2") != std::string::npos);
  REQUIRE(res["tasks"].size() == 1);
  const json& task = res["tasks"][0];
  CHECK(task["test_examples"] == 6);
  REQUIRE(task["verbaliser_tokens"].size() == 2);  // " legitimate", " spam": the log says when they differ
  CHECK(task["verbaliser_tokens"][0].get<int>() >= 1);
  CHECK((task["verbaliser_tokens"][0] != task["verbaliser_tokens"][1]) ==
        (r.output.find("encode to different numbers of tokens") != std::string::npos));
  std::set<std::string> names;
  for (const auto& m : task["models"]) {
    names.insert(m["name"].get<std::string>());
    CHECK(m["per_seed"].size() == 2);
    for (const auto& a : m["per_seed"]) {
      CHECK(a.get<double>() >= 0.0);
      CHECK(a.get<double>() <= 1.0);
      // 6 examples: accuracies are multiples of 1/6
      CHECK(std::abs(a.get<double>() * 6 - std::round(a.get<double>() * 6)) < 1e-9);
    }
  }
  CHECK(names == std::set<std::string>{"dense", "seed", "c-btm top1", "c-btm perf", "expert 0 alone", "expert 1 alone"});
  CHECK(res["average"]["dense"].get<double>() == Approx(task["models"][0]["accuracy"].get<double>()));

  cbtm::test::write_text(t / "bad.yaml", "demonstratons: 2\ntasks: []\n");
  auto bad = cbtm_cli("fewshot " + sr.out + " --suite " + t / "bad.yaml");
  CHECK(bad.status == 2);
  CHECK(bad.output.find("unknown key 'demonstratons'") != std::string::npos);
  // the performance router routes few-shot prompts only
  bad = cbtm_cli("generate " + sr.out + " --set 'eval.ensembles.top1={type: performance}' -e top1 --prompt x");
  CHECK(bad.status == 2);
  CHECK(bad.output.find("cbtm fewshot") != std::string::npos);
}
