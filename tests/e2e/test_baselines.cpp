// The baselines of the paper next to C-BTM in one run: dense and the sparse-upcycled MoE
// each train from the seed for the same total tokens and are scored like the experts.
#include "support/catch.h"

#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cbtm/fs.h"
#include "cli_runner.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using cbtm::test::cbtm_cli;
using nlohmann::json;

TEST_CASE("e2e: the moe baseline upcycles the seed, trains on the same tokens and is evaluated") {
  cbtm::test::TempDir t("e2e-moe");
  const std::string run = t / "run";
  auto r = cbtm_cli("run " + cbtm::test::tiny_config() + " --out " + run +
                    " --set 'baselines=[{type: dense}, {type: moe, experts: 4, capacity_factor: 1.0, lr: 0.0005}]'");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("[moe] upcycled") != std::string::npos);
  const json up = json::parse(cbtm::read_file(run + "/baselines/moe/upcycled/config.json"));
  CHECK(up["moe_num_experts"] == 4);
  CHECK(up["moe_top_k"] == 2);
  const json fin = json::parse(cbtm::read_file(run + "/baselines/moe/final/config.json"));
  CHECK(fin["moe_num_experts"] == 4);
  // its own learning rate; the dense baseline keeps branch.trainer's
  CHECK(fin["cbtm"]["trainer"]["options"]["lr"].get<double>() == Approx(0.0005));
  const json dense_fin = json::parse(cbtm::read_file(run + "/baselines/dense/final/config.json"));
  CHECK(dense_fin["cbtm"]["trainer"]["options"]["lr"].get<double>() != Approx(0.0005));
  CHECK(cbtm::read_file(run + "/baselines/moe/final/model.safetensors") !=
        cbtm::read_file(run + "/baselines/moe/upcycled/model.safetensors"));  // it trained
  // the same number of training tokens as dense (compute matched by tokens)
  const json dense_rec = json::parse(cbtm::read_file(run + "/stages/baseline-dense.json"));
  const json moe_rec = json::parse(cbtm::read_file(run + "/stages/baseline-moe.json"));
  CHECK(moe_rec["summary"]["tokens"] == dense_rec["summary"]["tokens"]);
  const json res = json::parse(cbtm::read_file(run + "/results.json"));
  bool found = false;
  double seed = 0, moe = 0;
  for (const auto& m : res["models"]) {
    if (m["name"] == "moe") {
      found = true;
      CHECK(m["role"] == "baseline");
      moe = m["ppl"].get<double>();
    }
    if (m["name"] == "seed") seed = m["ppl"].get<double>();
  }
  REQUIRE(found);
  CHECK(std::isfinite(moe));
  CHECK(moe < seed);  // training on more tokens helped
  CHECK(r.output.find("moe") != std::string::npos);
}
