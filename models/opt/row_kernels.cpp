// Row kernels of fused_ops (see row_kernels.h). Both paths process a row in chunks of 16
// lanes, reduce the 16 lane partials in lane order, and use the same fma sequence, so they give
// the same bits; tails are staged through zero-padded 16-element buffers.
#include "row_kernels.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 on _mm512_mask_* intrinsics

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cbtm/hash.h"

namespace cbtm::models::kernels {

namespace {

constexpr int kLanes = 16;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: (t + kRound) - kRound rounds to nearest even
// 2^f = e^(f ln 2), Taylor coefficients ln2^k / k!, f in [-0.5, 0.5]
constexpr float kC1 = 0.693147180559945f, kC2 = 0.240226506959101f, kC3 = 0.0555041086648216f,
                kC4 = 0.00961812910762848f, kC5 = 0.00133335581464284f, kC6 = 0.000154035303933816f;

std::atomic<bool> g_portable{false};

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}
bool use_avx512() { return !g_portable.load(std::memory_order_relaxed) && cpu_has_avx512(); }

std::vector<float>& scratch(int64_t n) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < n + kLanes) buf.resize(static_cast<size_t>(n + kLanes));
  return buf;
}

float exp_portable(float x) {
  float t = x * kLog2e;
  t = std::max(t, -125.0f);
  const float n = (t + kRound) - kRound;
  const float f = t - n;
  float p = kC6;
  p = std::fma(p, f, kC5);
  p = std::fma(p, f, kC4);
  p = std::fma(p, f, kC3);
  p = std::fma(p, f, kC2);
  p = std::fma(p, f, kC1);
  p = std::fma(p, f, 1.0f);
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, 4);
  return p * two_n;
}

// ---- portable ------------------------------------------------------------------------
float softmax_portable(const uint16_t* x, uint16_t* out, int64_t nv, int64_t nt, float in_scale, float out_scale) {
  float lane[kLanes];
  std::fill(lane, lane + kLanes, -std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < nv; ++j) lane[j % kLanes] = std::max(lane[j % kLanes], bf16_to_float(x[j]) * in_scale);
  float m = lane[0];
  for (int l = 1; l < kLanes; ++l) m = std::max(m, lane[l]);
  std::vector<float>& e = scratch(nv);
  std::fill(lane, lane + kLanes, 0.0f);
  for (int64_t j = 0; j < nv; ++j) {
    e[static_cast<size_t>(j)] = exp_portable(bf16_to_float(x[j]) * in_scale - m);
    lane[j % kLanes] += e[static_cast<size_t>(j)];
  }
  float sum = lane[0];
  for (int l = 1; l < kLanes; ++l) sum += lane[l];
  const float lse = m + std::log(sum);
  if (out) {
    const float fac = out_scale / sum;
    for (int64_t j = 0; j < nv; ++j) out[j] = float_to_bf16(e[static_cast<size_t>(j)] * fac);
    for (int64_t j = nv; j < nt; ++j) out[j] = 0;
  }
  return lse;
}

float logsumexp_portable(const float* x, int64_t n) {
  float lane[kLanes];
  std::fill(lane, lane + kLanes, -std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < n; ++j) lane[j % kLanes] = std::max(lane[j % kLanes], x[j]);
  float m = lane[0];
  for (int l = 1; l < kLanes; ++l) m = std::max(m, lane[l]);
  std::fill(lane, lane + kLanes, 0.0f);
  for (int64_t j = 0; j < n; ++j) lane[j % kLanes] += exp_portable(x[j] - m);
  float sum = lane[0];
  for (int l = 1; l < kLanes; ++l) sum += lane[l];
  return m + std::log(sum);
}

void softmax_backward_portable(const uint16_t* p, const uint16_t* dp, uint16_t* ds, int64_t nv, int64_t nt,
                               float scale) {
  float lane[kLanes] = {};
  for (int64_t j = 0; j < nv; ++j)
    lane[j % kLanes] = std::fma(bf16_to_float(p[j]), bf16_to_float(dp[j]), lane[j % kLanes]);
  float dot = lane[0];
  for (int l = 1; l < kLanes; ++l) dot += lane[l];
  for (int64_t j = 0; j < nv; ++j)
    ds[j] = float_to_bf16((bf16_to_float(p[j]) * (bf16_to_float(dp[j]) - dot)) * scale);
  for (int64_t j = nv; j < nt; ++j) ds[j] = 0;
}

// ---- AVX-512 --------------------------------------------------------------------------
#define CBTM_AVX512 __attribute__((target("avx512f")))

CBTM_AVX512 inline __m512 load16(const uint16_t* p) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}
CBTM_AVX512 inline void store16(uint16_t* p, __m512 v) {
  __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  bits = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), lsb), 16);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(bits));
}
CBTM_AVX512 inline __m512 exp16(__m512 x) {
  __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(kLog2e));
  t = _mm512_max_ps(t, _mm512_set1_ps(-125.0f));
  const __m512 r = _mm512_set1_ps(kRound);
  const __m512 n = _mm512_sub_ps(_mm512_add_ps(t, r), r);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(kC6);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kC5));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kC4));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kC3));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kC2));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kC1));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}
CBTM_AVX512 inline float lanes_sum(__m512 v) {
  alignas(64) float l[kLanes];
  _mm512_store_ps(l, v);
  float s = l[0];
  for (int i = 1; i < kLanes; ++i) s += l[i];
  return s;
}
CBTM_AVX512 inline float lanes_max(__m512 v) {
  alignas(64) float l[kLanes];
  _mm512_store_ps(l, v);
  float s = l[0];
  for (int i = 1; i < kLanes; ++i) s = std::max(s, l[i]);
  return s;
}

CBTM_AVX512 float softmax_avx512(const uint16_t* x, uint16_t* out, int64_t nv, int64_t nt, float in_scale,
                                 float out_scale) {
  const int64_t full = nv / kLanes * kLanes;
  const __mmask16 tail_mask = static_cast<__mmask16>((1u << (nv - full)) - 1u);
  alignas(32) uint16_t tail[kLanes] = {};
  std::memcpy(tail, x + full, static_cast<size_t>(nv - full) * 2);
  const __m512 sc = _mm512_set1_ps(in_scale);
  __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < full; j += kLanes) mx = _mm512_max_ps(mx, _mm512_mul_ps(load16(x + j), sc));
  if (tail_mask) mx = _mm512_mask_max_ps(mx, tail_mask, mx, _mm512_mul_ps(load16(tail), sc));
  const float m = lanes_max(mx);
  const __m512 mv = _mm512_set1_ps(m);
  float* e = scratch(nv).data();
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < full; j += kLanes) {
    const __m512 v = exp16(_mm512_sub_ps(_mm512_mul_ps(load16(x + j), sc), mv));
    _mm512_storeu_ps(e + j, v);
    sum = _mm512_add_ps(sum, v);
  }
  if (tail_mask) {
    const __m512 v = _mm512_maskz_mov_ps(tail_mask, exp16(_mm512_sub_ps(_mm512_mul_ps(load16(tail), sc), mv)));
    _mm512_storeu_ps(e + full, v);
    sum = _mm512_add_ps(sum, v);
  }
  const float s = lanes_sum(sum);
  const float lse = m + std::log(s);
  if (out) {
    const __m512 fac = _mm512_set1_ps(out_scale / s);
    for (int64_t j = 0; j < full; j += kLanes) store16(out + j, _mm512_mul_ps(_mm512_loadu_ps(e + j), fac));
    if (tail_mask) {
      alignas(32) uint16_t o[kLanes];
      store16(o, _mm512_mul_ps(_mm512_loadu_ps(e + full), fac));
      std::memcpy(out + full, o, static_cast<size_t>(nv - full) * 2);
    }
    if (nt > nv) std::memset(out + nv, 0, static_cast<size_t>(nt - nv) * 2);
  }
  return lse;
}

CBTM_AVX512 float logsumexp_avx512(const float* x, int64_t n) {
  const int64_t full = n / kLanes * kLanes;
  const __mmask16 tail_mask = static_cast<__mmask16>((1u << (n - full)) - 1u);
  __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < full; j += kLanes) mx = _mm512_max_ps(mx, _mm512_loadu_ps(x + j));
  if (tail_mask) mx = _mm512_mask_max_ps(mx, tail_mask, mx, _mm512_maskz_loadu_ps(tail_mask, x + full));
  const float m = lanes_max(mx);
  const __m512 mv = _mm512_set1_ps(m);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < full; j += kLanes) sum = _mm512_add_ps(sum, exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j), mv)));
  if (tail_mask)
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(tail_mask, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail_mask, x + full), mv))));
  return m + std::log(lanes_sum(sum));
}

CBTM_AVX512 void softmax_backward_avx512(const uint16_t* p, const uint16_t* dp, uint16_t* ds, int64_t nv,
                                         int64_t nt, float scale) {
  const int64_t full = nv / kLanes * kLanes;
  alignas(32) uint16_t tp[kLanes] = {}, tdp[kLanes] = {};
  std::memcpy(tp, p + full, static_cast<size_t>(nv - full) * 2);
  std::memcpy(tdp, dp + full, static_cast<size_t>(nv - full) * 2);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t j = 0; j < full; j += kLanes) acc = _mm512_fmadd_ps(load16(p + j), load16(dp + j), acc);
  if (nv > full) acc = _mm512_fmadd_ps(load16(tp), load16(tdp), acc);
  const __m512 dot = _mm512_set1_ps(lanes_sum(acc)), sc = _mm512_set1_ps(scale);
  for (int64_t j = 0; j < full; j += kLanes)
    store16(ds + j, _mm512_mul_ps(_mm512_mul_ps(load16(p + j), _mm512_sub_ps(load16(dp + j), dot)), sc));
  if (nv > full) {
    alignas(32) uint16_t o[kLanes];
    store16(o, _mm512_mul_ps(_mm512_mul_ps(load16(tp), _mm512_sub_ps(load16(tdp), dot)), sc));
    std::memcpy(ds + full, o, static_cast<size_t>(nv - full) * 2);
  }
  if (nt > nv) std::memset(ds + nv, 0, static_cast<size_t>(nt - nv) * 2);
}


}  // namespace

float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float fast_exp(float x) { return exp_portable(x); }

float softmax_row(const uint16_t* x, uint16_t* out, int64_t n_valid, int64_t n_total, float in_scale,
                  float out_scale) {
  return use_avx512() ? softmax_avx512(x, out, n_valid, n_total, in_scale, out_scale)
                      : softmax_portable(x, out, n_valid, n_total, in_scale, out_scale);
}

float logsumexp_row(const float* x, int64_t n) {
  return use_avx512() ? logsumexp_avx512(x, n) : logsumexp_portable(x, n);
}

void softmax_backward_row(const uint16_t* p, const uint16_t* dp, uint16_t* ds, int64_t n_valid,
                          int64_t n_total, float scale) {
  if (use_avx512()) softmax_backward_avx512(p, dp, ds, n_valid, n_total, scale);
  else softmax_backward_portable(p, dp, ds, n_valid, n_total, scale);
}

void dropout_mask(uint8_t* keep, int64_t begin, int64_t end, uint64_t seed, double p) {
  const uint32_t threshold = static_cast<uint32_t>(std::llround(std::clamp(p, 0.0, 1.0) * 65536.0));
  int64_t i = begin;
  while (i < end) {
    const uint64_t h = splitmix64(seed ^ (static_cast<uint64_t>(i >> 2) * 0xD1B54A32D192ED03ull));
    for (int lane = static_cast<int>(i & 3); lane < 4 && i < end; ++lane, ++i)
      keep[i - begin] = ((h >> (16 * lane)) & 0xFFFFu) >= threshold ? 1 : 0;
  }
}

namespace detail {
void use_portable_kernels(bool on) { g_portable.store(on); }
bool avx512_available() { return cpu_has_avx512(); }
}  // namespace detail

}  // namespace cbtm::models::kernels
