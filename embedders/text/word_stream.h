#pragma once
/// \file word_stream.h
/// Incremental word splitter with the exact semantics of scikit-learn's default
/// tokenizer on Python strings:  `re.findall(r"(?u)\b\w\w+\b", text.lower())`, i.e. the
/// maximal runs of at least two word characters of the lowercased text.
///
/// - Input is UTF-8, fed in pieces of any size (a piece may end inside a character).
///   Invalid bytes count as non-word characters.
/// - Lowercasing is Python's str.lower(): full case mapping (U+0130 'İ' -> "i" + U+0307,
///   which splits the word) and the Final_Sigma rule ('Σ' -> 'ς' at the end of a word,
///   decided by looking past case-ignorable characters such as apostrophes).
/// - feed(a); feed(b); finish() yields the same words as feed(a + b); finish(). A word
///   is reported once it can no longer change; finish() flushes the rest.
///
/// \code
///   WordStream ws;
///   std::vector<std::string> words;
///   ws.feed("Hello, Wor", words);   // words = {"hello"}
///   ws.feed("ld!", words);          // words = {"hello", "world"}
///   ws.finish(words);               // nothing left
/// \endcode
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cbtm::tfidf {

/// Receives the words of a WordStream one at a time. The view is valid only during the
/// call (it points into the stream's buffer), so counting words allocates nothing.
class WordSink {
 public:
  virtual ~WordSink() = default;
  virtual void word(std::string_view w) = 0;
};

class WordStream {
 public:
  /// Consumes `bytes`; appends every completed word (lowercased, UTF-8) to `out`.
  void feed(std::string_view bytes, std::vector<std::string>& out);
  /// Ends the text: appends the remaining words and resets the stream to its initial state.
  void finish(std::vector<std::string>& out);
  /// The same, handing each word to `sink` instead of appending a string.
  void feed(std::string_view bytes, WordSink& sink);
  void finish(WordSink& sink);
  /// True when nothing is buffered (no partial character, word or undecided sigma).
  bool idle() const;

 private:
  /// The whole of feed() for a piece that is all ASCII with nothing pending (the common
  /// case, several times faster); false, having done nothing, otherwise.
  bool feed_ascii(std::string_view bytes, WordSink& out);
  void code_point(char32_t c, WordSink& out);
  void invalid(WordSink& out);
  void end_word(WordSink& out);
  void resolve_sigmas(bool final_form, WordSink& out);

  // UTF-8 decoder: code point so far, continuation bytes still needed, and the allowed
  // range of the next byte (excludes overlong forms, surrogates and values > U+10FFFF).
  char32_t cp_ = 0;
  int need_ = 0;
  unsigned char lo_ = 0x80, hi_ = 0xBF;

  // Final_Sigma look-behind: the last non-case-ignorable character was cased.
  bool prev_cased_ = false;

  // The word being read (UTF-8) and its length in code points.
  std::string word_;
  int64_t word_len_ = 0;
  std::string lower_;            // feed_ascii's lowercased piece
  std::vector<uint64_t> mask_;   // ... and its word-character bits

  // Sigmas whose form awaits the next non-case-ignorable character, as (word slot, byte
  // offset); slot == held_.size() is the current word. Words completed while a sigma is
  // undecided wait in held_, so words come out in text order.
  std::vector<std::pair<size_t, size_t>> pending_;
  std::vector<std::string> held_;
};

}  // namespace cbtm::tfidf
