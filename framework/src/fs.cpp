#include "cbtm/fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cbtm/error.h"

namespace fs = std::filesystem;

namespace cbtm {

std::string temp_path_for(const std::string& path) {
  // host + pid + counter: unique across the processes of one machine and across the nodes of a
  // cluster writing to a shared filesystem
  static std::atomic<int> counter{0};
  static const std::string host = [] {
    char h[64] = {0};
    if (::gethostname(h, sizeof h - 1) != 0 || !h[0]) return std::string("host");
    std::string s(h);
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

FileLock::FileLock(const std::string& path, bool wait) {
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) make_dirs(parent.string());
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open lock file " + path + ": " + std::strerror(errno));
  int rc;
  while ((rc = ::flock(fd_, LOCK_EX | (wait ? 0 : LOCK_NB))) != 0 && errno == EINTR) {
  }
  if (rc != 0 && errno != EWOULDBLOCK) {  // no locks on this filesystem: carry on unlocked
    locked_ = true;
    return;
  }
  locked_ = rc == 0;
  if (!locked_) {
    char buf[256];
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    holder_ = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "another process";
    while (!holder_.empty() && (holder_.back() == '\n' || holder_.back() == ' ')) holder_.pop_back();
    ::close(fd_);
    fd_ = -1;
    return;
  }
  char host[64] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  const std::string me = "pid " + std::to_string(::getpid()) + " on " + (host[0] ? host : "this host") + "\n";
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, me.data(), me.size(), 0);
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace cbtm
