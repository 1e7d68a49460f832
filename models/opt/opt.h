#pragma once
/// \file opt.h
/// An OPT-style decoder-only transformer in LibTorch (the architecture of Zhang et al. 2022,
/// as in Hugging Face's OPTForCausalLM with do_layer_norm_before=True):
///   token embedding + learned positional embedding (OPT offset of 2) ->
///   n_layers x [pre-LN self-attention (q,k,v,out with biases) + dropout + residual,
///               pre-LN FFN fc1 -> ReLU -> fc2 + dropout + residual] ->
///   final LayerNorm -> logits through the tied token embedding.
/// Dropout (`dropout`) everywhere except the embeddings; attention-probability dropout is
/// `attention_dropout` (0 in OPT).
///
/// Checkpoints are directories in Hugging Face layout (config.json + model.safetensors with
/// OPT's tensor names), so transformers' OPTForCausalLM can open them.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "cbtm/error.h"
#include "cbtm/options.h"

namespace cbtm::models {

/// Prefix of every tensor name in a checkpoint: HF key = kOptTensorPrefix + parameter name.
inline constexpr const char* kOptTensorPrefix = "model.decoder.";
/// Version of the "cbtm" section that save_checkpoint writes into config.json.
inline constexpr int kOptCheckpointVersion = 1;

class OptDecoderLayerImpl;  // one pre-LN block (opt_layers.h)

struct OptConfig {
  int64_t vocab_size = 0;  ///< set from the tokenizer, not the YAML
  int64_t d_model = 256;
  int64_t n_layers = 4;
  int64_t n_heads = 4;
  int64_t d_ff = 1024;
  int64_t max_positions = 512;
  double dropout = 0.1;
  double attention_dropout = 0.0;
  double init_std = 0.02;
  // Sparse mixture-of-experts FFNs (moe_ffn.h; off when moe_experts is 0). Sparse upcycling
  // (baseline "moe") sets them on a copy of the seed's config.
  int64_t moe_experts = 0;
  int64_t moe_every = 2;
  int64_t moe_top_k = 2;
  double moe_capacity_factor = 2.0;
  double moe_aux_weight = 0.01;

  template <class V> void visit(V& v) {
    v("d_model", d_model, "hidden size (OPT hidden_size)");
    v("n_layers", n_layers, "transformer blocks");
    v("n_heads", n_heads, "attention heads (must divide d_model)");
    v("d_ff", d_ff, "feed-forward inner size (OPT ffn_dim)");
    v("max_positions", max_positions, "longest sequence the model accepts");
    v("dropout", dropout, "dropout on attention and FFN outputs (not embeddings)");
    v("attention_dropout", attention_dropout, "dropout on attention probabilities");
    v("init_std", init_std, "std of the normal initialisation of weights");
    v("moe_experts", moe_experts,
      "experts E of each mixture-of-experts FFN (0: every FFN dense; the moe baseline sets it)");
    v("moe_every", moe_every, "every N-th block's FFN is a mixture of experts (blocks N-1, 2N-1, ...)");
    v("moe_top_k", moe_top_k, "experts each token is routed to");
    v("moe_capacity_factor", moe_capacity_factor,
      "expert capacity = ceil(factor x tokens x top_k / E) in training; assignments past it are dropped, "
      "the token's weights renormalised (none at evaluation)");
    v("moe_aux_weight", moe_aux_weight, "weight of the load-balancing loss (the mean over the mixture blocks) added to the LM loss in training");
  }
  /// Whether block `layer` (0-based) has a mixture-of-experts FFN.
  bool moe_layer(int64_t layer) const { return moe_experts > 0 && layer % moe_every == moe_every - 1; }
  /// Throws OptionError (naming the key) unless n_heads divides d_model, sizes are
  /// positive, 0 <= dropout, attention_dropout < 1 and init_std > 0. vocab_size may be 0
  /// (not yet known) here; OptLM requires it positive.
  void validate() const;
};

/// Keys and values of one attention layer for the tokens seen so far ([B, heads, T, head_dim];
/// undefined before the first token): what incremental decoding reuses.
struct KVCache {
  torch::Tensor k, v;
  int64_t length() const { return k.defined() ? k.size(2) : 0; }
};

class OptLMImpl : public torch::nn::Module {
 public:
  /// Builds the model, initialised as by init_weights(0). Error if `config` is invalid or
  /// vocab_size is not positive.
  explicit OptLMImpl(const OptConfig& config);
  /// tokens: [B, T] int64 (T <= max_positions) -> logits [B, T, vocab] (float; bf16 under
  /// autocast). Causal; right padding never affects earlier positions.
  torch::Tensor forward(const torch::Tensor& tokens);
  /// The final-LayerNorm output [B, T, d_model] (what forward() feeds to the tied head).
  torch::Tensor hidden_states(const torch::Tensor& tokens);
  /// Entry `layer` of Hugging Face's `output_hidden_states` [B, T, d_model]: 0 = the
  /// embeddings (token + position), i = the residual stream after block i, n_layers =
  /// hidden_states(tokens) (after the final LayerNorm). Error unless 0 <= layer <= n_layers.
  torch::Tensor layer_states(const torch::Tensor& tokens, int64_t layer);
  /// Incremental decoding: the final-LayerNorm output [B, T_new, d_model] of `tokens` (the
  /// T_new tokens that follow the cache's), appending their keys and values to `cache` (one
  /// entry per layer; empty: start). Equals hidden_states() of the whole sequence at those
  /// positions (up to rounding). No dropout (eval only). Error past max_positions.
  torch::Tensor hidden_states_cached(const torch::Tensor& tokens, std::vector<KVCache>& cache);
  /// Tied output head: hidden [..., d_model] -> logits [..., vocab].
  torch::Tensor logits(const torch::Tensor& hidden);
  /// Deterministic OPT initialisation: N(0, init_std) weights, zero biases, unit LayerNorm.
  void init_weights(uint64_t seed);
  const OptConfig& config() const { return config_; }
  /// Mean over the mixture-of-experts blocks of their load-balancing losses in the last
  /// forward pass (a float scalar; 0 for a dense model). Training adds moe_aux_weight x it.
  torch::Tensor aux_loss() const;
  /// Fraction of (token, expert) assignments dropped for capacity in the last forward pass,
  /// averaged over the mixture-of-experts blocks (0 for a dense model).
  double dropped_fraction() const;
  /// The blocks (for upcycling and tests).
  const std::vector<std::shared_ptr<OptDecoderLayerImpl>>& layers() const { return layers_; }

 private:
  /// Token + position embeddings [B, T, d_model] of tokens at positions start.. (checks the
  /// shape and max_positions).
  torch::Tensor embed(const torch::Tensor& tokens, int64_t start = 0);
  OptConfig config_;
  // submodules are registered under OPT's Hugging Face names (see opt.cpp)
  torch::nn::Embedding embed_tokens_{nullptr};
  torch::nn::Embedding embed_positions_{nullptr};  ///< max_positions + 2 rows (OPT offset)
  std::vector<std::shared_ptr<OptDecoderLayerImpl>> layers_;  ///< registered as "layers.{i}"
  torch::nn::LayerNorm final_layer_norm_{nullptr};
};
TORCH_MODULE(OptLM);

/// Sparse upcycling: `moe` (same dimensions as `dense`, moe_experts > 0) takes every
/// parameter of `dense`; each mixture block's experts become copies of the dense block's FFN;
/// the routers keep their initialisation. Error if the dimensions differ.
void upcycle(OptLM& moe, OptLM& dense);

/// Writes `dir` atomically: config.json (Hugging Face OPTConfig keys plus a "cbtm" object
/// holding {format: "cbtm-checkpoint", format_version, options: {type: opt, ...}} and
/// `extra`) and model.safetensors (F32, OPT tensor names, lm_head tied and omitted).
/// `token_ids` = {bos, eos, pad} for config.json's *_token_id keys (OPT's: {2, 2, 1}).
void save_checkpoint(OptLM& model, const std::string& dir,
                     const nlohmann::json& extra = nlohmann::json::object(),
                     std::array<int32_t, 3> token_ids = {2, 2, 1});
/// Loads a checkpoint written by save_checkpoint (or a Hugging Face OPT checkpoint with
/// do_layer_norm_before=true). Error naming the file on truncation or mismatched shapes.
/// Accepts F32, BF16 and F16 tensors; the model is returned on the CPU in eval mode.
OptLM load_checkpoint(const std::string& dir);
/// The OptConfig recorded in dir/config.json (Hugging Face keys; Error naming the file and
/// key if one is missing or describes a variant OptLM does not implement).
OptConfig read_config(const std::string& dir);
/// The "cbtm" object of dir/config.json (format, format_version, options and the `extra`
/// given to save_checkpoint), or an empty object for a plain Hugging Face checkpoint.
nlohmann::json read_checkpoint_extra(const std::string& dir);

/// Trainable parameters (tied embedding counted once; every expert of a mixture counted).
int64_t count_parameters(const OptConfig& c);
/// Training FLOPs per the paper's A.2: 96 l h^2 T (1 + s/(6h) + V/(16 l h)), plus, for a
/// mixture of experts, 8 FLOPs per token for each weight a token uses beyond the dense model's
/// (its other top_k - 1 expert FFNs and the router), the rate A.2's 96 l h^2 implies.
double training_flops(const OptConfig& c, int64_t seq_len, int64_t tokens);
/// Model FLOPs of one training token (forward + backward, no recomputation), the numerator of
/// MFU: 6 N + 12 L d s, with N = L (4 d^2 + 2 d d_ff) + V d the weights of every matmul
/// (the tied output projection included) and 12 L d s the attention scores and values.
double model_flops_per_token(const OptConfig& c, int64_t seq_len);

/// The device models run on: `device` (cpu | cuda | cuda:N | auto), or runtime().device when
/// empty; auto = CUDA when available. Error naming the device when it is unknown or absent
/// (cuda:N with N >= the CUDA devices LibTorch sees).
torch::Device model_device(const std::string& device = "");

/// Whether this CPU computes bf16 matmuls natively: AVX-512 BW + VL + DQ, what LibTorch's
/// oneDNN bf16 kernels need (AMX and AVX-512 BF16 CPUs have them). Without them LibTorch 1.13
/// multiplies bf16 matrices in a single-threaded scalar loop, ~50x slower than fp32.
bool cpu_has_fast_bf16();

/// Whether model compute on `device` runs under bf16 autocast: runtime().bf16 and the device
/// computes bf16 fast (CUDA, or a CPU with cpu_has_fast_bf16()). On a CPU without it bf16 is
/// skipped -- fp32 instead, said once at info level -- since it would only be slower.
bool use_bf16(torch::Device device);

/// RAII: autocast off on `device` in this scope (e.g. for a router computed in fp32).
class NoAutocastGuard {
 public:
  explicit NoAutocastGuard(torch::Device device);
  ~NoAutocastGuard();
  NoAutocastGuard(const NoAutocastGuard&) = delete;
  NoAutocastGuard& operator=(const NoAutocastGuard&) = delete;

 private:
  torch::Device device_;
  bool prev_ = false;
};

/// RAII: the bf16 copies autocast makes of the weights are kept until the scope ends, across
/// every AutocastGuard inside it (each would otherwise cast every weight again at its exit):
/// scoring many batches casts the weights once. Autocast itself stays as it was.
class AutocastCacheScope {
 public:
  AutocastCacheScope();
  ~AutocastCacheScope();
  AutocastCacheScope(const AutocastCacheScope&) = delete;
  AutocastCacheScope& operator=(const AutocastCacheScope&) = delete;
};

/// RAII bf16 autocast for the current device when runtime().bf16 is set (works with
/// LibTorch 1.13's CPU autocast API and 2.x's device-generic one).
class AutocastGuard {
 public:
  explicit AutocastGuard(torch::Device device, bool enabled);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  torch::Device device_;
  bool enabled_;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kFloat;
};

}  // namespace cbtm::models
