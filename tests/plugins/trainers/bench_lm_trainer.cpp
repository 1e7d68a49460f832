// Throughput of the "lm" trainer (hidden: run with `test_lm_trainer "[.bench]"`).
// The figure asked for: d_model 256, 4 layers, seq 128, batch 16, vocab 8192, bf16 and fp32,
// with runtime().threads = 0 (all cores; CBTM_BENCH_THREADS=n overrides). Prints the median
// tokens/s over steps 4..20.
#include <algorithm>
#include <cstdlib>
#include <catch2/catch.hpp>
#include <iostream>
#include <random>

#include "cbtm/runtime.h"
#include "cbtm/token_shard.h"
#include "lm_test_fixture.h"
#include "support/test_support.h"

TEST_CASE("lm trainer throughput: d256 l4 seq128 batch16 vocab8192", "[.bench]") {
  cbtm::test::TempDir tmp("lm-bench");
  cbtm::models::OptConfig c;
  c.vocab_size = 8192;
  c.d_model = 256;
  c.n_layers = 4;
  c.n_heads = 4;
  c.d_ff = 1024;
  c.max_positions = 128;
  {
    cbtm::models::OptLM model(c);
    cbtm::models::save_checkpoint(model, tmp / "init");
    std::mt19937 rng(1);
    cbtm::TokenShardWriter w(tmp / "data", 8192);
    for (int d = 0; d < 200; ++d) {
      std::vector<int32_t> doc(1000);
      for (auto& t : doc) t = 4 + static_cast<int32_t>(rng() % 8188);
      w.add(doc);
    }
  }
  const cbtm::Runtime saved = cbtm::runtime();
  const char* threads = std::getenv("CBTM_BENCH_THREADS");
  cbtm::runtime().threads = threads ? std::atoi(threads) : 0;
  const int64_t steps = 20;
  for (bool bf16 : {true, false}) {
    cbtm::runtime().bf16 = bf16;
    cbtm::lm::LmTrainer::Options o;
    o.batch_size = 16;
    o.seq_len = 128;
    o.checkpoint_every = 0;
    cbtm::TrainJob job;
    job.name = bf16 ? "bench-bf16" : "bench-fp32";
    job.init = tmp / "init";
    job.data = {tmp / "data"};
    job.tokens = steps * 16 * 128;
    job.out_dir = tmp / job.name;
    const auto r = cbtm::lm::LmTrainer(o).train(job);
    auto rate = lmtest::metric(job.out_dir, "tokens_per_s");
    rate.erase(rate.begin(), rate.begin() + 3);  // warm-up steps
    std::sort(rate.begin(), rate.end());
    std::cout << job.name << ": median " << rate[rate.size() / 2] << " tokens/s over steps 4.."
              << steps << " (" << cbtm::runtime().resolved_threads() << " threads; whole run "
              << r.tokens / r.seconds << " tokens/s incl. start-up and final save)\n";
  }
  cbtm::runtime() = saved;
}
