// Fused CPU training ops (see fused_ops.h): autograd Functions over the row kernels.
#include "fused_ops.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

#include "attention_kernel.h"
#include "row_kernels.h"

namespace cbtm::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool cpu_bf16(const torch::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == torch::kBFloat16; }

uint16_t* raw(torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); }
const uint16_t* raw(const torch::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>()); }

// ---- dropout ------------------------------------------------------------------------------
template <class T>
void apply_mask(const T* in, T* out, const uint8_t* keep, int64_t n, float scale) {
  at::parallel_for(0, n, 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = static_cast<T>(static_cast<float>(in[i]) * (keep[i] ? scale : 0.0f));
  });
}

torch::Tensor masked_scale(const torch::Tensor& x, const torch::Tensor& keep, float scale) {
  const torch::Tensor in = x.contiguous();
  torch::Tensor out = torch::empty_like(in);
  const uint8_t* k = keep.data_ptr<uint8_t>();
  if (in.scalar_type() == torch::kFloat)
    apply_mask(in.data_ptr<float>(), out.data_ptr<float>(), k, in.numel(), scale);
  else
    apply_mask(in.data_ptr<at::BFloat16>(), out.data_ptr<at::BFloat16>(), k, in.numel(), scale);
  return out;
}

struct Dropout : torch::autograd::Function<Dropout> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, double p) {
    const int64_t n = x.numel();
    torch::Tensor keep = torch::empty({n}, torch::TensorOptions().dtype(torch::kUInt8));
    // One draw from the default generator seeds the whole mask.
    const uint64_t seed = static_cast<uint64_t>(
        torch::randint(std::numeric_limits<int64_t>::max(), {1}, torch::TensorOptions().dtype(torch::kLong)).item<int64_t>());
    uint8_t* k = keep.data_ptr<uint8_t>();
    at::parallel_for(0, n, 1 << 16, [&](int64_t b, int64_t e) { kernels::dropout_mask(k + b, b, e, seed, p); });
    const float scale = static_cast<float>(1.0 / (1.0 - p));
    ctx->saved_data["scale"] = static_cast<double>(scale);
    ctx->save_for_backward({keep});
    return masked_scale(x, keep, scale).view(x.sizes());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const torch::Tensor keep = ctx->get_saved_variables()[0];
    const float scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const torch::Tensor& g = grad[0];
    return {masked_scale(g, keep, scale).view(g.sizes()), torch::Tensor()};
  }
};

// ---- causal attention -----------------------------------------------------------------------
// out[i] = a[i] @ b[i]^T, one 2-D mm per batch entry: LibTorch 1.13's bf16 bmm is ~3x slower
// than that loop when the output is T x T and the inner size a head's width.
void mm_nt(const torch::Tensor& a, const torch::Tensor& b, torch::Tensor& out) {
  for (int64_t i = 0; i < a.size(0); ++i) {
    torch::Tensor o = out.select(0, i);
    torch::mm_out(o, a.select(0, i), b.select(0, i).t());
  }
}

struct CausalAttention : torch::autograd::Function<CausalAttention> {
  // q, k, v: [N, T, hd] contiguous bf16
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, double scale) {
    const int64_t N = q.size(0), T = q.size(1);
    torch::Tensor p = torch::empty({N, T, T}, q.options());
    mm_nt(q, k, p);
    uint16_t* pp = raw(p);
    at::parallel_for(0, N * T, 16, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r)
        kernels::softmax_row(pp + r * T, pp + r * T, r % T + 1, T, static_cast<float>(scale), 1.0f);
    });
    ctx->saved_data["scale"] = scale;
    ctx->save_for_backward({q, k, v, p});
    return torch::bmm(p, v);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto s = ctx->get_saved_variables();
    const torch::Tensor &q = s[0], &k = s[1], &v = s[2], &p = s[3];
    const torch::Tensor dout = grad[0].to(torch::kBFloat16).contiguous();
    const float scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const int64_t N = q.size(0), T = q.size(1);
    torch::Tensor ds = torch::empty({N, T, T}, q.options());
    mm_nt(dout, v, ds);  // dP, turned into dS in place below
    const torch::Tensor dv = torch::bmm(p.transpose(1, 2), dout);
    const uint16_t* pp = raw(p);
    uint16_t* d = raw(ds);
    at::parallel_for(0, N * T, 16, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r)
        kernels::softmax_backward_row(pp + r * T, d + r * T, d + r * T, r % T + 1, T, scale);
    });
    return {torch::bmm(ds, k), torch::bmm(ds.transpose(1, 2), q), dv, torch::Tensor()};
  }
};

// ---- cross-entropy --------------------------------------------------------------------------
struct CrossEntropy : torch::autograd::Function<CrossEntropy> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits, const torch::Tensor& targets) {
    const torch::Tensor l = logits.contiguous();
    const torch::Tensor t = targets.contiguous();
    const int64_t N = l.size(0), V = l.size(1);
    const uint16_t* x = raw(l);
    const int64_t* tg = t.data_ptr<int64_t>();
    torch::Tensor lse = torch::empty({N}, torch::TensorOptions().dtype(torch::kFloat));
    float* ls = lse.data_ptr<float>();
    at::parallel_for(0, N, 8, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) ls[r] = kernels::softmax_row(x + r * V, nullptr, V, V, 1.0f, 1.0f);
    });
    double total = 0;
    for (int64_t r = 0; r < N; ++r) {
      if (tg[r] < 0 || tg[r] >= V) throw std::out_of_range("cross_entropy: target " + std::to_string(tg[r]) + " outside [0, " + std::to_string(V) + ")");
      total += static_cast<double>(ls[r]) - static_cast<double>(kernels::bf16_to_float(x[r * V + tg[r]]));
    }
    ctx->save_for_backward({l, t});
    return torch::full({}, static_cast<float>(total / static_cast<double>(N)), torch::TensorOptions().dtype(torch::kFloat));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& l = saved[0];
    const torch::Tensor& t = saved[1];
    const int64_t N = l.size(0), V = l.size(1);
    const float g = grad[0].item<float>() / static_cast<float>(N);
    torch::Tensor dl = torch::empty_like(l);
    const uint16_t* x = raw(l);
    uint16_t* out = raw(dl);
    const int64_t* tg = t.data_ptr<int64_t>();
    at::parallel_for(0, N, 8, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        uint16_t* row = out + r * V;
        const float lse = kernels::softmax_row(x + r * V, row, V, V, 1.0f, g);
        // the target's g (p_t - 1) in fp32, rounded once: rounding g p_t to bf16 first left
        // nothing of it for confident tokens (p_t > 0.99: 12% off on average, 0 or the wrong
        // sign from p_t ~ 0.999)
        const float p_t = std::exp(kernels::bf16_to_float(x[r * V + tg[r]]) - lse);
        row[tg[r]] = kernels::float_to_bf16(g * (p_t - 1.0f));
      }
    });
    return {dl, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor fused_dropout(const torch::Tensor& x, double p, bool train) {
  if (!train || p <= 0.0) return x;
  if (!x.device().is_cpu() || (x.scalar_type() != torch::kFloat && x.scalar_type() != torch::kBFloat16) || p >= 1.0)
    return torch::dropout(x, p, train);
  return Dropout::apply(x, p);
}

// Short rows at inference (no autograd): each (batch, head) entry in plain loops
// (attention_kernel.h), the entries spread over the threads. The mm path pays LibTorch's
// per-call cost twice an entry, which on rows of a few dozen tokens is most of the work.
// bench/attention_bench (1536 tokens, 4 heads of 32, 2 cores; bench/README.md), loops vs mm:
// 6-14x faster at T = 8-16, 3.7-4x at 32, 1.4-1.5x at 64, 0.8-1.0x at 96, 0.6x at 128.
constexpr int64_t kShortAttentionRows = 80;

torch::Tensor causal_attention_loops(const torch::Tensor& q_in, const torch::Tensor& k_in, const torch::Tensor& v_in,
                                     double scale) {
  TORCH_CHECK(cpu_bf16(q_in) && cpu_bf16(k_in) && cpu_bf16(v_in), "causal_attention_loops: bf16 CPU tensors only");
  TORCH_CHECK(q_in.sizes() == k_in.sizes() && q_in.sizes() == v_in.sizes() && q_in.dim() >= 2,
              "causal_attention_loops: q, k, v of one shape [..., T, head_dim]");
  const int64_t T = q_in.size(-2), hd = q_in.size(-1);
  auto flat = [&](const torch::Tensor& t) { return t.reshape({-1, T, hd}).contiguous(); };
  const torch::Tensor q = flat(q_in), k = flat(k_in), v = flat(v_in);
  const int64_t N = q.size(0);
  torch::Tensor out = torch::empty({N, T, hd}, q.options());
  const uint16_t *qp = raw(q), *kp = raw(k), *vp = raw(v);
  uint16_t* op = raw(out);
  at::parallel_for(0, N, 1, [&](int64_t b, int64_t e) {
    std::vector<float> scratch(static_cast<size_t>(kernels::attention_scratch_floats(T, hd)));
    for (int64_t i = b; i < e; ++i)
      kernels::causal_attention_entry(qp + i * T * hd, kp + i * T * hd, vp + i * T * hd, op + i * T * hd, T, hd,
                                      static_cast<float>(scale), scratch.data());
  });
  return out.view(q_in.sizes());
}

torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               double scale) {
  const int64_t T = q.size(-2), hd = q.size(-1);
  if (cpu_bf16(q) && cpu_bf16(k) && cpu_bf16(v)) {
    auto flat = [&](const torch::Tensor& t) { return t.reshape({-1, T, hd}).contiguous(); };
    if (!torch::GradMode::is_enabled() && T < kShortAttentionRows) return causal_attention_loops(q, k, v, scale);
    return CausalAttention::apply(flat(q), flat(k), flat(v), scale).view(q.sizes());
  }
  const torch::Tensor future =
      torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(q.device())).triu(1);
  const torch::Tensor scores = torch::matmul(q * scale, k.transpose(-2, -1));
  return torch::matmul(torch::softmax(scores.masked_fill(future, -std::numeric_limits<double>::infinity()), -1), v);
}

torch::Tensor target_log_probs(const torch::Tensor& logits, const torch::Tensor& targets) {
  TORCH_CHECK(logits.dim() == 2 && targets.dim() == 1 && targets.size(0) == logits.size(0),
              "target_log_probs: logits [N, V] and targets [N]");
  if (!(logits.device().is_cpu() && logits.scalar_type() == torch::kFloat))
    return torch::log_softmax(logits.to(torch::kFloat), -1).gather(1, targets.unsqueeze(1)).squeeze(1);
  const torch::Tensor l = logits.contiguous();
  const torch::Tensor t = targets.to(torch::kLong).contiguous();
  const int64_t N = l.size(0), V = l.size(1);
  torch::Tensor out = torch::empty({N}, l.options());
  const float* x = l.data_ptr<float>();
  const int64_t* tg = t.data_ptr<int64_t>();
  float* o = out.data_ptr<float>();
  for (int64_t r = 0; r < N; ++r)
    TORCH_CHECK(tg[r] >= 0 && tg[r] < V, "target_log_probs: target ", tg[r], " outside [0, ", V, ")");
  at::parallel_for(0, N, 16, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) o[r] = x[r * V + tg[r]] - kernels::logsumexp_row(x + r * V, V);
  });
  return out;
}

torch::Tensor fused_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  if (cpu_bf16(logits) && logits.dim() == 2) return CrossEntropy::apply(logits, targets);
  return torch::nn::functional::cross_entropy(logits.to(torch::kFloat), targets);
}

}  // namespace cbtm::models
