#include "cbtm/fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "cbtm/error.h"

namespace fs = std::filesystem;

namespace cbtm {
namespace {
// This machine's name ("" if it cannot be read), as the lock files and temp names use it.
std::string host_name() {
  char h[64] = {0};
  return ::gethostname(h, sizeof h - 1) == 0 ? std::string(h) : std::string();
}
}  // namespace

std::string temp_path_for(const std::string& path) {
  // host + pid + counter: unique across the processes of one machine and across the nodes of a
  // cluster writing to a shared filesystem
  static std::atomic<int> counter{0};
  static const std::string host = [] {
    std::string s = host_name();
    if (s.empty()) return std::string("host");
    for (char& c : s)
      if (c == '/' || c == '.') c = '_';
    return s.substr(0, 32);
  }();
  return path + ".tmp-" + host + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

void make_dirs(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw Error("cannot create directory " + path + ": " + ec.message());
}

bool path_exists(const std::string& path) { return fs::exists(path); }

void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);  // best effort: some filesystems refuse to sync a directory (EINVAL)
  ::close(fd);
}

void sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path + " to sync it: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) throw Error("cannot sync " + path + " to disk: " + std::strerror(err));
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) make_dirs(parent.string());
  const std::string tmp = temp_path_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot write " + tmp + ": " + std::strerror(errno));
  auto fail = [&](const char* what, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(std::string("cannot ") + what + " " + tmp + " (for " + path + "): " + std::strerror(err) +
                (err == ENOSPC || err == EDQUOT ? " -- the disk or quota is full" : ""));
  };
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write", errno);
    }
    off += static_cast<size_t>(n);
  }
  // a full disk or quota often shows only here (network filesystems): never rename a short file
  if (::fsync(fd) != 0 && errno != EINVAL) fail("sync", errno);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0 && errno != EINTR) fail("close", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
  sync_directory(parent.string());  // the rename itself survives a crash
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path + ": " + (fs::exists(path) ? "permission denied or not a file" : "no such file"));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void replace_directory(const std::string& src, const std::string& dst) {
  std::error_code ec;
  const std::string parent = fs::path(dst).parent_path().string();
  if (fs::exists(dst)) {
    const std::string old = temp_path_for(dst) + ".old";
    fs::rename(dst, old, ec);
    if (ec) throw Error("cannot move " + dst + " aside: " + ec.message());
    fs::rename(src, dst, ec);
    if (ec) {
      std::error_code back;
      fs::rename(old, dst, back);  // put the previous version back
      throw Error("cannot rename " + src + " to " + dst + ": " + ec.message() +
                  (back ? " (and the previous " + dst + " could not be restored from " + old + ": " + back.message() + ")"
                        : " (the previous version is kept)"));
    }
    sync_directory(parent);
    fs::remove_all(old, ec);
    return;
  }
  if (!parent.empty()) make_dirs(parent);
  fs::rename(src, dst, ec);
  if (ec) throw Error("cannot rename " + src + " to " + dst + ": " + ec.message());
  sync_directory(parent);
}

namespace {

std::string me_as_holder() {
  const std::string host = host_name();
  return "pid " + std::to_string(::getpid()) + " on " + (host.empty() ? "this host" : host);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

double heartbeat_seconds() {
  const char* v = std::getenv("CBTM_LOCK_HEARTBEAT_S");
  const double s = v && *v ? std::atof(v) : 10.0;
  return s > 0 ? s : 10.0;
}

// A file's identity and last modification, to tell whether it changed between two looks.
// Read through open + fstat: an NFS client revalidates a file's attributes on open (close-to-
// open consistency), where a plain stat() may answer from its attribute cache for up to a minute.
struct Stamp {
  ino_t ino = 0;
  struct timespec mtime {};
  bool operator==(const Stamp& o) const {
    return ino == o.ino && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec;
  }
  bool operator!=(const Stamp& o) const { return !(*this == o); }
};
std::optional<Stamp> stamp_of(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  const int rc = ::fstat(fd, &st);
  ::close(fd);
  if (rc != 0) return std::nullopt;
  return Stamp{st.st_ino, st.st_mtim};
}

// Seconds since the stamp's modification by this host's clock; 0 for a time ahead of it.
double age_of(const Stamp& s) {
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const double age = static_cast<double>(now.tv_sec - s.mtime.tv_sec) +
                     1e-9 * static_cast<double>(now.tv_nsec - s.mtime.tv_nsec);
  return std::max(0.0, age);
}

// Whether `path` stays as `seen` for `seconds` of this host's monotonic clock (looked at every
// 50 ms; false as soon as it changes or goes). Silence confirmed by watching, not only by the
// file's mtime against this host's clock: the file server's clock (or the writer's) may differ.
bool unchanged_for(const std::string& path, const Stamp& seen, double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto now = stamp_of(path);
    if (!now || *now != seen) return false;
  }
  return true;
}

// /proc/PID/stat's start time (clock ticks since boot), "" if the process does not exist.
std::string process_start(pid_t pid) {
  std::string stat;
  try {
    stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  } catch (const Error&) {
    return "";
  }
  const size_t paren = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return "";
  std::istringstream rest(stat.substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {  // field 3 is the state, 22 the start time
    if (i == 22) return field;
  }
  return "";
}

// An owner file written by a process of this host that no longer runs (its pid is gone, or
// belongs to a process started at another time).
bool dead_here(const std::string& owner_content) {
  std::istringstream in(owner_content);
  std::string first, second;
  std::getline(in, first);
  std::getline(in, second);
  const std::string host = host_name();
  if (host.empty()) return false;
  const std::string mark = " on " + host;
  if (first.rfind("pid ", 0) != 0 || first.size() < mark.size() ||
      first.compare(first.size() - mark.size(), mark.size(), mark) != 0)
    return false;  // another host's (or unreadable): only its heartbeat tells
  const long pid = std::strtol(first.c_str() + 4, nullptr, 10);
  if (pid <= 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return true;
  const std::string started = second.rfind("start ", 0) == 0 ? second.substr(6) : "";
  return !started.empty() && process_start(static_cast<pid_t>(pid)) != started;
}

}  // namespace

// The owner file's heartbeat: touches it every beat until stopped; then removes it if it is
// still this process's (a holder stopped for longer than the staleness limit may have lost it).
struct FileLock::Heartbeat {
  std::string path, content;
  std::mutex m;
  std::condition_variable cv;
  bool stop = false;
  std::thread thread;
  Heartbeat(std::string p, std::string c) : path(std::move(p)), content(std::move(c)) {
    const auto beat = std::chrono::duration<double>(heartbeat_seconds());
    thread = std::thread([this, beat] {
      std::unique_lock<std::mutex> lock(m);
      bool warned = false;
      while (!cv.wait_for(lock, beat, [this] { return stop; })) {
        std::string now;
        try {
          now = read_file(path);
        } catch (const Error&) {
        }
        if (now == content) {
          ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
        } else if (!warned) {  // taken over while this process did not beat (stopped, or a hung mount)
          warned = true;
          spdlog::error("lock {} was taken over ({}): another process may be running the same work now",
                        path, now.empty() ? "its owner file is gone" : "now held by " + now.substr(0, now.find('\n')));
        }
      }
    });
  }
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(m);
      stop = true;
    }
    cv.notify_all();
    thread.join();
    std::ifstream in(path);
    std::stringstream now;
    now << in.rdbuf();
    if (now.str() == content) ::unlink(path.c_str());
  }
};

bool FileLock::take_owner_file(const std::string& path) {
  kind_ = "owner file";
  const std::string owner = path + ".owner";
  // line 1 for messages; line 2 tells this process from a later one with the same pid
  const std::string content = me_as_holder() + "\nstart " + process_start(::getpid()) + "\n";
  const double stale_after = 6 * heartbeat_seconds();
  std::optional<std::pair<std::string, Stamp>> silent;  // an owner file already watched in silence
  for (int attempt = 0; attempt < 5; ++attempt) {
    const int fd = ::open(owner.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      const bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
      ::close(fd);
      if (!ok) {
        ::unlink(owner.c_str());
        throw Error("cannot write lock owner file " + owner + ": " + std::strerror(errno));
      }
      heartbeat_ = std::make_unique<Heartbeat>(owner, content);
      return true;
    }
    if (errno != EEXIST) throw Error("cannot create lock owner file " + owner + ": " + std::strerror(errno));
    std::string held;
    try {
      held = read_file(owner);
    } catch (const Error&) {
      continue;  // removed in between: try again
    }
    const auto seen = stamp_of(owner);
    if (!seen) continue;  // removed in between: try again
    const double age = age_of(*seen);
    const std::string who = trimmed(held.substr(0, held.find('\n')));
    // Dead: a process of this host that is gone, or silent for stale_after by this host's clock
    // and then for stale_after more while watched on this host's monotonic clock -- a node or
    // file server whose clock is behind makes a live holder's file look old here, and its
    // beats, seen while watching, keep it.
    const bool dead = dead_here(held);
    const bool confirmed = silent && silent->first == held && silent->second == *seen;  // watched before
    bool alive = !dead && !confirmed && age <= stale_after;
    if (!dead && !confirmed && !alive) {
      spdlog::info("lock {}: its owner ({}) has not beaten for {:.0f} s by this host's clock; watching it for "
                   "{:.0f} s before taking it over",
                   path, who.empty() ? "unnamed" : who, age, stale_after);
      alive = !unchanged_for(owner, *seen, stale_after);
    }
    if (alive) {
      char beat[160];
      if (age <= stale_after)
        std::snprintf(beat, sizeof beat, " (last heartbeat %.0f s ago; a lock silent for %.0f s is free)", age,
                      stale_after);
      else
        std::snprintf(beat, sizeof beat, " (its heartbeat goes on, although its file looks %.0f s old here: "
                      "clocks differ)", age);
      holder_ = (who.empty() ? std::string("another process") : who) + beat;
      return false;
    }
    if (!dead) silent = std::make_pair(held, *seen);
    // Remove it under a takeover guard (O_EXCL, so one taker at a time), after checking again
    // that it is still the file judged dead and that the guard is still this taker's -- only a
    // guard holder removes an owner file that is not its own, and nobody can create one while
    // it exists, so none is lost in between.
    const std::string guard = owner + ".takeover";
    const std::string token = content + "nonce " + std::to_string(std::random_device{}()) + "\n";
    const int g = ::open(guard.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (g < 0) {
      // a taker holds the guard for milliseconds: one unchanged for the staleness limit is a
      // taker's that died mid-way
      const auto guard_seen = errno == EEXIST ? stamp_of(guard) : std::nullopt;
      if (guard_seen && unchanged_for(guard, *guard_seen, stale_after)) ::unlink(guard.c_str());
      continue;
    }
    const bool wrote = ::write(g, token.data(), token.size()) == static_cast<ssize_t>(token.size());
    ::close(g);
    auto read_or_empty = [](const std::string& f) {
      try {
        return read_file(f);
      } catch (const Error&) {
        return std::string();  // gone (the owner let go meanwhile)
      }
    };
    const std::string again = read_or_empty(owner), guard_now = read_or_empty(guard);
    if (wrote && guard_now == token && again == held && (dead ? dead_here(again) : stamp_of(owner) == seen))
      ::unlink(owner.c_str());
    if (guard_now == token) ::unlink(guard.c_str());
  }
  holder_ = "another process (its owner file " + owner + " keeps changing)";
  return false;
}

FileLock::FileLock(const std::string& path, bool wait) {
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) make_dirs(parent.string());
  const char* mode_env = std::getenv("CBTM_LOCKS");
  const std::string mode = mode_env ? mode_env : "";
  if (!mode.empty() && mode != "flock" && mode != "file" && mode != "none")
    throw Error("CBTM_LOCKS=" + mode + ": expected flock (the default), file or none");
  if (mode == "none") {
    kind_ = "none";
    locked_ = true;
    return;
  }
  bool owner_file = mode == "file";
  if (!owner_file) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("cannot open lock file " + path + ": " + std::strerror(errno));
    int rc;
    while ((rc = ::flock(fd_, LOCK_EX | (wait ? 0 : LOCK_NB))) != 0 && errno == EINTR) {
    }
    if (rc != 0 && errno != EWOULDBLOCK) {  // no flock on this filesystem: an owner file instead
      ::close(fd_);
      fd_ = -1;
      owner_file = true;
    } else {
      locked_ = rc == 0;
      if (!locked_) {
        char buf[256];
        const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
        holder_ = n > 0 ? trimmed(std::string(buf, static_cast<size_t>(n))) : "another process";
        ::close(fd_);
        fd_ = -1;
        return;
      }
      const std::string me = me_as_holder() + "\n";
      if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, me.data(), me.size(), 0);
      return;
    }
  }
  while (!(locked_ = take_owner_file(path)) && wait) std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

FileLock::~FileLock() {
  heartbeat_.reset();          // stops the heartbeat, removes the owner file
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

}  // namespace cbtm
