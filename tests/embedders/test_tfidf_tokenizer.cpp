// The word splitter and term filter of the tfidf embedder against scikit-learn's analyzer.
// Expected lists: tests/embedders/golden/tokenizer_cases.py (scikit-learn 1.2.1, Python 3.11).
#include "support/catch.h"

#include <cctype>
#include <random>
#include <string>
#include <vector>

#include "tfidf_tokenizer.h"
#include "unicode.h"
#include "word_stream.h"

using namespace cbtm::tfidf;
using Words = std::vector<std::string>;

namespace {

Words words_of(const std::string& text) {
  WordStream ws;
  Words out;
  ws.feed(text, out);
  ws.finish(out);
  return out;
}

Words terms_of(const std::string& text) { return TfidfTokenizer().tokenize(text); }

struct Case {
  std::string text;
  Words terms;  // reference analyzer: stop words and numbers dropped
  Words words;  // scikit-learn's default analyzer: everything kept
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"The Quick brown FOX jumps over the lazy dog",
       {"quick", "brown", "fox", "jumps", "lazy", "dog"},
       {"the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"}},
      {"snake_case __init__ a_b _x x_",
       {"snake_case", "__init__", "a_b", "_x", "x_"},
       {"snake_case", "__init__", "a_b", "_x", "x_"}},
      {"don't won't it's O'Reilly's", {"don", "won", "reilly"}, {"don", "won", "it", "reilly"}},
      {"Café naïve Ünïcödé straße ОДИН Ελλάδα",
       {"café", "naïve", "ünïcödé", "straße", "один", "ελλάδα"},
       {"café", "naïve", "ünïcödé", "straße", "один", "ελλάδα"}},
      // U+0130 lowercases to "i" + U+0307 (a combining mark, not \w): the word splits.
      {"İstanbul KİLİM", {"stanbul", "ki", "li"}, {"stanbul", "ki", "li"}},
      {"2nd 3D x86 4K 10 1.5 ²nd \u0663abc v2",
       {"x86", "v2"},
       {"2nd", "3d", "x86", "4k", "10", "²nd", "\u0663abc", "v2"}},
      {"a b c I x y", {}, {}},
      {"state-of-the-art e-mail foo.bar foo/bar",
       {"state", "art", "mail", "foo", "bar", "foo", "bar"},
       {"state", "of", "the", "art", "mail", "foo", "bar", "foo", "bar"}},
      // Final sigma: decided past case-ignorable characters (' and .).
      {"ΟΔΟΣ ΣΟΦΟΣ. ΑΣ'Α ΑΣ' Σ ΑΣ.Σ",
       {"οδος", "σοφος", "ασ", "ας", "ασ"},
       {"οδος", "σοφος", "ασ", "ας", "ασ"}},
      {"日本語のテキスト 中文 한국어",
       {"日本語のテキスト", "中文", "한국어"},
       {"日本語のテキスト", "中文", "한국어"}},
  };
  return c;
}

}  // namespace

TEST_CASE("tfidf: tokenizer matches scikit-learn on hand-written strings", "[tfidf][tokenizer]") {
  for (const auto& c : cases()) {
    INFO(c.text);
    CHECK(words_of(c.text) == c.words);
    CHECK(terms_of(c.text) == c.terms);
  }
}

TEST_CASE("tfidf: tokenizer options turn off stop words and the number rule",
          "[tfidf][tokenizer]") {
  TfidfTokenizer keep_all({/*english_stop_words=*/false, /*drop_numbers=*/false});
  CHECK(keep_all.tokenize("The 2nd of the x86") == Words{"the", "2nd", "of", "the", "x86"});
  TfidfTokenizer numbers_only({/*english_stop_words=*/false, /*drop_numbers=*/true});
  CHECK(numbers_only.tokenize("The 2nd of the x86") == Words{"the", "of", "the", "x86"});
  TfidfTokenizer stop_only({/*english_stop_words=*/true, /*drop_numbers=*/false});
  CHECK(stop_only.tokenize("The 2nd of the x86") == Words{"2nd", "x86"});
}

TEST_CASE("tfidf: stop-word list is scikit-learn's", "[tfidf][tokenizer]") {
  const auto& w = english_stop_words();
  CHECK(w.size() == 318);
  CHECK(std::is_sorted(w.begin(), w.end()));
  CHECK(is_english_stop_word("the"));
  CHECK(is_english_stop_word("nevertheless"));
  CHECK(is_english_stop_word("thereupon"));
  CHECK_FALSE(is_english_stop_word("kernel"));
  CHECK_FALSE(is_english_stop_word("#NUMBER"));  // never produced: '#' is not a word character
}

TEST_CASE("tfidf: invalid UTF-8 bytes separate words", "[tfidf][tokenizer]") {
  CHECK(words_of("abc\xff"
                 "def") == Words{"abc", "def"});
  CHECK(words_of("abc\x80\x80xyz") == Words{"abc", "xyz"});
  CHECK(words_of("ab\xe2\x82") == Words{"ab"});              // truncated 3-byte sequence at the end
  CHECK(words_of("ab\xe2\x82zz") == Words{"ab", "zz"});      // truncated in the middle
  CHECK(words_of("ab\xc0\xafzz") == Words{"ab", "zz"});      // overlong '/'
  CHECK(words_of("ab\xed\xa0\x80zz") == Words{"ab", "zz"});  // surrogate U+D800
  CHECK(words_of("caf\xc3\xa9s") == Words{"caf\xc3\xa9s"});
}

TEST_CASE("tfidf: unicode properties follow Python", "[tfidf][tokenizer]") {
  using namespace cbtm::tfidf::unicode;
  CHECK(std::string(version()) == "14.0.0");
  CHECK(is_word(U'_'));
  CHECK(is_word(U'é'));
  CHECK(is_word(U'²'));       // numeric
  CHECK(is_word(U'\u00bd'));  // ½ is numeric, hence \w
  CHECK_FALSE(is_word(U'\u0307'));
  CHECK_FALSE(is_word(U'-'));
  CHECK(is_digit(U'²'));
  CHECK_FALSE(is_digit(U'\u00bd'));  // '½'.isdigit() is False
  char32_t low[2];
  CHECK(to_lower(U'Ä', low) == 1);
  CHECK(low[0] == U'ä');
  CHECK(to_lower(U'\u0130', low) == 2);
  CHECK((low[0] == U'i' && low[1] == U'\u0307'));
  CHECK(to_lower(U'\u1E9E', low) == 1);  // capital sharp s
  CHECK(low[0] == U'ß');
}

TEST_CASE("tfidf: feeding in pieces gives the words of the whole text", "[tfidf][tokenizer]") {
  std::string text;
  for (const auto& c : cases()) text += c.text + " \xff ";
  text += "tail ΟΔΟΣ";
  const Words whole = words_of(text);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    WordStream ws;
    Words out;
    size_t at = 0;
    while (at < text.size()) {
      const size_t len = std::uniform_int_distribution<size_t>(0, 6)(rng);
      ws.feed(std::string_view(text).substr(at, len), out);
      at += len;
    }
    ws.finish(out);
    REQUIRE(out == whole);
  }
  // finish() resets the stream: a second text is tokenized independently.
  WordStream ws;
  Words out;
  ws.feed("ΑΣ", out);
  ws.finish(out);
  ws.feed("Σ", out);
  ws.finish(out);
  CHECK(out == Words{"ας"});
  CHECK(ws.idle());
}

TEST_CASE("tfidf: ASCII text in long and short pieces gives the plain regex's words",
          "[tfidf][tokenizer]") {
  // Long pieces take the vectorised ASCII path (16+ bytes), short ones the byte loop;
  // both must give the runs of [A-Za-z0-9_] of at least 2 characters, lowercased, across
  // piece boundaries, and agree with pieces that contain non-ASCII bytes.
  std::mt19937 rng(11);
  const std::string alphabet = "abcXYZ019_ .,;'-\n\t";
  for (int trial = 0; trial < 60; ++trial) {
    std::string text;
    const size_t n = std::uniform_int_distribution<size_t>(0, 700)(rng);
    for (size_t i = 0; i < n; ++i)
      text += alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
    Words want;
    std::string run;
    for (size_t i = 0; i <= text.size(); ++i) {
      const char c = i < text.size() ? text[i] : ' ';
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
        run += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else {
        if (run.size() >= 2) want.push_back(run);
        run.clear();
      }
    }
    REQUIRE(words_of(text) == want);
    for (size_t max_piece : {3, 17, 64, 65, 200}) {
      WordStream ws;
      Words out;
      for (size_t at = 0; at < text.size();) {
        const size_t len = std::uniform_int_distribution<size_t>(1, max_piece)(rng);
        ws.feed(std::string_view(text).substr(at, len), out);
        at += len;
      }
      ws.finish(out);
      INFO("pieces of up to " << max_piece << " bytes");
      REQUIRE(out == want);
    }
  }
  // A non-ASCII piece between ASCII ones: the carried-over word and the look-behind.
  WordStream ws;
  Words out;
  ws.feed("The quick brown fo", out);
  ws.feed("x jumps \xc3\xa9t\xc3\xa9 ov", out);
  ws.feed("er the lazy dog, again and again and again", out);
  ws.finish(out);
  CHECK(out == Words{"the", "quick", "brown", "fox", "jumps", "été", "over", "the", "lazy",
                     "dog", "again", "and", "again", "and", "again"});
}
