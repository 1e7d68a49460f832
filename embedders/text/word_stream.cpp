#include "word_stream.h"

#include <immintrin.h>

#include <algorithm>

#include "unicode.h"

namespace cbtm::tfidf {
namespace {

constexpr char32_t kCapitalSigma = 0x3A3;
// Byte flags for ASCII: word character, case-ignorable, cased.
constexpr uint8_t kWord = 1, kIgnorable = 2, kCasedFlag = 4;

struct AsciiTable {
  uint8_t flags[128] = {};
  AsciiTable() {
    for (char32_t c = 0; c < 128; ++c)
      flags[c] = (unicode::is_word(c) ? kWord : 0) |
                 (unicode::is_case_ignorable(c) ? kIgnorable : 0) |
                 (unicode::is_cased(c) ? kCasedFlag : 0);
  }
};
const AsciiTable& ascii() {
  static const AsciiTable t;
  return t;
}

/// Appends the words to a vector of strings.
class VectorSink : public WordSink {
 public:
  explicit VectorSink(std::vector<std::string>& out) : out_(out) {}
  void word(std::string_view w) override { out_.emplace_back(w); }

 private:
  std::vector<std::string>& out_;
};

}  // namespace

bool WordStream::idle() const {
  return need_ == 0 && word_len_ == 0 && pending_.empty() && held_.empty();
}

void WordStream::feed(std::string_view bytes, std::vector<std::string>& out) {
  VectorSink sink(out);
  feed(bytes, sink);
}

void WordStream::finish(std::vector<std::string>& out) {
  VectorSink sink(out);
  finish(sink);
}

namespace {

// The ASCII classification of a piece, 64 bytes at a time with AVX-512BW: bit i of
// mask[i / 64] says whether byte i is a word character ([A-Za-z0-9_]); `low` receives the
// piece lowercased. False (nothing written) if the CPU lacks AVX-512BW or a byte is not ASCII.
__attribute__((target("avx512f,avx512bw"))) bool classify_ascii512(const unsigned char* data,
                                                                   size_t n, char* low,
                                                                   uint64_t* mask) {
  const __m512i a = _mm512_set1_epi8('a'), A = _mm512_set1_epi8('A'), zero = _mm512_set1_epi8('0');
  const __m512i n26 = _mm512_set1_epi8(26), n10 = _mm512_set1_epi8(10);
  const __m512i us = _mm512_set1_epi8('_'), bit5 = _mm512_set1_epi8(0x20);
  for (size_t i = 0; i < n; i += 64) {
    const size_t left = n - i;
    const __mmask64 in = left >= 64 ? ~__mmask64(0) : (__mmask64(1) << left) - 1;
    const __m512i v = _mm512_maskz_loadu_epi8(in, data + i);
    if (_mm512_movepi8_mask(v)) return false;  // a byte >= 0x80
    const __mmask64 upper = _mm512_cmplt_epu8_mask(_mm512_sub_epi8(v, A), n26);
    const __mmask64 alpha = _mm512_cmplt_epu8_mask(_mm512_sub_epi8(_mm512_or_si512(v, bit5), a), n26);
    const __mmask64 digit = _mm512_cmplt_epu8_mask(_mm512_sub_epi8(v, zero), n10);
    const __mmask64 under = _mm512_cmpeq_epi8_mask(v, us);
    mask[i / 64] = (alpha | digit | under) & in;
    _mm512_mask_storeu_epi8(low + i, in, _mm512_mask_add_epi8(v, upper, v, bit5));
  }
  return true;
}

bool have_avx512bw() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return yes;
}

// The first index >= pos whose bit equals `want`, or n.
inline size_t next_bit(const uint64_t* mask, size_t pos, size_t n, bool want) {
  while (pos < n) {
    uint64_t w = mask[pos / 64];
    if (!want) w = ~w;
    w &= ~uint64_t(0) << (pos % 64);
    if (w) return std::min(n, (pos & ~size_t(63)) + static_cast<size_t>(__builtin_ctzll(w)));
    pos = (pos & ~size_t(63)) + 64;
  }
  return n;
}

}  // namespace

bool WordStream::feed_ascii(std::string_view bytes, WordSink& out) {
  // Only when no character or sigma decision is pending and every byte is ASCII: then
  // words are the runs of [A-Za-z0-9_], lowercased, and the only state to carry is the
  // unfinished last run and the Final_Sigma look-behind.
  if (need_ != 0 || !pending_.empty()) return false;
  const size_t n = bytes.size();
  const unsigned char* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const uint8_t* flags = ascii().flags;
  // The piece lowercased at once; complete words are then handed out as views into it,
  // with no per-word copy.
  lower_.resize(n);
  char* low = &lower_[0];
  if (have_avx512bw() && n >= 16) {
    mask_.resize((n + 63) / 64);
    if (!classify_ascii512(data, n, low, mask_.data())) return false;
    size_t i = next_bit(mask_.data(), 0, n, true);
    if (word_len_ > 0 && i > 0) end_word(out);  // the carried-over word ended at byte 0
    while (i < n) {
      const size_t j = next_bit(mask_.data(), i, n, false);
      if (word_len_ == 0 && j < n) {
        if (j - i >= 2) out.word(std::string_view(low + i, j - i));  // 1-character words drop
      } else {
        word_.append(low + i, j - i);  // continues a carried-over word / may continue
        word_len_ += static_cast<int64_t>(j - i);
        if (j < n) end_word(out);
      }
      i = next_bit(mask_.data(), j, n, true);
    }
  } else {
    unsigned char any = 0;
    for (size_t i = 0; i < n; ++i) any |= data[i];
    if (any & 0x80) return false;
    for (size_t i = 0; i < n; ++i) {
      const unsigned char c = data[i];
      low[i] = static_cast<char>(c + ((static_cast<unsigned char>(c - 'A') < 26u) << 5));
    }
    size_t i = 0;
    while (i < n) {
      if (!(flags[data[i]] & kWord)) {
        if (word_len_ > 0) end_word(out);  // a word carried over from the previous piece
        ++i;
        continue;
      }
      size_t j = i + 1;
      while (j < n && (flags[data[j]] & kWord)) ++j;
      if (word_len_ == 0 && j < n) {
        if (j - i >= 2) out.word(std::string_view(low + i, j - i));  // 1-character words drop
      } else {
        // Continues the carried-over word, or reaches the end of the piece and may
        // continue in the next one: through the word buffer.
        word_.append(low + i, j - i);
        word_len_ += static_cast<int64_t>(j - i);
        if (j < n) end_word(out);
      }
      i = j + (j < n);  // the byte at j is not a word character
    }
  }
  // The look-behind: whether the last character that is not case-ignorable was cased.
  for (size_t t = n; t-- > 0;) {
    const uint8_t f = flags[data[t]];
    if (f & kIgnorable) continue;
    prev_cased_ = (f & kCasedFlag) != 0;
    break;
  }
  return true;
}

void WordStream::feed(std::string_view bytes, WordSink& out) {
  if (feed_ascii(bytes, out)) return;
  const uint8_t* flags = ascii().flags;
  const size_t n = bytes.size();
  const char* data = bytes.data();
  for (size_t i = 0; i < n; ++i) {
    const unsigned char b = static_cast<unsigned char>(bytes[i]);
    if (need_ > 0) {
      if (b >= lo_ && b <= hi_) {
        cp_ = (cp_ << 6) | (b & 0x3F);
        lo_ = 0x80;
        hi_ = 0xBF;
        if (--need_ == 0) code_point(cp_, out);
        continue;
      }
      need_ = 0;  // truncated sequence: one non-word character, then re-read b
      invalid(out);
    }
    if (b < 0x80) {  // ASCII fast path
      const uint8_t f = flags[b];
      if ((f & kWord) && pending_.empty()) {
        // A run of ASCII word characters (letters, digits, '_': none case-ignorable, so
        // the Final_Sigma look-behind is the cased flag of the run's last character).
        size_t j = i + 1;
        while (j < n) {
          const unsigned char c = static_cast<unsigned char>(data[j]);
          if (c >= 0x80 || !(flags[c] & kWord)) break;
          ++j;
        }
        // Append the run, then lowercase it in place.
        const size_t at = word_.size();
        word_.append(data + i, j - i);
        for (size_t t = at; t < word_.size(); ++t) {
          const unsigned char c = static_cast<unsigned char>(word_[t]);
          if (static_cast<unsigned>(c - 'A') < 26u) word_[t] = static_cast<char>(c + 32);
        }
        word_len_ += static_cast<int64_t>(j - i);
        prev_cased_ = (flags[static_cast<unsigned char>(data[j - 1])] & kCasedFlag) != 0;
        i = j - 1;
        continue;
      }
      if (!(f & kIgnorable)) {
        if (!pending_.empty()) resolve_sigmas(!(f & kCasedFlag), out);
        prev_cased_ = (f & kCasedFlag) != 0;
      }
      if (f & kWord) {
        word_.push_back(static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b));
        ++word_len_;
      } else if (word_len_ > 0) {
        end_word(out);
      }
      continue;
    }
    lo_ = 0x80;
    hi_ = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      need_ = 1;
      cp_ = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need_ = 2;
      cp_ = b & 0x0F;
      if (b == 0xE0) lo_ = 0xA0;  // no overlong forms
      if (b == 0xED) hi_ = 0x9F;  // no surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      need_ = 3;
      cp_ = b & 0x07;
      if (b == 0xF0) lo_ = 0x90;
      if (b == 0xF4) hi_ = 0x8F;  // <= U+10FFFF
    } else {
      invalid(out);  // stray continuation byte, C0, C1, F5..FF
    }
  }
}

void WordStream::finish(WordSink& out) {
  if (need_ > 0) {
    need_ = 0;
    invalid(out);
  }
  if (!pending_.empty()) resolve_sigmas(true, out);  // end of text: final form
  if (word_len_ > 0) end_word(out);
  prev_cased_ = false;
  lo_ = 0x80;
  hi_ = 0xBF;
}

void WordStream::code_point(char32_t c, WordSink& out) {
  const bool ignorable = unicode::is_case_ignorable(c);
  const bool cased = !ignorable && unicode::is_cased(c);
  if (!ignorable && !pending_.empty()) resolve_sigmas(!cased, out);
  if (c == kCapitalSigma) {
    // Python: final form iff preceded by a cased letter (skipping case-ignorables) and
    // not followed by one. The look-behind is known now; the look-ahead is pending.
    if (prev_cased_) pending_.emplace_back(held_.size(), word_.size());
    prev_cased_ = true;
    word_.append("\xCF\x83");  // small sigma; patched to final sigma if it ends a word
    ++word_len_;
    return;
  }
  if (!ignorable) prev_cased_ = cased;
  char32_t low[2];
  const int n = unicode::to_lower(c, low);
  for (int k = 0; k < n; ++k) {
    if (unicode::is_word(low[k])) {
      unicode::append_utf8(word_, low[k]);
      ++word_len_;
    } else if (word_len_ > 0) {
      end_word(out);
    }
  }
}

void WordStream::invalid(WordSink& out) {
  // Not a character Python would see; treated as a non-word, non-cased character.
  if (!pending_.empty()) resolve_sigmas(true, out);
  prev_cased_ = false;
  if (word_len_ > 0) end_word(out);
}

void WordStream::end_word(WordSink& out) {
  const size_t slot = held_.size();
  if (word_len_ >= 2) {
    if (pending_.empty())
      out.word(word_);
    else
      held_.push_back(word_);
  } else {
    // A one-character word is dropped, with its undecided sigma if it is one.
    while (!pending_.empty() && pending_.back().first == slot) pending_.pop_back();
  }
  word_.clear();
  word_len_ = 0;
}

void WordStream::resolve_sigmas(bool final_form, WordSink& out) {
  for (const auto& [slot, offset] : pending_) {
    std::string& w = slot < held_.size() ? held_[slot] : word_;
    w[offset + 1] = static_cast<char>(final_form ? 0x82 : 0x83);  // U+03C2 or U+03C3
  }
  pending_.clear();
  for (const auto& w : held_) out.word(w);
  held_.clear();
}

}  // namespace cbtm::tfidf
