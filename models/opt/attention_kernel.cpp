// Causal attention of one head in plain loops (see attention_kernel.h). The loops are written
// so that the compiler vectorises them without reordering any sum: scores as 16 keys at a time
// (16 independent accumulators, k stored transposed and padded), p v as 16 of the head's width
// at a time (the accumulators stay in registers over all keys). GCC builds the body twice
// (target_clones): AVX-512 where the CPU has it, baseline x86-64 otherwise.
#include "attention_kernel.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace cbtm::models::kernels {
namespace {

constexpr int64_t kBlock = 16;

inline float to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint16_t to_bf16(float f) {  // round to nearest even (finite inputs)
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}
int64_t padded(int64_t T) { return (T + kBlock - 1) / kBlock * kBlock; }

}  // namespace

int64_t attention_scratch_floats(int64_t T, int64_t hd) { return padded(T) * hd * 3 + padded(T) + padded(hd); }

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "default")))
#endif
void causal_attention_entry(const uint16_t* q, const uint16_t* k, const uint16_t* v, uint16_t* out,
                            int64_t T, int64_t hd, float scale, float* scratch) {
  const int64_t Tp = padded(T);
  float* qf = scratch;       // [T, hd], scaled
  float* kt = qf + Tp * hd;  // [hd, Tp]: k transposed, zero past T
  float* vf = kt + Tp * hd;  // [T, hd]
  float* s = vf + Tp * hd;   // [Tp]: one row's scores, then probabilities
  float* o = s + Tp;         // [padded(hd)]
  std::fill(kt, kt + Tp * hd, 0.f);
  for (int64_t r = 0; r < T; ++r)
    for (int64_t d = 0; d < hd; ++d) {
      qf[r * hd + d] = to_float(q[r * hd + d]) * scale;
      kt[d * Tp + r] = to_float(k[r * hd + d]);
      vf[r * hd + d] = to_float(v[r * hd + d]);
    }
  for (int64_t r = 0; r < T; ++r) {
    const int64_t n = r + 1;
    const float* qr = qf + r * hd;
    for (int64_t c0 = 0; c0 < n; c0 += kBlock) {
      float acc[kBlock] = {};
      for (int64_t d = 0; d < hd; ++d) {
        const float qd = qr[d];
        const float* kd = kt + d * Tp + c0;
        for (int64_t l = 0; l < kBlock; ++l) acc[l] += qd * kd[l];
      }
      std::copy(acc, acc + kBlock, s + c0);
    }
    float m = s[0];
    for (int64_t c = 1; c < n; ++c) m = std::max(m, s[c]);
    float sum = 0.f;
    for (int64_t c = 0; c < n; ++c) {
      s[c] = std::exp(s[c] - m);
      sum += s[c];
    }
    const float inv = 1.f / sum;
    for (int64_t d0 = 0; d0 < hd; d0 += kBlock) {
      const int64_t w = std::min(kBlock, hd - d0);
      float acc[kBlock] = {};
      if (w == kBlock) {
        for (int64_t c = 0; c < n; ++c) {
          const float* vc = vf + c * hd + d0;
          for (int64_t l = 0; l < kBlock; ++l) acc[l] += s[c] * vc[l];
        }
      } else {
        for (int64_t c = 0; c < n; ++c)
          for (int64_t l = 0; l < w; ++l) acc[l] += s[c] * vf[c * hd + d0 + l];
      }
      for (int64_t l = 0; l < w; ++l) o[d0 + l] = acc[l] * inv;
    }
    for (int64_t d = 0; d < hd; ++d) out[r * hd + d] = to_bf16(o[d]);
  }
}

}  // namespace cbtm::models::kernels
