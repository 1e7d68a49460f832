// Checkpoint rotation, validation and staging clean-up; the metrics log.
#include "support/catch_torch.h"  // first: see the header
#include <filesystem>
#include <fstream>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "checkpoint_store.h"
#include "metrics_log.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using cbtm::lm::CheckpointStore;
using cbtm::lm::TrainerState;

namespace {

TrainerState state_at(int64_t step) {
  TrainerState s;
  s.step = step;
  s.tokens = step * 100;
  s.total_steps = 50;
  s.seed = 9;
  s.job = {{"seed", 9}, {"total_steps", 50}};
  s.first_losses = {5.0, 4.5};
  s.last_losses = {3.0};
  return s;
}

void commit(const CheckpointStore& store, int64_t step) {
  const std::string staging = store.staging_for(store.step_dir(step));
  cbtm::test::write_text(staging + "/model.bin", std::string(100 + step, 'm'));
  cbtm::test::write_text(staging + "/sub/optimizer.pt", "opt" + std::to_string(step));
  store.commit_step(staging, state_at(step));
}

}  // namespace

TEST_CASE("lm checkpoint store: rotation keeps the newest and final removes the steps",
          "[lm_trainer]") {
  cbtm::test::TempDir tmp("lm-store");
  CheckpointStore store(tmp.path(), 2);
  CHECK(store.steps().empty());
  CHECK(store.step_dir(200) == tmp / "step-00000200");
  for (int64_t s : {10, 20, 30, 40}) commit(store, s);
  CHECK(store.steps() == std::vector<int64_t>{40, 30});

  const TrainerState s = CheckpointStore::validate(store.step_dir(40));
  CHECK(s.step == 40);
  CHECK(s.tokens == 4000);
  CHECK(s.first_losses == std::vector<double>{5.0, 4.5});
  CHECK(s.files.at("model.bin") == 140);
  CHECK(s.files.at("sub/optimizer.pt") == 5);

  // Committing an older step (a resume from step 30) drops the abandoned newer one.
  commit(store, 35);
  CHECK(store.steps() == std::vector<int64_t>{35, 30});

  // A staging directory left by a killed run is cleaned; unrelated files are not.
  const std::string stale = store.staging_for(store.step_dir(50));
  cbtm::test::write_text(stale + "/model.bin", "partial");
  cbtm::test::write_text(tmp / "notes.txt", "mine");
  store.remove_stale_staging();
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(tmp / "notes.txt"));

  const std::string staging = store.staging_for(store.final_dir());
  cbtm::test::write_text(staging + "/model.bin", "final");
  store.commit_final(staging, state_at(50));
  CHECK(store.has_final());
  CHECK(store.steps().empty());
  CHECK(CheckpointStore::validate(store.final_dir()).step == 50);
}

TEST_CASE("lm checkpoint store: damaged checkpoints are recognised", "[lm_trainer]") {
  cbtm::test::TempDir tmp("lm-store-bad");
  CheckpointStore store(tmp.path(), 3);
  commit(store, 1);
  commit(store, 2);
  commit(store, 3);
  fs::resize_file(store.step_dir(3) + "/model.bin", 10);
  CHECK_THROWS_WITH(CheckpointStore::validate(store.step_dir(3)),
                    ContainsText("model.bin") && ContainsText("truncated"));
  fs::remove(store.step_dir(2) + "/sub/optimizer.pt");
  CHECK_THROWS_WITH(CheckpointStore::validate(store.step_dir(2)), ContainsText("missing"));
  cbtm::test::write_text(store.step_dir(1) + "/trainer_state.json", "{\"step\": ");
  CHECK_THROWS_WITH(CheckpointStore::validate(store.step_dir(1)),
                    ContainsText("trainer_state.json"));
  CHECK_THROWS_WITH(CheckpointStore::validate(tmp / "nothing"),
                    ContainsText("no trainer_state.json"));
}

TEST_CASE("lm job identity: differences are named", "[lm_trainer]") {
  const nlohmann::json a = {{"seed", 1}, {"total_steps", 10}, {"data", "ab"}};
  CHECK(cbtm::lm::job_difference(a, a).empty());
  nlohmann::json b = a;
  b["seed"] = 2;
  b["extra"] = true;
  const std::string d = cbtm::lm::job_difference(a, b);
  CHECK_THAT(d, ContainsText("seed: 1 vs 2") && ContainsText("extra: null vs true"));
  CHECK_THAT(d, !ContainsText("total_steps"));
}

TEST_CASE("lm job identity: nested keys by their dotted names, optional keys only when both have them",
          "[lm_trainer]") {
  const nlohmann::json old_job = {{"seed", 1}};  // written before "recipe" and "init" existed
  const nlohmann::json now = {{"seed", 1}, {"recipe", {{"lr", 0.001}, {"clip", 1.0}}}, {"init", "abc"}};
  CHECK(cbtm::lm::job_difference(old_job, now, {"recipe", "init"}).empty());
  CHECK(cbtm::lm::job_difference(now, old_job, {"recipe", "init"}).empty());  // init unreadable now
  CHECK_THAT(cbtm::lm::job_difference(old_job, now), ContainsText("recipe: null vs"));  // not optional
  nlohmann::json other = now;
  other["recipe"]["lr"] = 0.002;
  other["init"] = "abd";
  const std::string d = cbtm::lm::job_difference(now, other, {"recipe", "init"});
  CHECK_THAT(d, ContainsText("recipe.lr: 0.001 vs 0.002") && ContainsText("init: \"abc\" vs \"abd\""));
  CHECK_THAT(d, !ContainsText("clip"));
  nlohmann::json newer = now;  // a later version records one more recipe setting
  newer["recipe"]["beta3"] = 0.5;
  CHECK(cbtm::lm::job_difference(now, newer, {"recipe", "init"}).empty());
  CHECK(cbtm::lm::job_difference(newer, now, {"recipe", "init"}).empty());
}

TEST_CASE("lm metrics log: appends lines and truncates on resume and ignores a cut line",
          "[lm_trainer]") {
  cbtm::test::TempDir tmp("lm-metrics");
  const std::string path = tmp / "metrics.jsonl";
  {
    cbtm::lm::MetricsLog log(path);
    for (int s = 1; s <= 6; ++s) log.append({{"step", s}, {"loss", 10.0 - s}});
  }
  std::ofstream(path, std::ios::app) << "{\"step\": 7, \"lo";  // killed mid-line
  auto recs = cbtm::lm::MetricsLog::read(path);
  REQUIRE(recs.size() == 6);
  CHECK(recs[5]["loss"].get<double>() == 4.0);

  cbtm::lm::MetricsLog log(path);
  log.truncate_after(4);
  log.append({{"step", 5}, {"loss", 0.5}});
  recs = cbtm::lm::MetricsLog::read(path);
  REQUIRE(recs.size() == 5);
  CHECK(recs[3]["step"].get<int>() == 4);
  CHECK(recs[4]["loss"].get<double>() == 0.5);
  CHECK(cbtm::read_file(path).back() == '\n');
}
