// bpe_bench: speed and compression of the `bpe` tokenizer on devpile.
//
// For each vocabulary size: training time on ~--train-mb MB of devpile text, encode MB/s of a
// disjoint held-out sample (~--heldout-mb MB) on 1 thread (cold cache, then warm) and on
// --threads threads, and held-out tokens per byte. Then the training time on --big-mb MB with
// the default vocabulary (50 MB is the default max_train_bytes; 0 skips it).
//
//   build/bin/bpe_bench [--devpile PATH] [--threads N] [--vocab 4096 8192] [--json OUT]
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "bpe_tokenizer.h"
#include "cbtm/runtime.h"

using cbtm::bpe::BpeTokenizer;
namespace bench = cbtm::bench;

namespace {

/// MB/s of encoding `texts` on `threads` threads (thread t takes every threads-th text);
/// the token count goes to `tokens` when given.
double encode_mb_s(const BpeTokenizer& tok, const std::vector<std::string>& texts, int threads,
                   size_t* tokens = nullptr) {
  std::vector<size_t> counts(threads, 0);
  const auto t0 = bench::Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (size_t i = t; i < texts.size(); i += threads) counts[t] += tok.encode(texts[i]).size();
    });
  for (auto& th : pool) th.join();
  const double s = bench::seconds_since(t0);
  if (tokens) {
    *tokens = 0;
    for (size_t c : counts) *tokens += c;
  }
  return bench::total_bytes(texts) / 1e6 / s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bpe tokenizer on devpile: training time, encode MB/s, held-out tokens/byte"};
  bench::CommonFlags flags;
  bench::add_common_flags(app, flags, true);
  double train_mb = 5, heldout_mb = 5, big_mb = 50;
  std::vector<int> vocabs = {4096, 8192};
  app.add_option("--train-mb", train_mb, "training sample size (MB)")->capture_default_str();
  app.add_option("--heldout-mb", heldout_mb, "held-out sample size (MB)")->capture_default_str();
  app.add_option("--vocab", vocabs, "vocabulary sizes to train")->capture_default_str();
  app.add_option("--big-mb", big_mb, "size of the large training run (MB; 0: skip)")
      ->capture_default_str();

  return bench::run_main(app, argc, argv, flags, [&] {
    auto t0 = bench::Clock::now();
    const auto docs = bench::read_devpile(flags.devpile);
    std::printf("devpile: %zu docs read in %.1f s\n", docs.size(), bench::seconds_since(t0));
    // Documents spaced evenly over the corpus; the held-out set takes documents between the
    // training ones.
    const auto train = bench::spread_bytes(docs, size_t(train_mb * 1e6), 0);
    const auto held_out = bench::spread_bytes(docs, size_t(heldout_mb * 1e6), 12);
    const int threads = cbtm::runtime().resolved_threads();
    std::printf("train: %zu docs, %.2f MB | held-out: %zu docs, %.2f MB | %d threads\n\n",
                train.size(), bench::total_bytes(train) / 1e6, held_out.size(),
                bench::total_bytes(held_out) / 1e6, threads);

    nlohmann::json figures = {{"benchmark", "bpe"},
                              {"machine", bench::machine_state()},
                              {"devpile", flags.devpile},
                              {"train_docs", train.size()},
                              {"train_mb", bench::total_bytes(train) / 1e6},
                              {"heldout_docs", held_out.size()},
                              {"heldout_mb", bench::total_bytes(held_out) / 1e6},
                              {"vocabs", nlohmann::json::array()}};
    std::printf("%6s %6s %9s %14s %14s %14s %12s %12s\n", "vocab", "got", "train s",
                "enc 1t cold", "enc 1t warm", "enc Nt MB/s", "tokens/byte", "bytes/token");
    for (int vocab : vocabs) {
      BpeTokenizer::Options o;
      o.vocab_size = vocab;
      BpeTokenizer tok(o);
      t0 = bench::Clock::now();
      tok.train(train);
      const double train_s = bench::seconds_since(t0);
      size_t tokens = 0;
      const double cold = encode_mb_s(tok, held_out, 1, &tokens);
      const double warm = encode_mb_s(tok, held_out, 1);
      const double par = encode_mb_s(tok, held_out, threads);
      const double tpb = double(tokens) / bench::total_bytes(held_out);
      std::printf("%6d %6d %9.2f %14.2f %14.2f %14.2f %12.4f %12.2f\n", vocab, tok.vocab_size(),
                  train_s, cold, warm, par, tpb, 1 / tpb);
      std::fflush(stdout);
      figures["vocabs"].push_back({{"vocab", vocab},
                                   {"vocab_learned", tok.vocab_size()},
                                   {"train_seconds", train_s},
                                   {"encode_mb_per_s_1thread_cold", cold},
                                   {"encode_mb_per_s_1thread_warm", warm},
                                   {"encode_mb_per_s", par},
                                   {"encode_threads", threads},
                                   {"tokens_per_byte", tpb}});
    }
    std::printf("(encode columns in MB/s; Nt = %d threads)\n", threads);

    if (big_mb > 0) {
      const auto big = bench::spread_bytes(docs, size_t(big_mb * 1e6), 3);
      BpeTokenizer tok(BpeTokenizer::Options{});
      t0 = bench::Clock::now();
      tok.train(big);
      const double s = bench::seconds_since(t0);
      std::printf("\nlarge run: train on %.1f MB (%zu docs), vocab %d: %.2f s\n",
                  bench::total_bytes(big) / 1e6, big.size(), tok.vocab_size(), s);
      figures["big"] = {{"train_mb", bench::total_bytes(big) / 1e6},
                        {"vocab_learned", tok.vocab_size()},
                        {"train_seconds", s}};
    }
    bench::write_json(flags.json, figures);
    return 0;
  });
}
