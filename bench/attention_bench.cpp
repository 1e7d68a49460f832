// attention_bench: causal self-attention at inference, LibTorch's mm per (batch, head) entry
// (the training path of fused_ops.h) against the loop kernel (attention_kernel.h), on the same
// bf16 q, k, v, for rows of 8 to 512 tokens at a fixed number of tokens -- what decides
// fused_ops.cpp's kShortAttentionRows. Both are timed in interleaved rounds, fastest kept.
//
//   build/bin/attention_bench [--tokens 1536] [--heads 4] [--head-dim 32] [--repeat 7] [--json OUT]
#include <cstdio>

#include "bench_util.h"
#include "opt/fused_ops.h"

namespace bench = cbtm::bench;

int main(int argc, char** argv) {
  CLI::App app{"causal attention at inference: LibTorch mm per entry vs the loop kernel, by row length"};
  bench::CommonFlags flags;
  bench::add_common_flags(app, flags, false);
  int64_t tokens = 1536, heads = 4, head_dim = 32;
  int repeat = 7;
  app.add_option("--tokens", tokens, "tokens per call (rows x row length)")->capture_default_str();
  app.add_option("--heads", heads, "attention heads")->capture_default_str();
  app.add_option("--head-dim", head_dim, "width of a head")->capture_default_str();
  app.add_option("--repeat", repeat, "rounds; the fastest of each is kept")->capture_default_str()->check(CLI::PositiveNumber);
  return bench::run_main(app, argc, argv, flags, [&] {
    torch::manual_seed(1);
    nlohmann::json rows = nlohmann::json::array();
    std::printf("%6s %6s %10s %10s %8s %10s\n", "T", "rows", "mm ms", "loops ms", "speedup", "max |diff|");
    for (int64_t T : {8, 16, 32, 48, 64, 96, 128, 256, 512}) {
      const int64_t B = std::max<int64_t>(1, tokens / T);
      auto make = [&] { return torch::randn({B, heads, T, head_dim}).to(torch::kBFloat16); };
      const torch::Tensor q = make(), k = make(), v = make();
      const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
      double mm = 1e9, loops = 1e9;
      torch::Tensor a, b;
      for (int r = 0; r < repeat; ++r) {
        auto t0 = bench::Clock::now();
        {
          torch::AutoGradMode grad(true);  // the training path: one mm per entry
          a = cbtm::models::causal_attention(q, k, v, scale);
        }
        mm = std::min(mm, bench::seconds_since(t0));
        t0 = bench::Clock::now();
        {
          torch::NoGradGuard no_grad;
          b = cbtm::models::causal_attention_loops(q, k, v, scale);
        }
        loops = std::min(loops, bench::seconds_since(t0));
      }
      const double diff = (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
      std::printf("%6lld %6lld %10.3f %10.3f %7.2fx %10.4f\n", (long long)T, (long long)B, mm * 1e3, loops * 1e3, mm / loops, diff);
      std::fflush(stdout);
      rows.push_back({{"T", T}, {"rows", B}, {"mm_ms", mm * 1e3}, {"loops_ms", loops * 1e3}, {"speedup", mm / loops}});
    }
    bench::write_json(flags.json, {{"benchmark", "attention"}, {"machine", bench::machine_state()}, {"tokens", tokens},
                                   {"heads", heads}, {"head_dim", head_dim}, {"rows", rows}});
    return 0;
  });
}
