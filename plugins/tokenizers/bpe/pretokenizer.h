#pragma once
/// \file pretokenizer.h
/// GPT-2's pre-tokeniser, written by hand over UTF-8 code points. It splits text exactly as
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// does under Python's `regex` module (the character classes come from that module, see
/// tools/gen_unicode_classes.py). Bytes that are not valid UTF-8 count as one "other"
/// character each, so every input, valid UTF-8 or not, is split into pieces that concatenate
/// back to exactly the input bytes.
///
/// \code
///   std::vector<std::string_view> p = pretokenize("Hello  world's");
///   // {"Hello", " ", " world", "'s"}
/// \endcode
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace cbtm::bpe {

/// The classes the pattern distinguishes.
enum class CharClass : uint8_t { kOther, kLetter, kNumber, kSpace };

/// Class of a Unicode code point (\p{L}, \p{N}, \s, or anything else).
CharClass classify(char32_t cp);

/// One decoded character: its class and its length in bytes (1 for an invalid byte).
struct Utf8Char {
  CharClass cls;
  uint32_t len;
  char32_t cp;  ///< the code point, or 0xFFFFFFFF for an invalid byte
};

/// Decodes the character starting at `pos` (< text.size()). Overlong forms, surrogates,
/// code points above U+10FFFF and truncated sequences are invalid: one byte of class kOther.
Utf8Char next_char(std::string_view text, size_t pos);

/// Appends the pre-tokens of `text` to `out` (views into `text`, in order, never empty).
void pretokenize(std::string_view text, std::vector<std::string_view>& out);

/// The pre-tokens of `text`.
std::vector<std::string_view> pretokenize(std::string_view text);

}  // namespace cbtm::bpe
