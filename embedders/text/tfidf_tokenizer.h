#pragma once
/// \file tfidf_tokenizer.h
/// The terms of a text as the reference C-BTM vectorizer sees them: scikit-learn's default
/// word tokenizer (see word_stream.h), then the number rule (a word whose first character
/// is a digit, by Python's str.isdigit(), becomes "#NUMBER", itself a stop word: dropped),
/// then scikit-learn's English stop-word list (318 words).
///
/// \code
///   TfidfTokenizer tok({/*english_stop_words=*/true, /*drop_numbers=*/true});
///   tok.tokenize("The 3 kernels of Linux_6 2nd");   // {"kernels", "linux_6"}
/// \endcode
#include <string>
#include <string_view>
#include <vector>

namespace cbtm::tfidf {

struct TokenizerOptions {
  bool english_stop_words = true;  ///< drop scikit-learn's ENGLISH_STOP_WORDS
  bool drop_numbers = true;        ///< drop words whose first character is a digit
};

class TfidfTokenizer {
 public:
  explicit TfidfTokenizer(TokenizerOptions options = {}) : options_(options) {}

  /// True if `word` (a lowercased WordStream word) is kept as a term.
  bool is_term(const std::string& word) const;
  /// The same for a view (allocates nothing).
  bool keeps(std::string_view word) const;
  /// Removes the words that are not terms, keeping the order.
  void filter(std::vector<std::string>& words) const;
  /// All terms of `text`, in order.
  std::vector<std::string> tokenize(std::string_view text) const;

  const TokenizerOptions& options() const { return options_; }

 private:
  TokenizerOptions options_;
};

/// scikit-learn 1.2's ENGLISH_STOP_WORDS, sorted.
const std::vector<std::string>& english_stop_words();
bool is_english_stop_word(const std::string& word);
/// Python's `word[0].isdigit()` for a UTF-8 word.
bool starts_with_digit(const std::string& word);

}  // namespace cbtm::tfidf
