// train_bench: training throughput of the "lm" trainer, bf16 autocast and fp32.
//
// An OPT model (default d_model 256, 4 layers, 4 heads, d_ff 1024, vocab 8192) trains for
// --steps steps of batch 16 x seq 128 on random token shards, once with bf16 autocast and
// once in fp32. Prints the median tokens/s over steps 4..steps (from metrics.jsonl; the first
// three are warm-up), the whole-run rate including start-up and the final save, and the
// FLOP/s implied by the median rate under the paper's A.2 count (models::training_flops; it
// includes activation recomputation, so it is 4/3 of the work a step actually executes).
//
//   build/bin/train_bench [--threads N] [--steps 20] [--precision both|bf16|fp32] [--json OUT]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.h"
#include "cbtm/runtime.h"
#include "cbtm/token_shard.h"
#include "lm_trainer.h"
#include "metrics_log.h"
#include "opt/opt.h"

namespace bench = cbtm::bench;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system temp dir, removed with everything in it at the end.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "cbtm-train-bench-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a directory " + tmpl);
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& rel) const { return (path_ / rel).string(); }

 private:
  fs::path path_;
};

/// Values of `key` in out_dir/metrics.jsonl, in step order.
std::vector<double> metric(const std::string& out_dir, const char* key) {
  std::vector<double> v;
  for (const auto& j : cbtm::lm::MetricsLog::read(out_dir + "/metrics.jsonl"))
    v.push_back(j.at(key).get<double>());
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lm trainer throughput (tokens/s), bf16 autocast and fp32"};
  bench::CommonFlags flags;
  bench::add_common_flags(app, flags, false);
  cbtm::models::OptConfig c;
  c.vocab_size = 8192;
  int64_t steps = 20, batch = 16, seq = 128;
  std::string precision = "both";
  app.add_option("--steps", steps, "training steps per run (>= 4)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(4), int64_t(1) << 40));
  app.add_option("--batch", batch, "sequences per step")->capture_default_str();
  app.add_option("--seq", seq, "tokens per sequence")->capture_default_str();
  app.add_option("--d-model", c.d_model, "hidden size")->capture_default_str();
  app.add_option("--layers", c.n_layers, "transformer blocks")->capture_default_str();
  app.add_option("--heads", c.n_heads, "attention heads")->capture_default_str();
  app.add_option("--d-ff", c.d_ff, "feed-forward size")->capture_default_str();
  app.add_option("--vocab", c.vocab_size, "vocabulary size")->capture_default_str();
  app.add_option("--precision", precision, "both | bf16 | fp32")
      ->capture_default_str()
      ->check(CLI::IsMember({"both", "bf16", "fp32"}));

  return bench::run_main(app, argc, argv, flags, [&] {
    c.max_positions = seq;
    ScratchDir tmp;
    {
      cbtm::models::OptLM model(c);
      cbtm::models::save_checkpoint(model, tmp / "init");
      // Random tokens (ids 4.. ; 0..3 are specials), enough for every step.
      std::mt19937 rng(1);
      cbtm::TokenShardWriter w(tmp / "data", static_cast<int32_t>(c.vocab_size));
      const int64_t docs = std::max<int64_t>(200, steps * batch * (seq + 1) / 1000 + 1);
      for (int64_t d = 0; d < docs; ++d) {
        std::vector<int32_t> doc(1000);
        for (auto& t : doc) t = 4 + static_cast<int32_t>(rng() % (c.vocab_size - 4));
        w.add(doc);
      }
    }
    std::printf("model: d_model %lld, %lld layers, %lld heads, d_ff %lld, vocab %lld | batch %lld "
                "x seq %lld, %lld steps\n\n",
                (long long)c.d_model, (long long)c.n_layers, (long long)c.n_heads,
                (long long)c.d_ff, (long long)c.vocab_size, (long long)batch, (long long)seq,
                (long long)steps);
    std::printf("%-10s %8s %18s %18s %16s\n", "precision", "threads", "median tok/s",
                "whole-run tok/s", "A.2 GFLOP/s");

    nlohmann::json figures = {{"benchmark", "lm_trainer"},
                              {"machine", bench::machine_state()},
                              {"model", {{"d_model", c.d_model}, {"n_layers", c.n_layers},
                                         {"n_heads", c.n_heads}, {"d_ff", c.d_ff},
                                         {"vocab_size", c.vocab_size}}},
                              {"batch", batch},
                              {"seq_len", seq},
                              {"steps", steps}};
    std::vector<bool> modes;
    if (precision != "fp32") modes.push_back(true);
    if (precision != "bf16") modes.push_back(false);
    for (bool bf16 : modes) {
      cbtm::runtime().bf16 = bf16;
      cbtm::lm::LmTrainer::Options o;
      o.batch_size = batch;
      o.seq_len = seq;
      o.checkpoint_every = 0;
      cbtm::TrainJob job;
      job.name = bf16 ? "bf16" : "fp32";
      job.init = tmp / "init";
      job.data = {tmp / "data"};
      job.tokens = steps * batch * seq;
      job.out_dir = tmp / job.name;
      const auto r = cbtm::lm::LmTrainer(o).train(job);
      auto rate = metric(job.out_dir, "tokens_per_s");
      rate.erase(rate.begin(), rate.begin() + std::min<size_t>(3, rate.size() - 1));
      std::sort(rate.begin(), rate.end());
      const double median = rate[rate.size() / 2];
      const double whole = r.tokens / r.seconds;
      const double gflops = r.flops / r.tokens * median / 1e9;
      std::printf("%-10s %8d %18.0f %18.0f %16.2f\n", job.name.c_str(),
                  cbtm::runtime().resolved_threads(), median, whole, gflops);
      std::fflush(stdout);
      figures[job.name] = {{"tokens_per_s_median", median},
                           {"tokens_per_s_whole_run", whole},
                           {"gflops_per_s_paper_a2", gflops},
                           {"seconds", r.seconds},
                           {"first_loss", r.first_loss},
                           {"last_loss", r.last_loss}};
    }
    std::printf("(median over steps 4..%lld; whole run includes start-up and the final save; "
                "A.2 GFLOP/s = median rate x the paper's A.2 FLOPs per token)\n",
                (long long)steps);
    bench::write_json(flags.json, figures);
    return 0;
  });
}
