// Atomic file output (framework/include/cbtm/fs.h): temp names, atomic replacement of files and
// directories, and that a failed replacement keeps what was there.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "support/test_support.h"

namespace fs = std::filesystem;

namespace {
// Leftover temporary names (".tmp-") in a directory.
int temp_entries(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().find(".tmp-") != std::string::npos;
  return n;
}
}  // namespace

TEST_CASE("fs: temp names are siblings and unique and name the host and the process") {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string t = cbtm::temp_path_for("/a/b/c.json");
    CHECK(t.rfind("/a/b/c.json.tmp-", 0) == 0);
    CHECK(fs::path(t).parent_path() == "/a/b");
    CHECK(t.find("-" + std::to_string(::getpid()) + "-") != std::string::npos);
    CHECK(seen.insert(t).second);
  }
}

TEST_CASE("fs: write_file_atomic replaces a file whole and leaves no temp file") {
  cbtm::test::TempDir t{"fs"};
  const std::string p = t / "sub/x.txt";
  cbtm::write_file_atomic(p, "first");
  CHECK(cbtm::read_file(p) == "first");
  cbtm::write_file_atomic(p, std::string(1 << 20, 'z'));
  CHECK(cbtm::read_file(p) == std::string(1 << 20, 'z'));
  int entries = 0;
  for (const auto& e : fs::directory_iterator(t / "sub")) entries += e.path().filename() == "x.txt" ? 0 : 1;
  CHECK(entries == 0);
  // a directory in the way: an error naming the path, nothing left behind
  fs::create_directories(t / "d");
  CHECK_THROWS_WITH(cbtm::write_file_atomic(t / "d", "x"), Catch::Contains(t / "d"));
  CHECK(temp_entries(t.path()) == 0);
}

TEST_CASE("fs: replace_directory swaps a directory in and keeps the old one when the swap fails") {
  cbtm::test::TempDir t{"fs"};
  const std::string dst = t / "out";
  fs::create_directories(dst);
  cbtm::write_file_atomic(dst + "/v", "old");
  const std::string src = t / "new";
  fs::create_directories(src);
  cbtm::write_file_atomic(src + "/v", "new");
  cbtm::replace_directory(src, dst);
  CHECK(cbtm::read_file(dst + "/v") == "new");
  CHECK_FALSE(fs::exists(src));
  // the source is missing: the rename fails, and dst still holds the previous version
  CHECK_THROWS_WITH(cbtm::replace_directory(t / "missing", dst), Catch::Contains("previous version is kept"));
  CHECK(cbtm::read_file(dst + "/v") == "new");
  CHECK(temp_entries(t.path()) == 0);
}

TEST_CASE("fs: FileLock is exclusive, names its holder and is released with the object") {
  cbtm::test::TempDir t{"fs"};
  const std::string p = t / "locks/x.lock";
  {
    cbtm::FileLock a(p, false);
    REQUIRE(a.locked());
    cbtm::FileLock b(p, false);  // another open description, even in this process
    CHECK_FALSE(b.locked());
    CHECK(b.holder().rfind("pid " + std::to_string(::getpid()) + " on ", 0) == 0);
  }
  cbtm::FileLock c(p, false);  // the first was released with its object
  CHECK(c.locked());
}
