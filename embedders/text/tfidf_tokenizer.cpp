#include "tfidf_tokenizer.h"

#include <algorithm>
#include <unordered_set>

#include "term_table.h"
#include "unicode.h"
#include "word_stream.h"

namespace cbtm::tfidf {

const std::vector<std::string>& english_stop_words() {
  // Copied from scikit-learn 1.2.1, sklearn/feature_extraction/_stop_words.py.
  static const std::vector<std::string> words = {
      "a",          "about",      "above",      "across",       "after",      "afterwards",
      "again",      "against",    "all",        "almost",       "alone",      "along",
      "already",    "also",       "although",   "always",       "am",         "among",
      "amongst",    "amoungst",   "amount",     "an",           "and",        "another",
      "any",        "anyhow",     "anyone",     "anything",     "anyway",     "anywhere",
      "are",        "around",     "as",         "at",           "back",       "be",
      "became",     "because",    "become",     "becomes",      "becoming",   "been",
      "before",     "beforehand", "behind",     "being",        "below",      "beside",
      "besides",    "between",    "beyond",     "bill",         "both",       "bottom",
      "but",        "by",         "call",       "can",          "cannot",     "cant",
      "co",         "con",        "could",      "couldnt",      "cry",        "de",
      "describe",   "detail",     "do",         "done",         "down",       "due",
      "during",     "each",       "eg",         "eight",        "either",     "eleven",
      "else",       "elsewhere",  "empty",      "enough",       "etc",        "even",
      "ever",       "every",      "everyone",   "everything",   "everywhere", "except",
      "few",        "fifteen",    "fifty",      "fill",         "find",       "fire",
      "first",      "five",       "for",        "former",       "formerly",   "forty",
      "found",      "four",       "from",       "front",        "full",       "further",
      "get",        "give",       "go",         "had",          "has",        "hasnt",
      "have",       "he",         "hence",      "her",          "here",       "hereafter",
      "hereby",     "herein",     "hereupon",   "hers",         "herself",    "him",
      "himself",    "his",        "how",        "however",      "hundred",    "i",
      "ie",         "if",         "in",         "inc",          "indeed",     "interest",
      "into",       "is",         "it",         "its",          "itself",     "keep",
      "last",       "latter",     "latterly",   "least",        "less",       "ltd",
      "made",       "many",       "may",        "me",           "meanwhile",  "might",
      "mill",       "mine",       "more",       "moreover",     "most",       "mostly",
      "move",       "much",       "must",       "my",           "myself",     "name",
      "namely",     "neither",    "never",      "nevertheless", "next",       "nine",
      "no",         "nobody",     "none",       "noone",        "nor",        "not",
      "nothing",    "now",        "nowhere",    "of",           "off",        "often",
      "on",         "once",       "one",        "only",         "onto",       "or",
      "other",      "others",     "otherwise",  "our",          "ours",       "ourselves",
      "out",        "over",       "own",        "part",         "per",        "perhaps",
      "please",     "put",        "rather",     "re",           "same",       "see",
      "seem",       "seemed",     "seeming",    "seems",        "serious",    "several",
      "she",        "should",     "show",       "side",         "since",      "sincere",
      "six",        "sixty",      "so",         "some",         "somehow",    "someone",
      "something",  "sometime",   "sometimes",  "somewhere",    "still",      "such",
      "system",     "take",       "ten",        "than",         "that",       "the",
      "their",      "them",       "themselves", "then",         "thence",     "there",
      "thereafter", "thereby",    "therefore",  "therein",      "thereupon",  "these",
      "they",       "thick",      "thin",       "third",        "this",       "those",
      "though",     "three",      "through",    "throughout",   "thru",       "thus",
      "to",         "together",   "too",        "top",          "toward",     "towards",
      "twelve",     "twenty",     "two",        "un",           "under",      "until",
      "up",         "upon",       "us",         "very",         "via",        "was",
      "we",         "well",       "were",       "what",         "whatever",   "when",
      "whence",     "whenever",   "where",      "whereafter",   "whereas",    "whereby",
      "wherein",    "whereupon",  "wherever",   "whether",      "which",      "while",
      "whither",    "who",        "whoever",    "whole",        "whom",       "whose",
      "why",        "will",       "with",       "within",       "without",    "would",
      "yet",        "you",        "your",       "yours",        "yourself",   "yourselves",
  };
  return words;
}

bool is_english_stop_word(const std::string& word) {
  static const std::unordered_set<std::string> set(english_stop_words().begin(),
                                                   english_stop_words().end());
  return word.size() <= 12 && set.count(word) > 0;  // the longest stop word has 12 letters
}

bool starts_with_digit(const std::string& word) {
  if (word.empty()) return false;
  const unsigned char b = static_cast<unsigned char>(word[0]);
  if (b < 0x80) return b >= '0' && b <= '9';
  return unicode::is_digit(unicode::first_code_point(word));
}

bool TfidfTokenizer::is_term(const std::string& word) const { return keeps(word); }

bool TfidfTokenizer::keeps(std::string_view word) const {
  if (word.empty()) return true;
  if (options_.drop_numbers) {
    const unsigned char b = static_cast<unsigned char>(word[0]);
    if (b < 0x80 ? (b >= '0' && b <= '9')
                 : unicode::is_digit(unicode::first_code_point(std::string(word.substr(0, 4)))))
      return false;
  }
  if (options_.english_stop_words && word.size() <= 12) {  // the longest stop word has 12
    // A cheap filter first: stop words are ASCII lowercase; (length, first, last letter)
    // of each one is marked. Then words of up to 8 bytes are looked up by their bytes as
    // one integer (short_key) in a small open-addressing table, longer ones by string.
    struct StopWords {
      TermTable table;
      uint32_t last_letters[13][26] = {};  // bit c: some stop word ends with 'a' + c
      enum { kBits = 10 };
      uint64_t key[1 << kBits] = {};
      uint8_t len[1 << kBits] = {};        // 0: empty slot
      static size_t slot(uint64_t k, size_t n) {
        return static_cast<size_t>(((k ^ n) * 0x9E3779B97F4A7C15ull) >> (64 - kBits));
      }
      StopWords() {
        for (const auto& w : english_stop_words()) {
          table.insert(w);
          last_letters[w.size()][w.front() - 'a'] |= 1u << (w.back() - 'a');
          if (w.size() > 8) continue;
          const uint64_t k = short_key(w.data(), w.size());
          size_t i = slot(k, w.size());
          while (len[i] != 0) i = (i + 1) & ((1 << kBits) - 1);
          key[i] = k;
          len[i] = static_cast<uint8_t>(w.size());
        }
      }
      bool has(std::string_view w) const {
        if (w.size() > 8) return table.find(w) >= 0;
        const uint64_t k = short_key(w.data(), w.size());
        for (size_t i = slot(k, w.size());; i = (i + 1) & ((1 << kBits) - 1)) {
          if (len[i] == 0) return false;
          if (len[i] == w.size() && key[i] == k) return true;
        }
      }
    };
    static const StopWords stop;
    const unsigned char f = static_cast<unsigned char>(word.front()) - 'a';
    const unsigned char l = static_cast<unsigned char>(word.back()) - 'a';
    if (f < 26 && l < 26 && (stop.last_letters[word.size()][f] >> l & 1u) && stop.has(word))
      return false;
  }
  return true;
}

void TfidfTokenizer::filter(std::vector<std::string>& words) const {
  words.erase(std::remove_if(words.begin(), words.end(),
                             [this](const std::string& w) { return !is_term(w); }),
              words.end());
}

std::vector<std::string> TfidfTokenizer::tokenize(std::string_view text) const {
  WordStream ws;
  std::vector<std::string> words;
  ws.feed(text, words);
  ws.finish(words);
  filter(words);
  return words;
}

}  // namespace cbtm::tfidf
