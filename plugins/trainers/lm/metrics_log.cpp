#include "metrics_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "cbtm/error.h"
#include "cbtm/fs.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace cbtm::lm {

MetricsLog::MetricsLog(std::string path) : path_(std::move(path)) { open(); }

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsLog::open() {
  if (fs::path(path_).has_parent_path()) make_dirs(fs::path(path_).parent_path().string());
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open " + path_ + ": " + std::strerror(errno));
}

std::vector<json> MetricsLog::read(const std::string& path) {
  std::vector<json> out;
  if (!fs::exists(path)) return out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline: a line cut short by a kill
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("step")) out.push_back(std::move(j));
  }
  return out;
}

void MetricsLog::truncate_after(int64_t step) {
  std::string kept;
  for (const json& j : read(path_))
    if (j["step"].get<int64_t>() <= step) kept += j.dump() + "\n";
  ::close(fd_);
  fd_ = -1;
  write_file_atomic(path_, kept);
  open();
}

void MetricsLog::append(const json& record) {
  const std::string line = record.dump() + "\n";
  const ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size()))
    throw Error("cannot append to " + path_ + ": " + std::strerror(errno));
}

}  // namespace cbtm::lm
