// Atomic file output (framework/include/cbtm/fs.h): temp names, atomic replacement of files and
// directories, and that a failed replacement keeps what was there.
#include "support/catch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <atomic>
#include <thread>
#include <set>
#include <string>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

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
  CHECK_THROWS_WITH(cbtm::write_file_atomic(t / "d", "x"), ContainsText(t / "d"));
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
  CHECK_THROWS_WITH(cbtm::replace_directory(t / "missing", dst), ContainsText("previous version is kept"));
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

namespace {
// Sets an environment variable for one scope.
struct SetEnv {
  SetEnv(const char* k, const char* v) : key(k) {
    if (const char* o = std::getenv(k)) old = o, had = true;
    setenv(k, v, 1);
  }
  ~SetEnv() { had ? (void)setenv(key.c_str(), old.c_str(), 1) : (void)unsetenv(key.c_str()); }
  std::string key, old;
  bool had = false;
};

void set_mtime_ago(const std::string& path, int seconds) {
  struct timespec times[2];
  ::clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= seconds;
  times[1] = times[0];
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}
}  // namespace

TEST_CASE("fs: FileLock owner files (no flock, or CBTM_LOCKS=file) are exclusive, name the holder, go with the object") {
  SetEnv mode("CBTM_LOCKS", "file");
  cbtm::test::TempDir t{"fs"};
  const std::string p = t / "locks/x.lock";
  {
    cbtm::FileLock a(p, false);
    REQUIRE(a.locked());
    CHECK(a.kind() == "owner file");
    CHECK(cbtm::read_file(p + ".owner").rfind("pid " + std::to_string(::getpid()) + " on " + cbtm::read_file("/proc/sys/kernel/hostname") + "start ", 0) == 0);
    cbtm::FileLock b(p, false);
    CHECK_FALSE(b.locked());
    CHECK(b.holder().rfind("pid " + std::to_string(::getpid()) + " on ", 0) == 0);
    CHECK_THAT(b.holder(), ContainsText("(last heartbeat "));
  }
  CHECK_FALSE(fs::exists(p + ".owner"));  // released: removed
  cbtm::FileLock c(p, false);
  CHECK(c.locked());
}

TEST_CASE("fs: FileLock owner file: a dead holder's is taken over, the heartbeat keeps a live one fresh") {
  SetEnv mode("CBTM_LOCKS", "file");
  SetEnv beat("CBTM_LOCK_HEARTBEAT_S", "0.3");  // stale after 6 beats: 1.8 s, then watched 1.8 s
  cbtm::test::TempDir t{"fs"};
  const std::string p = t / "y.lock";
  cbtm::test::write_text(p + ".owner", "pid 1 on a-node-that-died\n");
  set_mtime_ago(p + ".owner", 20);  // its holder stopped beating long ago
  cbtm::test::write_text(p + ".owner.takeover", "");  // and a taker died in the middle
  set_mtime_ago(p + ".owner.takeover", 20);
  {
    cbtm::FileLock a(p, false);
    REQUIRE(a.locked());
    CHECK(cbtm::read_file(p + ".owner").rfind("pid " + std::to_string(::getpid()), 0) == 0);
    CHECK_FALSE(fs::exists(p + ".owner.takeover"));
    set_mtime_ago(p + ".owner", 20);  // as if it had not beaten for 20 s: stale, unless a beat follows
    std::this_thread::sleep_for(std::chrono::milliseconds(700));  // two beats
    cbtm::FileLock b(p, false);
    CHECK_FALSE(b.locked());  // beaten since: still held
  }
  // another host's live owner (a fresh beat) is never taken over
  cbtm::test::write_text(p + ".owner", "pid 2 on a-live-node\n");
  cbtm::FileLock c(p, false);
  CHECK_FALSE(c.locked());
  CHECK_THAT(c.holder(), ContainsText("pid 2 on a-live-node (last heartbeat ") &&
                             ContainsText("a lock silent for 2 s is free)"));
  CHECK(cbtm::read_file(p + ".owner") == "pid 2 on a-live-node\n");  // untouched by the loser
}

TEST_CASE("fs: FileLock owner file that looks old by this host's clock but is still beaten is not taken over") {
  // Another node's clock (or the file server's) behind this host's by more than the limit: the
  // live holder's heartbeats leave its file looking old here. A taker watches it for two beats.
  SetEnv mode("CBTM_LOCKS", "file");
  SetEnv beat("CBTM_LOCK_HEARTBEAT_S", "0.5");  // stale after 3 s
  cbtm::test::TempDir t{"fs"};
  const std::string p = t / "s.lock";
  auto a = std::make_unique<cbtm::FileLock>(p, false);
  REQUIRE(a->locked());
  const std::string mine = cbtm::read_file(p + ".owner");
  // the holder's heartbeat, stamped with a clock an hour behind, at twice its pace
  set_mtime_ago(p + ".owner", 3600);
  std::atomic<bool> stop{false};
  std::thread skewed([&] {
    while (!stop) {
      set_mtime_ago(p + ".owner", 3600);
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  cbtm::FileLock b(p, false);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  skewed.join();
  CHECK_FALSE(b.locked());
  CHECK_THAT(b.holder(), ContainsText("its heartbeat goes on") && ContainsText("clocks differ"));
  CHECK(took < 1.0);  // decided at the first beat it saw, not after watching for 3 s
  CHECK(cbtm::read_file(p + ".owner") == mine);
  // the same old-looking file without beats is free after watching it for the limit (3 s)
  a.reset();
  cbtm::test::write_text(p + ".owner", "pid 4 on a-node-that-died\n");
  set_mtime_ago(p + ".owner", 3600);
  const auto t1 = std::chrono::steady_clock::now();
  cbtm::FileLock c(p, false);
  CHECK(c.locked());
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count() >= 2.9);
}

TEST_CASE("fs: FileLock owner file of a process of this host that is gone is taken over at once") {
  SetEnv mode("CBTM_LOCKS", "file");
  cbtm::test::TempDir t{"fs"};
  const std::string p = t / "w.lock";
  std::string host = cbtm::read_file("/proc/sys/kernel/hostname");
  host.pop_back();  // the newline
  // a fresh heartbeat, but no such process (kill -KILL leaves this behind; the rerun need not wait)
  cbtm::test::write_text(p + ".owner", "pid 999999999 on " + host + "\nstart 1\n");
  {
    cbtm::FileLock a(p, false);
    CHECK(a.locked());
  }
  // this process's pid, but a start time that is not this process's: the pid was reused
  cbtm::test::write_text(p + ".owner", "pid " + std::to_string(::getpid()) + " on " + host + "\nstart 1\n");
  {
    cbtm::FileLock a(p, false);
    CHECK(a.locked());
  }
  // a live process of this host (this one, rightly described) keeps it
  {
    cbtm::FileLock a(p, false);
    REQUIRE(a.locked());
    cbtm::FileLock b(p, false);
    CHECK_FALSE(b.locked());
  }
}

TEST_CASE("fs: FileLock with wait blocks until the holder lets go (flock and owner files), CBTM_LOCKS=none always takes") {
  for (const char* mode : {"", "file"}) {
    SetEnv m("CBTM_LOCKS", mode);
    SetEnv beat("CBTM_LOCK_HEARTBEAT_S", "1");
    cbtm::test::TempDir t{"fs"};
    const std::string p = t / "z.lock";
    auto a = std::make_unique<cbtm::FileLock>(p, false);
    REQUIRE(a->locked());
    const auto t0 = std::chrono::steady_clock::now();
    std::thread release([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
      a.reset();
    });
    cbtm::FileLock b(p, true);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    release.join();
    INFO("mode '" << mode << "'");
    CHECK(b.locked());
    CHECK(waited >= 0.35);
  }
  SetEnv none("CBTM_LOCKS", "none");
  cbtm::test::TempDir t{"fs"};
  cbtm::FileLock a(t / "n.lock", false), b(t / "n.lock", false);
  CHECK(a.locked());
  CHECK(b.locked());
  CHECK(b.kind() == "none");
}

TEST_CASE("fs: FileLock owner file: a holder whose lock was taken over says so") {
  SetEnv mode("CBTM_LOCKS", "file");
  SetEnv beat("CBTM_LOCK_HEARTBEAT_S", "0.3");
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  {
    cbtm::test::TempDir t{"fs"};
    const std::string p = t / "v.lock";
    cbtm::FileLock a(p, false);
    REQUIRE(a.locked());
    cbtm::test::write_text(p + ".owner", "pid 3 on another-node\n");  // as a taker would, while we were stopped
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CHECK(cbtm::read_file(p + ".owner") == "pid 3 on another-node\n");  // neither touched nor removed
  }
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
  CHECK_THAT(log.str(), ContainsText("was taken over (now held by pid 3 on another-node)"));
}
