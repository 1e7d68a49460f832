#pragma once
/// \file unicode.h
/// The Unicode character properties behind scikit-learn's default tokenizer
/// (`re.findall(r"(?u)\b\w\w+\b", text.lower())`) and the reference number rule
/// (`token[0].isdigit()`), with Python 3.11's exact semantics (Unicode 14.0).
///
/// \code
///   char32_t low[2];
///   int n = unicode::to_lower(U'\u0130', low);   // 2: 'i', U+0307
///   unicode::is_word(U'é');                        // true
/// \endcode
#include <cstdint>
#include <string>

namespace cbtm::tfidf::unicode {

/// Python's `\w` for str patterns: alphanumeric per Unicode, or '_'.
bool is_word(char32_t c);
/// Python's str.isdigit() of one character (Numeric_Type Digit or Decimal: '7', '²', '٣').
bool is_digit(char32_t c);
/// Cased and not Case_Ignorable (the letters that decide Final_Sigma).
bool is_cased(char32_t c);
/// Case_Ignorable (apostrophe, period, colon, combining marks, modifier letters, ...).
bool is_case_ignorable(char32_t c);
/// Python's str.lower() of one character, except that capital sigma (U+03A3) always gives
/// small sigma here (its final form depends on context; see WordStream). Writes 1 or 2
/// code points to `out` and returns how many.
int to_lower(char32_t c, char32_t out[2]);

/// Appends the UTF-8 encoding of `c` to `s`.
void append_utf8(std::string& s, char32_t c);
/// The first code point of the valid UTF-8 string `s` (0 for an empty string).
char32_t first_code_point(const std::string& s);

/// The Unicode version of the tables ("14.0.0").
const char* version();

}  // namespace cbtm::tfidf::unicode
