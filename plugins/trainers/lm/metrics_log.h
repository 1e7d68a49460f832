#pragma once
/// \file metrics_log.h
/// out_dir/metrics.jsonl: one JSON object per optimizer step
///   {"step": 12, "tokens": 6144, "loss": 5.91, "lr": 9.4e-4, "grad_norm": 1.7,
///    "tokens_per_s": 8021}
/// Each line is appended with a single write(2) on an O_APPEND descriptor, so a killed job
/// leaves at most one partial last line, which truncate_after() drops.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cbtm::lm {

class MetricsLog {
 public:
  /// Opens (creating) `path` for appending.
  explicit MetricsLog(std::string path);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  /// Keeps only the well-formed records with "step" <= `step` (rewrites the file atomically).
  /// Called on resume, so the log continues seamlessly from the restored checkpoint.
  void truncate_after(int64_t step);
  /// Appends one record as one line.
  void append(const nlohmann::json& record);

  /// The well-formed records of a metrics file (empty if it does not exist).
  static std::vector<nlohmann::json> read(const std::string& path);

 private:
  void open();
  std::string path_;
  int fd_ = -1;
};

}  // namespace cbtm::lm
