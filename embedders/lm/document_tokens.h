#pragma once
/// \file document_tokens.h
/// Documents -> token rows for batched forward passes (torch-free, used by the lm embedder).
///
/// \code
///   std::vector<int32_t> ids = leading_tokens(tok, text, 512);        // <= 512 ids
///   for (const TokenBatch& b : pack_batches(lengths, 16384, 1)) ...   // longest first
/// \endcode
#include <cstdint>
#include <string_view>
#include <vector>

#include "cbtm/tokenizer.h"

namespace cbtm::lm_embed {

/// The first `max_tokens` ids of tok.encode(text). Long texts are not encoded whole: a
/// prefix of 16 x max_tokens bytes (cut at a UTF-8 boundary) is encoded first, and its ids
/// are used when it yields at least max_tokens + 64 of them (a cut can only change tokens
/// next to it); otherwise the prefix doubles until that holds or the whole text is encoded.
std::vector<int32_t> leading_tokens(const Tokenizer& tok, std::string_view text,
                                    int64_t max_tokens);

/// Documents that go through the model together.
struct TokenBatch {
  std::vector<size_t> docs;  ///< indices into the lengths given to pack_batches
  int64_t longest = 0;       ///< the largest length among them (the first one's)
};

/// Sorts the documents with length > 0 longest first (ties by index) and packs consecutive
/// ones into batches with rows x (longest + extra) <= batch_tokens, at least one row each.
/// `extra` counts positions added to every row (e.g. a leading </s>). Length-0 documents
/// are in no batch.
std::vector<TokenBatch> pack_batches(const std::vector<int64_t>& lengths, int64_t batch_tokens,
                                     int64_t extra);

}  // namespace cbtm::lm_embed
