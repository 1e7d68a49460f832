#pragma once
/// \file progress.h
/// A rate-limited progress line for long stages:
///   [expert-2] 41.0%  1.64M/4.00M tok  27.3k tok/s  ETA 1m26s  loss 3.912
#include <chrono>
#include <string>

namespace cbtm {

class Progress {
 public:
  /// `label` prefixes the line; `unit` is e.g. "tok" or "docs"; a line is logged at most
  /// every `interval_s` seconds (and always by finish()).
  Progress(std::string label, double total, std::string unit, double interval_s = 5.0);
  /// Reports `done` units so far; `extra` (e.g. "loss 3.91") is appended.
  void update(double done, const std::string& extra = "");
  /// Logs the final line with the overall rate.
  void finish(const std::string& extra = "");
  double elapsed_s() const;
  /// Units per second since construction.
  double rate() const;

  /// "12.3k", "4.00M" ...
  static std::string human(double v);
  /// "1m26s", "2h03m" ...
  static std::string duration(double seconds);

 private:
  std::string line(const std::string& extra) const;
  std::string label_, unit_;
  double total_, interval_s_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace cbtm
