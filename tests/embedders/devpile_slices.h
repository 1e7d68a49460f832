#pragma once
/// \file devpile_slices.h
/// Texts of several (skip, count) slices of devpile, read in one pass over the corpus
/// (devpile is ordered by domain, so slices at different offsets mix domains).
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "support/test_support.h"

namespace cbtm::test {

inline std::vector<std::string> devpile_slices(
    const std::vector<std::pair<int64_t, int64_t>>& slices) {
  int64_t end = 0;
  for (const auto& [skip, count] : slices) end = std::max(end, skip + count);
  std::vector<Document> docs = devpile_docs(end);
  std::vector<std::string> texts;
  for (const auto& [skip, count] : slices)
    for (int64_t i = skip; i < skip + count && i < static_cast<int64_t>(docs.size()); ++i)
      texts.push_back(std::move(docs[static_cast<size_t>(i)].text));
  return texts;
}

}  // namespace cbtm::test
