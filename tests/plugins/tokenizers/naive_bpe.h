#pragma once
// An independent, deliberately simple byte-level BPE for the tests: recounts every pair
// over every word at each step, works on byte strings instead of ids, and applies merges
// one after another with plain string comparisons.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace naive {

using Pair = std::pair<std::string, std::string>;


/// Learns merges from (word, frequency) until `max_merges` or the best count < min_frequency.
inline std::vector<Pair> learn(const std::map<std::string, int64_t>& counts, int max_merges,
                    int64_t min_frequency) {
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  for (const auto& [w, f] : counts) {
    std::vector<std::string> syms;
    for (char c : w) syms.emplace_back(1, c);
    words.emplace_back(syms, f);
  }
  std::vector<Pair> merges;
  while (static_cast<int>(merges.size()) < max_merges) {
    std::map<Pair, int64_t> pc;  // ordered by (first, second) bytes
    for (const auto& [syms, f] : words)
      for (size_t i = 0; i + 1 < syms.size(); ++i) pc[{syms[i], syms[i + 1]}] += f;
    // Highest count first; among equal counts the map order gives the smallest pair.
    std::vector<std::pair<int64_t, Pair>> ranked;
    for (const auto& [p, c] : pc) ranked.emplace_back(c, p);
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& x, const auto& y) { return x.first > y.first; });
    if (ranked.empty() || ranked[0].first < min_frequency) break;
    const Pair m = ranked[0].second;
    for (auto& [syms, f] : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < syms.size();) {
        if (i + 1 < syms.size() && syms[i] == m.first && syms[i + 1] == m.second) {
          out.push_back(m.first + m.second);
          i += 2;
        } else {
          out.push_back(syms[i++]);
        }
      }
      syms = out;
    }
    merges.push_back(m);
  }
  return merges;
}

/// Pieces of one pre-token: apply every merge in order, left to right.
inline std::vector<std::string> encode_word(const std::string& word,
                                            const std::vector<Pair>& merges) {
  std::vector<std::string> syms;
  for (char c : word) syms.emplace_back(1, c);
  for (const auto& m : merges) {
    std::vector<std::string> out;
    for (size_t i = 0; i < syms.size();) {
      if (i + 1 < syms.size() && syms[i] == m.first && syms[i + 1] == m.second) {
        out.push_back(m.first + m.second);
        i += 2;
      } else {
        out.push_back(syms[i++]);
      }
    }
    syms = out;
  }
  return syms;
}

}  // namespace naive
