#pragma once
/// \file tfidf_options.h
/// Options of the "tfidf" embedder, mirrored 1:1 in YAML. The defaults reproduce the
/// reference C-BTM pipeline (scikit-learn TfidfVectorizer with English stop words and the
/// number token -> TruncatedSVD(100) -> Normalizer()).
///
/// \code{.yaml}
///   embedder:
///     type: tfidf
///     dims: 100
///     normalize: l2        # l2 | standardize | none
///     min_df: 1
///     max_df: 1.0
///     max_features: 0      # 0: no limit
///     ngram_range: [1, 1]  # [min_n, max_n]: word n-grams, as scikit-learn's ngram_range
///     seed: 0
/// \endcode
#include <cstdint>
#include <string>
#include <vector>

#include "cbtm/options.h"

namespace cbtm::tfidf {

struct TfidfOptions {
  int dims = 100;
  std::string normalize = "l2";
  int64_t min_df = 1;
  double max_df = 1.0;
  int64_t max_features = 0;
  bool sublinear_tf = false;
  std::string stop_words = "english";
  bool drop_numbers = true;
  std::vector<int> ngram_range = {1, 1};
  int svd_oversamples = 10;
  int svd_power_iters = 5;
  uint64_t seed = 0;

  template <class V>
  void visit(V& v) {
    v("dims", dims, "embedding size: truncated-SVD components kept (the reference uses 100)");
    v("normalize", normalize,
      "row normaliser after the SVD: l2 (unit rows, what the reference code does) | "
      "standardize (per-dimension mean 0 / variance 1 fitted on the training embeddings of "
      "documents with a term, what the paper text says) | none. A document without any "
      "vocabulary term embeds to the zero vector under every normaliser");
    v("min_df", min_df, "keep terms that occur in at least this many training documents");
    v("max_df", max_df,
      "keep terms that occur in at most this fraction of the training documents (0 < max_df <= 1)");
    v("max_features", max_features,
      "keep only this many terms, those of highest total count in the training documents; ties at "
      "the cut go to the terms first in byte order (scikit-learn's pick among ties follows numpy's "
      "unstable argsort and can differ) (0: no limit)");
    v("sublinear_tf", sublinear_tf, "term frequency 1 + ln(count) instead of the raw count");
    v("stop_words", stop_words, "stop-word list: english (scikit-learn's 318 words) | none");
    v("drop_numbers", drop_numbers,
      "drop words whose first character is a digit (the reference maps them to a #NUMBER stop "
      "word)");
    v("ngram_range", ngram_range,
      "[min_n, max_n]: terms are the word n-grams with min_n <= n <= max_n, formed after "
      "removing stop words and numbers and joined by one space (scikit-learn's ngram_range; "
      "[1, 1]: single words, the reference)");
    v("svd_oversamples", svd_oversamples, "extra random columns of the randomized SVD");
    v("svd_power_iters", svd_power_iters, "power iterations of the randomized SVD");
    v("seed", seed,
      "seed of the randomized SVD (the same seed and thread count give the same embedder)");
  }

  void validate() const {
    require(dims > 0, "dims", "must be positive");
    require_one_of(normalize, {"l2", "standardize", "none"}, "normalize");
    require(min_df >= 1, "min_df", "must be at least 1");
    require(max_df > 0 && max_df <= 1, "max_df", "must be in (0, 1]");
    require(max_features >= 0, "max_features", "must be >= 0 (0: no limit)");
    require_one_of(stop_words, {"english", "none"}, "stop_words");
    require(ngram_range.size() == 2, "ngram_range", "must be a list of two integers [min_n, max_n]");
    require(ngram_range[0] >= 1 && ngram_range[0] <= ngram_range[1], "ngram_range",
            "must satisfy 1 <= min_n <= max_n");
    require(ngram_range[1] <= 16, "ngram_range", "max_n must be at most 16");
    require(svd_oversamples >= 0, "svd_oversamples", "must be >= 0");
    require(svd_power_iters >= 0, "svd_power_iters", "must be >= 0");
  }
};

}  // namespace cbtm::tfidf
