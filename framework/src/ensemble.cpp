#include "cbtm/ensemble.h"

#include <cmath>
#include <limits>
#include <string>

#include "cbtm/error.h"

namespace cbtm {

std::vector<float> mix_log_probs(const std::vector<std::vector<float>>& expert_logp,
                                 const Matrix& w) {
  if (static_cast<int64_t>(expert_logp.size()) != w.cols)
    throw Error("ensemble: " + std::to_string(expert_logp.size()) + " experts but weights for " +
                std::to_string(w.cols));
  std::vector<float> out(static_cast<size_t>(w.rows));
  for (int64_t t = 0; t < w.rows; ++t) {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < w.cols; ++j) {
      const float wj = w.at(t, j);
      if (wj <= 0.f) continue;
      const auto& lp = expert_logp[static_cast<size_t>(j)];
      if (static_cast<int64_t>(lp.size()) <= t)
        throw Error("ensemble: expert " + std::to_string(j) + " has weight at token " +
                    std::to_string(t) + " but log-probs for only " + std::to_string(lp.size()) +
                    " of " + std::to_string(w.rows) + " tokens");
      m = std::max(m, std::log(static_cast<double>(wj)) + lp[static_cast<size_t>(t)]);
    }
    if (!std::isfinite(m)) {
      out[static_cast<size_t>(t)] = static_cast<float>(m);
      continue;
    }
    double s = 0;
    for (int64_t j = 0; j < w.cols; ++j) {
      const float wj = w.at(t, j);
      if (wj <= 0.f) continue;
      s += std::exp(std::log(static_cast<double>(wj)) + expert_logp[static_cast<size_t>(j)][static_cast<size_t>(t)] - m);
    }
    out[static_cast<size_t>(t)] = static_cast<float>(m + std::log(s));
  }
  return out;
}

std::vector<int32_t> active_experts(const Matrix& w) {
  std::vector<int32_t> out;
  for (int64_t j = 0; j < w.cols; ++j)
    for (int64_t t = 0; t < w.rows; ++t)
      if (w.at(t, j) > 0.f) {
        out.push_back(static_cast<int32_t>(j));
        break;
      }
  return out;
}

std::vector<int64_t> needed_positions(const Matrix& w) {
  std::vector<int64_t> out(static_cast<size_t>(w.cols), 0);
  for (int64_t t = 0; t < w.rows; ++t)
    for (int64_t j = 0; j < w.cols; ++j)
      if (w.at(t, j) > 0.f) out[static_cast<size_t>(j)] = t + 1;
  return out;
}

std::vector<std::vector<uint8_t>> weighted_positions(const Matrix& w) {
  const auto needed = needed_positions(w);
  std::vector<std::vector<uint8_t>> out(static_cast<size_t>(w.cols));
  for (int64_t j = 0; j < w.cols; ++j) {
    out[static_cast<size_t>(j)].assign(static_cast<size_t>(needed[static_cast<size_t>(j)]), 0);
    for (int64_t t = 0; t < needed[static_cast<size_t>(j)]; ++t)
      out[static_cast<size_t>(j)][static_cast<size_t>(t)] = w.at(t, j) > 0.f ? 1 : 0;
  }
  return out;
}

}  // namespace cbtm
