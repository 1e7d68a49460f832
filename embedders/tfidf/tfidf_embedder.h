#pragma once
/// \file tfidf_embedder.h
/// The "tfidf" embedder: C-BTM's document embedding h(.) = normaliser(SVD(tf-idf(text))).
///
/// fit():  vocabulary + idf (TfidfVectorizer) -> l2-normalised tf-idf rows -> randomized
///         truncated SVD (`dims` right singular vectors) -> normaliser statistics.
/// embed(): x = tf-idf row / ||tf-idf row||, y = x V^T (dims values), then
///         l2:          y / ||y||             (zero stays zero)
///         standardize: (y - mean) / std      (fitted on the training rows that have a
///                                             term; std 0 -> 1)
///         none:        y
/// An empty text, or one with only stop words/numbers/unknown terms, has x = 0 and embeds
/// to the zero vector for every normaliser (for standardize too, rather than -mean/std):
/// k-means then assigns it to the centre nearest the origin, whatever `normalize` says.
///
/// Saved tensors (`<prefix>.` + name): vocab (strings), idf (F64 [terms]), components
/// (F32 [dims, terms], scikit-learn's components_), singular_values (F32 [dims]), mean and
/// scale (F64 [dims]; 0 and 1 unless standardize), settings (strings "key=value" of the
/// options that change embed(): checked against the options on load).
///
/// \code
///   TfidfEmbedder e(TfidfOptions{});
///   e.fit(train_texts);
///   cbtm::Matrix y = e.embed({"the linux kernel"});     // 1 x 100
/// \endcode
#include <memory>
#include <string>
#include <vector>

#include "cbtm/embedder.h"
#include "tfidf_options.h"
#include "tfidf_vectorizer.h"

namespace cbtm::tfidf {

class TfidfEmbedder : public Embedder {
 public:
  using Options = TfidfOptions;
  explicit TfidfEmbedder(const Options& options);

  void fit(const std::vector<std::string>& texts) override;
  /// fit() and the embeddings of the training texts from the fitted tf-idf rows (no second
  /// tokenization); equal to embed(texts) up to float rounding.
  Matrix fit_embed(const std::vector<std::string>& texts) override;
  Matrix embed(const std::vector<std::string>& texts) const override;
  int64_t dim() const override { return options_.dims; }
  /// Incremental: cost proportional to the appended text (see context.h). Holds a
  /// reference to this embedder, which must outlive it.
  std::unique_ptr<ContextEmbedder> context() const override;
  /// The n vocabulary terms of largest positive weight in `point` mapped back to term space
  /// through the SVD components (after undoing standardize's scaling: point * scale +
  /// mean; l2 and none use the point as it is), highest first. Fewer when fewer terms have
  /// a positive weight; empty for n <= 0.
  std::vector<TermWeight> top_terms(const float* point, int n) const override;
  void save(TensorFileWriter& out, const std::string& prefix) const override;
  void load(const TensorFile& in, const std::string& prefix) override;

  bool fitted() const { return vectorizer_.fitted() && !projection_.empty(); }
  const Options& options() const { return options_; }
  const TfidfVectorizer& vectorizer() const { return vectorizer_; }
  /// Term-major projection: row t (dims floats) is column t of the SVD components.
  const std::vector<float>& projection() const { return projection_; }
  const std::vector<float>& singular_values() const { return singular_values_; }
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& scale() const { return scale_; }

  /// The embedding of a text whose tf-idf weights w_t = tf(count_t) * idf_t (not yet
  /// normalised) give sum = sum_t w_t V[t] (dims values) and norm2 = sum_t w_t^2
  /// (norm2 = 0: no term, the zero vector).
  void finish(const double* sum, double norm2, float* out) const;
  /// Throws Error unless fitted (names the calling method).
  void require_fitted(const char* what) const;

 private:
  enum class Norm { kL2, kStandardize, kNone };
  /// fit(); with want_embedding, also returns the training texts' embeddings.
  Matrix fit_impl(const std::vector<std::string>& texts, bool want_embedding);
  Options options_;
  Norm norm_;
  TfidfVectorizer vectorizer_;
  std::vector<float> projection_;  // terms x dims
  std::vector<float> singular_values_;
  std::vector<double> mean_, scale_;
};

/// The vectorizer options implied by the embedder options.
VectorizerOptions vectorizer_options(const TfidfOptions& o);

}  // namespace cbtm::tfidf
