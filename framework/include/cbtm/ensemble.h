#pragma once
/// \file ensemble.h
/// The C-BTM ensemble as a pure function (paper eq. 2):
///   log p(x_t | x_<t) = logsumexp_j ( log w_tj + log p_j(x_t | x_<t) )   over w_tj > 0.
#include <cstdint>
#include <vector>

#include "cbtm/matrix.h"

namespace cbtm {

/// `expert_logp[j]` holds expert j's log-probabilities of the first scored tokens: at least
/// needed_positions(weights)[j] of them (empty for an expert whose weights are all zero; an
/// expert needed only for a prefix of the document may be run on that prefix alone, since a
/// causal model's log-probabilities of a prefix do not depend on what follows). `weights` is
/// T x K. Returns T mixed log-probabilities. Error if a needed expert's row is too short.
std::vector<float> mix_log_probs(const std::vector<std::vector<float>>& expert_logp,
                                 const Matrix& weights);

/// Experts with a non-zero weight anywhere in `weights` (sorted).
std::vector<int32_t> active_experts(const Matrix& weights);

/// Per expert j: 1 + the last position with a non-zero weight (0 when never used) -- how many
/// leading scored tokens expert j must be run on (a row of that many + 1 tokens).
std::vector<int64_t> needed_positions(const Matrix& weights);

/// Per expert j: for each of its first needed_positions(weights)[j] scored tokens, 1 where
/// w_tj > 0 -- where expert j's log-probability enters the mixture (what
/// LanguageModel::score_positions is asked for; the rest of the prefix only feeds attention).
std::vector<std::vector<uint8_t>> weighted_positions(const Matrix& weights);

}  // namespace cbtm
