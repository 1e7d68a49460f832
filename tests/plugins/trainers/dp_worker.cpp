// A training process for the data-parallel test (test_lm_training.cpp): trains the tiny model
// of lm_test_fixture on byte shards, as one rank of whatever group RANK/WORLD_SIZE describe.
//
//   lm_dp_worker INIT_DIR DATA_DIR OUT_DIR STEPS BATCH
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "cbtm/runtime.h"
#include "lm_test_fixture.h"
#include "lm_trainer.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s INIT_DIR DATA_DIR OUT_DIR STEPS BATCH\n", argv[0]);
    return 2;
  }
  try {
    cbtm::runtime().threads = 1;
    cbtm::runtime().bf16 = false;  // fp32: the comparison is about the arithmetic of the split
    cbtm::lm::LmTrainer::Options o = lmtest::tiny_options();
    o.batch_size = std::atoi(argv[5]);
    o.checkpoint_every = 3;
    cbtm::TrainJob job = lmtest::make_job(argv[1], argv[2], argv[3], std::atoll(argv[4]), 7);
    job.tokens = std::atoll(argv[4]) * o.batch_size * o.seq_len;
    cbtm::lm::LmTrainer trainer(o);
    trainer.train(job);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lm_dp_worker: %s\n", e.what());
    return 1;
  }
}
