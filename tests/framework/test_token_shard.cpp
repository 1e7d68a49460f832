#include "support/catch.h"

#include "cbtm/fs.h"
#include "cbtm/token_shard.h"
#include "support/test_support.h"

TEST_CASE("token shards: rolling shards round-trip documents in order") {
  cbtm::test::TempDir t("shards");
  std::vector<std::vector<int32_t>> docs;
  for (int i = 0; i < 50; ++i) {
    std::vector<int32_t> d;
    for (int j = 0; j <= i % 7; ++j) d.push_back(4 + (i * 31 + j) % 8000);
    docs.push_back(d);
  }
  {
    cbtm::TokenShardWriter w(t / "c", 8192, /*max_tokens=*/40);
    for (const auto& d : docs) w.add(d);
    w.close();
    CHECK(w.docs() == 50);
  }
  auto shards = cbtm::list_token_shards(t / "c");
  CHECK(shards.size() > 3);
  cbtm::TokenShardReader r(t / "c");
  std::vector<int32_t> d;
  size_t i = 0;
  while (r.next(d)) {
    REQUIRE(i < docs.size());
    CHECK(d == docs[i++]);
  }
  CHECK(i == docs.size());
  // an empty writer still leaves one valid (empty) shard
  { cbtm::TokenShardWriter w(t / "empty", 100); }
  cbtm::TokenShardReader e(t / "empty");
  CHECK_FALSE(e.next(d));
  // large vocabularies are stored as I32
  {
    cbtm::TokenShardWriter w(t / "big", 100000);
    w.add({70000, 5});
  }
  cbtm::TokenShardReader b(t / "big");
  REQUIRE(b.next(d));
  CHECK(d == std::vector<int32_t>{70000, 5});
  CHECK_THROWS_AS(cbtm::list_token_shards(t / "nope"), cbtm::Error);
}

TEST_CASE("token shards: a writer destroyed by an exception leaves its buffered documents unwritten") {
  cbtm::test::TempDir t("shards");
  try {
    cbtm::TokenShardWriter w(t / "c", 100, /*max_tokens=*/1000);
    w.add({5, 6, 7});
    throw std::runtime_error("the part failed");
  } catch (const std::runtime_error&) {
  }
  CHECK(cbtm::list_token_shards(t / "c").empty());
  // a writer destroyed normally still completes its shard
  { cbtm::TokenShardWriter w(t / "d", 100); w.add({5}); }
  CHECK(cbtm::list_token_shards(t / "d").size() == 1);
}
