#include "tfidf_vectorizer.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <sstream>

#include <spdlog/spdlog.h>

#include "cbtm/error.h"
#include "cbtm/progress.h"
#include "word_stream.h"

namespace cbtm::tfidf {
namespace {

/// Sorted ids -> (id, count) run lengths.
void run_lengths(std::vector<int32_t>& ids, TermCounts& out) {
  std::sort(ids.begin(), ids.end());
  out.clear();
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j < ids.size() && ids[j] == ids[i]) ++j;
    out.emplace_back(ids[i], static_cast<int32_t>(j - i));
    i = j;
  }
}

/// What one thread learns while reading its share of the training texts.
struct LocalVocabulary {
  std::unordered_map<std::string, int32_t> ids;
  std::vector<const std::string*> terms;  // by local id (keys of `ids`)
  std::vector<int64_t> df, tf;
};

std::string fmt_double(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

TfidfVectorizer::TfidfVectorizer(VectorizerOptions options)
    : options_(options), tokenizer_(options.tokenizer) {}

double TfidfVectorizer::tf_weight(int64_t count) const {
  return options_.sublinear_tf ? 1.0 + std::log(static_cast<double>(count))
                               : static_cast<double>(count);
}

int32_t TfidfVectorizer::lookup(const std::string& term) const {
  const auto it = index_.find(term);
  return it == index_.end() ? -1 : it->second;
}

void TfidfVectorizer::count_terms(std::string_view text, std::vector<std::string>& words,
                                  TermCounts& out) const {
  WordStream ws;
  words.clear();
  ws.feed(text, words);
  ws.finish(words);
  std::vector<int32_t> ids;
  ids.reserve(words.size());
  for (const auto& w : words) {
    if (!tokenizer_.is_term(w)) continue;
    const int32_t id = lookup(w);
    if (id >= 0) ids.push_back(id);
  }
  run_lengths(ids, out);
}

void TfidfVectorizer::write_row(const TermCounts& counts, int32_t* indices, float* values) const {
  double norm2 = 0;
  for (const auto& [id, c] : counts) {
    const double w = tf_weight(c) * idf_[id];
    norm2 += w * w;
  }
  const double inv = norm2 > 0 ? 1.0 / std::sqrt(norm2) : 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    indices[i] = counts[i].first;
    values[i] = static_cast<float>(tf_weight(counts[i].second) * idf_[counts[i].first] * inv);
  }
}

CsrMatrix TfidfVectorizer::assemble(const std::vector<TermCounts>& rows, int threads) const {
  CsrMatrix x;
  x.rows = static_cast<int64_t>(rows.size());
  x.cols = static_cast<int64_t>(vocabulary_.size());
  x.indptr.assign(rows.size() + 1, 0);
  for (size_t r = 0; r < rows.size(); ++r)
    x.indptr[r + 1] = x.indptr[r] + static_cast<int64_t>(rows[r].size());
  x.indices.resize(static_cast<size_t>(x.indptr.back()));
  x.values.resize(static_cast<size_t>(x.indptr.back()));
#pragma omp parallel for num_threads(threads) schedule(dynamic, 256) if (x.rows >= 256)
  for (int64_t r = 0; r < x.rows; ++r)
    write_row(rows[r], x.indices.data() + x.indptr[r], x.values.data() + x.indptr[r]);
  return x;
}

CsrMatrix TfidfVectorizer::fit_transform(const std::vector<std::string>& texts, int threads) {
  const int64_t n = static_cast<int64_t>(texts.size());
  if (n == 0) throw Error("tfidf: fit() needs at least one training text");
  threads = std::max(1, threads);

  // ---- pass 1: tokenize in parallel; each thread keeps its own vocabulary -------------
  std::vector<LocalVocabulary> locals(static_cast<size_t>(threads));
  std::vector<TermCounts> rows(static_cast<size_t>(n));
  std::vector<int32_t> owner(static_cast<size_t>(n));
  std::atomic<int64_t> done{0};
  Progress progress("tfidf vocabulary", static_cast<double>(n), "docs");
#pragma omp parallel num_threads(threads) if (n >= 32)
  {
    const int tid = omp_get_thread_num();
    LocalVocabulary& lv = locals[static_cast<size_t>(tid)];
    WordStream ws;
    std::vector<std::string> words;
    std::vector<int32_t> ids;
#pragma omp for schedule(dynamic, 64)
    for (int64_t d = 0; d < n; ++d) {
      words.clear();
      ws.feed(texts[d], words);
      ws.finish(words);
      ids.clear();
      for (auto& w : words) {
        if (!tokenizer_.is_term(w)) continue;
        auto [it, added] = lv.ids.try_emplace(std::move(w), static_cast<int32_t>(lv.terms.size()));
        if (added) {
          lv.terms.push_back(&it->first);
          lv.df.push_back(0);
          lv.tf.push_back(0);
        }
        ids.push_back(it->second);
      }
      TermCounts& row = rows[d];
      run_lengths(ids, row);
      for (const auto& [id, c] : row) {
        ++lv.df[id];
        lv.tf[id] += c;
      }
      owner[d] = tid;
      ++done;
      if (tid == 0) progress.update(static_cast<double>(done.load()));
    }
  }
  progress.update(static_cast<double>(n));
  progress.finish();

  // ---- merge the per-thread vocabularies ------------------------------------------------
  std::unordered_map<std::string, int32_t> merged;
  std::vector<const std::string*> terms;
  std::vector<int64_t> df, tf;
  std::vector<std::vector<int32_t>> to_merged(locals.size());
  for (size_t t = 0; t < locals.size(); ++t) {
    const LocalVocabulary& lv = locals[t];
    to_merged[t].resize(lv.terms.size());
    for (size_t l = 0; l < lv.terms.size(); ++l) {
      auto [it, added] = merged.try_emplace(*lv.terms[l], static_cast<int32_t>(terms.size()));
      if (added) {
        terms.push_back(&it->first);
        df.push_back(0);
        tf.push_back(0);
      }
      df[it->second] += lv.df[l];
      tf[it->second] += lv.tf[l];
      to_merged[t][l] = it->second;
    }
  }
  if (terms.empty())
    throw Error(
        "tfidf: the vocabulary of the " + std::to_string(n) +
        " training texts is empty (every word is a stop word, a number or a single character)");

  // ---- prune like scikit-learn: df bounds, then max_features by total count ------------
  const double max_count = options_.max_df * static_cast<double>(n);
  if (max_count < static_cast<double>(options_.min_df))
    throw Error("tfidf: max_df=" + fmt_double(options_.max_df) + " allows at most " +
                fmt_double(max_count) + " of " + std::to_string(n) +
                " documents, fewer than min_df=" + std::to_string(options_.min_df));
  std::vector<int32_t> order(terms.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return *terms[a] < *terms[b]; });
  std::vector<int32_t> kept;
  for (int32_t g : order)
    if (df[g] >= options_.min_df && static_cast<double>(df[g]) <= max_count) kept.push_back(g);
  if (options_.max_features > 0 && static_cast<int64_t>(kept.size()) > options_.max_features) {
    std::stable_sort(kept.begin(), kept.end(), [&](int32_t a, int32_t b) { return tf[a] > tf[b]; });
    kept.resize(static_cast<size_t>(options_.max_features));
    std::sort(kept.begin(), kept.end(),
              [&](int32_t a, int32_t b) { return *terms[a] < *terms[b]; });
  }
  if (kept.empty())
    throw Error(
        "tfidf: no term of the " + std::to_string(terms.size()) +
        "-word vocabulary remains after pruning with min_df=" + std::to_string(options_.min_df) +
        ", max_df=" + fmt_double(options_.max_df) + "; lower min_df or raise max_df");

  std::vector<int32_t> final_id(terms.size(), -1);
  std::vector<std::string> vocabulary;
  std::vector<double> idf;
  vocabulary.reserve(kept.size());
  idf.reserve(kept.size());
  for (int32_t g : kept) {
    final_id[g] = static_cast<int32_t>(vocabulary.size());
    vocabulary.push_back(*terms[g]);
    idf.push_back(std::log((1.0 + static_cast<double>(n)) / (1.0 + static_cast<double>(df[g]))) +
                  1.0);
  }
  vocabulary_ = std::move(vocabulary);
  idf_ = std::move(idf);
  build_index();

  // ---- pass 2: rows in final ids --------------------------------------------------------
#pragma omp parallel for num_threads(threads) schedule(dynamic, 256) if (n >= 256)
  for (int64_t d = 0; d < n; ++d) {
    const std::vector<int32_t>& map = to_merged[static_cast<size_t>(owner[d])];
    TermCounts& row = rows[d];
    size_t k = 0;
    for (const auto& [id, c] : row) {
      const int32_t f = final_id[map[id]];
      if (f >= 0) row[k++] = {f, c};
    }
    row.resize(k);
    std::sort(row.begin(), row.end());
  }
  spdlog::info("tfidf: {} terms kept of {} from {} documents", vocabulary_.size(), terms.size(), n);
  return assemble(rows, threads);
}

CsrMatrix TfidfVectorizer::transform(const std::vector<std::string>& texts, int threads) const {
  if (!fitted()) throw Error("tfidf: transform() called before fit() or load()");
  std::vector<TermCounts> rows(texts.size());
#pragma omp parallel num_threads(std::max(1, threads)) if (texts.size() >= 32)
  {
    std::vector<std::string> words;
#pragma omp for schedule(dynamic, 64)
    for (int64_t d = 0; d < static_cast<int64_t>(texts.size()); ++d)
      count_terms(texts[d], words, rows[d]);
  }
  return assemble(rows, threads);
}

void TfidfVectorizer::set_state(std::vector<std::string> vocabulary, std::vector<double> idf) {
  if (vocabulary.size() != idf.size())
    throw Error("tfidf: vocabulary has " + std::to_string(vocabulary.size()) +
                " terms but idf has " + std::to_string(idf.size()) + " values");
  if (vocabulary.empty()) throw Error("tfidf: empty vocabulary");
  for (size_t i = 1; i < vocabulary.size(); ++i)
    if (!(vocabulary[i - 1] < vocabulary[i]))
      throw Error("tfidf: vocabulary is not sorted or has a duplicate at term " +
                  std::to_string(i) + " ('" + vocabulary[i] + "')");
  vocabulary_ = std::move(vocabulary);
  idf_ = std::move(idf);
  build_index();
}

void TfidfVectorizer::build_index() {
  index_.clear();
  index_.reserve(vocabulary_.size());
  for (size_t i = 0; i < vocabulary_.size(); ++i)
    index_.emplace(vocabulary_[i], static_cast<int32_t>(i));
}

}  // namespace cbtm::tfidf
