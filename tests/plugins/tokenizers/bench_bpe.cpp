// Speed and compression figures of the `bpe` tokenizer on devpile (hidden: run with
//   build/tests/test_tokenizers "[bench]"
// ). Prints training time for ~5 MB, encode MB/s on 1 and N threads, and tokens per byte for
// vocabularies of 4096 and 8192; then the training time for 50 MB (the default cap).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bpe_tokenizer.h"
#include "cbtm/runtime.h"
#include "devpile_sample.h"
#include "support/test_support.h"

using cbtm::bpe::BpeTokenizer;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

size_t total_bytes(const std::vector<std::string>& v) {
  size_t n = 0;
  for (const auto& s : v) n += s.size();
  return n;
}

/// MB/s of encoding `texts` with `threads` threads (each thread takes every threads-th text).
double encode_mb_s(const BpeTokenizer& tok, const std::vector<std::string>& texts, int threads,
                   size_t* tokens = nullptr) {
  std::vector<size_t> counts(threads, 0);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int k = 0; k < threads; ++k)
    pool.emplace_back([&, k] {
      for (size_t i = k; i < texts.size(); i += threads) counts[k] += tok.encode(texts[i]).size();
    });
  for (auto& t : pool) t.join();
  const double s = seconds_since(t0);
  if (tokens) {
    *tokens = 0;
    for (size_t c : counts) *tokens += c;
  }
  return total_bytes(texts) / 1e6 / s;
}

}  // namespace

TEST_CASE("bpe benchmark on devpile", "[.][bench]") {
  if (!cbtm::test::have_devpile()) {
    WARN("devpile absent: skipped");
    return;
  }
  // Documents spaced evenly over the corpus (it is stored grouped by domain); the held-out
  // set takes the documents halfway between the training ones.
  const auto train = tok_test::spread_bytes(5'000'000, 0);
  const auto held_out = tok_test::spread_bytes(5'000'000, 12);
  const int threads = cbtm::runtime().resolved_threads();
  std::printf("train text: %zu docs, %.2f MB; held-out: %zu docs, %.2f MB; %d threads\n",
              train.size(), total_bytes(train) / 1e6, held_out.size(),
              total_bytes(held_out) / 1e6, threads);
  for (int vocab : {4096, 8192}) {
    BpeTokenizer::Options o;
    o.vocab_size = vocab;
    BpeTokenizer tok(o);
    const auto t0 = std::chrono::steady_clock::now();
    tok.train(train);
    const double train_s = seconds_since(t0);
    size_t tokens = 0;
    const double cold = encode_mb_s(tok, held_out, 1, &tokens);
    const double warm = encode_mb_s(tok, held_out, 1);
    const double par = encode_mb_s(tok, held_out, threads);
    std::printf(
        "vocab %d (got %d): train %.2f s | encode 1 thread %.2f MB/s (cold cache), %.2f MB/s "
        "(warm) | %d threads %.2f MB/s | held-out tokens/byte %.4f (bytes/token %.2f)\n",
        vocab, tok.vocab_size(), train_s, cold, warm, threads, par,
        static_cast<double>(tokens) / total_bytes(held_out),
        total_bytes(held_out) / static_cast<double>(tokens));
  }
  // The default max_train_bytes: 50 MB of sample text.
  const auto big = tok_test::spread_bytes(50'000'000, 3);
  BpeTokenizer tok(BpeTokenizer::Options{});
  const auto t0 = std::chrono::steady_clock::now();
  tok.train(big);
  std::printf("train on %.1f MB, vocab %d: %.2f s\n", total_bytes(big) / 1e6, tok.vocab_size(),
              seconds_since(t0));
}
