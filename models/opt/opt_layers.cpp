// OPT's attention and decoder layer (see opt_layers.h).
#include "opt_layers.h"

#include "fused_ops.h"

#include <cmath>
#include <limits>

namespace cbtm::models {

namespace {
constexpr double kLayerNormEps = 1e-5;

torch::nn::Linear make_linear(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(true));
}
torch::nn::LayerNorm make_layer_norm(int64_t d) {
  return torch::nn::LayerNorm(
      torch::nn::LayerNormOptions({d}).eps(kLayerNormEps).elementwise_affine(true));
}
}  // namespace

torch::Tensor apply_layer_norm(const torch::nn::LayerNorm& ln, const torch::Tensor& x) {
  return torch::layer_norm(x, ln->options.normalized_shape(), ln->weight, ln->bias,
                           ln->options.eps());
}

// ---- attention ------------------------------------------------------------------

OptAttentionImpl::OptAttentionImpl(int64_t d_model, int64_t n_heads, double attention_dropout)
    : n_heads_(n_heads), head_dim_(d_model / n_heads), attention_dropout_(attention_dropout) {
  k_proj = register_module("k_proj", make_linear(d_model, d_model));
  v_proj = register_module("v_proj", make_linear(d_model, d_model));
  q_proj = register_module("q_proj", make_linear(d_model, d_model));
  out_proj = register_module("out_proj", make_linear(d_model, d_model));
}

torch::Tensor OptAttentionImpl::forward(const torch::Tensor& x, KVCache* cache) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  auto heads = [&](const torch::Tensor& t) {  // [B, T, D] -> [B, H, T, hd]
    return t.view({B, T, n_heads_, head_dim_}).transpose(1, 2);
  };
  torch::Tensor q = heads(apply_linear(q_proj, x));
  torch::Tensor k = heads(apply_linear(k_proj, x));
  torch::Tensor v = heads(apply_linear(v_proj, x));
  if (cache) {  // incremental decoding: the new queries against every key so far
    const int64_t past = cache->length();
    if (past && cache->k.scalar_type() != k.scalar_type()) {  // e.g. a bf16 prompt, then fp32 decoding steps
      cache->k = cache->k.to(k.scalar_type());
      cache->v = cache->v.to(v.scalar_type());
    }
    cache->k = past ? torch::cat({cache->k, k}, 2) : k.contiguous();
    cache->v = past ? torch::cat({cache->v, v}, 2) : v.contiguous();
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
    torch::Tensor scores = torch::matmul(q * scale, cache->k.transpose(-2, -1));  // [B, H, T, past + T]
    if (T > 1) {  // new query i sees keys 0 .. past + i
      const torch::Tensor future =
          torch::ones({T, past + T}, torch::TensorOptions().dtype(torch::kBool).device(x.device())).triu(past + 1);
      scores = scores.masked_fill(future, -std::numeric_limits<double>::infinity());
    }
    torch::Tensor o = torch::matmul(torch::softmax(scores.to(torch::kFloat), -1).to(cache->v.scalar_type()), cache->v);
    return apply_linear(out_proj, o.transpose(1, 2).reshape({B, T, D}));
  }
  const double p = is_training() ? attention_dropout_ : 0.0;
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  torch::Tensor o;
#if TORCH_VERSION_MAJOR >= 2
  // LibTorch 2.x: scaled_dot_product_attention (default scale head_dim^-0.5, as OPT's), except
  // for bf16 on CPU, where causal_attention's kernels are 10-16x faster than Debian 13's 2.6
  // SDPA (8 x 8 heads x 512 x 64, forward + backward: 78 vs 962 ms; in fp32 SDPA is 2-3x faster
  // than the plain ops, so fp32 keeps it).
  const bool cpu_bf16 = x.device().is_cpu() && q.scalar_type() == torch::kBFloat16;
  if (!cpu_bf16) {
    o = at::scaled_dot_product_attention(q, k, v, {}, p, /*is_causal=*/true);
  } else
#endif
  if (p > 0.0) {  // attention dropout: the plain ops
    const torch::Tensor future =
        torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(x.device())).triu(1);
    torch::Tensor scores = torch::matmul(q * scale, k.transpose(-2, -1));
    scores = scores.masked_fill(future, -std::numeric_limits<double>::infinity());
    o = torch::matmul(fused_dropout(torch::softmax(scores, -1), p, /*train=*/true), v);
  } else {
    o = causal_attention(q, k, v, scale);
  }
  o = o.transpose(1, 2).reshape({B, T, D});
  return apply_linear(out_proj, o);
}

// ---- decoder layer ----------------------------------------------------------------

OptDecoderLayerImpl::OptDecoderLayerImpl(const OptConfig& c, bool moe_layer) : dropout_(c.dropout) {
  self_attn = register_module("self_attn", OptAttention(c.d_model, c.n_heads, c.attention_dropout));
  self_attn_layer_norm = register_module("self_attn_layer_norm", make_layer_norm(c.d_model));
  if (moe_layer) {
    moe = register_module("moe", MoeFfn(c.d_model, c.d_ff, c.moe_experts, c.moe_top_k, c.moe_capacity_factor));
  } else {
    fc1 = register_module("fc1", make_linear(c.d_model, c.d_ff));
    fc2 = register_module("fc2", make_linear(c.d_ff, c.d_model));
  }
  final_layer_norm = register_module("final_layer_norm", make_layer_norm(c.d_model));
}

torch::Tensor OptDecoderLayerImpl::forward(const torch::Tensor& x, KVCache* cache) {
  const bool train = is_training();
  torch::Tensor h = self_attn->forward(apply_layer_norm(self_attn_layer_norm, x), cache);
  torch::Tensor y = x + fused_dropout(h, dropout_, train);
  if (moe) {
    h = moe->forward(apply_layer_norm(final_layer_norm, y));
  } else {
    h = torch::relu(apply_linear(fc1, apply_layer_norm(final_layer_norm, y)));
    h = apply_linear(fc2, h);
  }
  return y + fused_dropout(h, dropout_, train);
}

}  // namespace cbtm::models
