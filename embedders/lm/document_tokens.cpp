#include "document_tokens.h"

#include <algorithm>
#include <numeric>

namespace cbtm::lm_embed {
namespace {
constexpr int64_t kBytesPerToken = 16;  // first prefix: this many bytes per wanted token
constexpr int64_t kMargin = 64;         // tokens after max_tokens that a cut may not reach

/// n moved back (at most 3 bytes) so that it does not split a UTF-8 sequence of `text`.
size_t utf8_cut(std::string_view text, size_t n) {
  for (int back = 0; back < 3 && n > 0 && n < text.size(); ++back, --n)
    if ((static_cast<unsigned char>(text[n]) & 0xC0) != 0x80) break;
  return n;
}
}  // namespace

std::vector<int32_t> leading_tokens(const Tokenizer& tok, std::string_view text,
                                    int64_t max_tokens) {
  const size_t want = static_cast<size_t>(max_tokens);
  size_t window = static_cast<size_t>(max_tokens * kBytesPerToken);
  std::vector<int32_t> ids;
  while (true) {
    if (window >= text.size()) {
      ids = tok.encode(text);
      break;
    }
    ids = tok.encode(text.substr(0, utf8_cut(text, window)));
    if (ids.size() >= want + static_cast<size_t>(kMargin)) break;
    window *= 2;
  }
  if (ids.size() > want) ids.resize(want);
  return ids;
}

std::vector<TokenBatch> pack_batches(const std::vector<int64_t>& lengths, int64_t batch_tokens,
                                     int64_t extra) {
  std::vector<size_t> order;
  for (size_t i = 0; i < lengths.size(); ++i)
    if (lengths[i] > 0) order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return lengths[a] > lengths[b]; });
  std::vector<TokenBatch> out;
  size_t begin = 0;
  while (begin < order.size()) {
    TokenBatch b;
    b.longest = lengths[order[begin]];
    const size_t rows =
        static_cast<size_t>(std::max<int64_t>(1, batch_tokens / (b.longest + extra)));
    const size_t end = std::min(order.size(), begin + rows);
    b.docs.assign(order.begin() + static_cast<std::ptrdiff_t>(begin),
                  order.begin() + static_cast<std::ptrdiff_t>(end));
    out.push_back(std::move(b));
    begin = end;
  }
  return out;
}

}  // namespace cbtm::lm_embed
