#pragma once
/// \file attention_kernel.h
/// Causal attention of one (batch, head) entry in plain loops, for inference on short rows:
/// with a dozen or so scored tokens a row, the per-call cost of LibTorch's matmuls (two per
/// entry, tens of microseconds each) outweighs the arithmetic, so scoring short rows ran 2-3x
/// slower per token than long ones. No torch here; fused_ops.cpp picks it below a row length.
#include <cstdint>

namespace cbtm::models::kernels {

/// out[r] = sum_{c <= r} softmax_c(scale * q[r] . k[c]) v[c] for r < T; q, k, v, out: [T, hd]
/// row-major bf16 (raw uint16_t); arithmetic in float (an fp32 softmax, fp32 sums), rounded to
/// bf16 once at the end. `scratch` holds at least attention_scratch_floats(T, hd) floats.
void causal_attention_entry(const uint16_t* q, const uint16_t* k, const uint16_t* v, uint16_t* out,
                            int64_t T, int64_t hd, float scale, float* scratch);
int64_t attention_scratch_floats(int64_t T, int64_t hd);

}  // namespace cbtm::models::kernels
