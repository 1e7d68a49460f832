#include "cbtm/corpus.h"

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
  size_t pos = 0;
  bool eof = false;
  ~Source() {
    if (f) std::fclose(f);
    if (z) ZSTD_freeDCtx(z);
  }
  // Appends more decoded bytes to `pending`; false at end of input.
  bool fill(const std::string& path) {
    if (eof) return false;
    if (!z) {
      char buf[1 << 16];
      size_t n = std::fread(buf, 1, sizeof buf, f);
      if (n == 0) { eof = true; return false; }
      pending.append(buf, n);
      return true;
    }
    for (;;) {
      if (zin.pos == zin.size) {
        size_t n = std::fread(in.data(), 1, in.size(), f);
        if (n == 0) {
          eof = true;
          return false;
        }
        zin = {in.data(), n, 0};
      }
      ZSTD_outBuffer zout{out.data(), out.size(), 0};
      size_t r = ZSTD_decompressStream(z, &zout, &zin);
      if (ZSTD_isError(r)) throw Error(path + ": corrupt zstd data (" + ZSTD_getErrorName(r) + ")");
      if (zout.pos > 0) {
        pending.append(out.data(), zout.pos);
        return true;
      }
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
}  // namespace

namespace {
bool is_corpus_file(const std::string& name) {
  auto ends = [&](const char* e) {
    const size_t n = std::strlen(e);
    return name.size() > n && name.compare(name.size() - n, n, e) == 0;
  };
  return ends(".jsonl") || ends(".jsonl.zst") || ends(".json") || ends(".json.zst");
}
}  // namespace

std::vector<std::string> corpus_files(const std::string& spec) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  if (spec.find_first_of("*?[") != std::string::npos) {
    glob_t g;
    const int rc = ::glob(spec.c_str(), 0, nullptr, &g);
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i)
        if (fs::is_regular_file(g.gl_pathv[i])) out.emplace_back(g.gl_pathv[i]);
    globfree(&g);
    if (out.empty()) throw Error("corpus " + spec + ": the pattern matches no file");
  } else if (fs::is_directory(spec)) {
    for (const auto& e : fs::directory_iterator(spec))
      if (e.is_regular_file() && is_corpus_file(e.path().filename().string())) out.push_back(e.path().string());
    if (out.empty()) throw Error("corpus " + spec + ": the directory holds no .jsonl or .jsonl.zst file");
  } else {
    if (!fs::exists(spec)) throw Error("corpus " + spec + ": no such file");
    out.push_back(spec);
  }
  std::sort(out.begin(), out.end());
  return out;
}

CorpusReader::CorpusReader(const std::string& path, CorpusOptions options)
    : spec_(path), opt_(std::move(options)) {
  if (opt_.on_bad_document != "skip" && opt_.on_bad_document != "fail")
    throw Error("on_bad_document must be skip or fail, got '" + opt_.on_bad_document + "'");
  files_ = corpus_files(path);
  open_next_file();
}

bool CorpusReader::open_next_file() {
  src_.reset();
  if (file_ >= files_.size()) return false;
  path_ = files_[file_++];
  stem_ = stem_of(path_);
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

bool CorpusReader::next_line(std::string& line) {
  while (src_) {
    Source& s = *src_;
    size_t nl = s.pending.find('\n', s.pos);
    if (nl != std::string::npos) {
      line.assign(s.pending, s.pos, nl - s.pos);
      s.pos = nl + 1;
      if (s.pos > (1 << 20)) {
        s.pending.erase(0, s.pos);
        s.pos = 0;
      }
      return true;
    }
    if (!s.fill(path_)) {
      if (s.pos < s.pending.size()) {  // last line without a newline
        line.assign(s.pending, s.pos, std::string::npos);
        s.pos = s.pending.size();
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
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
    std::string reason;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      const std::string w = e.what();
      reason = w.find("UTF-8") != std::string::npos || w.find("utf-8") != std::string::npos
                   ? "invalid UTF-8"
                   : "invalid JSON";
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
    if (doc.id.empty()) doc.id = stem_ + ":" + std::to_string(file_line_);
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
