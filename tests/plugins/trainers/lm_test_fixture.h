#pragma once
/// \file lm_test_fixture.h
/// Tiny models, byte-level token shards and log capture for the "lm" trainer tests.
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cbtm/trainer.h"
#include "lm_trainer.h"
#include "opt/opt.h"

namespace lmtest {

/// d_model 32, 2 layers, 2 heads, d_ff 64, max_positions 64, vocab 260 (bytes + 4).
cbtm::models::OptConfig tiny_config();
/// Writes a freshly initialised tiny model (with this dropout) to `dir`; returns `dir`.
std::string write_init(const std::string& dir, uint64_t seed = 0, double dropout = 0.1);
/// One document per text, token id = byte + 4 (ids 0..3 stay special).
void write_byte_shards(const std::string& dir, const std::vector<std::string>& texts);
/// `n` texts of pseudo-English (repeated words from a small vocabulary), deterministic.
std::vector<std::string> synthetic_texts(int n, uint32_t seed);
/// batch 8, seq 32, lr 3e-3, checkpoint_every 4, keep 2, log_every 3.
cbtm::lm::LmTrainer::Options tiny_options();
/// A job of `steps` steps at tiny_options()'s batch (8 x 32 tokens).
cbtm::TrainJob make_job(const std::string& init, const std::string& data, const std::string& out,
                        int64_t steps, uint64_t seed = 1);
/// Values of `key` in out/metrics.jsonl, in order.
std::vector<double> metric(const std::string& out_dir, const char* key);
std::vector<int64_t> metric_steps(const std::string& out_dir);
/// True when both checkpoints hold bit-identical parameters.
bool same_weights(const std::string& a, const std::string& b);

/// Collects what spdlog logs while alive.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<void> sink_;
};

}  // namespace lmtest
