#pragma once
/// \file embedder.h
/// Extension point: document text -> fixed-size vector (the h(.) of the paper), used to fit
/// clusters, to assign documents, and by the router on growing contexts.
///
/// \code
///   auto emb = registry.create<Embedder>(cfg.child("embedder"));
///   Matrix y = emb->fit_embed(train_texts);  // fit, and the training texts' embeddings
///   Matrix x = emb->embed(texts);            // texts.size() x emb->dim()
///   auto ctx = emb->context();               // incremental, for routing
///   ctx->append("The kernel "); ctx->current(v.data());
/// \endcode
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cbtm/component.h"
#include "cbtm/matrix.h"

namespace cbtm {

class TensorFile;
class TensorFileWriter;
class Embedder;

/// The embedding of a text that grows a piece at a time. After append(p1)...append(pn),
/// current() must equal embed({p1+...+pn}) (up to float rounding). Not thread-safe; one per
/// document.
class ContextEmbedder {
 public:
  virtual ~ContextEmbedder();
  virtual void append(std::string_view bytes) = 0;
  /// Writes dim() floats.
  virtual void current(float* out) = 0;
};

/// A vocabulary term and its weight in a point of the embedding space (see top_terms()).
struct TermWeight {
  std::string term;
  double weight = 0;
};

class Embedder : public Component {
 public:
  static constexpr const char* kKind = "embedder";

  /// Learns the embedding (vocabulary, projection, ...) from training texts.
  virtual void fit(const std::vector<std::string>& texts) = 0;
  /// One row per text; uses all runtime threads. Requires fit() or load().
  virtual Matrix embed(const std::vector<std::string>& texts) const = 0;
  /// fit(texts), then the embedding of those same texts: equal to embed(texts) up to float
  /// rounding. The default does exactly that; an embedder overrides it to reuse what fit()
  /// computed (tfidf: the tf-idf rows, so the texts are not tokenized twice).
  virtual Matrix fit_embed(const std::vector<std::string>& texts);
  virtual int64_t dim() const = 0;
  /// Incremental embedding of a growing context. The default re-embeds the whole prefix
  /// on every current() call (correct for any embedder, slow); override to make it cheap.
  virtual std::unique_ptr<ContextEmbedder> context() const;
  /// The n terms that weigh most in `point` (dim() floats, e.g. a cluster centre) when it is
  /// mapped back to the input space (tf-idf: through the SVD components), highest first.
  /// Empty when the embedder has no view of terms (the default). Used by `cbtm inspect`.
  virtual std::vector<TermWeight> top_terms(const float* point, int n) const;

  virtual void save(TensorFileWriter& out, const std::string& prefix) const = 0;
  virtual void load(const TensorFile& in, const std::string& prefix) = 0;
};

}  // namespace cbtm
