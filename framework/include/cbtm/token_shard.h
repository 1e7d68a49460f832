#pragma once
/// \file token_shard.h
/// Tokenized training data: a directory of shard files (`shard-00000.safetensors`, ...),
/// each holding `tokens` (U16 when the vocabulary fits, else I32; documents concatenated,
/// no separators) and `offsets` (I64, documents+1 boundaries). The trainer adds the
/// beginning-of-document token when it packs blocks.
#include <cstdint>
#include <string>
#include <vector>

namespace cbtm {

class TokenShardWriter {
 public:
  /// Writes shards into `dir` (created), each with at most `max_tokens` tokens.
  TokenShardWriter(std::string dir, int32_t vocab_size, int64_t max_tokens = 64 << 20);
  ~TokenShardWriter();
  void add(const std::vector<int32_t>& doc);
  /// Flushes the last shard. Called by the destructor if not called explicitly (but not when
  /// the destructor runs because an exception is unwinding: the output is then abandoned).
  void close();
  int64_t docs() const { return docs_; }
  int64_t tokens() const { return tokens_; }

 private:
  void flush();
  std::string dir_;
  int32_t vocab_size_;
  int64_t max_tokens_;
  std::vector<int32_t> buf_;
  std::vector<int64_t> offsets_{0};
  int shard_ = 0;
  int64_t docs_ = 0, tokens_ = 0;
  bool closed_ = false;
  int uncaught_ = 0;  // std::uncaught_exceptions() at construction
};

struct TokenShard {
  std::vector<int32_t> tokens;
  std::vector<int64_t> offsets;  ///< size docs+1
  int64_t docs() const { return static_cast<int64_t>(offsets.size()) - 1; }
};

/// Reads the documents of a shard directory one at a time, in order, one shard in memory.
class TokenShardReader {
 public:
  explicit TokenShardReader(const std::string& dir);
  /// The next document's tokens; false after the last one.
  bool next(std::vector<int32_t>& doc);

 private:
  std::vector<std::string> shards_;
  size_t next_shard_ = 0;
  TokenShard cur_;
  int64_t doc_ = 0;
};

/// Shard files in `dir`, sorted; Error if the directory is missing.
std::vector<std::string> list_token_shards(const std::string& dir);
/// Reads one shard (Error naming the file if truncated or not a token shard).
TokenShard read_token_shard(const std::string& path);

}  // namespace cbtm
