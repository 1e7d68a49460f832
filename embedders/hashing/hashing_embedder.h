#pragma once
/// \file hashing_embedder.h
/// The "hashing" embedder: h(.) = normaliser(SVD(tf-idf(hashed terms))), the vocabulary-free
/// variant of the "tfidf" embedder (see hashing_options.h and hashing_vectorizer.h).
///
/// fit():  signed bucket counts -> idf of the used buckets -> l2 tf-idf rows -> randomized
///         truncated SVD (`dims` components over the used buckets; unused buckets are zero
///         columns of the data, hence of every component) -> normaliser statistics.
/// embed(): x = tf-idf row / ||tf-idf row|| (the norm counts every bucket), y = x V^T, then
///         l2 (y / ||y||, zero stays zero) | standardize ((y - mean) / std) | none (y).
/// A text without terms, or whose bucket counts all cancel, embeds to 0 (l2, none) or to
/// -mean/std (standardize).
///
/// Saved tensors (`<prefix>.` + name): buckets (I32 [used], ascending), idf (F64 [used]),
/// documents (I64 [1], the n of the idf), components (F32 [dims, used]), singular_values
/// (F32 [dims]), mean and scale (F64 [dims]), terms (strings, one per used bucket; only with
/// keep_terms), settings (strings "key=value" of the options that change embed(): checked
/// against the options on load).
///
/// \code
///   HashingEmbedder e(HashingOptions{});
///   e.fit(train_texts);
///   cbtm::Matrix y = e.embed({"the linux kernel"});          // 1 x 100
///   auto top = e.top_terms(y.row(0), 5);                      // {"kernel", 0.4}, ...
/// \endcode
#include <memory>
#include <string>
#include <vector>

#include "cbtm/embedder.h"
#include "hashing_options.h"
#include "hashing_vectorizer.h"

namespace cbtm::hashing {

class HashingEmbedder : public Embedder {
 public:
  using Options = HashingOptions;
  explicit HashingEmbedder(const Options& options);

  void fit(const std::vector<std::string>& texts) override;
  /// fit() and the training texts' embeddings from the fitted rows (no second pass over
  /// the texts); equal to embed(texts) up to float rounding.
  Matrix fit_embed(const std::vector<std::string>& texts) override;
  Matrix embed(const std::vector<std::string>& texts) const override;
  int64_t dim() const override { return options_.dims; }
  /// Incremental: keeps bucket counts (see context.h). Holds a reference to this embedder,
  /// which must outlive it.
  std::unique_ptr<ContextEmbedder> context() const override;
  /// The n used buckets of highest weight in `point` mapped back through the components
  /// (after undoing standardize), named by their kept term ("#<bucket>" when none). A named
  /// bucket's weight is multiplied by its term's hash sign, so it is the term's own weight.
  std::vector<TermWeight> top_terms(const float* point, int n) const override;
  void save(TensorFileWriter& out, const std::string& prefix) const override;
  void load(const TensorFile& in, const std::string& prefix) override;

  bool fitted() const { return vectorizer_.fitted() && !projection_.empty(); }
  const Options& options() const { return options_; }
  const HashingVectorizer& vectorizer() const { return vectorizer_; }
  /// Column-major projection: row j (dims floats) is component column j (used bucket j).
  const std::vector<float>& projection() const { return projection_; }
  const std::vector<float>& singular_values() const { return singular_values_; }
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& scale() const { return scale_; }

  /// Embedding of the signed bucket counts `counts` (any order; zero counts are skipped).
  /// `sum` is scratch of dims() doubles.
  void embed_counts(const std::pair<int32_t, int32_t>* counts, size_t size, double* sum,
                    float* out) const;
  /// Throws Error unless fitted (names the calling method).
  void require_fitted(const char* what) const;

 private:
  /// fit(); with want_embedding, also returns the training texts' embeddings.
  Matrix fit_impl(const std::vector<std::string>& texts, bool want_embedding);
  enum class Norm { kL2, kStandardize, kNone };
  Options options_;
  Norm norm_;
  HashingVectorizer vectorizer_;
  std::vector<float> projection_;  // used buckets x dims
  std::vector<float> singular_values_;
  std::vector<double> mean_, scale_;
};

/// The vectorizer options implied by the embedder options.
HashingVectorizerOptions vectorizer_options(const HashingOptions& o);

}  // namespace cbtm::hashing
