#include "lm_test_fixture.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <random>

#include "cbtm/token_shard.h"
#include "metrics_log.h"

namespace lmtest {

cbtm::models::OptConfig tiny_config() {
  cbtm::models::OptConfig c;
  c.vocab_size = 260;
  c.d_model = 32;
  c.n_layers = 2;
  c.n_heads = 2;
  c.d_ff = 64;
  c.max_positions = 64;
  return c;
}

std::string write_init(const std::string& dir, uint64_t seed, double dropout) {
  cbtm::models::OptConfig c = tiny_config();
  c.dropout = dropout;
  cbtm::models::OptLM model(c);
  model->init_weights(seed);
  cbtm::models::save_checkpoint(model, dir);
  return dir;
}

void write_byte_shards(const std::string& dir, const std::vector<std::string>& texts) {
  cbtm::TokenShardWriter w(dir, 260, 1 << 16);
  for (const auto& t : texts) {
    std::vector<int32_t> ids;
    for (unsigned char c : t) ids.push_back(static_cast<int32_t>(c) + 4);
    w.add(ids);
  }
  w.close();
}

std::vector<std::string> synthetic_texts(int n, uint32_t seed) {
  static const char* words[] = {"the", "cat", "sat", "on",  "a",     "mat", "and", "dog",
                                "ran", "to",  "big", "red", "house", "in",  "sun"};
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string t;
    const int len = 5 + static_cast<int>(rng() % 40);
    for (int w = 0; w < len; ++w) t += std::string(w ? " " : "") + words[rng() % 15];
    out.push_back(t + ".");
  }
  return out;
}

cbtm::lm::LmTrainer::Options tiny_options() {
  cbtm::lm::LmTrainer::Options o;
  o.batch_size = 8;
  o.seq_len = 32;
  o.lr = 3e-3;
  o.checkpoint_every = 4;
  o.keep_checkpoints = 2;
  o.log_every = 3;
  return o;
}

cbtm::TrainJob make_job(const std::string& init, const std::string& data, const std::string& out,
                        int64_t steps, uint64_t seed) {
  cbtm::TrainJob job;
  job.name = "test-lm";
  job.init = init;
  job.data = {data};
  job.tokens = steps * 8 * 32;
  job.out_dir = out;
  job.seed = seed;
  return job;
}

std::vector<double> metric(const std::string& out_dir, const char* key) {
  std::vector<double> v;
  for (const auto& j : cbtm::lm::MetricsLog::read(out_dir + "/metrics.jsonl"))
    v.push_back(j.at(key).get<double>());
  return v;
}

std::vector<int64_t> metric_steps(const std::string& out_dir) {
  std::vector<int64_t> v;
  for (const auto& j : cbtm::lm::MetricsLog::read(out_dir + "/metrics.jsonl"))
    v.push_back(j.at("step").get<int64_t>());
  return v;
}

bool same_weights(const std::string& a, const std::string& b) {
  auto ma = cbtm::models::load_checkpoint(a), mb = cbtm::models::load_checkpoint(b);
  auto pa = ma->named_parameters(), pb = mb->named_parameters();
  if (pa.size() != pb.size()) return false;
  for (const auto& p : pa)
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  return true;
}

LogCapture::LogCapture() {
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
  spdlog::default_logger()->sinks().push_back(sink);
  sink_ = sink;
}

LogCapture::~LogCapture() {
  auto& sinks = spdlog::default_logger()->sinks();
  for (auto it = sinks.begin(); it != sinks.end(); ++it)
    if (it->get() == sink_.get()) {
      sinks.erase(it);
      break;
    }
}

}  // namespace lmtest
