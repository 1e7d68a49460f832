#include "cbtm/progress.h"

#include <cmath>
#include <cstdio>

#include <spdlog/spdlog.h>

namespace cbtm {

Progress::Progress(std::string label, double total, std::string unit, double interval_s)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), interval_s_(interval_s),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::rate() const {
  const double t = elapsed_s();
  return t > 0 ? done_ / t : 0.0;
}

std::string Progress::human(double v) {
  char buf[32];
  const double a = std::fabs(v);
  if (a >= 1e9) std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  else if (a >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (a >= 1e4) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else if (a >= 100 || v == std::floor(v)) std::snprintf(buf, sizeof buf, "%.0f", v);
  else std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string Progress::duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const long t = std::lround(s);
  if (t < 60) std::snprintf(buf, sizeof buf, "%lds", t);
  else if (t < 3600) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  return buf;
}

std::string Progress::line(const std::string& extra) const {
  const double r = rate();
  std::string s = "[" + label_ + "] ";
  if (total_ > 0) {
    char pct[16];
    std::snprintf(pct, sizeof pct, "%5.1f%% ", 100.0 * done_ / total_);
    s += pct + human(done_) + "/" + human(total_) + " " + unit_;
  } else {
    s += human(done_) + " " + unit_;
  }
  s += "  " + human(r) + " " + unit_ + "/s";
  if (total_ > 0 && done_ < total_ && r > 0) s += "  ETA " + duration((total_ - done_) / r);
  if (!extra.empty()) s += "  " + extra;
  return s;
}

void Progress::update(double done, const std::string& extra) {
  done_ = done;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_).count() < interval_s_) return;
  last_ = now;
  spdlog::info("{}", line(extra));
}

void Progress::finish(const std::string& extra) {
  spdlog::info("{}  ({} total)", line(extra), duration(elapsed_s()));
}

}  // namespace cbtm
