#include "hashing_vectorizer.h"

#include <omp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <unordered_map>

#include "cbtm/error.h"
#include "cbtm/progress.h"
#include "murmurhash3.h"

namespace cbtm::hashing {
namespace {

/// Sorted bucket * 2 + negative keys -> (bucket, signed count) runs.
void keys_to_counts(std::vector<uint64_t>& keys, BucketCounts& out) {
  std::sort(keys.begin(), keys.end());
  out.clear();
  for (size_t i = 0; i < keys.size();) {
    const uint64_t bucket = keys[i] >> 1;
    int32_t count = 0;
    for (; i < keys.size() && (keys[i] >> 1) == bucket; ++i) count += (keys[i] & 1) ? -1 : 1;
    out.emplace_back(static_cast<int32_t>(bucket), count);
  }
}

/// Boyer-Moore majority vote over the terms that fall in one bucket.
struct Vote {
  std::string term;
  int64_t count = 0;

  void add(const std::string& word) {
    if (count == 0) {
      term = word;  // reuses the capacity of the previous candidate
      count = 1;
    } else if (term == word) {
      ++count;
    } else {
      --count;
    }
  }
  /// Combines the vote of another share of the texts (Misra-Gries merge with one slot).
  void merge(const Vote& o) {
    if (term.empty() || term == o.term) {
      if (term.empty()) term = o.term;
      count += o.count;
    } else if (o.count > count) {
      term = o.term;
      count = o.count - count;
    } else {
      count -= o.count;
    }
  }
};

using Votes = std::unordered_map<int32_t, Vote>;

}  // namespace

HashingVectorizer::HashingVectorizer(HashingVectorizerOptions options)
    : options_(options), tokenizer_(options.tokenizer) {
  if (options_.n_features < 1 || options_.n_features > 2147483647)
    throw Error("hashing: n_features=" + std::to_string(options_.n_features) +
                " is outside 1 .. 2147483647");
}

double HashingVectorizer::tf_weight(int64_t count) const {
  if (!options_.sublinear_tf || count == 0) return static_cast<double>(count);
  const double l = 1.0 + std::log(static_cast<double>(count < 0 ? -count : count));
  return count < 0 ? -l : l;
}

void HashingVectorizer::hash_words(const std::vector<std::string>& words,
                                   std::vector<uint64_t>& keys) const {
  for (const auto& w : words) {
    if (!tokenizer_.is_term(w)) continue;
    const HashedTerm t = hash_term(w, options_.n_features, options_.alternate_sign);
    keys.push_back(static_cast<uint64_t>(t.bucket) << 1 | (t.sign < 0 ? 1u : 0u));
  }
}

void HashingVectorizer::count_buckets(std::string_view text, CountScratch& scratch,
                                      BucketCounts& out) const {
  scratch.words.clear();
  scratch.stream.feed(text, scratch.words);
  scratch.stream.finish(scratch.words);
  scratch.keys.clear();
  hash_words(scratch.words, scratch.keys);
  keys_to_counts(scratch.keys, out);
}

tfidf::CsrMatrix HashingVectorizer::fit_transform(const std::vector<std::string>& texts,
                                                  int threads) {
  const int64_t n = static_cast<int64_t>(texts.size());
  if (n == 0) throw Error("hashing: fit() needs at least one training text");
  threads = std::max(1, threads);
  const bool keep = options_.keep_terms;

  // ---- pass 1: signed bucket counts (and term votes), in parallel ---------------------
  // A static schedule: each thread sees the same documents in the same order on every run,
  // so the votes (which depend on the order) are reproducible.
  std::vector<BucketCounts> rows(static_cast<size_t>(n));
  std::vector<Votes> votes(static_cast<size_t>(threads));
  std::atomic<int64_t> done{0};
  Progress progress("hashing counts", static_cast<double>(n), "docs");
#pragma omp parallel num_threads(threads) if (n >= 32)
  {
    const int tid = omp_get_thread_num();
    Votes& my_votes = votes[static_cast<size_t>(tid)];
    CountScratch s;
#pragma omp for schedule(static, 64)
    for (int64_t d = 0; d < n; ++d) {
      s.words.clear();
      s.stream.feed(texts[d], s.words);
      s.stream.finish(s.words);
      s.keys.clear();
      for (const auto& w : s.words) {
        if (!tokenizer_.is_term(w)) continue;
        const HashedTerm t = hash_term(w, options_.n_features, options_.alternate_sign);
        s.keys.push_back(static_cast<uint64_t>(t.bucket) << 1 | (t.sign < 0 ? 1u : 0u));
        if (keep) my_votes[t.bucket].add(w);
      }
      keys_to_counts(s.keys, rows[static_cast<size_t>(d)]);
      const int64_t k = ++done;
      if (tid == 0) progress.update(static_cast<double>(k));
    }
  }
  progress.update(static_cast<double>(n));
  progress.finish();

  // ---- document frequencies -> used buckets, idf --------------------------------------
  std::vector<int32_t> df(static_cast<size_t>(options_.n_features), 0);
  int64_t entries = 0;
  for (const auto& row : rows) {
    entries += static_cast<int64_t>(row.size());
    for (const auto& [b, c] : row) ++df[static_cast<size_t>(b)];
  }
  if (entries == 0)
    throw Error("hashing: the " + std::to_string(n) +
                " training texts hold no term (every word is a stop word, a number or a single "
                "character)");
  std::vector<int32_t> buckets;
  std::vector<double> idf;
  for (int64_t b = 0; b < options_.n_features; ++b)
    if (df[static_cast<size_t>(b)] > 0) {
      buckets.push_back(static_cast<int32_t>(b));
      idf.push_back(std::log((1.0 + static_cast<double>(n)) /
                             (1.0 + static_cast<double>(df[static_cast<size_t>(b)]))) +
                    1.0);
    }
  df = {};
  buckets_ = std::move(buckets);
  idf_ = std::move(idf);
  documents_ = n;
  build_columns();

  // ---- the kept terms: merge the per-thread votes in thread order ----------------------
  terms_.clear();
  if (keep) {
    std::vector<Vote> merged(buckets_.size());
    for (auto& v : votes) {
      for (const auto& [b, vote] : v) merged[static_cast<size_t>(column(b))].merge(vote);
      v = Votes();
    }
    terms_.reserve(merged.size());
    for (auto& m : merged) terms_.push_back(std::move(m.term));
  }
  spdlog::info("hashing: {} of {} buckets used by {} documents ({} bucket counts)", buckets_.size(),
               options_.n_features, n, entries);
  return assemble(rows, threads);
}

tfidf::CsrMatrix HashingVectorizer::transform(const std::vector<std::string>& texts,
                                              int threads) const {
  if (!fitted()) throw Error("hashing: transform() called before fit() or load()");
  std::vector<BucketCounts> rows(texts.size());
#pragma omp parallel num_threads(std::max(1, threads)) if (texts.size() >= 32)
  {
    CountScratch s;
#pragma omp for schedule(dynamic, 64)
    for (int64_t d = 0; d < static_cast<int64_t>(texts.size()); ++d)
      count_buckets(texts[d], s, rows[static_cast<size_t>(d)]);
  }
  return assemble(rows, threads);
}

tfidf::CsrMatrix HashingVectorizer::assemble(const std::vector<BucketCounts>& rows,
                                             int threads) const {
  tfidf::CsrMatrix x;
  x.rows = static_cast<int64_t>(rows.size());
  x.cols = static_cast<int64_t>(buckets_.size());
  x.indptr.assign(rows.size() + 1, 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    int64_t k = 0;
    for (const auto& [b, c] : rows[r]) k += (c != 0 && column(b) >= 0) ? 1 : 0;
    x.indptr[r + 1] = x.indptr[r] + k;
  }
  x.indices.resize(static_cast<size_t>(x.indptr.back()));
  x.values.resize(static_cast<size_t>(x.indptr.back()));
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(dynamic, 256) if (x.rows >= 256)
  for (int64_t r = 0; r < x.rows; ++r) {
    const BucketCounts& row = rows[static_cast<size_t>(r)];
    double norm2 = 0;
    for (const auto& [b, c] : row) {
      const double w = tf_weight(c) * idf_of_bucket(b);
      norm2 += w * w;
    }
    const double inv = norm2 > 0 ? 1.0 / std::sqrt(norm2) : 0.0;
    int64_t p = x.indptr[r];
    for (const auto& [b, c] : row) {
      const int32_t col = column(b);
      if (c == 0 || col < 0) continue;
      x.indices[static_cast<size_t>(p)] = col;
      x.values[static_cast<size_t>(p)] =
          static_cast<float>(tf_weight(c) * idf_[static_cast<size_t>(col)] * inv);
      ++p;
    }
  }
  return x;
}

void HashingVectorizer::set_state(std::vector<int32_t> buckets, std::vector<double> idf,
                                  int64_t documents, std::vector<std::string> terms) {
  if (buckets.size() != idf.size())
    throw Error("hashing: " + std::to_string(buckets.size()) + " buckets but " +
                std::to_string(idf.size()) + " idf values");
  if (buckets.empty()) throw Error("hashing: no used bucket");
  if (!terms.empty() && terms.size() != buckets.size())
    throw Error("hashing: " + std::to_string(buckets.size()) + " buckets but " +
                std::to_string(terms.size()) + " terms");
  if (documents < 1)
    throw Error("hashing: the number of fit documents must be >= 1, found " +
                std::to_string(documents));
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i] < 0 || buckets[i] >= options_.n_features)
      throw Error("hashing: bucket " + std::to_string(buckets[i]) + " is outside 0 .. " +
                  std::to_string(options_.n_features - 1) +
                  " (n_features=" + std::to_string(options_.n_features) + ")");
    if (i > 0 && buckets[i - 1] >= buckets[i])
      throw Error("hashing: buckets are not ascending or have a duplicate at index " +
                  std::to_string(i));
  }
  for (size_t i = 0; i < terms.size(); ++i) {
    const HashedTerm t = hash_term(terms[i], options_.n_features, options_.alternate_sign);
    if (t.bucket != buckets[i])
      throw Error("hashing: term '" + terms[i] + "' is kept for bucket " +
                  std::to_string(buckets[i]) + " but hashes to bucket " + std::to_string(t.bucket));
  }
  buckets_ = std::move(buckets);
  idf_ = std::move(idf);
  terms_ = std::move(terms);
  documents_ = documents;
  build_columns();
}

void HashingVectorizer::build_columns() {
  column_.assign(static_cast<size_t>(options_.n_features), -1);
  for (size_t j = 0; j < buckets_.size(); ++j)
    column_[static_cast<size_t>(buckets_[j])] = static_cast<int32_t>(j);
  unseen_idf_ = std::log(1.0 + static_cast<double>(documents_)) + 1.0;
}

}  // namespace cbtm::hashing
