#include "bpe_trainer.h"

#include <omp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "cbtm/progress.h"
#include "pretokenizer.h"

namespace cbtm::bpe {

// ---- pre-token counts ------------------------------------------------------------------------
std::vector<WordCount> count_pretokens(const std::vector<std::string>& texts, int64_t max_bytes,
                                       int threads) {
  size_t m = 0;
  int64_t taken = 0;
  while (m < texts.size() && taken < max_bytes) taken += static_cast<int64_t>(texts[m++].size());
  threads = std::max(1, threads);

  using Counts = std::unordered_map<std::string_view, int64_t>;
  std::vector<Counts> local(static_cast<size_t>(threads));
#pragma omp parallel num_threads(threads)
  {
    Counts& counts = local[static_cast<size_t>(omp_get_thread_num())];
    std::vector<std::string_view> words;
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < static_cast<int64_t>(m); ++i) {
      words.clear();
      pretokenize(texts[static_cast<size_t>(i)], words);
      for (std::string_view w : words) ++counts[w];
    }
  }
  Counts& total = local[0];
  for (size_t t = 1; t < local.size(); ++t) {
    for (const auto& [w, c] : local[t]) total[w] += c;
    Counts().swap(local[t]);
  }
  std::vector<WordCount> out;
  out.reserve(total.size());
  for (const auto& [w, c] : total) out.emplace_back(std::string(w), c);
  std::sort(out.begin(), out.end());
  spdlog::info("bpe: {} distinct pre-tokens in {} of {} texts ({} bytes)", out.size(), m,
               texts.size(), taken);
  return out;
}

// ---- merge learning --------------------------------------------------------------------------
namespace {

struct Candidate {
  int64_t count;
  int32_t a, b;
};

class Learner {
 public:
  Learner(const std::vector<WordCount>& words, int64_t min_frequency)
      : min_frequency_(min_frequency) {
    pieces_.assign(kNumSpecials, std::string());
    for (int c = 0; c < 256; ++c) pieces_.emplace_back(1, static_cast<char>(c));
    syms_.reserve(words.size());
    freq_.reserve(words.size());
    for (const auto& [w, f] : words) {
      if (w.size() < 2 || f <= 0) continue;  // no pairs
      const auto wi = static_cast<int32_t>(syms_.size());
      std::vector<int32_t> s(w.size());
      for (size_t i = 0; i < w.size(); ++i) s[i] = kFirstByteId + static_cast<unsigned char>(w[i]);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = pair_key(s[i], s[i + 1]);
        count_[k] += f;
        where_[k].push_back(wi);
      }
      syms_.push_back(std::move(s));
      freq_.push_back(f);
    }
    for (const auto& [k, c] : count_) heap_.push_back({c, first(k), second(k)});
    std::make_heap(heap_.begin(), heap_.end(), worse_);
  }

  /// Learns up to `n` merges.
  std::vector<Merge> run(int32_t n) {
    std::vector<Merge> merges;
    Progress progress("bpe", n, "merges");
    int64_t last_count = 0;
    while (static_cast<int32_t>(merges.size()) < n) {
      Candidate best;
      if (!pop_best(best)) break;
      last_count = best.count;
      merge(best.a, best.b, kFirstMergeId + static_cast<int32_t>(merges.size()));
      merges.emplace_back(best.a, best.b);
      if (merges.size() % 256 == 0)
        progress.update(static_cast<double>(merges.size()),
                        "pair count " + Progress::human(static_cast<double>(best.count)));
    }
    progress.update(static_cast<double>(merges.size()));
    progress.finish("last pair count " + std::to_string(last_count));
    const bool ran_out = static_cast<int32_t>(merges.size()) < n;
    spdlog::info("bpe: learned {} merges (vocab {}){}", merges.size(),
                 kFirstMergeId + merges.size(),
                 ran_out ? ", no pair left occurring min_frequency times" : "");
    return merges;
  }

 private:
  static int32_t first(uint64_t k) { return static_cast<int32_t>(k >> 32); }
  static int32_t second(uint64_t k) { return static_cast<int32_t>(k & 0xFFFFFFFFu); }

  /// Pops the valid best pair with count >= min_frequency; false when there is none.
  bool pop_best(Candidate& best) {
    while (!heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), worse_);
      const Candidate c = heap_.back();
      heap_.pop_back();
      const uint64_t k = pair_key(c.a, c.b);
      auto it = count_.find(k);
      if (it == count_.end()) continue;  // merged, or no longer occurring
      if (it->second != c.count) {       // stale: re-queue with the current count
        heap_.push_back({it->second, c.a, c.b});
        std::push_heap(heap_.begin(), heap_.end(), worse_);
        continue;
      }
      if (c.count < min_frequency_) return false;
      best = c;
      return true;
    }
    return false;
  }

  /// Replaces (a, b) by `id` in every word that holds it, updating counts and the heap.
  void merge(int32_t a, int32_t b, int32_t id) {
    pieces_.push_back(pieces_[a] + pieces_[b]);
    const uint64_t key = pair_key(a, b);
    std::vector<int32_t> words = std::move(where_[key]);
    where_.erase(key);
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    delta_.clear();
    auto touches = [&](int32_t x, int32_t y, int32_t z) {
      return x == a || x == b || x == z || y == a || y == b || y == z;
    };
    for (int32_t wi : words) {
      std::vector<int32_t>& s = syms_[static_cast<size_t>(wi)];
      const int64_t f = freq_[static_cast<size_t>(wi)];
      bool found = false;
      for (size_t i = 0; i + 1 < s.size() && !found; ++i) found = s[i] == a && s[i + 1] == b;
      if (!found) continue;  // an out-of-date entry
      for (size_t i = 0; i + 1 < s.size(); ++i)
        if (touches(s[i], s[i + 1], -1)) delta_[pair_key(s[i], s[i + 1])] -= f;
      size_t w = 0;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          s[w++] = id;
          i += 2;
        } else {
          s[w++] = s[i++];
        }
      }
      s.resize(w);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        if (!touches(s[i], s[i + 1], id)) continue;
        const uint64_t k = pair_key(s[i], s[i + 1]);
        delta_[k] += f;
        if (s[i] == id || s[i + 1] == id) where_[k].push_back(wi);
      }
    }
    for (const auto& [k, d] : delta_) {
      if (d == 0) continue;
      int64_t& c = count_[k];
      c += d;
      if (c <= 0) {
        count_.erase(k);
      } else if (d > 0) {
        heap_.push_back({c, first(k), second(k)});
        std::push_heap(heap_.begin(), heap_.end(), worse_);
      }
    }
  }

  /// Heap order: higher count first, then the smaller (bytes of a, bytes of b).
  struct Worse {
    const std::vector<std::string>* pieces;
    bool operator()(const Candidate& x, const Candidate& y) const {
      if (x.count != y.count) return x.count < y.count;
      const int ca = (*pieces)[x.a].compare((*pieces)[y.a]);
      if (ca != 0) return ca > 0;
      return (*pieces)[x.b].compare((*pieces)[y.b]) > 0;
    }
  };

  int64_t min_frequency_;
  std::vector<std::string> pieces_;
  std::vector<std::vector<int32_t>> syms_;
  std::vector<int64_t> freq_;
  std::unordered_map<uint64_t, int64_t> count_;
  std::unordered_map<uint64_t, std::vector<int32_t>> where_;
  std::unordered_map<uint64_t, int64_t> delta_;
  std::vector<Candidate> heap_;
  Worse worse_{&pieces_};
};

}  // namespace

std::vector<Merge> learn_merges(const std::vector<WordCount>& words, int32_t vocab_size,
                                int64_t min_frequency) {
  const int32_t n = std::max(0, vocab_size - kFirstMergeId);
  if (n == 0) return {};
  return Learner(words, min_frequency).run(n);
}

}  // namespace cbtm::bpe
