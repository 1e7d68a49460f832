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
#include "term_sink.h"
#include "word_stream.h"

namespace cbtm::tfidf {
namespace {

/// What one thread learns while reading its share of the training texts: a WordSink
/// receiving the terms of the current document.
struct LocalVocabulary : WordSink {
  TermTable terms;  // local ids
  std::vector<int64_t> df, tf;
  std::vector<int64_t> last_doc;  // by local id: the last document it occurred in
  std::vector<int32_t> count;     // by local id: occurrences in the current document
  std::vector<int32_t> doc_ids;   // local ids of the current document
  int64_t doc = -1;

  void word(std::string_view t) override {
    bool added;
    const int32_t id = terms.insert(t, term_hash(t), added);
    if (added) {
      df.push_back(0);
      tf.push_back(0);
      last_doc.push_back(-1);
      count.push_back(0);
    }
    if (last_doc[id] != doc) {
      last_doc[id] = doc;
      count[id] = 1;
      doc_ids.push_back(id);
    } else {
      ++count[id];
    }
  }
};

/// Counts the vocabulary terms of a text into a CountScratch.
struct VocabularyCounter : WordSink {
  const TermTable& index;
  CountScratch& s;
  VocabularyCounter(const TermTable& i, CountScratch& sc) : index(i), s(sc) {}
  void word(std::string_view t) override {
    const int32_t id = index.find(t);
    if (id < 0) return;
    if (s.count[id]++ == 0) s.touched.push_back(id);
  }
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

void TfidfVectorizer::count_terms(std::string_view text, CountScratch& scratch,
                                  TermCounts& out) const {
  if (scratch.count.size() != vocabulary_.size()) scratch.count.assign(vocabulary_.size(), 0);
  scratch.touched.clear();
  VocabularyCounter counter(index_, scratch);
  WordStream ws;
  if (words_are_terms_) {
    // Unigrams over a vocabulary the tokenizer keeps entirely: a word the tokenizer would
    // drop (stop word, number) is not in the vocabulary either, so the words go straight to
    // the lookup.
    ws.feed(text, counter);
    ws.finish(counter);
  } else {
    TermSink terms(tokenizer_, options_.ngram_min, options_.ngram_max, &counter);
    ws.feed(text, terms);
    ws.finish(terms);
  }
  std::sort(scratch.touched.begin(), scratch.touched.end());
  out.clear();
  for (int32_t id : scratch.touched) {
    out.emplace_back(id, scratch.count[id]);
    scratch.count[id] = 0;
  }
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
    TermSink terms(tokenizer_, options_.ngram_min, options_.ngram_max, &lv);
    WordStream ws;
#pragma omp for schedule(dynamic, 64)
    for (int64_t d = 0; d < n; ++d) {
      lv.doc = d;
      lv.doc_ids.clear();
      terms.reset();
      ws.feed(texts[d], terms);
      ws.finish(terms);
      TermCounts& row = rows[d];
      row.resize(lv.doc_ids.size());
      for (size_t i = 0; i < lv.doc_ids.size(); ++i) {
        const int32_t id = lv.doc_ids[i];
        row[i] = {id, lv.count[id]};
        ++lv.df[id];
        lv.tf[id] += lv.count[id];
      }
      owner[d] = tid;
      if ((d & 255) == 0) {
        done += 256;
        if (tid == 0) progress.update(static_cast<double>(std::min<int64_t>(n, done.load())));
      }
    }
  }
  progress.update(static_cast<double>(n));
  progress.finish();

  // ---- merge the per-thread vocabularies ------------------------------------------------
  TermTable merged;
  std::vector<int64_t> df, tf;
  std::vector<std::vector<int32_t>> to_merged(locals.size());
  for (size_t t = 0; t < locals.size(); ++t) {
    const LocalVocabulary& lv = locals[t];
    const int32_t local_terms = lv.terms.size();
    to_merged[t].resize(static_cast<size_t>(local_terms));
    for (int32_t l = 0; l < local_terms; ++l) {
      bool added;
      const int32_t g = merged.insert(lv.terms.term(l), lv.terms.hash(l), added);
      if (added) {
        df.push_back(0);
        tf.push_back(0);
      }
      df[g] += lv.df[l];
      tf[g] += lv.tf[l];
      to_merged[t][l] = g;
    }
  }
  const int32_t n_terms = merged.size();
  if (n_terms == 0)
    throw Error(
        "tfidf: the vocabulary of the " + std::to_string(n) +
        " training texts is empty (every word is a stop word, a number or a single character)");

  // ---- prune like scikit-learn: df bounds, then max_features by total count ------------
  const double max_count = options_.max_df * static_cast<double>(n);
  if (max_count < static_cast<double>(options_.min_df))
    throw Error("tfidf: max_df=" + fmt_double(options_.max_df) + " allows at most " +
                fmt_double(max_count) + " of " + std::to_string(n) +
                " documents, fewer than min_df=" + std::to_string(options_.min_df));
  // Terms in UTF-8 byte order, which is code point order (Python's string order).
  // Sorted on (the first 8 bytes as a big-endian integer, id) pairs, with the full strings
  // compared only when the prefixes tie: the same order, a few times faster.
  std::vector<std::pair<uint64_t, int32_t>> keyed(static_cast<size_t>(n_terms));
  for (int32_t g = 0; g < n_terms; ++g) {
    const std::string_view t = merged.term(g);
    uint64_t key = 0;
    for (size_t b = 0; b < 8; ++b)
      key = key << 8 | (b < t.size() ? static_cast<unsigned char>(t[b]) : 0u);
    keyed[static_cast<size_t>(g)] = {key, g};
  }
  std::sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    return merged.term(a.second) < merged.term(b.second);
  });
  std::vector<int32_t> order(static_cast<size_t>(n_terms));
  for (int32_t g = 0; g < n_terms; ++g) order[static_cast<size_t>(g)] = keyed[static_cast<size_t>(g)].second;
  std::vector<int32_t> kept;
  for (int32_t g : order)
    if (df[g] >= options_.min_df && static_cast<double>(df[g]) <= max_count) kept.push_back(g);
  if (options_.max_features > 0 && static_cast<int64_t>(kept.size()) > options_.max_features) {
    std::stable_sort(kept.begin(), kept.end(), [&](int32_t a, int32_t b) { return tf[a] > tf[b]; });
    kept.resize(static_cast<size_t>(options_.max_features));
    std::sort(kept.begin(), kept.end(),
              [&](int32_t a, int32_t b) { return merged.term(a) < merged.term(b); });
  }
  if (kept.empty())
    throw Error(
        "tfidf: no term of the " + std::to_string(n_terms) +
        "-word vocabulary remains after pruning with min_df=" + std::to_string(options_.min_df) +
        ", max_df=" + fmt_double(options_.max_df) + "; lower min_df or raise max_df");

  std::vector<int32_t> final_id(static_cast<size_t>(n_terms), -1);
  std::vector<std::string> vocabulary;
  std::vector<double> idf;
  vocabulary.reserve(kept.size());
  idf.reserve(kept.size());
  for (int32_t g : kept) {
    final_id[g] = static_cast<int32_t>(vocabulary.size());
    vocabulary.emplace_back(merged.term(g));
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
  spdlog::info("tfidf: {} terms kept of {} from {} documents", vocabulary_.size(), n_terms, n);
  return assemble(rows, threads);
}

CsrMatrix TfidfVectorizer::transform(const std::vector<std::string>& texts, int threads) const {
  if (!fitted()) throw Error("tfidf: transform() called before fit() or load()");
  std::vector<TermCounts> rows(texts.size());
#pragma omp parallel num_threads(std::max(1, threads)) if (texts.size() >= 32)
  {
    CountScratch scratch;
#pragma omp for schedule(dynamic, 64)
    for (int64_t d = 0; d < static_cast<int64_t>(texts.size()); ++d)
      count_terms(texts[d], scratch, rows[d]);
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
  index_ = TermTable();
  index_.reserve(vocabulary_.size());
  words_are_terms_ = options_.ngram_max == 1;
  for (const auto& term : vocabulary_) {
    index_.insert(term);
    if (words_are_terms_ && !tokenizer_.keeps(term)) words_are_terms_ = false;
  }
}

}  // namespace cbtm::tfidf
