#pragma once
/// \file term_sink.h
/// The terms of a text as scikit-learn's TfidfVectorizer (analyzer="word") forms them from
/// its words: the words the tokenizer rejects (stop words, numbers) are removed first, then
/// every run of n consecutive remaining words, min_n <= n <= max_n, joined by single spaces
/// is a term (`_word_ngrams`). A TermSink sits between a WordStream and the consumer of
/// the terms; it is copyable, so an incremental embedder can finish a copy of it.
///
/// \code
///   TermSink terms(tokenizer, 1, 2, counter);   // counter: a WordSink receiving terms
///   WordStream ws;
///   ws.feed("Linux kernel modules", terms);     // linux, kernel, "linux kernel", ...
///   ws.finish(terms);
///   terms.reset();                              // next document
/// \endcode
#include <string>
#include <string_view>
#include <vector>

#include "tfidf_tokenizer.h"
#include "word_stream.h"

namespace cbtm::tfidf {

class TermSink : public WordSink {
 public:
  /// 1 <= min_n <= max_n. `tokenizer` and `out` must outlive the sink.
  TermSink(const TfidfTokenizer& tokenizer, int min_n, int max_n, WordSink* out);

  void word(std::string_view w) override;
  /// Forgets the words seen so far (a new document starts).
  void reset() { kept_ = 0; }
  /// Redirects the terms (e.g. for a copy of the sink).
  void set_output(WordSink* out) { out_ = out; }

 private:
  const TfidfTokenizer* tokenizer_;
  int min_n_, max_n_;
  WordSink* out_;
  std::vector<std::string> window_;  // the last max_n - 1 kept words, a ring
  size_t kept_ = 0;                  // words kept in this document so far
  std::string joined_;               // scratch for an n-gram
};

}  // namespace cbtm::tfidf
