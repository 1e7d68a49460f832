#pragma once
/// \file opt_test_util.h
/// Small helpers shared by the OptLM tests.
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "opt/opt.h"

namespace cbtm::test {

/// A tiny OPT configuration (fast on 2 cores).
inline models::OptConfig tiny_opt_config(int64_t vocab = 40) {
  models::OptConfig c;
  c.vocab_size = vocab;
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 4;
  c.d_ff = 24;
  c.max_positions = 20;
  c.dropout = 0.1;
  return c;
}

/// Runs the model on one row of tokens: [T] -> logits [T, vocab].
inline torch::Tensor logits_of(models::OptLM& m, const std::vector<int64_t>& tokens) {
  torch::NoGradGuard g;
  return m->forward(torch::tensor(tokens, torch::kLong).unsqueeze(0)).squeeze(0);
}

/// Max |a - b|.
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

}  // namespace cbtm::test
