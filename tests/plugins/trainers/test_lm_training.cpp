// Training runs of a tiny OPT model through the "lm" trainer: learning, exact resume,
// damaged checkpoints, job mismatch, divergence, batch division, input errors.
#include "support/catch_torch.h"  // first: see the header
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/runtime.h"
#include "checkpoint_store.h"
#include "lm_test_fixture.h"
#include "lr_schedule.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using cbtm::lm::LmTrainer;
using namespace lmtest;

namespace {

// Sets runtime().bf16 (and one thread: tiny models gain nothing from more, and ctest runs
// tests side by side) for one test, and restores them.
struct RuntimeScope {
  explicit RuntimeScope(bool bf16) : saved(cbtm::runtime()) {
    cbtm::runtime().bf16 = bf16;
    cbtm::runtime().threads = 1;
  }
  ~RuntimeScope() { cbtm::runtime() = saved; }
  cbtm::Runtime saved;
};

// A tiny init checkpoint and synthetic byte data under `tmp`.
struct Setup {
  explicit Setup(const cbtm::test::TempDir& tmp)
      : init(write_init(tmp / "init")), data(tmp / "data") {
    write_byte_shards(data, synthetic_texts(300, 7));
  }
  std::string init, data;
};

// Runs `job` expecting the max_steps_this_run stop.
void run_until_stop(const LmTrainer::Options& o, const cbtm::TrainJob& job) {
  CHECK_THROWS_WITH(LmTrainer(o).train(job), ContainsText("max_steps_this_run"));
}

}  // namespace

TEST_CASE("lm trainer: loss falls on devpile text with the documented result and layout",
          "[lm_trainer]") {
  if (!cbtm::test::have_devpile()) {
    WARN("devpile absent: skipped");
    return;
  }
  RuntimeScope scope(true);
  cbtm::test::TempDir tmp("lm-learn");
  std::vector<std::string> texts;
  for (const auto& d : cbtm::test::devpile_docs(400)) texts.push_back(d.text);
  write_byte_shards(tmp / "data", texts);
  LmTrainer::Options o = tiny_options();
  o.batch_size = 16;
  o.log_every = 10;
  o.checkpoint_every = 25;
  cbtm::TrainJob job = make_job(write_init(tmp / "init"), tmp / "data", tmp / "out", 0);
  job.tokens = 60 * 16 * 32 - 100;  // rounds up to 60 steps
  job.eos_id = 250;  // the run tokenizer's ids go into config.json before the checkpoint is sealed
  job.pad_id = 251;

  const auto r = LmTrainer(o).train(job);
  INFO("first " << r.first_loss << " last " << r.last_loss);
  CHECK(r.steps == 60);
  CHECK(r.tokens == 60 * 16 * 32);
  CHECK(r.first_loss > 4.0);  // ~ln(260) = 5.56 at the start
  CHECK(r.last_loss < r.first_loss - 0.5);
  CHECK(r.checkpoint == tmp / "out/final");
  CHECK(r.flops == Approx(cbtm::models::training_flops(tiny_config(), 32, r.tokens)));
  CHECK(fs::exists(tmp / "out/final/config.json"));
  CHECK(fs::exists(tmp / "out/final/model.safetensors"));
  CHECK(cbtm::lm::CheckpointStore(tmp / "out", 2).steps().empty());
  CHECK(cbtm::models::read_config(r.checkpoint).d_model == 32);
  const auto hf = nlohmann::json::parse(cbtm::read_file(tmp / "out/final/config.json"));
  CHECK(hf["bos_token_id"] == job.bos_id);
  CHECK(hf["eos_token_id"] == 250);
  CHECK(hf["pad_token_id"] == 251);

  // metrics.jsonl: one line per step; lr follows the schedule; the window means match.
  const auto loss = metric(tmp / "out", "loss");
  const auto lr = metric(tmp / "out", "lr");
  REQUIRE(loss.size() == 60);
  const cbtm::lm::LrSchedule schedule{3e-3, 0, 60};
  for (int s : {0, 17, 59}) CHECK(lr[s] == Approx(schedule.at(s)));
  double first = 0, last = 0;
  for (int i = 0; i < 10; ++i) first += loss[i] / 10, last += loss[50 + i] / 10;
  CHECK(r.first_loss == Approx(first));
  CHECK(r.last_loss == Approx(last));
  for (double g : metric(tmp / "out", "grad_norm")) CHECK(std::isfinite(g));

  // A finished job returns its result at once.
  const auto t0 = std::chrono::steady_clock::now();
  const auto again = LmTrainer(o).train(job);
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 1.0);
  CHECK(again.steps == r.steps);
  CHECK(again.first_loss == r.first_loss);
  CHECK(again.last_loss == r.last_loss);
  CHECK(again.flops == r.flops);
}

TEST_CASE("lm trainer: an interrupted and resumed run equals the uninterrupted one",
          "[lm_trainer]") {
  const bool bf16 = GENERATE(true, false);
  RuntimeScope scope(bf16);
  cbtm::test::TempDir tmp("lm-resume");
  Setup in(tmp);
  const LmTrainer::Options o = tiny_options();  // checkpoint every 4, keep 2
  const int64_t steps = 12;

  const auto a = LmTrainer(o).train(make_job(in.init, in.data, tmp / "a", steps));

  // "Killed" after step 7, before that step's checkpoint: the log runs ahead of the newest
  // checkpoint (step 4) and is cut back on resume.
  LmTrainer::Options stop = o;
  stop.max_steps_this_run = 7;
  run_until_stop(stop, make_job(in.init, in.data, tmp / "b", steps));
  CHECK(metric_steps(tmp / "b").size() == 7);
  fs::remove_all(tmp / "b/step-00000007");
  const auto b = LmTrainer(o).train(make_job(in.init, in.data, tmp / "b", steps));

  // Time-sliced: 5 steps per process.
  LmTrainer::Options slice = o;
  slice.max_steps_this_run = 5;
  run_until_stop(slice, make_job(in.init, in.data, tmp / "c", steps));
  run_until_stop(slice, make_job(in.init, in.data, tmp / "c", steps));
  const auto c = LmTrainer(slice).train(make_job(in.init, in.data, tmp / "c", steps));

  const auto loss_a = metric(tmp / "a", "loss");
  REQUIRE(loss_a.size() == steps);
  for (const char* run : {"b", "c"}) {
    INFO("run " << run << ", bf16 " << bf16);
    std::vector<int64_t> expected_steps(steps);
    for (int64_t i = 0; i < steps; ++i) expected_steps[i] = i + 1;
    CHECK(metric_steps(tmp / run) == expected_steps);
    const auto loss = metric(tmp / run, "loss");
    const auto gn = metric(tmp / run, "grad_norm"), gn_a = metric(tmp / "a", "grad_norm");
    for (int64_t i = 0; i < steps; ++i) {
      CHECK(loss[i] == Approx(loss_a[i]).epsilon(0).margin(1e-6));
      CHECK(gn[i] == Approx(gn_a[i]).epsilon(1e-6));
    }
    CHECK(same_weights(tmp / "a/final", tmp / run + "/final"));
  }
  CHECK(b.first_loss == Approx(a.first_loss).margin(1e-9));
  CHECK(b.last_loss == Approx(a.last_loss).margin(1e-9));
  CHECK(c.last_loss == Approx(a.last_loss).margin(1e-9));
  CHECK(c.steps == steps);
}

TEST_CASE("lm trainer: a damaged newest checkpoint falls back to the previous one",
          "[lm_trainer]") {
  RuntimeScope scope(false);
  cbtm::test::TempDir tmp("lm-damaged");
  Setup in(tmp);
  LmTrainer::Options o = tiny_options();
  LmTrainer::Options stop = o;
  stop.max_steps_this_run = 8;
  const auto job = make_job(in.init, in.data, tmp / "out", 12);
  const auto reference = LmTrainer(o).train(make_job(in.init, in.data, tmp / "ref", 12));

  const bool truncate = GENERATE(true, false);
  run_until_stop(stop, job);
  REQUIRE(fs::exists(tmp / "out/step-00000004"));
  REQUIRE(fs::exists(tmp / "out/step-00000008"));
  if (truncate) {  // cut short: the recorded sizes catch it
    fs::resize_file(tmp / "out/step-00000008/model.safetensors", 1000);
  } else {  // same size, garbage content: loading fails
    const auto n = fs::file_size(tmp / "out/step-00000008/optimizer.pt");
    cbtm::test::write_text(tmp / "out/step-00000008/optimizer.pt", std::string(n, '\0'));
  }
  LogCapture log;
  const auto r = LmTrainer(o).train(job);
  INFO(log.text());
  CHECK_THAT(log.text(), ContainsText("skipping") && ContainsText("step-00000008"));
  CHECK_THAT(log.text(), ContainsText("resuming from " + tmp / "out/step-00000004"));
  // set aside, not deleted by the commits that followed
  CHECK(fs::exists(tmp / "out/step-00000008.unreadable/trainer_state.json"));
  CHECK(r.steps == 12);
  CHECK(metric_steps(tmp / "out").size() == 12);
  CHECK(same_weights(tmp / "ref/final", tmp / "out/final"));
}

TEST_CASE("lm trainer: a checkpoint of another job is an Error", "[lm_trainer]") {
  RuntimeScope scope(false);
  cbtm::test::TempDir tmp("lm-mismatch");
  Setup in(tmp);
  LmTrainer::Options stop = tiny_options();
  stop.max_steps_this_run = 4;
  run_until_stop(stop, make_job(in.init, in.data, tmp / "out", 8, /*seed=*/1));

  const auto other_seed = make_job(in.init, in.data, tmp / "out", 8, /*seed=*/2);
  CHECK_THROWS_WITH(LmTrainer(tiny_options()).train(other_seed),
                    ContainsText("different training job") && ContainsText("seed") &&
                        ContainsText("fresh out_dir"));
  const auto longer = make_job(in.init, in.data, tmp / "out", 9, 1);
  CHECK_THROWS_WITH(LmTrainer(tiny_options()).train(longer),
                    ContainsText("total_steps: 8 vs 9"));
  write_byte_shards(tmp / "data2", synthetic_texts(300, 8));
  const auto other_data = make_job(in.init, tmp / "data2", tmp / "out", 8, 1);
  CHECK_THROWS_WITH(LmTrainer(tiny_options()).train(other_data), ContainsText("data:"));

  // The optimizer's recipe and the init checkpoint are part of the job too.
  LmTrainer::Options other_lr = tiny_options();
  other_lr.lr *= 2;
  CHECK_THROWS_WITH(LmTrainer(other_lr).train(make_job(in.init, in.data, tmp / "out", 8, 1)),
                    ContainsText("different training job") && ContainsText("recipe.lr:") &&
                        ContainsText("as its init"));
  LmTrainer::Options other_warmup = tiny_options();
  other_warmup.warmup_steps = 3;
  CHECK_THROWS_WITH(LmTrainer(other_warmup).train(make_job(in.init, in.data, tmp / "out", 8, 1)),
                    ContainsText("recipe.warmup_steps: 0 vs 3"));
  const std::string other_init = write_init(tmp / "init2", /*seed=*/7);  // same config, other weights
  CHECK_THROWS_WITH(LmTrainer(tiny_options()).train(make_job(other_init, in.data, tmp / "out", 8, 1)),
                    ContainsText("different training job") && ContainsText("init:"));
  LmTrainer::Options more_checkpoints = tiny_options();  // not part of the job: resumes
  more_checkpoints.checkpoint_every = 1;
  more_checkpoints.max_steps_this_run = 1;
  run_until_stop(more_checkpoints, make_job(in.init, in.data, tmp / "out", 8, 1));

  // The finished job is checked the same way.
  LmTrainer(tiny_options()).train(make_job(in.init, in.data, tmp / "out", 8, 1));
  CHECK_THROWS_WITH(LmTrainer(tiny_options()).train(other_seed),
                    ContainsText("different job") && ContainsText("final"));
}

TEST_CASE("lm trainer: a non-finite loss stops the job and the last checkpoint stays",
          "[lm_trainer]") {
  RuntimeScope scope(false);
  cbtm::test::TempDir tmp("lm-nan");
  Setup in(tmp);
  LmTrainer::Options o = tiny_options();
  o.lr = 1e30;  // Adam moves every weight by ~1e30 in step 1
  o.checkpoint_every = 1;
  const auto job = make_job(in.init, in.data, tmp / "out", 10);
  const std::string good = tmp / "out/step-00000001";
  CHECK_THROWS_WITH(LmTrainer(o).train(job), ContainsText("test-lm: loss became") &&
                                                 ContainsText("at step 2") &&
                                                 ContainsText("last good checkpoint: " + good));
  const auto s = cbtm::lm::CheckpointStore::validate(good);
  CHECK(s.step == 1);
  CHECK(cbtm::models::read_config(good).d_model == 32);
  CHECK_FALSE(fs::exists(tmp / "out/final"));
  CHECK(metric_steps(tmp / "out") == std::vector<int64_t>{1});
}

TEST_CASE("lm trainer: batch_divisor halves the batch and doubles the steps", "[lm_trainer]") {
  RuntimeScope scope(true);
  cbtm::test::TempDir tmp("lm-divisor");
  Setup in(tmp);
  LmTrainer::Options o = tiny_options();
  o.checkpoint_every = 0;
  auto job = make_job(in.init, in.data, tmp / "full", 4);
  const auto full = LmTrainer(o).train(job);
  job.out_dir = tmp / "half";
  job.batch_divisor = 2;
  const auto half = LmTrainer(o).train(job);
  CHECK(full.steps == 4);
  CHECK(half.steps == 8);
  CHECK(half.tokens == full.tokens);
  CHECK(metric(tmp / "half", "tokens")[0] == 4 * 32);
  CHECK(metric(tmp / "full", "tokens")[0] == 8 * 32);
  job.out_dir = tmp / "one";
  job.batch_divisor = 100;  // never below one sequence
  CHECK(LmTrainer(o).train(job).steps == 32);
}

TEST_CASE("lm trainer: grad_accum 2 x 4 sequences trains like 1 x 8", "[lm_trainer]") {
  RuntimeScope scope(false);
  cbtm::test::TempDir tmp("lm-accum");
  Setup in(tmp);
  const std::string init = write_init(tmp / "init-nodrop", 0, /*dropout=*/0.0);
  LmTrainer::Options one = tiny_options(), two = tiny_options();
  two.batch_size = 4;
  two.grad_accum = 2;  // the same 8 blocks per step, in two halves
  const auto a = LmTrainer(one).train(make_job(init, in.data, tmp / "one", 6));
  const auto b = LmTrainer(two).train(make_job(init, in.data, tmp / "two", 6));
  CHECK(a.steps == 6);
  CHECK(b.steps == 6);
  const auto la = metric(tmp / "one", "loss"), lb = metric(tmp / "two", "loss");
  const auto ga = metric(tmp / "one", "grad_norm"), gb = metric(tmp / "two", "grad_norm");
  for (size_t i = 0; i < la.size(); ++i) {
    CHECK(lb[i] == Approx(la[i]).epsilon(1e-4));
    CHECK(gb[i] == Approx(ga[i]).epsilon(1e-3));
  }
}

TEST_CASE("lm trainer: input errors name what is wrong", "[lm_trainer]") {
  cbtm::test::TempDir tmp("lm-errors");
  Setup in(tmp);
  LmTrainer::Options o = tiny_options();
  o.seq_len = 128;  // the tiny model has 64 positions
  CHECK_THROWS_WITH(LmTrainer(o).train(make_job(in.init, in.data, tmp / "a", 2)),
                    ContainsText("trainer.seq_len = 128") && ContainsText("64"));
  CHECK_THROWS_WITH(LmTrainer(tiny_options()).train(make_job(tmp / "nope", in.data, tmp / "b", 2)),
                    ContainsText("init checkpoint " + tmp / "nope"));
  write_byte_shards(tmp / "small", {"hi"});
  CHECK_THROWS_WITH(LmTrainer(tiny_options()).train(make_job(in.init, tmp / "small", tmp / "c", 2)),
                    ContainsText(tmp / "small"));
  CHECK_THROWS_WITH(
      LmTrainer(tiny_options()).train(make_job(in.init, tmp / "absent", tmp / "d", 2)),
      ContainsText(tmp / "absent"));
  cbtm::TrainJob zero = make_job(in.init, in.data, tmp / "e", 2);
  zero.tokens = 0;
  CHECK_THROWS_AS(LmTrainer(tiny_options()).train(zero), cbtm::Error);

  const cbtm::ConfigNode bad{YAML::Load("lr: 0.001\nclip: -1"), "trainer", "t.yaml"};
  CHECK_THROWS_WITH(cbtm::parse_options<LmTrainer::Options>(bad, "trainer 'lm'"),
                    ContainsText("trainer.clip"));
}

TEST_CASE("lm trainer: registered as plugin trainer 'lm' and trains through it", "[lm_trainer]") {
  RuntimeScope scope(true);
  auto& registry = cbtm::test::plugins().registry();
  REQUIRE(registry.has("trainer", "lm"));
  std::vector<std::string> names;
  for (const auto& info : registry.get("trainer", "lm").options()) names.push_back(info.name);
  CHECK(names.size() == 15);
  CHECK(names.front() == "lr");

  cbtm::test::TempDir tmp("lm-plugin");
  Setup in(tmp);
  const cbtm::ConfigNode node{
      YAML::Load("type: lm\nbatch_size: 8\nseq_len: 32\ncheckpoint_every: 0"), "trainer", ""};
  auto trainer = registry.create<cbtm::Trainer>(node);
  const auto r = trainer->train(make_job(in.init, in.data, tmp / "out", 3));
  CHECK(r.steps == 3);
  CHECK(fs::exists(r.checkpoint + "/model.safetensors"));
}

namespace {
/// A TCP port nothing listens on right now (the kernel's choice for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}
}  // namespace

TEST_CASE("lm trainer: 2 data-parallel processes train as 1 with the same global batch",
          "[lm_trainer][data_parallel]") {
  cbtm::test::TempDir tmp("lm-dp");
  Setup in(tmp);
  const std::string init = write_init(tmp / "init-nodrop", 0, /*dropout=*/0.0);
  const std::string worker = std::string(CBTM_BINARY_DIR) + "/tests/lm_dp_worker";
  const std::string args = " '" + init + "' '" + in.data + "' ";
  // One process, batch 8.
  REQUIRE(std::system(("env -u RANK -u WORLD_SIZE -u SLURM_NTASKS OMP_NUM_THREADS=1 '" + worker + "'" + args + "'" +
                       (tmp / "one") + "' 7 8").c_str()) == 0);
  // Two ranks over Gloo on loopback, 4 of the 8 sequences each.
  const std::string env = "OMP_NUM_THREADS=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                          std::to_string(free_port()) + " ";
  const std::string two = tmp / "two";
  const std::string cmd = "sh -c \"" + env + "RANK=0 '" + worker + "'" + args + "'" + two +
                          "' 7 8 & p0=\\$!; " + env + "RANK=1 '" + worker + "'" + args + "'" + two +
                          "' 7 8 & p1=\\$!; wait \\$p0; r0=\\$?; wait \\$p1; r1=\\$?; exit \\$((r0 | r1))\"";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const auto la = metric(tmp / "one", "loss"), lb = metric(two, "loss");
  const auto ga = metric(tmp / "one", "grad_norm"), gb = metric(two, "grad_norm");
  REQUIRE(la.size() == 7);
  REQUIRE(lb.size() == 7);  // written once (by rank 0), not once per rank
  for (size_t i = 0; i < la.size(); ++i) {
    CHECK(lb[i] == Approx(la[i]).epsilon(1e-4));
    CHECK(gb[i] == Approx(ga[i]).epsilon(1e-3));
  }
  // The same model at the end, up to float rounding (the split changes summation order).
  auto ma = cbtm::models::load_checkpoint(tmp / "one/final"), mb = cbtm::models::load_checkpoint(two + "/final");
  for (const auto& p : ma->named_parameters())
    CHECK(torch::allclose(p.value(), mb->named_parameters()[p.key()], 1e-4, 1e-5));
  // A batch the ranks cannot share evenly is refused with the reason.
  const std::string three = tmp / "three";
  const std::string bad = "sh -c \"" + env + "RANK=0 '" + worker + "'" + args + "'" + three +
                          "' 2 7 2>'" + (tmp / "err.txt") + "'\"";
  CHECK(std::system(bad.c_str()) != 0);
  std::ifstream err(tmp / "err.txt");
  const std::string msg((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  CHECK(msg.find("cannot be split evenly over 2 data-parallel ranks") != std::string::npos);

  // Ranks that start from different weights (here: differently seeded inits; in practice a rank
  // that could not read the newest checkpoint) stop together, naming the cause, instead of
  // averaging gradients of two models.
  const std::string other = write_init(tmp / "init-seed5", 5, /*dropout=*/0.0);
  const std::string mix = tmp / "mix";
  const std::string env2 = "OMP_NUM_THREADS=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                           std::to_string(free_port()) + " ";
  const std::string apart = "sh -c \"" + env2 + "RANK=0 '" + worker + "' '" + init + "' '" + in.data + "' '" + mix +
                            "' 3 8 2>'" + (tmp / "e0.txt") + "' & p0=\\$!; " + env2 + "RANK=1 '" + worker + "' '" + other +
                            "' '" + in.data + "' '" + mix + "' 3 8 2>'" + (tmp / "e1.txt") +
                            "' & p1=\\$!; wait \\$p0; r0=\\$?; wait \\$p1; r1=\\$?; [ \\$r0 -ne 0 ] && [ \\$r1 -ne 0 ]\"";
  CHECK(std::system(apart.c_str()) == 0);  // both failed
  for (const char* e : {"e0.txt", "e1.txt"}) {
    std::ifstream f(tmp / e);
    const std::string m((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    INFO(e << ": " << m);
    CHECK(m.find("the data-parallel ranks start from different points") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(mix + "/final"));
}
