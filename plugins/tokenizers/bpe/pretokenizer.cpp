#include "pretokenizer.h"

#include <algorithm>
#include <array>

namespace cbtm::bpe {
namespace {

struct Range {
  char32_t first, last;
  CharClass cls;
};

constexpr Range kRanges[] = {
#include "unicode_classes_table.inc"
};

constexpr std::array<CharClass, 128> make_ascii_table() {
  std::array<CharClass, 128> t{};
  for (int c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
      t[c] = CharClass::kLetter;
    else if (c >= '0' && c <= '9')
      t[c] = CharClass::kNumber;
    else if (c == ' ' || (c >= '\t' && c <= '\r'))
      t[c] = CharClass::kSpace;
    else
      t[c] = CharClass::kOther;
  }
  return t;
}
constexpr std::array<CharClass, 128> kAscii = make_ascii_table();

inline bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

constexpr Utf8Char kInvalid{CharClass::kOther, 1, 0xFFFFFFFFu};

}  // namespace

CharClass classify(char32_t cp) {
  if (cp < 128) return kAscii[cp];
  auto it = std::upper_bound(std::begin(kRanges), std::end(kRanges), cp,
                             [](char32_t v, const Range& r) { return v < r.first; });
  if (it == std::begin(kRanges)) return CharClass::kOther;
  --it;
  return cp <= it->last ? it->cls : CharClass::kOther;
}

Utf8Char next_char(std::string_view s, size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  const size_t left = s.size() - pos;
  const unsigned char c0 = p[0];
  if (c0 < 0x80) return {kAscii[c0], 1, c0};
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    if (left < 2 || !is_cont(p[1])) return kInvalid;
    char32_t cp = (char32_t(c0 & 0x1F) << 6) | (p[1] & 0x3F);
    return {classify(cp), 2, cp};
  }
  if (c0 >= 0xE0 && c0 <= 0xEF) {
    if (left < 3 || !is_cont(p[1]) || !is_cont(p[2])) return kInvalid;
    if (c0 == 0xE0 && p[1] < 0xA0) return kInvalid;   // overlong
    if (c0 == 0xED && p[1] >= 0xA0) return kInvalid;  // surrogate
    char32_t cp = (char32_t(c0 & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    return {classify(cp), 3, cp};
  }
  if (c0 >= 0xF0 && c0 <= 0xF4) {
    if (left < 4 || !is_cont(p[1]) || !is_cont(p[2]) || !is_cont(p[3])) return kInvalid;
    if (c0 == 0xF0 && p[1] < 0x90) return kInvalid;   // overlong
    if (c0 == 0xF4 && p[1] >= 0x90) return kInvalid;  // above U+10FFFF
    char32_t cp = (char32_t(c0 & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) |
                  (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    return {classify(cp), 4, cp};
  }
  return kInvalid;  // continuation byte, 0xC0/0xC1 or 0xF5..0xFF
}

void pretokenize(std::string_view text, std::vector<std::string_view>& out) {
  const size_t n = text.size();
  size_t pos = 0;
  auto emit = [&](size_t end) {
    out.push_back(text.substr(pos, end - pos));
    pos = end;
  };
  while (pos < n) {
    // 's|'t|'re|'ve|'m|'ll|'d
    if (text[pos] == '\'' && pos + 1 < n) {
      const char c = text[pos + 1];
      if (c == 's' || c == 't' || c == 'm' || c == 'd') {
        emit(pos + 2);
        continue;
      }
      if (pos + 2 < n) {
        const std::string_view two = text.substr(pos + 1, 2);
        if (two == "re" || two == "ve" || two == "ll") {
          emit(pos + 3);
          continue;
        }
      }
    }
    // ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one class.
    size_t p = pos;
    if (text[p] == ' ' && p + 1 < n && next_char(text, p + 1).cls != CharClass::kSpace) ++p;
    Utf8Char c = next_char(text, p);
    if (c.cls != CharClass::kSpace) {
      size_t q = p + c.len;
      while (q < n) {
        const Utf8Char d = next_char(text, q);
        if (d.cls != c.cls) break;
        q += d.len;
      }
      emit(q);
      continue;
    }
    // `\s+(?!\S)|\s+`: a whitespace run; before a non-space character its last character is
    // left to start the next piece (unless the run is a single character).
    size_t q = pos, last = pos;
    while (q < n) {
      const Utf8Char d = next_char(text, q);
      if (d.cls != CharClass::kSpace) break;
      last = q;
      q += d.len;
    }
    emit(q < n && last > pos ? last : q);
  }
}

std::vector<std::string_view> pretokenize(std::string_view text) {
  std::vector<std::string_view> out;
  pretokenize(text, out);
  return out;
}

}  // namespace cbtm::bpe
