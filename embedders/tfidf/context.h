#pragma once
/// \file context.h
/// Incremental tf-idf embedding of a growing text, for routing token by token.
///
/// Keeps the counts of the completed terms, the running projected sum
/// S = sum_t tf(count_t) idf_t V[t] and N = sum_t (tf(count_t) idf_t)^2, updated in
/// O(dims) per new term, plus the WordStream state (the unfinished trailing word, an
/// incomplete UTF-8 character, an undecided final sigma) and, with word n-grams, the last
/// words kept (TermSink). current() finishes a copy of that state, adds the trailing terms
/// to copies of S and N, and normalises: so after append(p1) ... append(pn), current()
/// equals embed({p1 + ... + pn}) up to float rounding, at a cost proportional to the new
/// text, for every ngram_range. An empty context, or one without vocabulary terms, embeds
/// to the zero vector (see tfidf_embedder.h).
///
/// \code
///   auto ctx = embedder.context();
///   ctx->append("The ker");  ctx->append("nel ");
///   std::vector<float> v(embedder.dim());
///   ctx->current(v.data());   // == embedder.embed({"The kernel "}).row(0)
/// \endcode
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cbtm/embedder.h"
#include "term_sink.h"
#include "word_stream.h"

namespace cbtm::tfidf {

class TfidfEmbedder;
class TfidfVectorizer;

class TfidfContext : public ContextEmbedder {
 public:
  /// `embedder` must be fitted and must outlive the context.
  explicit TfidfContext(const TfidfEmbedder& embedder);
  TfidfContext(const TfidfContext&) = delete;
  TfidfContext& operator=(const TfidfContext&) = delete;
  void append(std::string_view bytes) override;
  void current(float* out) override;

 private:
  /// Collects the vocabulary ids of the terms it receives.
  struct IdSink : WordSink {
    const TfidfVectorizer* vectorizer = nullptr;
    std::vector<int32_t> ids;
    void word(std::string_view term) override;
  };
  /// Adds the change of term `id` going from `count` to count + 1 occurrences to sum/norm2.
  void add_occurrence(int32_t id, int32_t count, std::vector<double>& sum, double& norm2) const;

  const TfidfEmbedder& e_;
  IdSink ids_;
  TermSink terms_;  // -> ids_
  WordStream stream_;
  std::unordered_map<int32_t, int32_t> counts_;
  std::vector<double> sum_;
  double norm2_ = 0;
  std::vector<double> tmp_sum_;  // scratch of current()
};

}  // namespace cbtm::tfidf
