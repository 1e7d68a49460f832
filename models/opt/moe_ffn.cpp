// The mixture-of-experts FFN: top-k routing with capacity, load-balancing loss; see moe_ffn.h.
#include "moe_ffn.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "opt/opt.h"

namespace cbtm::models {

MoeFfnImpl::MoeFfnImpl(int64_t d_model, int64_t d_ff, int64_t experts, int64_t top_k, double capacity_factor)
    : experts_(experts), top_k_(top_k), capacity_factor_(capacity_factor) {
  gate = register_parameter("gate", torch::zeros({experts, d_model}));
  fc1_weight = register_parameter("fc1_weight", torch::zeros({experts, d_ff, d_model}));
  fc1_bias = register_parameter("fc1_bias", torch::zeros({experts, d_ff}));
  fc2_weight = register_parameter("fc2_weight", torch::zeros({experts, d_model, d_ff}));
  fc2_bias = register_parameter("fc2_bias", torch::zeros({experts, d_model}));
  last_aux_loss = torch::zeros({});
}

void MoeFfnImpl::upcycle_from(const torch::Tensor& w1, const torch::Tensor& b1, const torch::Tensor& w2,
                              const torch::Tensor& b2) {
  torch::NoGradGuard no_grad;
  fc1_weight.copy_(w1.unsqueeze(0).expand_as(fc1_weight));
  fc1_bias.copy_(b1.unsqueeze(0).expand_as(fc1_bias));
  fc2_weight.copy_(w2.unsqueeze(0).expand_as(fc2_weight));
  fc2_bias.copy_(b2.unsqueeze(0).expand_as(fc2_bias));
}

torch::Tensor MoeFfnImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), N = B * T, E = experts_, K = top_k_;
  const torch::Tensor xf = x.reshape({N, D});
  torch::Tensor probs;
  {
    NoAutocastGuard fp32(x.device());
    probs = torch::softmax(torch::linear(xf.to(torch::kFloat), gate), -1);  // [N, E]
  }
  const auto top = probs.topk(K, -1);
  const torch::Tensor topv = std::get<0>(top), topi = std::get<1>(top);  // [N, K]
  // Top-2 and up: weights renormalised over the token's choices (fairseq's top2gating). Top-1:
  // the gate probability itself (fairseq's top1gating, Switch): renormalised it would be 1,
  // whose gradient is 0, and the router would learn from the balancing loss alone.
  const torch::Tensor weight = K == 1 ? topv : topv / topv.sum(-1, true);

  // Assignments in priority order: every token's first choice, then every second choice, ...
  const torch::Tensor expert = topi.t().reshape({-1});                        // [K N]
  const torch::Tensor token = torch::arange(N, topi.options()).repeat({K});  // [K N]
  const torch::Tensor onehot = torch::one_hot(expert, E);                    // [K N, E]
  const torch::Tensor position = (onehot.cumsum(0) - 1).gather(1, expert.unsqueeze(1)).squeeze(1);
  // Capacity binds in training only: at evaluation every assignment is served, so a token's
  // output does not depend on the other tokens (or the padding) of its batch
  last_capacity = is_training() ? std::max<int64_t>(1, static_cast<int64_t>(std::ceil(
                                      capacity_factor_ * static_cast<double>(N * K) / static_cast<double>(E))))
                                : N;
  const torch::Tensor kept = position < last_capacity;
  last_dropped = 1.0 - kept.to(torch::kFloat).mean().item<double>();
  // A token's weights are renormalised over its assignments that were kept (fairseq's
  // default for top-2 gating); one with none kept keeps its residual only
  torch::Tensor w = weight.t().reshape({-1});  // [K N]
  if (last_dropped > 0 && K > 1) {
    const torch::Tensor kept_w = (w * kept.to(w.scalar_type())).view({K, N});
    w = (kept_w / kept_w.sum(0, true).clamp_min(1e-9)).reshape({-1});
  }

  // Load balancing: E sum_e f_e P_e (f: first choices, not differentiable; P: mean probability).
  const torch::Tensor f = torch::one_hot(topi.select(1, 0), E).to(torch::kFloat).mean(0);
  last_aux_loss = (f * probs.mean(0)).sum() * static_cast<double>(E);

  const torch::Tensor routed = expert.masked_fill(kept.logical_not(), E);  // dropped -> no expert
  std::vector<torch::Tensor> outs, toks;
  for (int64_t e = 0; e < E; ++e) {
    const torch::Tensor sel = torch::nonzero(routed == e).squeeze(1);
    if (sel.numel() == 0) continue;
    const torch::Tensor t = token.index_select(0, sel);
    torch::Tensor h = torch::relu(torch::linear(xf.index_select(0, t), fc1_weight[e], fc1_bias[e]));
    h = torch::linear(h, fc2_weight[e], fc2_bias[e]);
    outs.push_back(h * w.index_select(0, sel).unsqueeze(1).to(h.scalar_type()));
    toks.push_back(t);
  }
  if (outs.empty()) return torch::zeros_like(x);
  const torch::Tensor all = torch::cat(outs);
  return torch::zeros({N, D}, all.options()).index_add(0, torch::cat(toks), all).view({B, T, D});
}

}  // namespace cbtm::models
