#pragma once
/// \file corpus.h
/// Streaming JSONL corpus reader: one JSON object per line, plain or zstd-compressed
/// (chosen by the `.zst` suffix). A corpus is one file, a glob pattern (`shards/train-*.jsonl.zst`)
/// or a directory (its `*.jsonl` / `*.jsonl.zst` files); several files are read in sorted
/// order, and each is one *input shard* of `cbtm assign --shard I`. Bad lines (invalid JSON or UTF-8, a missing or non-string
/// text field, empty text) are skipped and counted, or fail the run, per `on_bad_document`.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cbtm/document.h"

namespace cbtm {

struct CorpusOptions {
  std::string text_field = "text";
  std::string id_field = "id";
  std::string on_bad_document = "skip";  ///< "skip" (count and warn) or "fail"
  int64_t max_docs = 0;                  ///< stop after this many good documents (0: all)
  int64_t skip_docs = 0;                 ///< discard this many good documents first
  bool max_docs_per_file = false;        ///< max_docs/skip_docs count per file, not in all
};

/// Counts kept while reading; `bad` maps a reason to its count.
struct CorpusStats {
  int64_t lines = 0;
  int64_t docs = 0;
  std::map<std::string, int64_t> bad;
  std::string first_bad;  ///< "file:line: reason" of the first skipped line
  int64_t bad_total() const;
};

/// The files of a corpus spec (a file, a glob pattern or a directory), sorted. Error naming
/// the spec when nothing matches.
std::vector<std::string> corpus_files(const std::string& spec);

class CorpusReader {
 public:
  /// Opens the corpus `path` (see corpus_files()); Error if it does not exist or cannot be read.
  CorpusReader(const std::string& path, CorpusOptions options);
  ~CorpusReader();
  /// Reads the next good document; false at the end (or after max_docs).
  bool next(Document& doc);
  const CorpusStats& stats() const { return stats_; }
  /// The corpus spec given to the constructor.
  const std::string& path() const { return spec_; }

 private:
  bool next_line(std::string& line);
  bool open_next_file();
  struct Source;
  std::string spec_;
  std::vector<std::string> files_;
  size_t file_ = 0;           // index of the next file to open
  std::string path_;          // current file
  std::string stem_;
  int64_t file_line_ = 0, file_docs_ = 0;
  CorpusOptions opt_;
  CorpusStats stats_;
  std::unique_ptr<Source> src_;
};

/// Reads a whole corpus (up to options.max_docs). Logs a summary of skipped lines; throws
/// Error if no document is left ("corpus X has no usable documents").
std::vector<Document> read_corpus(const std::string& path, const CorpusOptions& options);

/// A uniform random sample of `n` documents of the whole corpus (every file, within
/// options.max_docs), returned in corpus order: one pass, reservoir sampling, memory ~ n
/// documents. The same corpus, options and seed give the same sample on every platform; a
/// corpus of at most n documents is returned whole. Skipped lines and an empty corpus as in
/// read_corpus().
std::vector<Document> sample_corpus(const std::string& path, const CorpusOptions& options, int64_t n, uint64_t seed);

}  // namespace cbtm
