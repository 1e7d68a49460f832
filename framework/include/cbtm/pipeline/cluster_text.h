#pragma once
/// \file cluster_text.h
/// Routing-aware clustering (data.cluster_text): the text the embedder sees when the
/// clustering stage fits the centres and when assign places a training document.
///
/// At inference the router embeds a document's context -- its first tokens -- not the whole
/// document. Fitting the embedder and centres on the same kind of text ("prefix", or a
/// "window" at a random offset: contexts of a long document seen anywhere) makes the
/// training clusters the ones the router can recognise from a short context. The tokenizer
/// and the experts always see the whole document; only the embedded copy is cut.
#include <cstdint>
#include <string>

namespace cbtm {

/// How much of a document the clustering stage embeds.
struct ClusterTextSpec {
  std::string mode = "document";  ///< document | prefix | window
  int64_t chars = 512;            ///< length of a prefix or window, in bytes of UTF-8 text
  uint64_t seed = 1;              ///< with the document id, picks a window's offset
};

/// The text of `text` (document `id`) that spec says to embed:
///  - document: all of it;
///  - prefix:   its first ~chars bytes;
///  - window:   ~chars bytes starting at an offset drawn uniformly from [0, size - chars] by a
///              hash of (seed, id), so the same document gets the same window on every
///              machine and shard.
/// A cut never splits a UTF-8 character, and moves to a whitespace boundary when one lies
/// within the last quarter of the length (a word is not cut in half). A document no longer
/// than chars is returned whole. Throws Error for an unknown mode or chars < 1.
std::string cluster_text(const std::string& text, const std::string& id, const ClusterTextSpec& spec);

}  // namespace cbtm
