#include "cbtm/token_shard.h"

#include <exception>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/tensor_file.h"

namespace fs = std::filesystem;

namespace cbtm {

TokenShardWriter::TokenShardWriter(std::string dir, int32_t vocab_size, int64_t max_tokens)
    : dir_(std::move(dir)), vocab_size_(vocab_size), max_tokens_(std::max<int64_t>(1, max_tokens)),
      uncaught_(std::uncaught_exceptions()) {
  make_dirs(dir_);
}

TokenShardWriter::~TokenShardWriter() {
  // destroyed while an exception unwinds (a failed assign part): the output is abandoned, not
  // completed with what was buffered
  if (std::uncaught_exceptions() > uncaught_) return;
  try {
    close();
  } catch (...) {
  }
}

void TokenShardWriter::add(const std::vector<int32_t>& doc) {
  if (closed_) throw std::logic_error("TokenShardWriter::add after close");
  buf_.insert(buf_.end(), doc.begin(), doc.end());
  offsets_.push_back(static_cast<int64_t>(buf_.size()));
  ++docs_;
  tokens_ += static_cast<int64_t>(doc.size());
  if (static_cast<int64_t>(buf_.size()) >= max_tokens_) flush();
}

void TokenShardWriter::flush() {
  if (offsets_.size() <= 1 && shard_ > 0) return;
  TensorFileWriter w;
  w.set_meta("format", "cbtm");
  w.set_meta("format_version", "1");
  w.set_meta("artifact", "token_shard");
  w.set_meta("vocab_size", std::to_string(vocab_size_));
  const int64_t n = static_cast<int64_t>(buf_.size());
  if (vocab_size_ <= 65536) {
    std::vector<uint16_t> t(buf_.begin(), buf_.end());
    w.add("tokens", DType::U16, {n}, t.data(), t.size() * 2);
  } else {
    w.add_i32("tokens", {n}, buf_);
  }
  w.add_i64("offsets", {static_cast<int64_t>(offsets_.size())}, offsets_);
  char name[32];
  std::snprintf(name, sizeof name, "shard-%05d.safetensors", shard_++);
  w.write((fs::path(dir_) / name).string());
  buf_.clear();
  offsets_.assign(1, 0);
}

void TokenShardWriter::close() {
  if (closed_) return;
  closed_ = true;
  if (offsets_.size() > 1 || shard_ == 0) flush();
}

std::vector<std::string> list_token_shards(const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error("token data directory " + dir + " does not exist");
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("shard-", 0) == 0 && e.path().extension() == ".safetensors") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TokenShard read_token_shard(const std::string& path) {
  TensorFile f = TensorFile::read_artifact(path, "token_shard", 1);
  TokenShard s;
  s.tokens = f.i32("tokens");
  s.offsets = f.i64("offsets");
  if (s.offsets.empty() || s.offsets.front() != 0 ||
      s.offsets.back() != static_cast<int64_t>(s.tokens.size()) ||
      !std::is_sorted(s.offsets.begin(), s.offsets.end()))
    throw Error(path + ": corrupt token shard (document offsets do not match the tokens)");
  return s;
}

TokenShardReader::TokenShardReader(const std::string& dir) : shards_(list_token_shards(dir)) {}

bool TokenShardReader::next(std::vector<int32_t>& doc) {
  while (doc_ >= cur_.docs()) {
    if (next_shard_ >= shards_.size()) return false;
    cur_ = read_token_shard(shards_[next_shard_++]);
    doc_ = 0;
  }
  doc.assign(cur_.tokens.begin() + cur_.offsets[doc_], cur_.tokens.begin() + cur_.offsets[doc_ + 1]);
  ++doc_;
  return true;
}

}  // namespace cbtm
