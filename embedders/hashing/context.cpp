#include "context.h"

#include <algorithm>

#include "hashing_embedder.h"

namespace cbtm::hashing {

HashingContext::HashingContext(const HashingEmbedder& embedder)
    : e_(embedder), sum_(static_cast<size_t>(embedder.dim()), 0.0) {
  e_.require_fitted("context()");
}

void HashingContext::count_words(int delta) {
  keys_.clear();
  e_.vectorizer().hash_words(words_, keys_);
  for (const uint64_t key : keys_) {
    const auto bucket = static_cast<int32_t>(key >> 1);
    const int32_t sign = (key & 1) ? -1 : 1;
    auto it = counts_.try_emplace(bucket, 0).first;
    it->second += delta * sign;
    // A bucket back at 0 through the undo of the tail words is forgotten; one that cancels
    // between real words stays (at 0), which embed_counts() skips either way.
    if (delta < 0 && it->second == 0) counts_.erase(it);
  }
}

void HashingContext::append(std::string_view bytes) {
  words_.clear();
  stream_.feed(bytes, words_);
  count_words(+1);
}

void HashingContext::current(float* out) {
  // The words the text would end with if it stopped here, on a copy of the stream.
  words_.clear();
  if (!stream_.idle()) {
    tfidf::WordStream tail = stream_;
    tail.finish(words_);
  }
  count_words(+1);
  sorted_.assign(counts_.begin(), counts_.end());
  std::sort(sorted_.begin(), sorted_.end());
  e_.embed_counts(sorted_.data(), sorted_.size(), sum_.data(), out);
  count_words(-1);
}

}  // namespace cbtm::hashing
