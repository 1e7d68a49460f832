#pragma once
/// \file context.h
/// Incremental tf-idf embedding of a growing text, for routing token by token.
///
/// Keeps the counts of the completed words, the running projected sum
/// S = sum_t tf(count_t) idf_t V[t] and N = sum_t (tf(count_t) idf_t)^2, updated in
/// O(dims) per new word, plus the WordStream state (the unfinished trailing word, an
/// incomplete UTF-8 character, an undecided final sigma). current() finishes a copy of
/// that state, adds the trailing words to copies of S and N, and normalises: so after
/// append(p1) ... append(pn), current() equals embed({p1 + ... + pn}) up to float rounding,
/// at a cost proportional to the new text. An empty or all-stop-word context embeds to
/// the zero vector projected and normalised (0 for l2 and none, -mean/std for standardize).
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
#include "word_stream.h"

namespace cbtm::tfidf {

class TfidfEmbedder;

class TfidfContext : public ContextEmbedder {
 public:
  /// `embedder` must be fitted and must outlive the context.
  explicit TfidfContext(const TfidfEmbedder& embedder);
  void append(std::string_view bytes) override;
  void current(float* out) override;

 private:
  /// The term id of a completed word, or -1 when it is not a vocabulary term.
  int32_t term_of(const std::string& word) const;
  /// Adds the change of term `id` going from `count` to count + 1 occurrences to sum/norm2.
  void add_occurrence(int32_t id, int32_t count, std::vector<double>& sum, double& norm2) const;

  const TfidfEmbedder& e_;
  WordStream stream_;
  std::unordered_map<int32_t, int32_t> counts_;
  std::vector<double> sum_;
  double norm2_ = 0;
  std::vector<std::string> words_;  // scratch
  std::vector<double> tmp_sum_;     // scratch of current()
};

}  // namespace cbtm::tfidf
