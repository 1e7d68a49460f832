#pragma once
/// \file hashing_vectorizer.h
/// scikit-learn's HashingVectorizer(n_features, alternate_sign, norm=None) followed by
/// TfidfTransformer(smooth_idf=True, norm="l2", sublinear_tf) (1.2.1), without a vocabulary:
/// a term of the reference tokenizer (tfidf::TfidfTokenizer: lowercase, \b\w\w+\b, English
/// stop words, numbers dropped) adds its hash sign (+1/-1, see murmurhash3.h) to its bucket.
///
/// - A bucket's count is the signed sum of its terms; it may cancel to 0 and still counts in
///   the document frequency (as scikit-learn's explicit zeros do). Zero values are not stored.
/// - idf_b = ln((1 + n) / (1 + df_b)) + 1 over the n fit documents. Only the "used" buckets
///   (df > 0) are columns of the matrices here, in ascending bucket order; any other bucket
///   has idf ln(1 + n) + 1 and weighs in a row's l2 norm (as in scikit-learn), but its
///   column is zero in every fit row, so it never reaches the SVD.
/// - sublinear_tf: sign(c) * (1 + ln|c|) (scikit-learn computes ln of the signed count and
///   returns NaN for negative counts; equal whenever counts are positive).
/// - keep_terms: fit() remembers per used bucket the term that won a Boyer-Moore majority
///   vote over its occurrences (exact when one term has more than half of them, as in any
///   bucket without collisions): at most one string per used bucket, never a vocabulary.
///
/// Memory during fit: the fit rows (their nonzeros), O(n_features) integers, and the kept
/// terms. The deterministic schedule makes fit() depend only on the texts and thread count.
///
/// \code
///   HashingVectorizer v({/*n_features=*/1 << 20});
///   tfidf::CsrMatrix x = v.fit_transform(texts, threads);   // docs x used buckets
///   v.buckets()[j], v.idf()[j], v.terms()[j];                // column j
/// \endcode
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sparse_matrix.h"
#include "tfidf_tokenizer.h"
#include "word_stream.h"

namespace cbtm::hashing {

struct HashingVectorizerOptions {
  int64_t n_features = int64_t{1} << 20;  ///< buckets, 1 .. 2^31 - 1
  bool alternate_sign = true;             ///< add the hash sign instead of +1
  bool sublinear_tf = false;              ///< tf = sign(c) (1 + ln|c|)
  bool keep_terms = true;                 ///< remember one term per used bucket
  tfidf::TokenizerOptions tokenizer;
};

/// (bucket, signed count) pairs of one text, ascending by bucket; counts may be 0.
using BucketCounts = std::vector<std::pair<int32_t, int32_t>>;

/// Reusable state and buffers of count_buckets() (one per thread).
struct CountScratch {
  tfidf::WordStream stream;  ///< idle between texts (finish() resets it)
  std::vector<std::string> words;
  std::vector<uint64_t> keys;
};

class HashingVectorizer {
 public:
  explicit HashingVectorizer(HashingVectorizerOptions options = {});

  /// Learns the used buckets, their idf (and terms) from `texts` and returns their tf-idf
  /// rows (docs x used buckets, l2-normalised) with `threads` threads. Error if `texts` is
  /// empty or holds no term at all.
  tfidf::CsrMatrix fit_transform(const std::vector<std::string>& texts, int threads);
  /// The tf-idf rows of `texts` restricted to the used buckets; the row norm counts every
  /// bucket (so a row whose terms all fall in unused buckets is zero).
  tfidf::CsrMatrix transform(const std::vector<std::string>& texts, int threads) const;

  /// The signed bucket counts of `text`.
  void count_buckets(std::string_view text, CountScratch& scratch, BucketCounts& out) const;
  /// Appends (bucket, sign) of every term of `words` (WordStream words) to `keys` as
  /// bucket * 2 + (sign < 0).
  void hash_words(const std::vector<std::string>& words, std::vector<uint64_t>& keys) const;
  /// The tf factor of a signed count (0 -> 0).
  double tf_weight(int64_t count) const;
  /// Column of a bucket, or -1 when the bucket is unused.
  int32_t column(int32_t bucket) const { return column_[static_cast<size_t>(bucket)]; }
  /// idf of `bucket` (used or not).
  double idf_of_bucket(int32_t bucket) const {
    const int32_t c = column(bucket);
    return c >= 0 ? idf_[static_cast<size_t>(c)] : unseen_idf_;
  }

  /// Restores a fitted state. Error unless buckets are ascending, unique and below
  /// n_features, idf has one value per bucket, terms is empty or one per bucket (each
  /// hashing to its bucket), and documents >= 1.
  void set_state(std::vector<int32_t> buckets, std::vector<double> idf, int64_t documents,
                 std::vector<std::string> terms);
  bool fitted() const { return documents_ > 0; }
  const std::vector<int32_t>& buckets() const { return buckets_; }
  const std::vector<double>& idf() const { return idf_; }
  /// The kept term of each used bucket (empty unless keep_terms).
  const std::vector<std::string>& terms() const { return terms_; }
  /// Number of fit documents (the n of the idf).
  int64_t documents() const { return documents_; }
  double unseen_idf() const { return unseen_idf_; }
  const HashingVectorizerOptions& options() const { return options_; }
  const tfidf::TfidfTokenizer& tokenizer() const { return tokenizer_; }

 private:
  /// The CSR matrix (used buckets) of rows given as bucket counts.
  tfidf::CsrMatrix assemble(const std::vector<BucketCounts>& rows, int threads) const;
  void build_columns();

  HashingVectorizerOptions options_;
  tfidf::TfidfTokenizer tokenizer_;
  std::vector<int32_t> buckets_;  // used buckets, ascending
  std::vector<double> idf_;       // per used bucket
  std::vector<std::string> terms_;
  std::vector<int32_t> column_;  // n_features entries: bucket -> column or -1
  int64_t documents_ = 0;
  double unseen_idf_ = 0;
};

}  // namespace cbtm::hashing
