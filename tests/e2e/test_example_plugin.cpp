// The README's example plugin: it compiles (docs/examples/nearest_router), the README shows
// exactly that file, and a config loads it with `plugins:` and evaluates with it.
#include "support/catch.h"

#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cbtm/fs.h"
#include "cli_runner.h"
#include "support/test_support.h"

using cbtm::test::cbtm_cli;

TEST_CASE("example plugin: the README shows the file that is built and tested") {
  const std::string readme = cbtm::read_file(cbtm::test::source_path("README.md"));
  const std::string code = cbtm::read_file(cbtm::test::source_path("docs/examples/nearest_router/nearest_router.cpp"));
  CHECK(readme.find(code) != std::string::npos);
}

TEST_CASE("example plugin: loaded from the config's plugins list and used as a router") {
  cbtm::test::TempDir t("example");
  const std::string lib = std::string(CBTM_BINARY_DIR) + "/test-plugins/libcbtm_example_nearest_router.so";
  cbtm::test::write_text(t / "run.yaml",
                         "plugins: [" + lib + "]\n" + cbtm::read_file(cbtm::test::tiny_config()) +
                             "  ensembles:\n    nearest: {type: nearest, warmup_tokens: 8}\n    top1: {type: cluster_distance, top_k: 1}\n");
  auto r = cbtm_cli("plugins --kind router");
  CHECK(r.output.find("router nearest") == std::string::npos);  // not a built-in
  // relative data paths in the copied config point at the source tree's data
  r = cbtm_cli("run " + t / "run.yaml" + " --out " + t / "out" + " --set data.train=" +
               cbtm::test::source_path("data/devpile-mini/train.jsonl.zst") + " --set data.eval=" +
               cbtm::test::source_path("data/devpile-mini/eval.jsonl.zst"));
  INFO(r.output);
  REQUIRE(r.status == 0);
  const auto res = nlohmann::json::parse(cbtm::read_file(t / "out/results.json"));
  bool found = false;
  for (const auto& m : res["models"])
    if (m["name"] == "c-btm nearest") {
      found = true;
      CHECK(m["ppl"].get<double>() > 1.0);
      CHECK(m["mean_token_experts"].get<double>() < 1.2);  // one expert after the warm-up positions
    }
  CHECK(found);
  // an unknown option of the external plugin names the key and the plugin
  cbtm::test::write_text(t / "bad.yaml", "plugins: [" + lib + "]\ndata: {train: a, eval: b}\nbranch: {tokens: 5}\n"
                                         "eval:\n  ensembles:\n    n: {type: nearest, warmup_tokns: 8}\n");
  r = cbtm_cli("config " + t / "bad.yaml");
  CHECK(r.status == 2);
  CHECK(r.output.find("bad.yaml:6:") != std::string::npos);
  CHECK(r.output.find("eval.ensembles.n.warmup_tokns") != std::string::npos);
  CHECK(r.output.find("router 'nearest'") != std::string::npos);
}

TEST_CASE("example plugin: built out of tree against the installed framework's CMake package, then loaded") {
  cbtm::test::TempDir t("oot");
  const std::string prefix = t / "prefix", build = t / "build";
  // each step's output goes to a log that a failed REQUIRE shows
  const std::string log = t / "step.log";
  auto sh = [&](const std::string& cmd) {
    const std::string full = cmd + " > " + log + " 2>&1";
    return std::system(full.c_str());
  };
  auto step_log = [&] { return std::filesystem::exists(log) ? cbtm::read_file(log) : std::string(); };
  // install the framework (headers, library, CMake package) from this build tree
  int st = sh("cmake --install " + std::string(CBTM_BINARY_DIR) + " --prefix " + prefix);
  INFO(step_log());
  REQUIRE(st == 0);
  CHECK(std::filesystem::exists(prefix + "/lib/cmake/cbtm/cbtmConfig.cmake"));
  // Ninja, as the README's build command: make is not among the packages cbtm installs
  st = sh("cmake -S " + cbtm::test::source_path("docs/examples/nearest_router") + " -B " + build + " -G Ninja -DCMAKE_PREFIX_PATH=" +
          prefix + " -DCMAKE_BUILD_TYPE=Release");
  INFO(step_log());
  REQUIRE(st == 0);
  st = sh("cmake --build " + build);
  INFO(step_log());
  REQUIRE(st == 0);
  const std::string lib = build + "/libnearest_router.so";
  REQUIRE(std::filesystem::exists(lib));
  // the installed cbtm loads it from a config's plugins list: its options show in the resolved config
  cbtm::test::write_text(t / "run.yaml", "plugins: [" + lib + "]\n" + cbtm::read_file(cbtm::test::tiny_config()) +
                                             "  ensembles:\n    nearest: {type: nearest}\n");
  auto r = cbtm_cli("config " + t / "run.yaml");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("warmup_tokens") != std::string::npos);
  auto bad = cbtm_cli("config " + t / "run.yaml" + " --set eval.ensembles.nearest.warmup_tokns=3");
  CHECK(bad.status == 2);
  CHECK(bad.output.find("warmup_tokns") != std::string::npos);
}
