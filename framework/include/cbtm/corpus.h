#pragma once
/// \file corpus.h
/// Streaming JSONL corpus reader: one JSON object per line, plain or zstd-compressed
/// (chosen by the `.zst` suffix). A corpus is one file, a glob pattern (`shards/train-*.jsonl.zst`)
/// or a directory (its `*.jsonl` / `*.jsonl.zst` files); several files are read in sorted
/// order, and each is one *input shard* of `cbtm assign --shard I`. A path that exists is taken
/// literally, even when its name holds glob characters (`doc[1].jsonl`). Bad lines (invalid JSON
/// or UTF-8, a missing or non-string text field, empty text, a line over max_line_bytes) are
/// skipped and counted, or fail the run, per `on_bad_document`. A read error or a truncated zstd
/// frame is always an Error, never a silent end of file.
///
/// Document ids: the `id_field` when present (it must not hold a tab, CR or LF, since ids are
/// written to TSV files), else `<prefix>:<line>` with the 1-based line number in its file. The
/// prefix is the file's stem (`a` for a.jsonl, a.json, a.jsonl.zst); where two files of the
/// corpus share a stem, each of them uses its path relative to the directory all the corpus's
/// files lie under instead (`x/train.jsonl:3`, `y/train.jsonl:3`), so default ids are unique
/// across the corpus. See corpus_id_prefixes().
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cbtm/document.h"

namespace cbtm {

struct CorpusOptions {
  static constexpr int64_t kMaxLineBytes = int64_t{256} << 20;  ///< default max_line_bytes: 256 MiB
  std::string text_field = "text";
  std::string id_field = "id";
  std::string on_bad_document = "skip";  ///< "skip" (count and warn) or "fail"
  int64_t max_docs = 0;                  ///< stop after this many good documents (0: all)
  int64_t skip_docs = 0;                 ///< discard this many good documents first
  bool max_docs_per_file = false;        ///< max_docs/skip_docs count per file, not in all
  int64_t max_total_docs = 0;            ///< also stop after returning this many in all (0: no limit)
  /// A line longer than this (in bytes, before its newline) is skipped without being held in
  /// memory whole and counted as a bad line ("line too long"), or fails per on_bad_document.
  int64_t max_line_bytes = kMaxLineBytes;
  /// The corpus spec whose files decide the default id prefixes (see corpus_id_prefixes()).
  /// Set it to the whole corpus when reading one of its files alone (`cbtm assign --shard`), so
  /// the ids match those of a read of the whole corpus; every file read must be one of its
  /// files. Empty: the corpus being read.
  std::string id_corpus;
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

/// The default id prefix of each of `files` (the files of one corpus, as corpus_files() gives
/// them), in the same order: the file's stem, or, for every file whose stem another file also
/// gives, its path relative to the deepest directory that holds all of `files`. The prefixes
/// are unique unless a file is listed twice.
std::vector<std::string> corpus_id_prefixes(const std::vector<std::string>& files);

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
  std::vector<std::string> id_prefixes_;  // default id prefix of each of files_
  size_t file_ = 0;           // index of the next file to open
  std::string path_;          // current file
  std::string id_prefix_;     // its default id prefix
  bool line_too_long_ = false;  // set by next_line(): the line was over max_line_bytes, skipped
  int64_t file_line_ = 0, file_docs_ = 0;
  int64_t returned_ = 0;  // documents handed out by next()
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
