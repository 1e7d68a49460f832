#include "term_sink.h"

namespace cbtm::tfidf {

TermSink::TermSink(const TfidfTokenizer& tokenizer, int min_n, int max_n, WordSink* out)
    : tokenizer_(&tokenizer),
      min_n_(min_n),
      max_n_(max_n),
      out_(out),
      window_(static_cast<size_t>(max_n > 1 ? max_n - 1 : 0)) {}

void TermSink::word(std::string_view w) {
  if (!tokenizer_->keeps(w)) return;
  if (max_n_ == 1) {  // unigrams only: nothing to remember
    out_->word(w);
    return;
  }
  if (min_n_ == 1) out_->word(w);
  // The n-grams ending with w: w preceded by the last n - 1 kept words.
  const size_t ring = window_.size();
  for (int n = std::max(2, min_n_); n <= max_n_ && static_cast<size_t>(n) <= kept_ + 1; ++n) {
    joined_.clear();
    for (int back = n - 1; back >= 1; --back) {
      joined_ += window_[(kept_ - static_cast<size_t>(back)) % ring];
      joined_ += ' ';
    }
    joined_ += w;
    out_->word(joined_);
  }
  window_[kept_ % ring].assign(w.data(), w.size());
  ++kept_;
}

}  // namespace cbtm::tfidf
