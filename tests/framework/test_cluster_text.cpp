#include "support/catch.h"

#include <set>

#include "cbtm/error.h"
#include "cbtm/pipeline/cluster_text.h"

using cbtm::ClusterTextSpec;
using cbtm::cluster_text;

TEST_CASE("cluster_text: document is the whole text - a short text is never cut") {
  const std::string t = "alpha beta gamma delta";
  CHECK(cluster_text(t, "d", {"document", 3, 1}) == t);
  CHECK(cluster_text(t, "d", {"prefix", 22, 1}) == t);
  CHECK(cluster_text(t, "d", {"window", 100, 1}) == t);
}

TEST_CASE("cluster_text: a prefix ends at a word boundary - or mid-word when none is near") {
  // bytes 0..11 are "alpha beta g"; the space at 10 lies in the last quarter (>= 9).
  CHECK(cluster_text("alpha beta gamma delta", "d", {"prefix", 12, 1}) == "alpha beta");
  CHECK(cluster_text("abcdefghij", "d", {"prefix", 4, 1}) == "abcd");
  // A space before the last quarter is not used: 16 bytes, floor 12, the spaces are at 5 and 10.
  CHECK(cluster_text("alpha beta gammadelta", "d", {"prefix", 16, 1}) == "alpha beta gamma");
}

TEST_CASE("cluster_text: a cut never splits a UTF-8 character") {
  const std::string e = "\xc3\xa9";  // é, two bytes
  const std::string t = e + e + e + e + e;
  CHECK(cluster_text(t, "d", {"prefix", 3, 1}) == e);
  CHECK(cluster_text(t, "d", {"prefix", 4, 1}) == e + e);
  for (int s = 0; s < 50; ++s) {
    const std::string w = cluster_text(t, "doc" + std::to_string(s), {"window", 4, 1});
    REQUIRE(w.size() >= 2);
    CHECK((static_cast<unsigned char>(w[0]) & 0xC0) != 0x80);  // starts on a character
    CHECK(t.find(w) % 2 == 0);
  }
}

TEST_CASE("cluster_text: a window is a seeded, per-document slice of the text") {
  std::string t;
  for (int i = 100; i < 300; ++i) t += "w" + std::to_string(i) + " ";  // 1000 bytes of distinct 5-byte words
  const ClusterTextSpec spec{"window", 60, 7};
  std::set<size_t> starts;
  for (int d = 0; d < 200; ++d) {
    const std::string id = "doc-" + std::to_string(d);
    const std::string w = cluster_text(t, id, spec);
    CHECK(w == cluster_text(t, id, spec));  // deterministic
    REQUIRE(w.size() <= 60);
    CHECK(w.size() >= 45);
    const size_t at = t.find(w);
    REQUIRE(at != std::string::npos);
    CHECK(at % 5 == 0);  // starts at a word
    starts.insert(at);
  }
  // Offsets are spread over [0, 940]: many distinct ones (189 word starts), near both ends.
  CHECK(starts.size() > 80);
  CHECK(*starts.begin() < 60);
  CHECK(*starts.rbegin() > 860);
  // Another seed moves the windows.
  int moved = 0;
  for (int d = 0; d < 50; ++d) {
    const std::string id = "doc-" + std::to_string(d);
    moved += cluster_text(t, id, spec) != cluster_text(t, id, {"window", 60, 8});
  }
  CHECK(moved > 40);
}

TEST_CASE("cluster_text: unknown modes and lengths below 1 fail") {
  CHECK_THROWS_WITH(cluster_text("x y", "d", {"suffix", 5, 1}), ContainsText("unknown mode 'suffix'"));
  CHECK_THROWS_WITH(cluster_text("x y", "d", {"prefix", 0, 1}), ContainsText("cluster_text_chars"));
}
