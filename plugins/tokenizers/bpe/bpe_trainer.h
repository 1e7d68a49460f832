#pragma once
/// \file bpe_trainer.h
/// Learning byte-level BPE merges from text.
///
/// Two steps: count pre-token frequencies over the sample texts (in parallel), then learn
/// merges greedily. Each step merges the adjacent pair with the highest count (a pair is
/// counted at every position where it occurs, times its word's frequency); ties go to the
/// lexicographically smallest (bytes of first, bytes of second). Learning stops when
/// `vocab_size` tokens exist or no pair occurs `min_frequency` times.
///
/// Every learned piece is new bytes: where two tokens (u, v) sit side by side, no token ever
/// crossed the edges of u + v, so that stretch was split exactly as the string u + v alone
/// would be at every step; merges only coarsen that split, so (u, v) and another split
/// (u', v') of the same bytes can never both occur. (BpeModel checks it anyway.)
///
/// The learner keeps pair counts, the words each pair occurs in, and a lazy max-heap of
/// pairs; a merge only touches the words that contain the merged pair.
///
/// \code
///   auto words = count_pretokens(texts, 50'000'000, 8);
///   std::vector<Merge> merges = learn_merges(words, 8192, 2);
///   BpeModel model(merges);
/// \endcode
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bpe_model.h"

namespace cbtm::bpe {

/// A pre-token and how often it occurs.
using WordCount = std::pair<std::string, int64_t>;

/// Frequencies of the pre-tokens of `texts`, sorted by pre-token bytes. Texts are taken in
/// order while fewer than `max_bytes` bytes have been taken (so the last one may cross the
/// limit). Runs on `threads` threads.
std::vector<WordCount> count_pretokens(const std::vector<std::string>& texts, int64_t max_bytes,
                                       int threads);

/// Merges learned from `words` until `vocab_size` ids exist (specials, bytes and merges) or
/// the best pair occurs fewer than `min_frequency` times. Logs progress.
std::vector<Merge> learn_merges(const std::vector<WordCount>& words, int32_t vocab_size,
                                int64_t min_frequency);

}  // namespace cbtm::bpe
