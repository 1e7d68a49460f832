// Block packing, permutations, epoch order and the background batch loader.
#include "support/catch_torch.h"  // first: see the header
#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "batch_loader.h"
#include "block_dataset.h"
#include "cbtm/error.h"
#include "cbtm/token_shard.h"
#include "support/test_support.h"

using cbtm::lm::BatchLoader;
using cbtm::lm::BatchPlan;
using cbtm::lm::BlockDataset;
using cbtm::lm::EpochOrder;

namespace {

constexpr int32_t kBos = 2;

// Random documents of ids 4..99 (never the bos id), some empty.
std::vector<std::vector<int32_t>> random_docs(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> docs(n);
  for (auto& d : docs) {
    d.resize(rng() % 4 == 0 ? 0 : rng() % 30 + 1);
    for (auto& t : d) t = static_cast<int32_t>(4 + rng() % 96);
  }
  return docs;
}

void write_docs(const std::string& dir, const std::vector<std::vector<int32_t>>& docs,
                int64_t shard_tokens) {
  cbtm::TokenShardWriter w(dir, 100, shard_tokens);
  for (const auto& d : docs) w.add(d);
  w.close();
}

}  // namespace

TEST_CASE("lm block packing: bos before every document and blocks tile the stream",
          "[lm_trainer]") {
  cbtm::test::TempDir tmp("lm-pack");
  const auto docs_a = random_docs(40, 1), docs_b = random_docs(25, 2);
  write_docs(tmp / "a", docs_a, 100);  // several shards
  write_docs(tmp / "b", docs_b, 1 << 20);
  const int64_t L = 7;
  const BlockDataset data = BlockDataset::load({tmp / "a", tmp / "b"}, kBos, L, 11);

  // Independent re-packing: the documents of both dirs (non-empty ones), in the order the
  // seeded permutation gives, each behind one bos.
  std::vector<std::vector<int32_t>> all;
  for (const auto* v : {&docs_a, &docs_b})
    for (const auto& d : *v)
      if (!d.empty()) all.push_back(d);
  REQUIRE(data.documents() == static_cast<int64_t>(all.size()));
  const auto order = cbtm::lm::permutation(static_cast<int64_t>(all.size()), 11, ~0ull);
  std::vector<int32_t> expected;
  for (int64_t i : order) {
    expected.push_back(kBos);
    expected.insert(expected.end(), all[i].begin(), all[i].end());
  }
  CHECK(data.stream() == expected);

  // The stream, split at bos, is the documents: bos before every one, none lost.
  std::multiset<std::vector<int32_t>> parsed, original(all.begin(), all.end());
  REQUIRE(data.stream().front() == kBos);
  std::vector<int32_t> cur;
  for (size_t i = 1; i <= data.stream().size(); ++i) {
    if (i == data.stream().size() || data.stream()[i] == kBos) {
      parsed.insert(cur);
      cur.clear();
    } else {
      cur.push_back(data.stream()[i]);
    }
  }
  CHECK(parsed == original);

  // Blocks of L+1 overlap by one token and rebuild the stream up to the dropped tail.
  const auto n = static_cast<int64_t>(expected.size());
  REQUIRE(data.blocks() == (n - 1) / L);
  std::vector<int32_t> rebuilt;
  std::vector<int64_t> block(L + 1);
  for (int64_t b = 0; b < data.blocks(); ++b) {
    data.copy_block(b, block.data());
    if (b > 0) CHECK(block.front() == rebuilt.back());
    rebuilt.insert(rebuilt.end(), block.begin() + (b == 0 ? 0 : 1), block.end());
  }
  CHECK(rebuilt ==
        std::vector<int32_t>(expected.begin(), expected.begin() + data.blocks() * L + 1));

  // Deterministic per seed; another seed, another order.
  CHECK(BlockDataset::load({tmp / "a", tmp / "b"}, kBos, L, 11).stream() == data.stream());
  CHECK(BlockDataset::load({tmp / "a", tmp / "b"}, kBos, L, 12).stream() != data.stream());

  // An end-of-document token of its own follows every document (the same one as bos: nothing
  // more, the next bos ends the document)
  CHECK(BlockDataset::load({tmp / "a", tmp / "b"}, kBos, L, 11, kBos).stream() == data.stream());
  const int32_t eos = kBos + 1;
  std::vector<int32_t> with_eos;
  for (int64_t i : order) {
    with_eos.push_back(kBos);
    with_eos.insert(with_eos.end(), all[i].begin(), all[i].end());
    with_eos.push_back(eos);
  }
  CHECK(BlockDataset::load({tmp / "a", tmp / "b"}, kBos, L, 11, eos).stream() == with_eos);
}

TEST_CASE("lm block packing: too little data is an Error naming the directories", "[lm_trainer]") {
  cbtm::test::TempDir tmp("lm-pack-small");
  write_docs(tmp / "tiny", {{5, 6, 7}, {}, {8}}, 100);
  // 3+1 + 1+1 = 6 tokens: enough for seq_len 5, not for 6.
  CHECK(BlockDataset::load({tmp / "tiny"}, kBos, 5, 0).blocks() == 1);
  CHECK_THROWS_WITH(BlockDataset::load({tmp / "tiny"}, kBos, 6, 0),
                    ContainsText(tmp / "tiny") && ContainsText("seq_len+1 = 7"));
  CHECK_THROWS_AS(BlockDataset::load({tmp / "missing"}, kBos, 4, 0), cbtm::Error);
}

TEST_CASE("lm permutation: deterministic and uniform", "[lm_trainer]") {
  const auto p = cbtm::lm::permutation(1000, 5, 0);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) REQUIRE(sorted[i] == i);
  CHECK(cbtm::lm::permutation(1000, 5, 0) == p);
  CHECK(cbtm::lm::permutation(1000, 6, 0) != p);
  CHECK(cbtm::lm::permutation(1000, 5, 1) != p);
  // All 24 orders of 4 items, ~1000 times each over 24000 seeds (binomial sd ~31).
  std::map<std::vector<int64_t>, int> counts;
  for (uint64_t s = 0; s < 24000; ++s) ++counts[cbtm::lm::permutation(4, s, 7)];
  CHECK(counts.size() == 24);
  for (const auto& [perm, c] : counts) CHECK((c > 850 && c < 1150));
}

TEST_CASE("lm epoch order: every block once per epoch and a new order each epoch", "[lm_trainer]") {
  const int64_t blocks = 13;
  EpochOrder order(blocks, 3);
  std::vector<std::vector<int64_t>> epochs(4);
  for (int64_t g = 0; g < 4 * blocks; ++g) epochs[g / blocks].push_back(order.block(g));
  for (auto e : epochs) {
    std::sort(e.begin(), e.end());
    for (int64_t i = 0; i < blocks; ++i) CHECK(e[i] == i);
  }
  CHECK(epochs[0] != epochs[1]);
  CHECK(epochs[1] != epochs[2]);
  // Random access gives the same answer as a sequential walk.
  EpochOrder other(blocks, 3);
  CHECK(other.block(2 * blocks + 5) == epochs[2][5]);
  CHECK(other.block(3) == epochs[0][3]);
}

TEST_CASE("lm batch loader: background batches equal the synchronous ones from any step",
          "[lm_trainer]") {
  std::vector<int32_t> stream(500);
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<int32_t>(i);
  const BlockDataset data(stream, 9);  // 55 blocks
  const BatchPlan plan{3, 2, 42};      // 6 blocks per step: epochs end mid-step
  EpochOrder order(data.blocks(), plan.seed);
  std::vector<cbtm::lm::Batch> expected;
  for (int64_t s = 0; s < 25; ++s) expected.push_back(cbtm::lm::make_batch(data, order, plan, s));

  // Block of (step, micro, row) follows the documented sample index.
  EpochOrder check(data.blocks(), plan.seed);
  const auto& b7 = expected[7];
  const int64_t g = (7 * 2 + 1) * 3 + 2;  // micro 1, row 2
  CHECK(b7.micro(1)[2 * 10] == check.block(g) * 9);

  for (int64_t start : {0, 11}) {
    BatchLoader loader(data, plan, start, 25, 2);
    for (int64_t s = start; s < 25; ++s) {
      const auto b = loader.next();
      REQUIRE(b.step == s);
      CHECK(b.tokens == expected[s].tokens);
    }
    CHECK_THROWS_AS(loader.next(), std::out_of_range);
  }
  { BatchLoader abandoned(data, plan, 0, 25, 3); }  // destroyed while the thread waits
}
