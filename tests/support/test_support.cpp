#include "support/test_support.h"

#include <zstd.h>

#include "support/catch.h"

#include <atomic>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "cbtm/corpus.h"
#include "cbtm/fs.h"

namespace fs = std::filesystem;

namespace cbtm::test {

PluginHost& plugins() {
  static PluginHost* host = [] {
    auto* h = new PluginHost();
    h->load_directory(CBTM_PLUGIN_DIR);
    return h;
  }();
  return *host;
}

TempDir::TempDir(const std::string& name) {
  static std::atomic<int> n{0};
  path_ = std::string(CBTM_BINARY_DIR) + "/test-tmp/" + name + "-" + std::to_string(::getpid()) +
          "-" + std::to_string(n++);
  fs::remove_all(path_);
  fs::create_directories(path_);
}
TempDir::~TempDir() {
  std::error_code ec;
  if (!std::getenv("CBTM_KEEP_TEST_DIRS")) fs::remove_all(path_, ec);
}

std::string source_path(const std::string& rel) { return std::string(CBTM_SOURCE_DIR) + "/" + rel; }
std::string devpile_path() { return std::string(CBTM_SHARED_DIR) + "/data/devpile.jsonl.zst"; }
bool have_devpile() { return fs::exists(devpile_path()); }

std::vector<Document> devpile_docs(int64_t n, int64_t skip) {
  CorpusOptions o;
  o.max_docs = n;
  o.skip_docs = skip;
  return read_corpus(devpile_path(), o);
}

void write_text(const std::string& path, const std::string& content) {
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

std::string read_zst(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  const std::string packed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ZSTD_DStream* ds = ZSTD_createDStream();
  ZSTD_initDStream(ds);
  std::string out;
  std::vector<char> buf(ZSTD_DStreamOutSize());
  ZSTD_inBuffer ib{packed.data(), packed.size(), 0};
  while (ib.pos < ib.size) {
    ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
    const size_t rc = ZSTD_decompressStream(ds, &ob, &ib);
    REQUIRE(!ZSTD_isError(rc));
    out.append(buf.data(), ob.pos);
  }
  ZSTD_freeDStream(ds);
  return out;
}

}  // namespace cbtm::test
