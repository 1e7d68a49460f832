#pragma once
// devpile is stored grouped by domain: these helpers take evenly spaced documents over the
// whole corpus so that samples mix every domain.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace tok_test {

/// Every document of devpile (read once per process; empty when devpile is absent).
inline const std::vector<cbtm::Document>& all_devpile() {
  static const std::vector<cbtm::Document> docs = cbtm::test::have_devpile()
                                                       ? cbtm::test::devpile_docs(1 << 30)
                                                       : std::vector<cbtm::Document>{};
  return docs;
}

/// `n` texts spaced evenly over devpile, starting at `offset` within the first stride.
inline std::vector<std::string> spread_texts(size_t n, size_t offset = 0) {
  const auto& all = all_devpile();
  std::vector<std::string> out;
  if (all.empty() || n == 0) return out;
  const size_t stride = std::max<size_t>(1, all.size() / n);
  for (size_t i = offset % stride; i < all.size() && out.size() < n; i += stride)
    out.push_back(all[i].text);
  return out;
}

/// Texts spaced evenly over devpile until about `bytes` bytes are collected.
inline std::vector<std::string> spread_bytes(size_t bytes, size_t offset = 0) {
  const auto& all = all_devpile();
  size_t total = 0;
  for (const auto& d : all) total += d.text.size();
  if (all.empty() || total == 0) return {};
  const size_t n = static_cast<size_t>(static_cast<double>(all.size()) * bytes / total) + 1;
  return spread_texts(n, offset);
}

}  // namespace tok_test
