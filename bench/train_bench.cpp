// train_bench: training throughput and model-FLOPs utilisation (MFU) of the "lm" trainer,
// against the bf16 matmul peak measured in the same run and against the same model trained
// from Python (bench/peers/torch_train.py under /usr/bin/python3, Debian's python3-torch, the
// same LibTorch).
//
// An OPT model (default d_model 512, 8 layers, 8 heads, d_ff 2048, vocab 8192, the issue's
// size) trains for --steps steps of batch 8 x seq 512 on random token shards. Figures:
//   tokens_per_s          median over steps 4..N (from metrics.jsonl; the first three warm up)
//   model_flops_per_token 6 N + 12 L d s (forward + backward of every matmul; models::model_flops_per_token)
//   peak_bf16_gflops      the fastest bf16 matmul of a few trainer-like shapes, measured here
//   mfu                   tokens_per_s x model_flops_per_token / peak
//   python_tokens_per_s   the peer's median over the same steps; ratio_vs_python = ours / it
// Also printed: fp32 (--precision both) and the A.2 FLOP/s (the paper's count, with recomputation).
//
//   build/bin/train_bench [--threads N] [--steps 10] [--precision bf16|fp32|both] [--device cpu|cuda]
//                         [--no-python] [--json OUT]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.h"
#include "cbtm/error.h"
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

/// GFLOP/s of the fastest of a few bf16 matmuls shaped like the trainer's (tokens x d by
/// d x 4d, its transpose, the output projection, and a square one), each timed over >= 0.5 s,
/// best of two passes (the machine's other load only lowers it, which would flatter the MFU).
double peak_bf16_gflops(const torch::Device& dev, int64_t tokens, int64_t d, int64_t vocab) {
  const auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(dev);
  const std::vector<std::array<int64_t, 3>> shapes = {
      {tokens, d, 4 * d}, {tokens, 4 * d, d}, {tokens, d, vocab}, {2048, 2048, 2048}};
  double best = 0;
  torch::NoGradGuard no_grad;
  for (int pass = 0; pass < 2; ++pass)
  for (const auto& [m, k, n] : shapes) {
    const torch::Tensor a = torch::randn({m, k}, opts), b = torch::randn({k, n}, opts);
    torch::Tensor c = torch::mm(a, b);
    c.sum().item<float>();  // warm-up (and a device sync)
    int reps = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double secs = 0;
    while (secs < 0.5) {
      torch::mm_out(c, a, b);
      ++reps;
      if (reps % 4 == 0 || !dev.is_cpu()) c[0][0].item<float>();
      secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    c[0][0].item<float>();
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * double(m) * double(k) * double(n) * reps / secs / 1e9);
  }
  return best;
}

std::string device_name(const torch::Device& dev) {
  if (dev.is_cpu()) {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("model name", 0) == 0) return "cpu: " + line.substr(line.find(':') + 2);
    return "cpu";
  }
  std::string name;
  try {
    name = bench::run_capture("nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1", "nvidia-smi");
  } catch (const std::exception&) {
  }
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  return dev.str() + (name.empty() ? "" : ": " + name);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lm trainer throughput (tokens/s) and MFU against the measured bf16 peak and the Python peer"};
  bench::CommonFlags flags;
  bench::add_common_flags(app, flags, false);
  cbtm::models::OptConfig c;
  c.vocab_size = 8192;
  c.d_model = 512;
  c.n_layers = 8;
  c.n_heads = 8;
  c.d_ff = 2048;
  int64_t steps = 10, batch = 8, seq = 512;
  std::string precision = "bf16", device = "cpu";
  std::string python = "/usr/bin/python3", peer_script = CBTM_BENCH_PEERS_DIR "/torch_train.py";
  bool no_python = false;
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
  app.add_option("--precision", precision, "bf16 | fp32 | both (the figures are bf16's unless fp32 alone)")
      ->capture_default_str()
      ->check(CLI::IsMember({"both", "bf16", "fp32"}));
  app.add_option("--device", device, "cpu | cuda")->capture_default_str()->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--python", python, "the peer's interpreter")->capture_default_str();
  app.add_option("--peer-script", peer_script, "the peer")->capture_default_str();
  app.add_flag("--no-python", no_python, "skip the Python peer");

  return bench::run_main(app, argc, argv, flags, [&] {
    c.max_positions = seq;
    cbtm::runtime().device = device;
    const torch::Device dev = cbtm::models::model_device();
    if (device == "cuda" && dev.is_cpu()) throw bench::MissingInput("--device cuda: no CUDA device is available");
    if (!no_python && !fs::is_regular_file(peer_script))
      throw bench::MissingInput("peer script not found at '" + peer_script + "' (or pass --no-python)");
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
    const double flops_per_token = cbtm::models::model_flops_per_token(c, seq);
    const int threads = cbtm::runtime().resolved_threads();
    std::printf("model: d_model %lld, %lld layers, %lld heads, d_ff %lld, vocab %lld (%.1fM parameters) | "
                "batch %lld x seq %lld, %lld steps | %s, %d threads\n",
                (long long)c.d_model, (long long)c.n_layers, (long long)c.n_heads, (long long)c.d_ff,
                (long long)c.vocab_size, cbtm::models::count_parameters(c) / 1e6, (long long)batch,
                (long long)seq, (long long)steps, device_name(dev).c_str(), threads);
    torch::set_num_threads(threads);
    const double peak = peak_bf16_gflops(dev, batch * seq, c.d_model, c.vocab_size);
    std::printf("bf16 matmul peak (measured now): %.0f GFLOP/s; model FLOPs per token: %.1f M\n\n", peak,
                flops_per_token / 1e6);
    std::printf("%-10s %14s %16s %8s %14s\n", "precision", "median tok/s", "whole-run tok/s", "MFU", "A.2 GFLOP/s");

    nlohmann::json figures = {{"benchmark", "lm_trainer"},
                              {"machine", bench::machine_state()},
                              {"device", device_name(dev)},
                              {"threads", threads},
                              {"model", {{"d_model", c.d_model}, {"n_layers", c.n_layers},
                                         {"n_heads", c.n_heads}, {"d_ff", c.d_ff},
                                         {"vocab_size", c.vocab_size},
                                         {"parameters", cbtm::models::count_parameters(c)}}},
                              {"batch", batch},
                              {"seq_len", seq},
                              {"steps", steps},
                              {"model_flops_per_token", flops_per_token},
                              {"peak_bf16_gflops", peak}};
    std::vector<bool> modes;
    if (precision != "fp32") modes.push_back(true);
    if (precision != "bf16") modes.push_back(false);
    for (bool bf16 : modes) {
      cbtm::runtime().bf16 = bf16;
      cbtm::lm::LmTrainer::Options o;
      o.batch_size = batch;
      o.seq_len = seq;
      o.checkpoint_every = 0;
      o.log_every = 1;
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
      const double mfu = median * flops_per_token / (peak * 1e9);
      const double a2 = r.flops / r.tokens * median / 1e9;
      std::printf("%-10s %14.0f %16.0f %7.1f%% %14.1f\n", job.name.c_str(), median, whole, 100 * mfu, a2);
      std::fflush(stdout);
      figures[job.name] = {{"tokens_per_s_median", median}, {"tokens_per_s_whole_run", whole},
                           {"mfu", mfu},  {"gflops_per_s_paper_a2", a2},
                           {"seconds", r.seconds}, {"first_loss", r.first_loss},
                           {"last_loss", r.last_loss}};
    }
    const std::string main_mode = precision == "fp32" ? "fp32" : "bf16";
    figures["tokens_per_s"] = figures[main_mode]["tokens_per_s_median"];
    figures["mfu"] = figures[main_mode]["mfu"];
    if (!no_python) {
      const std::string t = std::to_string(threads);
      const std::string cmd = "OMP_NUM_THREADS=" + t + " " + bench::sh_quote(python) + " " + bench::sh_quote(peer_script) +
                              " --d-model " + std::to_string(c.d_model) + " --layers " + std::to_string(c.n_layers) +
                              " --heads " + std::to_string(c.n_heads) + " --d-ff " + std::to_string(c.d_ff) +
                              " --vocab " + std::to_string(c.vocab_size) + " --batch " + std::to_string(batch) +
                              " --seq " + std::to_string(seq) + " --steps " + std::to_string(steps) + " --threads " + t +
                              " --precision " + main_mode + " --device " + device;
      const nlohmann::json peer = bench::last_json_line(bench::run_capture(cmd, "the Python peer"), "the Python peer");
      const double py = peer.at("tokens_per_s_median").get<double>();
      const double ours = figures["tokens_per_s"].get<double>();
      figures["python_tokens_per_s"] = py;
      figures["ratio_vs_python"] = ours / py;
      figures["python"] = peer;
      std::printf("%-10s %14.0f %16s %7.1f%%   (Python, torch %s: ours/Python = %.2fx)\n", "python", py, "",
                  100 * py * flops_per_token / (peak * 1e9), peer.value("torch", "?").c_str(), ours / py);
    }
    std::printf("(median over steps 4..%lld; whole run includes start-up and the final save; MFU = median tok/s x "
                "model FLOPs per token / measured bf16 peak; A.2 = the paper's count, with recomputation)\n",
                (long long)steps);
    bench::write_json(flags.json, figures);
    return 0;
  });
}
