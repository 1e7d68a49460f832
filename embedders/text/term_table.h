#pragma once
/// \file term_table.h
/// An insert-only hash table from strings to dense ids 0, 1, 2, ... (in insertion order),
/// for the vocabulary work of the tf-idf vectorizer: the strings live in one arena, the
/// table is open addressing with linear probing over (hash tag, id) slots, and lookups take a
/// string_view, so counting the words of a text allocates nothing.
///
/// \code
///   TermTable t;
///   int32_t a = t.insert("kernel");      // 0
///   t.insert("memory");                  // 1
///   t.find("kernel");                    // 0; t.find("boot") == -1
///   t.term(1);                           // "memory"
/// \endcode
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace cbtm::tfidf {

/// A fast 64-bit hash of a short string (multiply-xorshift over 8-byte words).
inline uint64_t term_hash(std::string_view s) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = static_cast<uint64_t>(s.size()) * kMul;
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);
    h = (h ^ v) * kMul;
    h ^= h >> 29;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

class TermTable {
 public:
  TermTable() { rehash(1024); }

  int32_t size() const { return static_cast<int32_t>(hashes_.size()); }
  /// The id of `s`, or -1.
  int32_t find(std::string_view s) const { return find(s, term_hash(s)); }
  int32_t find(std::string_view s, uint64_t h) const {
    const uint64_t tag = h & kTagMask;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t slot = slots_[i];
      if (slot == 0) return -1;
      const int32_t id = static_cast<int32_t>(slot & kIdMask) - 1;
      if ((slot & kTagMask) == tag && term(id) == s) return id;
    }
  }
  /// The id of `s`, inserted (with the next id) if absent; `added` tells which.
  int32_t insert(std::string_view s, uint64_t h, bool& added) {
    const uint64_t tag = h & kTagMask;
    size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      const uint64_t slot = slots_[i];
      if (slot == 0) break;
      const int32_t id = static_cast<int32_t>(slot & kIdMask) - 1;
      if ((slot & kTagMask) == tag && term(id) == s) {
        added = false;
        return id;
      }
    }
    added = true;
    const int32_t id = size();
    slots_[i] = tag | static_cast<uint64_t>(id + 1);
    hashes_.push_back(h);
    chars_.insert(chars_.end(), s.begin(), s.end());
    ends_.push_back(chars_.size());
    if (static_cast<size_t>(size()) * 2 > slots_.size()) rehash(slots_.size() * 2);
    return id;
  }
  int32_t insert(std::string_view s) {
    bool added;
    return insert(s, term_hash(s), added);
  }
  std::string_view term(int32_t id) const {
    const size_t b = id == 0 ? 0 : ends_[id - 1];
    return std::string_view(chars_.data() + b, ends_[id] - b);
  }
  uint64_t hash(int32_t id) const { return hashes_[id]; }
  void reserve(size_t terms) {
    size_t want = slots_.size();
    while (want < terms * 2) want *= 2;
    if (want != slots_.size()) rehash(want);
    hashes_.reserve(terms);
    ends_.reserve(terms);
  }

 private:
  void rehash(size_t n) {
    slots_.assign(n, 0);
    mask_ = n - 1;
    for (int32_t id = 0; id < size(); ++id) {
      size_t i = hashes_[id] & mask_;
      while (slots_[i] != 0) i = (i + 1) & mask_;
      slots_[i] = (hashes_[id] & kTagMask) | static_cast<uint64_t>(id + 1);
    }
  }

  // A slot holds id + 1 in its low 32 bits (0: empty) and the high 32 bits of the hash,
  // so most mismatches are rejected without touching the strings.
  static constexpr uint64_t kIdMask = 0xFFFFFFFFull;
  static constexpr uint64_t kTagMask = ~kIdMask;
  std::vector<uint64_t> slots_;
  size_t mask_ = 0;
  std::vector<uint64_t> hashes_;  // by id
  std::vector<char> chars_;       // the terms, concatenated
  std::vector<size_t> ends_;      // end of term id in chars_
};

}  // namespace cbtm::tfidf
