// The hand-written GPT-2 pre-tokeniser against Python's `regex` module (golden splits from
// gen_pretokenizer_golden.py) and hand-checked splits.
#include "support/catch.h"

#include <random>
#include <string>
#include <vector>

#include "pretokenizer.h"

using cbtm::bpe::CharClass;
using cbtm::bpe::classify;
using cbtm::bpe::next_char;
using cbtm::bpe::pretokenize;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  for (auto v : pretokenize(s)) out.emplace_back(v);
  return out;
}

struct Golden {
  std::string text;
  std::vector<std::string> pieces;
};

const std::vector<Golden> kGolden = {
#include "pretokenizer_golden.inc"
};

}  // namespace

TEST_CASE("pretokenize matches GPT-2's regex under Python regex", "[bpe][pretokenizer]") {
  REQUIRE(kGolden.size() >= 25);
  for (const auto& g : kGolden) {
    INFO("text: " << g.text);
    CHECK(split(g.text) == g.pieces);
  }
}

TEST_CASE("pretokenize hand-checked splits", "[bpe][pretokenizer]") {
  using V = std::vector<std::string>;
  // Contractions are their own pieces, case-sensitively.
  CHECK(split("don't") == V{"don", "'t"});
  CHECK(split("we'll they're I've") == V{"we", "'ll", " they", "'re", " I", "'ve"});
  CHECK(split("DON'T") == V{"DON", "'", "T"});
  // One leading space joins the following run; extra spaces stand alone.
  CHECK(split("a  b") == V{"a", " ", " b"});
  CHECK(split("a   b") == V{"a", "  ", " b"});
  // Letters, numbers and punctuation runs split apart.
  CHECK(split("abc123!!def") == V{"abc", "123", "!!", "def"});
  CHECK(split("pi = 3.14") == V{"pi", " =", " 3", ".", "14"});
  CHECK(split("wow!!! ok") == V{"wow", "!!!", " ok"});
  // \s+(?!\S): a whitespace run leaves its last character to the next piece...
  CHECK(split("a\n\nb") == V{"a", "\n", "\n", "b"});
  CHECK(split("a \n b") == V{"a", " \n", " b"});
  // ...but keeps it at the end of the text.
  CHECK(split("a\n\n") == V{"a", "\n\n"});
  CHECK(split("end   ") == V{"end", "   "});
  // Unicode letters and numbers.
  CHECK(split("caf\xC3\xA9 \xD0\xBC\xD0\xB8\xD1\x80") ==
        V{"caf\xC3\xA9", " \xD0\xBC\xD0\xB8\xD1\x80"});
  CHECK(split("x\xC2\xB2") == V{"x", "\xC2\xB2"});  // superscript two is \p{N}
  CHECK(split("").empty());
}

TEST_CASE("classify and next_char", "[bpe][pretokenizer]") {
  CHECK(classify('a') == CharClass::kLetter);
  CHECK(classify('7') == CharClass::kNumber);
  CHECK(classify('\t') == CharClass::kSpace);
  CHECK(classify(0x1C) == CharClass::kOther);  // not White_Space
  CHECK(classify(0x00E9) == CharClass::kLetter);
  CHECK(classify(0x0663) == CharClass::kNumber);  // Arabic-Indic three
  CHECK(classify(0x3000) == CharClass::kSpace);
  CHECK(classify(0x65E5) == CharClass::kLetter);  // CJK
  CHECK(classify(0x1F600) == CharClass::kOther);  // emoji
  CHECK(classify(0x10FFFF) == CharClass::kOther);

  auto one = [](const std::string& s) { return next_char(s, 0); };
  CHECK(one("\xC3\xA9").len == 2);
  CHECK(one("\xE6\x97\xA5").cp == 0x65E5);
  CHECK(one("\xF0\x9F\x98\x80").len == 4);
  // Invalid: stray continuation, overlong, surrogate, > U+10FFFF, truncated, C0/F5.
  for (std::string bad : {"\x80", "\xC0\x80", "\xE0\x80\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                          "\xE6\x97", "\xC1\xBF", "\xF5\x80\x80\x80", "\xFF"}) {
    INFO("bytes " << bad.size());
    const auto c = one(bad);
    CHECK(c.len == 1);
    CHECK(c.cls == CharClass::kOther);
  }
}

TEST_CASE("pretokenize handles invalid UTF-8 as other characters", "[bpe][pretokenizer]") {
  using V = std::vector<std::string>;
  CHECK(split("ab\xFF\xFE cd") == V{"ab", "\xFF\xFE", " cd"});
  CHECK(split(" \x80x") == V{" \x80", "x"});
  CHECK(split("\xE6\x97") == V{"\xE6\x97"});  // truncated sequence: two other bytes
  // Pieces are never empty and always concatenate back to the input.
  std::mt19937 rng(7);
  const std::string alphabet[] = {"a", "Z", "1", " ", "  ", "\n", "'", "'s", "!", "\xC3\xA9",
                                  "\xE6\x97\xA5", "\xFF", "\x80", "\xF0\x9F", "\t", "\xC2\xA0"};
  for (int t = 0; t < 2000; ++t) {
    std::string s;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) s += alphabet[rng() % (sizeof(alphabet) / sizeof(alphabet[0]))];
    std::string joined;
    for (auto p : pretokenize(s)) {
      REQUIRE(!p.empty());
      joined += p;
    }
    REQUIRE(joined == s);
  }
}
