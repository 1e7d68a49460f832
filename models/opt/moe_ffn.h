#pragma once
/// \file moe_ffn.h
/// A mixture-of-experts FFN (internal to cbtm_models), the block of sparse upcycling
/// (Komatsuzaki et al. 2022) as the C-BTM paper's MoE baseline uses it:
///   router   logits = x W_g^T (W_g: [E, d], no bias, computed in fp32), p = softmax(logits);
///            each token goes to its top_k experts with weights p / sum of its top_k p
///   capacity C = ceil(capacity_factor x N x top_k / E) assignments per expert and forward
///            pass (N tokens) -- the factor counts assignments, so capacity_factor 1 with
///            top-2 is GShard's 2N/E; assignments are served first choice first (every
///            token's first choice, then every second choice, GShard's priority), in token
///            order; an assignment past C is dropped and the token's weights are renormalised
///            over what was kept (none kept: the residual only). In training only: at
///            evaluation (eval mode) every assignment is served.
///   experts  each an OPT FFN: fc2(relu(fc1(x))) with biases, stored stacked as
///            fc1_weight [E, d_ff, d], fc1_bias [E, d_ff], fc2_weight [E, d, d_ff], fc2_bias [E, d]
///   loss     the load-balancing loss of Switch/GShard: E x sum_e f_e P_e, with f_e the
///            fraction of tokens whose first choice is e and P_e the mean router probability
///            of e (1 when routing is uniform); kept in last_aux_loss for the trainer.
#include <cstdint>

#include <torch/torch.h>

namespace cbtm::models {

class MoeFfnImpl : public torch::nn::Module {
 public:
  MoeFfnImpl(int64_t d_model, int64_t d_ff, int64_t experts, int64_t top_k, double capacity_factor);
  /// x: [B, T, d_model] (already layer-normed) -> [B, T, d_model], before the residual dropout.
  torch::Tensor forward(const torch::Tensor& x);
  /// Every expert becomes a copy of this dense FFN (fc1 [d_ff, d], fc2 [d, d_ff]); the router
  /// is left as it is (sparse upcycling: a new router, copied FFNs).
  void upcycle_from(const torch::Tensor& fc1_weight, const torch::Tensor& fc1_bias, const torch::Tensor& fc2_weight,
                    const torch::Tensor& fc2_bias);

  torch::Tensor gate;                            ///< [E, d_model], registered "gate"
  torch::Tensor fc1_weight, fc1_bias, fc2_weight, fc2_bias;

  torch::Tensor last_aux_loss;   ///< load-balancing loss of the last forward (float scalar)
  double last_dropped = 0;       ///< fraction of the last forward's assignments dropped
  int64_t last_capacity = 0;     ///< C of the last forward

 private:
  int64_t experts_, top_k_;
  double capacity_factor_;
};
TORCH_MODULE(MoeFfn);

}  // namespace cbtm::models
