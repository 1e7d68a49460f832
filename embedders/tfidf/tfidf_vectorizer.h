#pragma once
/// \file tfidf_vectorizer.h
/// scikit-learn's TfidfVectorizer (1.2.1) with the reference C-BTM settings: terms from
/// TfidfTokenizer (and, with ngram_max > 1, its word n-grams: see term_sink.h), raw (or
/// sublinear) term counts, smooth idf = ln((1+n)/(1+df)) + 1, and
/// l2-normalised rows. The vocabulary is sorted by term (UTF-8 byte order = code point
/// order, as in Python), so term ids equal scikit-learn's column indices.
///
/// \code
///   TfidfVectorizer v;                                   // default VectorizerOptions
///   CsrMatrix x = v.fit_transform(train_texts, threads);  // docs x terms
///   CsrMatrix y = v.transform(other_texts, threads);
///   v.vocabulary()[7], v.idf()[7];
/// \endcode
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sparse_matrix.h"
#include "term_table.h"
#include "tfidf_tokenizer.h"

namespace cbtm::tfidf {

struct VectorizerOptions {
  int64_t min_df = 1;         ///< keep terms in at least this many documents
  double max_df = 1.0;        ///< ... and in at most this fraction of the documents
  int64_t max_features = 0;   ///< then keep the most frequent terms (0: all)
  bool sublinear_tf = false;  ///< tf = 1 + ln(count) instead of count
  int ngram_min = 1;          ///< terms are word n-grams, ngram_min <= n <= ngram_max
  int ngram_max = 1;
  TokenizerOptions tokenizer;
};

/// (term id, count) pairs of one text, ascending by term id.
using TermCounts = std::vector<std::pair<int32_t, int32_t>>;

/// Per-thread scratch space of TfidfVectorizer::count_terms().
struct CountScratch {
  std::vector<int32_t> count;    ///< by term id, zero between calls
  std::vector<int32_t> touched;  ///< term ids seen in the current text
};

class TfidfVectorizer {
 public:
  explicit TfidfVectorizer(VectorizerOptions options = {});

  /// Learns the vocabulary and idf from `texts` and returns their tf-idf rows, with
  /// `threads` threads. Pruning follows scikit-learn: min_df <= df <= max_df * n, then the
  /// max_features terms of highest total count (ties: the alphabetically first). Error if
  /// `texts` is empty, if max_df * n < min_df, or if no term is left.
  CsrMatrix fit_transform(const std::vector<std::string>& texts, int threads);
  /// The tf-idf rows of `texts` over the learned vocabulary (unknown terms are ignored).
  CsrMatrix transform(const std::vector<std::string>& texts, int threads) const;

  /// The counts of the vocabulary terms of `text`.
  void count_terms(std::string_view text, CountScratch& scratch, TermCounts& out) const;
  /// Term id, or -1 when `term` is not in the vocabulary.
  int32_t lookup(std::string_view term) const { return index_.find(term); }
  /// The tf factor of a term seen `count` (>= 1) times.
  double tf_weight(int64_t count) const;

  /// Restores a fitted state. Error unless sizes agree and the vocabulary is sorted and
  /// free of duplicates.
  void set_state(std::vector<std::string> vocabulary, std::vector<double> idf);
  bool fitted() const { return !vocabulary_.empty(); }
  const std::vector<std::string>& vocabulary() const { return vocabulary_; }
  const std::vector<double>& idf() const { return idf_; }
  const TfidfTokenizer& tokenizer() const { return tokenizer_; }
  const VectorizerOptions& options() const { return options_; }

 private:
  /// Writes the l2-normalised tf-idf row of `counts` (counts.size() entries).
  void write_row(const TermCounts& counts, int32_t* indices, float* values) const;
  /// The CSR matrix of rows given as term counts.
  CsrMatrix assemble(const std::vector<TermCounts>& rows, int threads) const;
  void build_index();

  VectorizerOptions options_;
  TfidfTokenizer tokenizer_;
  std::vector<std::string> vocabulary_;
  std::vector<double> idf_;
  TermTable index_;  // vocabulary_[i] has id i
  // Unigrams only and the tokenizer keeps every vocabulary term: count_terms() can then
  // look words up without filtering them first (a dropped word is never a term).
  bool words_are_terms_ = false;
};

}  // namespace cbtm::tfidf
