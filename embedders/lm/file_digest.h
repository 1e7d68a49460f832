#pragma once
/// \file file_digest.h
/// A content digest of a file, so that a saved embedder can tell that the checkpoint or
/// tokenizer it refers to was replaced (not a cryptographic hash).
#include <string>

namespace cbtm::lm_embed {

/// "<size in bytes>:<16 hex digits of a 64-bit hash of the bytes>"; Error naming the path if
/// the file cannot be read. Reads the file once (several GB/s).
std::string file_digest(const std::string& path);

}  // namespace cbtm::lm_embed
