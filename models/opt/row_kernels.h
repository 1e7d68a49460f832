#pragma once
/// \file row_kernels.h
/// CPU kernels over one row of a bf16 (raw uint16_t) matrix, used by fused_ops.h: a softmax that
/// also gives the row's log-sum-exp (and a log-sum-exp alone of a float32 row) (causal rows: only the first n_valid entries take part, the
/// rest are written as 0), its backward, and dropout masks from a counter-based hash. Each has
/// an AVX-512 path and a portable path that computes the same bits (same lane layout, same
/// order of additions, the same exp polynomial); no torch here.
#include <cstdint>

namespace cbtm::models::kernels {

/// bf16 <-> float (round to nearest even; inputs are finite).
float bf16_to_float(uint16_t b);
uint16_t float_to_bf16(float f);

/// exp(x) for x <= 88 as 2^n 2^f, 2^f from a degree-6 polynomial (relative error below
/// 2e-7 + 1e-7 |x|, the second term from rounding x log2(e) in float; x < -86.6 gives ~0).
float fast_exp(float x);

/// lse = log(sum_{j < n_valid} exp(in_scale * x[j])). If `out` is not null it also writes
/// out[j] = out_scale * exp(in_scale * x[j] - lse) for j < n_valid and 0 for n_valid <= j <
/// n_total. `x` and `out` may alias. n_valid >= 1.
float softmax_row(const uint16_t* x, uint16_t* out, int64_t n_valid, int64_t n_total, float in_scale,
                  float out_scale);

/// log(sum_{j < n} exp(x[j])) of one float32 row (n >= 1): a max pass and an exp-sum pass, no
/// output row -- the log-sum-exp a target's log-probability needs (log_softmax(x)[t] =
/// x[t] - lse) without writing the whole log_softmax.
float logsumexp_row(const float* x, int64_t n);

/// The softmax backward of one row: ds[j] = scale * p[j] * (dp[j] - sum_{k < n_valid} p[k] dp[k])
/// for j < n_valid, 0 for n_valid <= j < n_total (scale: the forward's in_scale).
void softmax_backward_row(const uint16_t* p, const uint16_t* dp, uint16_t* ds, int64_t n_valid,
                          int64_t n_total, float scale);

/// keep[i] = 1 with probability 1 - p (0 otherwise) for i in [begin, end), from a hash of
/// (seed, i / 4): the mask of element i does not depend on how the range is split.
void dropout_mask(uint8_t* keep, int64_t begin, int64_t end, uint64_t seed, double p);

namespace detail {
/// Tests: force the portable paths (false: AVX-512 where the CPU has it).
void use_portable_kernels(bool on);
bool avx512_available();
}  // namespace detail

}  // namespace cbtm::models::kernels
