#include "cbtm/pipeline/cluster_text.h"

#include <cctype>

#include "cbtm/error.h"
#include "cbtm/hash.h"

namespace cbtm {
namespace {

bool continuation(unsigned char c) { return (c & 0xC0) == 0x80; }
bool space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// The end of a cut [begin, end): back to a character boundary, then to the last whitespace
// within the final quarter, if any.
size_t cut_end(const std::string& t, size_t begin, size_t end) {
  while (end > begin && end < t.size() && continuation(static_cast<unsigned char>(t[end]))) --end;
  if (end >= t.size()) return t.size();
  const size_t floor = begin + 3 * (end - begin) / 4;
  for (size_t e = end; e > floor; --e)
    if (space(t[e])) return e;
  return end;
}

// The start of a window: forward to a character boundary, then past the next whitespace
// within the first quarter, if any.
size_t cut_begin(const std::string& t, size_t begin, size_t chars) {
  while (begin < t.size() && continuation(static_cast<unsigned char>(t[begin]))) ++begin;
  if (begin == 0 || space(t[begin - 1])) return begin;
  for (size_t b = begin; b < t.size() && b < begin + chars / 4; ++b)
    if (space(t[b])) return b + 1;
  return begin;
}

}  // namespace

std::string cluster_text(const std::string& text, const std::string& id, const ClusterTextSpec& spec) {
  if (spec.mode != "document" && spec.mode != "prefix" && spec.mode != "window")
    throw Error("data.cluster_text: unknown mode '" + spec.mode + "' (expected document | prefix | window)");
  if (spec.mode == "document") return text;
  if (spec.chars < 1) throw Error("data.cluster_text_chars: must be >= 1 for cluster_text " + spec.mode);
  const size_t chars = static_cast<size_t>(spec.chars);
  if (text.size() <= chars) return text;
  size_t begin = 0;
  if (spec.mode == "window") {
    const uint64_t r = splitmix64(fnv1a(id) ^ splitmix64(spec.seed));
    begin = cut_begin(text, static_cast<size_t>(r % (text.size() - chars + 1)), chars);
  }
  const size_t end = cut_end(text, begin, std::min(text.size(), begin + chars));
  return text.substr(begin, end - begin);
}

}  // namespace cbtm
