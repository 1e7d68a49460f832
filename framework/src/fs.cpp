#include "cbtm/fs.h"

#include <fcntl.h>
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
  static std::atomic<int> counter{0};
  return path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

void make_dirs(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw Error("cannot create directory " + path + ": " + ec.message());
}

bool path_exists(const std::string& path) { return fs::exists(path); }

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) make_dirs(parent.string());
  const std::string tmp = temp_path_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot write " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("cannot write " + tmp + ": " + std::strerror(err));
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
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
  if (fs::exists(dst)) {
    const std::string old = temp_path_for(dst) + ".old";
    fs::rename(dst, old, ec);
    if (ec) throw Error("cannot move " + dst + " aside: " + ec.message());
    fs::rename(src, dst, ec);
    if (ec) throw Error("cannot rename " + src + " to " + dst + ": " + ec.message());
    fs::remove_all(old, ec);
    return;
  }
  if (fs::path(dst).has_parent_path()) make_dirs(fs::path(dst).parent_path().string());
  fs::rename(src, dst, ec);
  if (ec) throw Error("cannot rename " + src + " to " + dst + ": " + ec.message());
}

}  // namespace cbtm
