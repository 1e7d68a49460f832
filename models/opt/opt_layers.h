#pragma once
/// \file opt_layers.h
/// The blocks OptLM is made of (internal to cbtm_models): OPT's multi-head causal
/// self-attention and its pre-LN decoder layer, with Hugging Face's submodule names.
#include <cstdint>

#include <torch/torch.h>

#include "moe_ffn.h"
#include "opt/opt.h"

namespace cbtm::models {

/// Causal self-attention: k_proj, v_proj, q_proj, out_proj (each with bias). q is scaled by
/// head_dim^-0.5; attention probabilities are dropped out with `attention_dropout`.
class OptAttentionImpl : public torch::nn::Module {
 public:
  OptAttentionImpl(int64_t d_model, int64_t n_heads, double attention_dropout);
  /// x: [B, T, d_model] -> [B, T, d_model] (after out_proj, before the residual dropout).
  /// With `cache`: x holds the tokens after the cached ones; their keys and values are
  /// appended and they attend to every cached position and causally among themselves.
  torch::Tensor forward(const torch::Tensor& x, KVCache* cache = nullptr);

  torch::nn::Linear k_proj{nullptr}, v_proj{nullptr}, q_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t n_heads_;
  int64_t head_dim_;
  double attention_dropout_;
};
TORCH_MODULE(OptAttention);

/// x + drop(attn(LN(x))), then x + drop(fc2(relu(fc1(LN(x))))) -- or, in a mixture block
/// (`moe_layer`), x + drop(moe(LN(x))) with the FFN replaced by `moe` (fc1/fc2 absent).
class OptDecoderLayerImpl : public torch::nn::Module {
 public:
  OptDecoderLayerImpl(const OptConfig& c, bool moe_layer = false);
  /// `cache`: incremental decoding (OptAttentionImpl::forward).
  torch::Tensor forward(const torch::Tensor& x, KVCache* cache = nullptr);

  OptAttention self_attn{nullptr};
  torch::nn::LayerNorm self_attn_layer_norm{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  MoeFfn moe{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(OptDecoderLayer);

/// LayerNorm through the functional op (eps 1e-5, as OPT).
torch::Tensor apply_layer_norm(const torch::nn::LayerNorm& ln, const torch::Tensor& x);
/// x W^T + b with the fused op.
inline torch::Tensor apply_linear(const torch::nn::Linear& l, const torch::Tensor& x) {
  return torch::linear(x, l->weight, l->bias);
}

}  // namespace cbtm::models
