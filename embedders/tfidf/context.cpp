#include "context.h"

#include <algorithm>
#include <utility>

#include "tfidf_embedder.h"

namespace cbtm::tfidf {

TfidfContext::TfidfContext(const TfidfEmbedder& embedder)
    : e_(embedder), sum_(static_cast<size_t>(embedder.dim()), 0.0) {
  e_.require_fitted("context()");
}

int32_t TfidfContext::term_of(const std::string& word) const {
  const TfidfVectorizer& v = e_.vectorizer();
  return v.tokenizer().is_term(word) ? v.lookup(word) : -1;
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
  words_.clear();
  stream_.feed(bytes, words_);
  for (const auto& w : words_) {
    const int32_t id = term_of(w);
    if (id < 0) continue;
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
  // The words the text would end with if it stopped here, on a copy of the stream.
  WordStream tail = stream_;
  words_.clear();
  tail.finish(words_);
  tmp_sum_ = sum_;
  double norm2 = norm2_;
  std::vector<std::pair<int32_t, int32_t>> extra;  // (term, occurrences in the tail)
  for (const auto& w : words_) {
    const int32_t id = term_of(w);
    if (id < 0) continue;
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
