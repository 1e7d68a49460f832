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

/// The bytes of a string of at most 8 bytes as one integer; with the length, it identifies
/// the string (4..8 bytes: two overlapping 4-byte windows; 1..3 bytes: first, middle, last).
inline uint64_t short_key(const char* p, size_t n) {
  if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    return static_cast<uint64_t>(a) | static_cast<uint64_t>(b) << 32;
  }
  if (n == 0) return 0;
  return static_cast<uint64_t>(static_cast<unsigned char>(p[0])) |
         static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8 |
         static_cast<uint64_t>(static_cast<unsigned char>(p[n - 1])) << 16;
}

/// The hash of a string of n <= 8 bytes from its short_key (what term_hash gives for it).
inline uint64_t short_hash(uint64_t key, size_t n) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = ((static_cast<uint64_t>(n) * kMul) ^ key) * kMul;
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

/// A fast 64-bit hash of a short string (multiply-xorshift over 8-byte words).
inline uint64_t term_hash(std::string_view s) {
  if (s.size() <= 8) return short_hash(short_key(s.data(), s.size()), s.size());
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
  if (n > 0) {  // the tail (1..7 bytes), without a variable-length copy
    h = (h ^ short_key(p, n)) * kMul;
    h ^= h >> 29;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

/// True when the n bytes at a and b are equal (n small: inline, no library call).
inline bool same_bytes(const char* a, const char* b, size_t n) {
  while (n >= 8) {
    uint64_t x, y;
    std::memcpy(&x, a, 8);
    std::memcpy(&y, b, 8);
    if (x != y) return false;
    a += 8;
    b += 8;
    n -= 8;
  }
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

class TermTable {
 public:
  TermTable() { rehash(1024); }
  int32_t size() const { return static_cast<int32_t>(hashes_.size()); }
  /// The id of `s`, or -1.
  int32_t find(std::string_view s) const {
    if (s.size() > 8) return find(s, term_hash(s));
    // Short strings: the key is computed once and serves for the hash and the comparison.
    const uint64_t key = short_key(s.data(), s.size());
    const uint64_t h = short_hash(key, s.size());
    const uint32_t tag = tag_of(h, s.size());
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.id1 == 0) return -1;
      if (slot.tag == tag && slot.data == key) return static_cast<int32_t>(slot.id1 - 1);
    }
  }
  int32_t find(std::string_view s, uint64_t h) const {
    const uint32_t tag = tag_of(h, s.size());
    const uint64_t key = s.size() <= 8 ? short_key(s.data(), s.size()) : 0;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.id1 == 0) return -1;
      if (slot.tag == tag && matches(slot, s, key)) return static_cast<int32_t>(slot.id1 - 1);
    }
  }
  /// The id of `s`, inserted (with the next id) if absent; `added` tells which.
  int32_t insert(std::string_view s, uint64_t h, bool& added) {
    const uint32_t tag = tag_of(h, s.size());
    const uint64_t key = s.size() <= 8 ? short_key(s.data(), s.size()) : 0;
    size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.id1 == 0) break;
      if (slot.tag == tag && matches(slot, s, key)) {
        added = false;
        return static_cast<int32_t>(slot.id1 - 1);
      }
    }
    added = true;
    const int32_t id = size();
    slots_[i] = Slot{tag, static_cast<uint32_t>(id + 1),
                     s.size() <= 8 ? key : static_cast<uint64_t>(chars_.size())};
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
  // A slot: a tag (24 high bits of the hash, and the length up to 255), id + 1 (0: empty),
  // and the term itself when it has at most 8 bytes (short_key), else where its bytes are
  // in chars_. Most lookups read nothing but the slot.
  struct Slot {
    uint32_t tag = 0;
    uint32_t id1 = 0;
    uint64_t data = 0;
  };
  static uint32_t tag_of(uint64_t h, size_t len) {
    return (static_cast<uint32_t>(h >> 32) & 0xFFFFFF00u) |
           static_cast<uint32_t>(len < 255 ? len : 255);
  }
  bool matches(const Slot& slot, std::string_view s, uint64_t key) const {
    if (s.size() <= 8) return slot.data == key;  // the tag holds the length
    const int32_t id = static_cast<int32_t>(slot.id1 - 1);
    const size_t b = id == 0 ? 0 : ends_[id - 1];
    return ends_[id] - b == s.size() && same_bytes(chars_.data() + slot.data, s.data(), s.size());
  }

  void rehash(size_t n) {
    slots_.assign(n, Slot());
    mask_ = n - 1;
    for (int32_t id = 0; id < size(); ++id) {
      size_t i = hashes_[id] & mask_;
      while (slots_[i].id1 != 0) i = (i + 1) & mask_;
      const std::string_view t = term(id);
      const size_t b = id == 0 ? 0 : ends_[id - 1];
      slots_[i] = Slot{tag_of(hashes_[id], t.size()), static_cast<uint32_t>(id + 1),
                       t.size() <= 8 ? short_key(t.data(), t.size()) : static_cast<uint64_t>(b)};
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  std::vector<uint64_t> hashes_;  // by id
  std::vector<char> chars_;       // the terms, concatenated
  std::vector<size_t> ends_;      // end of term id in chars_
};

}  // namespace cbtm::tfidf
