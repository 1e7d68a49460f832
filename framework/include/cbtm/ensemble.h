#pragma once
/// \file ensemble.h
/// The C-BTM ensemble as a pure function (paper eq. 2):
///   log p(x_t | x_<t) = logsumexp_j ( log w_tj + log p_j(x_t | x_<t) )   over w_tj > 0.
#include <cstdint>
#include <vector>

#include "cbtm/matrix.h"

namespace cbtm {

/// `expert_logp[j]` holds expert j's log-probabilities of the T scored tokens (may be empty
/// for an expert whose weights are all zero); `weights` is T x K. Returns T mixed
/// log-probabilities. Error if a needed expert's row is missing or has the wrong length.
std::vector<float> mix_log_probs(const std::vector<std::vector<float>>& expert_logp,
                                 const Matrix& weights);

/// Experts with a non-zero weight anywhere in `weights` (sorted).
std::vector<int32_t> active_experts(const Matrix& weights);

}  // namespace cbtm
