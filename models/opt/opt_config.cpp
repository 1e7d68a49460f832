// OptConfig validation and the closed-form size / cost of an OPT model.
#include "opt/opt.h"

namespace cbtm::models {

void OptConfig::validate() const {
  require(vocab_size >= 0, "vocab_size", "must be >= 0");
  require(d_model > 0, "d_model", "must be positive");
  require(n_layers > 0, "n_layers", "must be positive");
  require(n_heads > 0, "n_heads", "must be positive");
  require(d_model % n_heads == 0, "n_heads",
          "must divide d_model (" + std::to_string(d_model) + "), got " +
              std::to_string(n_heads));
  require(d_ff > 0, "d_ff", "must be positive");
  require(max_positions > 0, "max_positions", "must be positive");
  require(dropout >= 0.0 && dropout < 1.0, "dropout", "must be in [0, 1)");
  require(attention_dropout >= 0.0 && attention_dropout < 1.0, "attention_dropout",
          "must be in [0, 1)");
  require(init_std > 0.0, "init_std", "must be positive");
  require(moe_experts >= 0, "moe_experts", "must be >= 0 (0: dense FFNs)");
  require(moe_every >= 1, "moe_every", "must be >= 1");
  require(moe_experts == 0 || (moe_top_k >= 1 && moe_top_k <= moe_experts), "moe_top_k",
          "must be in [1, moe_experts=" + std::to_string(moe_experts) + "], got " + std::to_string(moe_top_k));
  require(moe_capacity_factor > 0.0, "moe_capacity_factor", "must be positive");
  require(moe_aux_weight >= 0.0, "moe_aux_weight", "must be >= 0");
}

int64_t count_parameters(const OptConfig& c) {
  const int64_t d = c.d_model, f = c.d_ff;
  const int64_t embeddings = c.vocab_size * d + (c.max_positions + 2) * d;
  const int64_t attention = 4 * (d * d + d);
  const int64_t ffn = (d * f + f) + (f * d + d);
  const int64_t norms = 2 * (2 * d);
  int64_t ffns = 0;
  for (int64_t i = 0; i < c.n_layers; ++i) ffns += c.moe_layer(i) ? c.moe_experts * ffn + c.moe_experts * d : ffn;
  return embeddings + c.n_layers * (attention + norms) + ffns + 2 * d;  // + final LayerNorm
}

namespace {
/// A token runs through top_k experts of each mixture block: (top_k - 1) more FFNs' weights
/// per such block than the dense model (the router's E x d is counted too).
double extra_moe_weights(const OptConfig& c) {
  if (c.moe_experts == 0) return 0.0;
  int64_t blocks = 0;
  for (int64_t i = 0; i < c.n_layers; ++i) blocks += c.moe_layer(i);
  const double d = static_cast<double>(c.d_model), ff = static_cast<double>(c.d_ff);
  return static_cast<double>(blocks) *
         (static_cast<double>(c.moe_top_k - 1) * 2.0 * d * ff + static_cast<double>(c.moe_experts) * d);
}
}  // namespace

double training_flops(const OptConfig& c, int64_t seq_len, int64_t tokens) {
  const double l = static_cast<double>(c.n_layers), h = static_cast<double>(c.d_model);
  const double s = static_cast<double>(seq_len), V = static_cast<double>(c.vocab_size);
  return 96.0 * l * h * h * static_cast<double>(tokens) *
             (1.0 + s / (6.0 * h) + V / (16.0 * l * h)) +
         extra_moe_weights(c) * 8.0 * static_cast<double>(tokens);  // 8 per weight and token, as A.2's 96 l h^2
}

double model_flops_per_token(const OptConfig& c, int64_t seq_len) {
  const double l = static_cast<double>(c.n_layers), d = static_cast<double>(c.d_model);
  const double ff = static_cast<double>(c.d_ff), V = static_cast<double>(c.vocab_size);
  const double matmul_weights = l * (4.0 * d * d + 2.0 * d * ff) + V * d + extra_moe_weights(c);
  return 6.0 * matmul_weights + 12.0 * l * d * static_cast<double>(seq_len);
}

}  // namespace cbtm::models
