#include "file_digest.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "cbtm/error.h"

namespace cbtm::lm_embed {
namespace {
constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;

inline uint64_t mix(uint64_t h, uint64_t w) {
  h ^= w * kMul;
  h = (h << 31) | (h >> 33);
  return h * 0xBF58476D1CE4E5B9ull;
}
}  // namespace

std::string file_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot be read");
  std::vector<char> buf(size_t(1) << 20);
  uint64_t lanes[4] = {1, 2, 3, 4};  // four independent lanes keep the multiplier busy
  uint64_t size = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const size_t got = static_cast<size_t>(in.gcount());
    if (got == 0) break;
    size += got;
    if (got % 8) std::memset(buf.data() + got, 0, 8 - got % 8);  // got < buf.size() here
    const size_t words = (got + 7) / 8;
    for (size_t w = 0; w < words; ++w) {
      uint64_t x;
      std::memcpy(&x, buf.data() + 8 * w, 8);
      lanes[w & 3] = mix(lanes[w & 3], x);
    }
  }
  if (in.bad()) throw Error(path + ": read error");
  uint64_t h = size;
  for (uint64_t l : lanes) h = mix(h, l);
  h ^= h >> 29;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::to_string(size) + ":" + hex;
}

}  // namespace cbtm::lm_embed
