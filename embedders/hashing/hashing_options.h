#pragma once
/// \file hashing_options.h
/// Options of the "hashing" embedder, mirrored 1:1 in YAML. The pipeline is the paper's
/// alternative to tf-idf for corpora whose vocabulary does not fit in memory: scikit-learn's
/// HashingVectorizer(n_features, alternate_sign, norm=None) with the reference tokenizer ->
/// TfidfTransformer(smooth idf, l2) -> TruncatedSVD(dims) -> normaliser.
///
/// \code{.yaml}
///   embedder:
///     type: hashing
///     dims: 100
///     n_features: 1048576  # hash buckets (2^20)
///     alternate_sign: true
///     normalize: l2        # l2 | standardize | none
///     keep_terms: true     # remember one term per bucket for `cbtm inspect`
/// \endcode
#include <cstdint>
#include <string>

#include "cbtm/options.h"

namespace cbtm::hashing {

struct HashingOptions {
  int dims = 100;
  int64_t n_features = int64_t{1} << 20;
  bool alternate_sign = true;
  std::string normalize = "l2";
  bool sublinear_tf = false;
  std::string stop_words = "english";
  bool drop_numbers = true;
  int svd_oversamples = 10;
  int svd_power_iters = 5;
  uint64_t seed = 0;
  bool keep_terms = true;

  template <class V>
  void visit(V& v) {
    v("dims", dims, "embedding size: truncated-SVD components kept");
    v("n_features", n_features,
      "hash buckets (scikit-learn's n_features; 2^20 by default): terms share a bucket when "
      "their hashes collide, no vocabulary is kept");
    v("alternate_sign", alternate_sign,
      "add a term with the sign of its hash (+1 or -1) so that collisions tend to cancel "
      "(scikit-learn's alternate_sign)");
    v("normalize", normalize,
      "row normaliser after the SVD: l2 (unit rows) | standardize (per-dimension mean 0 / "
      "variance 1 fitted on the training embeddings) | none");
    v("sublinear_tf", sublinear_tf,
      "term frequency sign(c) * (1 + ln|c|) of a bucket's signed count c instead of c");
    v("stop_words", stop_words, "stop-word list: english (scikit-learn's 318 words) | none");
    v("drop_numbers", drop_numbers,
      "drop words whose first character is a digit (as the tfidf embedder does)");
    v("svd_oversamples", svd_oversamples, "extra random columns of the randomized SVD");
    v("svd_power_iters", svd_power_iters, "power iterations of the randomized SVD");
    v("seed", seed,
      "seed of the randomized SVD (the same seed and thread count give the same embedder)");
    v("keep_terms", keep_terms,
      "remember, per used bucket, its most frequent training term (one string per bucket) so "
      "that top_terms() can name buckets; false: buckets are named #<bucket>");
  }

  void validate() const {
    require(dims > 0, "dims", "must be positive");
    require(n_features >= 1 && n_features <= 2147483647, "n_features",
            "must be in 1 .. 2147483647 (2^31 - 1)");
    require_one_of(normalize, {"l2", "standardize", "none"}, "normalize");
    require_one_of(stop_words, {"english", "none"}, "stop_words");
    require(svd_oversamples >= 0, "svd_oversamples", "must be >= 0");
    require(svd_power_iters >= 0, "svd_power_iters", "must be >= 0");
  }
};

}  // namespace cbtm::hashing
