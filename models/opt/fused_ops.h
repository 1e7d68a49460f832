#pragma once
/// \file fused_ops.h
/// Fused CPU training ops for the OPT model, each falling back to the plain LibTorch ops where
/// it does not apply (GPU tensors, other dtypes):
///   dropout        one pass with a counter-based hash mask (torch's bernoulli_ costs ~6 ns an
///                  element on CPU); the mask is drawn from torch's default generator, so
///                  torch::manual_seed makes it reproducible
///   causal_attention softmax(scale q k^T + causal mask) v for bf16 q, k, v: the softmax (and
///                  its backward) over the kept half of each row only, in place, in bf16 (no fp32
///                  copies); q k^T and dO v^T as one 2-D mm per head (LibTorch 1.13's bf16 bmm is
///                  ~3x slower on that shape); at inference, rows under 80 tokens in plain
///                  loops instead (attention_kernel.h: LibTorch's per-call cost dominated them)
///   cross_entropy  mean token cross-entropy straight from bf16 (or fp32) logits: one
///                  log-sum-exp pass forward, one softmax-minus-one-hot pass backward, no fp32
///                  copy of the [N, V] logits
/// Each is checked against the plain ops in tests/models/test_fused_ops.cpp.
#include <torch/torch.h>

namespace cbtm::models {

/// Inverted dropout: x * keep / (1 - p) in training (keep ~ Bernoulli(1 - p)), x otherwise.
torch::Tensor fused_dropout(const torch::Tensor& x, double p, bool train);

/// Causal self-attention of q, k, v [..., T, head_dim] (row i attends to 0..i), no dropout.
/// bf16 CPU tensors take the fused path -- without autograd and for T < 80, the loop kernel of
/// causal_attention_loops --; anything else matmul + masked_fill + softmax.
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               double scale);

/// Inference only (no gradient): causal attention of bf16 CPU q, k, v [..., T, head_dim], one
/// (batch, head) entry per call of attention_kernel.h, in fp32 arithmetic. Used by
/// causal_attention for short rows; callable for any T (tests, bench/attention_bench).
torch::Tensor causal_attention_loops(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     double scale);

/// Per row i: log_softmax(logits[i])[targets[i]] = logits[i][t] - logsumexp(logits[i]), as
/// float32 [N]; logits [N, V], targets [N] int64. CPU float32 logits: one log-sum-exp pass per
/// row (row_kernels.h) and no [N, V] log_softmax written (19 vs 81 ms for 8192 x 4096 on 2
/// cores, 2026-12-07); anything else log_softmax + gather. No autograd (scoring).
torch::Tensor target_log_probs(const torch::Tensor& logits, const torch::Tensor& targets);

/// Mean over rows of -log softmax(logits)[target]; logits [N, V] (bf16 or fp32), targets [N]
/// int64. Returns a float32 scalar.
torch::Tensor fused_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace cbtm::models
