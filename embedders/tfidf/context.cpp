#include "context.h"

#include <algorithm>
#include <utility>

#include "tfidf_embedder.h"

namespace cbtm::tfidf {

void TfidfContext::IdSink::word(std::string_view term) {
  const int32_t id = vectorizer->lookup(term);
  if (id >= 0) ids.push_back(id);
}

TfidfContext::TfidfContext(const TfidfEmbedder& embedder)
    : e_(embedder),
      terms_(embedder.vectorizer().tokenizer(), embedder.vectorizer().options().ngram_min,
             embedder.vectorizer().options().ngram_max, &ids_),
      sum_(static_cast<size_t>(embedder.dim()), 0.0) {
  e_.require_fitted("context()");
  ids_.vectorizer = &embedder.vectorizer();
}

void TfidfContext::add_occurrence(int32_t id, int32_t count, std::vector<double>& sum,
                                  double& norm2) const {
  const TfidfVectorizer& v = e_.vectorizer();
  const double idf = v.idf()[id];
  const double before = count > 0 ? v.tf_weight(count) * idf : 0.0;
  const double after = v.tf_weight(count + 1) * idf;
  norm2 += after * after - before * before;
  const double delta = after - before;
  const int64_t dims = e_.dim();
  const float* row = e_.projection().data() + static_cast<int64_t>(id) * dims;
  for (int64_t j = 0; j < dims; ++j) sum[j] += delta * row[j];
}

void TfidfContext::append(std::string_view bytes) {
  ids_.ids.clear();
  stream_.feed(bytes, terms_);
  for (const int32_t id : ids_.ids) {
    int32_t& c = counts_[id];
    add_occurrence(id, c, sum_, norm2_);
    ++c;
  }
}

void TfidfContext::current(float* out) {
  if (stream_.idle()) {
    e_.finish(sum_.data(), norm2_, out);
    return;
  }
  // The terms the text would end with if it stopped here, from copies of the stream and
  // of the n-gram window.
  WordStream tail = stream_;
  TermSink tail_terms = terms_;
  IdSink tail_ids;
  tail_ids.vectorizer = &e_.vectorizer();
  tail_terms.set_output(&tail_ids);
  tail.finish(tail_terms);
  tmp_sum_ = sum_;
  double norm2 = norm2_;
  std::vector<std::pair<int32_t, int32_t>> extra;  // (term, occurrences in the tail)
  for (const int32_t id : tail_ids.ids) {
    auto it =
        std::find_if(extra.begin(), extra.end(), [id](const auto& p) { return p.first == id; });
    if (it == extra.end()) it = extra.insert(extra.end(), {id, 0});
    const auto known = counts_.find(id);
    const int32_t count = (known == counts_.end() ? 0 : known->second) + it->second;
    add_occurrence(id, count, tmp_sum_, norm2);
    ++it->second;
  }
  e_.finish(tmp_sum_.data(), norm2, out);
}

}  // namespace cbtm::tfidf
