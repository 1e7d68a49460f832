#include "cbtm/corpus.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <glob.h>

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <zstd.h>

#include "cbtm/error.h"
#include "cbtm/hash.h"

namespace cbtm {

const std::string& Document::field(const std::string& key) const {
  static const std::string empty;
  auto it = meta.find(key);
  return it == meta.end() ? empty : it->second;
}

int64_t CorpusStats::bad_total() const {
  int64_t n = 0;
  for (const auto& [k, v] : bad) n += v;
  return n;
}

// A byte source: a FILE*, optionally through a zstd stream decoder.
struct CorpusReader::Source {
  FILE* f = nullptr;
  ZSTD_DCtx* z = nullptr;
  std::vector<char> in, out;
  ZSTD_inBuffer zin{nullptr, 0, 0};
  std::string pending;  // decoded bytes not yet returned as lines
  size_t pos = 0;       // start of the next line in `pending`
  size_t scan = 0;      // pending[pos, scan) holds no newline: where the next search starts
  bool skipping = false;  // inside a line over max_line_bytes, discarding it up to its newline
  bool eof = false;
  uint64_t bytes_read = 0;  // from the file (compressed bytes for zstd)
  size_t last_ret = 0;      // the last ZSTD_decompressStream result: 0 once a frame is complete
  bool out_full = false;    // the last call filled `out`: the decoder may hold more output
  ~Source() {
    if (f) std::fclose(f);
    if (z) ZSTD_freeDCtx(z);
  }
  // Reads up to n bytes; a read error throws, since treating it as the end of the file would
  // lose the rest of the corpus silently.
  size_t read(char* buf, size_t n, const std::string& path) {
    const size_t got = std::fread(buf, 1, n, f);
    if (std::ferror(f)) {
      const int err = errno;
      throw Error("corpus " + path + ": read error after " + std::to_string(bytes_read + got) +
                  " bytes: " + std::strerror(err));
    }
    bytes_read += got;
    return got;
  }
  // Appends more decoded bytes to `pending`; false at end of input.
  bool fill(const std::string& path) {
    if (eof) return false;
    if (!z) {
      char buf[1 << 16];
      const size_t n = read(buf, sizeof buf, path);
      if (n == 0) { eof = true; return false; }
      pending.append(buf, n);
      return true;
    }
    for (;;) {
      if (zin.pos == zin.size && !out_full) {
        const size_t n = read(in.data(), in.size(), path);
        if (n == 0) {
          eof = true;
          // The file ended inside a frame: a cut-off download or copy. Its documents would be
          // lost silently if this counted as the end.
          if (last_ret != 0)
            throw Error("corpus " + path + ": truncated zstd frame: the file ends inside a frame (" +
                        std::to_string(bytes_read) + " bytes read); is the file complete?");
          return false;
        }
        zin = {in.data(), n, 0};
      }
      ZSTD_outBuffer zout{out.data(), out.size(), 0};
      const size_t r = ZSTD_decompressStream(z, &zout, &zin);
      if (ZSTD_isError(r)) throw Error(path + ": corrupt zstd data (" + ZSTD_getErrorName(r) + ")");
      last_ret = r;
      out_full = zout.pos == zout.size;
      if (zout.pos > 0) {
        pending.append(out.data(), zout.pos);
        return true;
      }
    }
  }
  // Marks pending[pos, end) as returned; drops consumed bytes now and then.
  void consume(size_t end) {
    pos = scan = end;
    if (pos > (1 << 20)) {
      pending.erase(0, pos);
      pos = scan = 0;
    }
  }
};

namespace {
std::string stem_of(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  for (const char* ext : {".zst", ".jsonl", ".json"}) {
    const size_t n = std::strlen(ext);
    if (name.size() > n && name.compare(name.size() - n, n, ext) == 0) name.resize(name.size() - n);
  }
  return name;
}

bool is_corpus_file(const std::string& name) {
  auto ends = [&](const char* e) {
    const size_t n = std::strlen(e);
    return name.size() > n && name.compare(name.size() - n, n, e) == 0;
  };
  return ends(".jsonl") || ends(".jsonl.zst") || ends(".json") || ends(".json.zst");
}

// The components of a path, lexically normalised ("./a//b" -> {"a", "b"}).
std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  for (const auto& c : std::filesystem::path(path).lexically_normal()) {
    if (c.empty()) continue;  // the trailing "" of a path ending in a separator
    out.push_back(c.generic_string());
  }
  return out;
}

// How many leading components every file's directory shares: the deepest common directory.
size_t common_dir_depth(const std::vector<std::vector<std::string>>& paths) {
  if (paths.empty()) return 0;
  size_t depth = paths[0].empty() ? 0 : paths[0].size() - 1;  // the directory: all but the name
  for (const auto& p : paths) {
    const size_t dir = p.empty() ? 0 : p.size() - 1;
    size_t i = 0;
    while (i < depth && i < dir && p[i] == paths[0][i]) ++i;
    depth = i;
  }
  return depth;
}

// `parts` from component `from` on, joined with '/' (a root "/" component adds no separator).
std::string join_from(const std::vector<std::string>& parts, size_t from) {
  std::string out;
  for (size_t i = from; i < parts.size(); ++i) {
    if (!out.empty() && out.back() != '/') out += '/';
    out += parts[i];
  }
  return out;
}
}  // namespace

std::vector<std::string> corpus_files(const std::string& spec) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::error_code ec;
  // An existing path is taken literally: a file named doc[1].jsonl is that file, not a
  // pattern matching doc1.jsonl. Only a path that does not exist is expanded as a glob.
  const bool exists = fs::exists(spec, ec);
  if (ec) throw Error("corpus " + spec + ": cannot access: " + ec.message());  // e.g. permission denied
  if (exists && fs::is_directory(spec, ec)) {
    for (const auto& e : fs::directory_iterator(spec))
      if (e.is_regular_file() && is_corpus_file(e.path().filename().string())) out.push_back(e.path().string());
    if (out.empty()) throw Error("corpus " + spec + ": the directory holds no .jsonl or .jsonl.zst file");
  } else if (exists) {
    out.push_back(spec);
  } else if (spec.find_first_of("*?[") != std::string::npos) {
    glob_t g;
    const int rc = ::glob(spec.c_str(), 0, nullptr, &g);
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i)
        if (fs::is_regular_file(g.gl_pathv[i], ec)) out.emplace_back(g.gl_pathv[i]);
    globfree(&g);
    if (out.empty()) throw Error("corpus " + spec + ": the pattern matches no file");
  } else {
    throw Error("corpus " + spec + ": no such file");
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> corpus_id_prefixes(const std::vector<std::string>& files) {
  std::vector<std::vector<std::string>> parts;
  parts.reserve(files.size());
  for (const auto& f : files) parts.push_back(components(f));
  const size_t base = common_dir_depth(parts);
  std::vector<std::string> prefix(files.size());
  std::vector<bool> by_path(files.size(), false);
  // Files whose prefixes clash switch to their relative path, until none clash. Relative paths
  // of distinct files differ, so this ends; a file that only clashes with a relative path
  // (e.g. a.jsonl.json's stem "a.jsonl") switches too.
  for (;;) {
    std::map<std::string, std::vector<size_t>> users;
    for (size_t i = 0; i < files.size(); ++i) {
      prefix[i] = by_path[i] ? join_from(parts[i], base) : stem_of(files[i]);
      users[prefix[i]].push_back(i);
    }
    bool changed = false;
    for (const auto& [p, idx] : users) {
      if (idx.size() < 2) continue;
      for (size_t i : idx) {
        if (by_path[i]) continue;
        by_path[i] = true;
        changed = true;
      }
    }
    if (!changed) return prefix;
  }
}

namespace {
// The default id prefix of each of `files`, decided by the files of `id_corpus` (all of them,
// even those not read here) or, when it is empty, by `files` themselves.
std::vector<std::string> id_prefixes_for(const std::string& spec, const std::vector<std::string>& files,
                                         const std::string& id_corpus) {
  if (id_corpus.empty()) return corpus_id_prefixes(files);
  const std::vector<std::string> all = corpus_files(id_corpus);
  const std::vector<std::string> all_prefixes = corpus_id_prefixes(all);
  std::map<std::string, std::string> by_file;
  for (size_t i = 0; i < all.size(); ++i)
    by_file.emplace(std::filesystem::path(all[i]).lexically_normal().string(), all_prefixes[i]);
  std::vector<std::string> out;
  out.reserve(files.size());
  for (const auto& f : files) {
    auto it = by_file.find(std::filesystem::path(f).lexically_normal().string());
    if (it == by_file.end())
      throw Error("corpus " + spec + ": file " + f + " is not one of the files of " + id_corpus +
                  ", which decides its document ids (CorpusOptions::id_corpus)");
    out.push_back(it->second);
  }
  return out;
}

bool has_line_break_or_tab(const std::string& s) { return s.find_first_of("\t\r\n") != std::string::npos; }
}  // namespace

CorpusReader::CorpusReader(const std::string& path, CorpusOptions options)
    : spec_(path), opt_(std::move(options)) {
  if (opt_.on_bad_document != "skip" && opt_.on_bad_document != "fail")
    throw Error("on_bad_document must be skip or fail, got '" + opt_.on_bad_document + "'");
  if (opt_.max_line_bytes <= 0)
    throw Error("corpus " + path + ": max_line_bytes must be > 0, got " + std::to_string(opt_.max_line_bytes));
  files_ = corpus_files(path);
  id_prefixes_ = id_prefixes_for(path, files_, opt_.id_corpus);
  open_next_file();
}

bool CorpusReader::open_next_file() {
  src_.reset();
  if (file_ >= files_.size()) return false;
  id_prefix_ = id_prefixes_[file_];
  path_ = files_[file_++];
  file_line_ = 0;
  file_docs_ = 0;
  src_ = std::make_unique<Source>();
  src_->f = std::fopen(path_.c_str(), "rb");
  if (!src_->f) throw Error("corpus " + path_ + ": cannot open: " + std::strerror(errno));
  if (path_.size() > 4 && path_.compare(path_.size() - 4, 4, ".zst") == 0) {
    src_->z = ZSTD_createDCtx();
    src_->in.resize(ZSTD_DStreamInSize());
    src_->out.resize(ZSTD_DStreamOutSize());
  }
  return true;
}

CorpusReader::~CorpusReader() = default;

// Returns the next line of the current file (opening the next file at the end of one). A line
// over max_line_bytes comes back empty with line_too_long_ set: its bytes are dropped as they
// arrive, so memory stays bounded, and each byte is searched for a newline once.
bool CorpusReader::next_line(std::string& line) {
  line_too_long_ = false;
  const size_t max_line = static_cast<size_t>(opt_.max_line_bytes);
  while (src_) {
    Source& s = *src_;
    const size_t nl = s.pending.find('\n', s.scan);
    const size_t end = nl == std::string::npos ? s.pending.size() : nl;
    if (!s.skipping && end - s.pos > max_line) s.skipping = true;
    if (s.skipping) {
      if (nl != std::string::npos) {  // the end of the long line
        s.skipping = false;
        s.consume(nl + 1);
        line.clear();
        line_too_long_ = true;
        return true;
      }
      s.pending.clear();
      s.pos = s.scan = 0;
    } else if (nl != std::string::npos) {
      line.assign(s.pending, s.pos, nl - s.pos);
      s.consume(nl + 1);
      return true;
    } else {
      s.scan = s.pending.size();
    }
    if (!s.fill(path_)) {
      if (s.skipping) {  // a long last line without a newline
        s.skipping = false;
        line.clear();
        line_too_long_ = true;
        return true;
      }
      if (s.pos < s.pending.size()) {  // last line without a newline
        line.assign(s.pending, s.pos, std::string::npos);
        s.pos = s.scan = s.pending.size();
        return true;
      }
      if (!open_next_file()) return false;
    }
  }
  return false;
}

bool CorpusReader::next(Document& doc) {
  std::string line;
  for (;;) {
    if (opt_.max_total_docs > 0 && returned_ >= opt_.max_total_docs) return false;
    if (opt_.max_docs > 0) {
      if (!opt_.max_docs_per_file && stats_.docs >= opt_.max_docs + opt_.skip_docs) return false;
      if (opt_.max_docs_per_file && file_docs_ >= opt_.max_docs + opt_.skip_docs) {
        if (!open_next_file()) return false;
        continue;
      }
    }
    if (!next_line(line)) return false;
    ++stats_.lines;
    ++file_line_;
    std::string reason;
    nlohmann::json j;
    if (line_too_long_) {
      reason = "line too long";
      if (opt_.on_bad_document != "fail")
        spdlog::warn("{}:{}: line longer than {} bytes; skipped (a bad line)", path_, file_line_, opt_.max_line_bytes);
    } else {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error& e) {
        const std::string w = e.what();
        reason = w.find("UTF-8") != std::string::npos || w.find("utf-8") != std::string::npos
                     ? "invalid UTF-8"
                     : "invalid JSON";
      }
    }
    if (reason.empty()) {
      if (!j.is_object()) reason = "not a JSON object";
      else if (!j.contains(opt_.text_field)) reason = "no '" + opt_.text_field + "' field";
      else if (!j[opt_.text_field].is_string()) reason = "'" + opt_.text_field + "' is not a string";
      else if (j[opt_.text_field].get_ref<const std::string&>().empty()) reason = "empty text";
    }
    if (!reason.empty()) {
      const std::string where = path_ + ":" + std::to_string(file_line_) + ": " + reason;
      if (opt_.on_bad_document == "fail")
        throw Error(where + " (set data.on_bad_document: skip to skip such lines)");
      if (stats_.bad.empty()) stats_.first_bad = where;
      ++stats_.bad[reason];
      continue;
    }
    ++stats_.docs;
    ++file_docs_;
    if ((opt_.max_docs_per_file ? file_docs_ : stats_.docs) <= opt_.skip_docs) continue;
    doc.text = std::move(j[opt_.text_field].get_ref<std::string&>());
    doc.meta.clear();
    doc.id.clear();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == opt_.text_field) continue;
      std::string v;
      if (it->is_string()) v = it->get<std::string>();
      else if (it->is_number() || it->is_boolean()) v = it->dump();
      else continue;
      if (it.key() == opt_.id_field) doc.id = v;
      else doc.meta[it.key()] = std::move(v);
    }
    // Ids are written as-is to TSV files (assignments.tsv): a tab or line break would corrupt them.
    if (has_line_break_or_tab(doc.id))
      throw Error(path_ + ":" + std::to_string(file_line_) + ": the '" + opt_.id_field +
                  "' field holds a tab or line break, which a document id may not contain");
    if (doc.id.empty()) {
      if (has_line_break_or_tab(id_prefix_))
        throw Error(path_ + ":" + std::to_string(file_line_) + ": the file's path holds a tab or line break, so it " +
                    "cannot name its documents; give each document an '" + opt_.id_field + "' field");
      doc.id = id_prefix_ + ":" + std::to_string(file_line_);
    }
    ++returned_;
    return true;
  }
}

namespace {
void report_read(const std::string& path, const CorpusStats& s, bool empty) {
  if (s.bad_total() > 0) {
    std::string summary;
    for (const auto& [reason, n] : s.bad) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + reason;
    spdlog::warn("{}: skipped {} bad line(s): {} (first: {})", path, s.bad_total(), summary, s.first_bad);
  }
  if (empty)
    throw Error("corpus " + path + " has no usable documents (" + std::to_string(s.lines) +
                " lines read, " + std::to_string(s.bad_total()) + " skipped as bad)");
}
}  // namespace

std::vector<Document> read_corpus(const std::string& path, const CorpusOptions& options) {
  CorpusReader reader(path, options);
  std::vector<Document> docs;
  Document d;
  while (reader.next(d)) docs.push_back(std::move(d));
  report_read(path, reader.stats(), docs.empty());
  return docs;
}

std::vector<Document> sample_corpus(const std::string& path, const CorpusOptions& options, int64_t n, uint64_t seed) {
  if (n <= 0) throw Error("sample_corpus(" + path + "): the sample size must be > 0");
  CorpusReader reader(path, options);
  // Algorithm R: document i (0-based) replaces a random slot with probability n / (i + 1).
  std::vector<std::pair<int64_t, Document>> slots;
  slots.reserve(static_cast<size_t>(n));
  uint64_t state = splitmix64(seed ^ 0x73616D706C65ull);  // "sample"
  Document d;
  for (int64_t i = 0; reader.next(d); ++i) {
    if (i < n) {
      slots.emplace_back(i, std::move(d));
      continue;
    }
    const uint64_t j = static_cast<uint64_t>((static_cast<unsigned __int128>(splitmix64_next(state)) *
                                              static_cast<uint64_t>(i + 1)) >> 64);
    if (j < static_cast<uint64_t>(n)) slots[j] = {i, std::move(d)};
  }
  report_read(path, reader.stats(), slots.empty());
  std::sort(slots.begin(), slots.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Document> docs;
  docs.reserve(slots.size());
  for (auto& [i, doc] : slots) docs.push_back(std::move(doc));
  return docs;
}

}  // namespace cbtm
