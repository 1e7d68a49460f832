#include "unicode.h"

#include <algorithm>

#include "unicode_tables.h"

namespace cbtm::tfidf::unicode {
namespace {

bool in_ranges(const Range* r, size_t n, char32_t c) {
  const Range* end = r + n;
  const Range* it =
      std::upper_bound(r, end, c, [](char32_t v, const Range& x) { return v < x.first; });
  return it != r && c <= (it - 1)->last;
}

}  // namespace

bool is_word(char32_t c) {
  if (c < 0x80)
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  return in_ranges(kWord, kWordSize, c);
}
bool is_digit(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return in_ranges(kDigit, kDigitSize, c);
}
bool is_cased(char32_t c) { return in_ranges(kCased, kCasedSize, c); }
bool is_case_ignorable(char32_t c) { return in_ranges(kCaseIgnorable, kCaseIgnorableSize, c); }

int to_lower(char32_t c, char32_t out[2]) {
  if (c < 0x80) {
    out[0] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
    return 1;
  }
  if (c == 0x3A3) {
    out[0] = 0x3C3;
    return 1;
  }
  const LowerEntry* end = kLower + kLowerSize;
  const LowerEntry* it =
      std::lower_bound(kLower, end, c, [](const LowerEntry& e, char32_t v) { return e.from < v; });
  if (it == end || it->from != c) {
    out[0] = c;
    return 1;
  }
  out[0] = it->to;
  if (it->to2 == 0) return 1;
  out[1] = it->to2;
  return 2;
}

void append_utf8(std::string& s, char32_t c) {
  if (c < 0x80) {
    s.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (c >> 6)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (c >> 12)));
    s.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (c >> 18)));
    s.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

char32_t first_code_point(const std::string& s) {
  if (s.empty()) return 0;
  const auto b = [&](size_t i) { return static_cast<char32_t>(static_cast<unsigned char>(s[i])); };
  const char32_t b0 = b(0);
  if (b0 < 0x80) return b0;
  if (b0 < 0xE0 && s.size() >= 2) return ((b0 & 0x1F) << 6) | (b(1) & 0x3F);
  if (b0 < 0xF0 && s.size() >= 3) return ((b0 & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  if (s.size() >= 4)
    return ((b0 & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  return 0;
}

const char* version() { return kUnicodeVersion; }

}  // namespace cbtm::tfidf::unicode
