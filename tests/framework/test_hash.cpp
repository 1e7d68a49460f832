// cbtm/hash.h: the seeded stream and the portable shuffle, against values computed
// independently (a Python transcription of splitmix64 and Fisher-Yates, at test-authoring time).
#include "support/catch.h"

#include <map>
#include <numeric>
#include <vector>

#include "cbtm/hash.h"

TEST_CASE("hash: shuffle is Fisher-Yates over splitmix64, the same order everywhere") {
  uint64_t state = 42;
  std::vector<int> v(10);
  std::iota(v.begin(), v.end(), 0);
  cbtm::shuffle(v, state);
  CHECK(v == std::vector<int>{0, 9, 5, 8, 6, 4, 7, 2, 1, 3});
  CHECK(state == 0x8ff34785799e5ce7ull);  // 9 draws, none rejected
  state = 0;
  std::vector<int> w{0, 1, 2, 3, 4};
  cbtm::shuffle(w, state);
  CHECK(w == std::vector<int>{2, 3, 1, 4, 0});
  std::vector<int> one{7}, none;
  cbtm::shuffle(one, state);
  cbtm::shuffle(none, state);
  CHECK(one == std::vector<int>{7});
}

TEST_CASE("hash: shuffle draws every permutation about equally often, uniform_below stays below") {
  uint64_t state = 1;
  std::map<std::vector<int>, int> seen;
  const int n = 60000;
  for (int i = 0; i < n; ++i) {
    std::vector<int> v{0, 1, 2};
    cbtm::shuffle(v, state);
    ++seen[v];
  }
  REQUIRE(seen.size() == 6);
  for (const auto& [perm, count] : seen) CHECK(std::abs(count - n / 6) < 400);  // ~4.4 sd of 91
  for (uint64_t bound : {1ull, 2ull, 3ull, 1000ull, (1ull << 63) + 1})
    for (int i = 0; i < 100; ++i) CHECK(cbtm::uniform_below(state, bound) < bound);
}
