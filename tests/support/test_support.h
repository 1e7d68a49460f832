#pragma once
/// \file test_support.h
/// Shared helpers for the Catch2 tests.
#include <string>
#include <vector>

#include "cbtm/document.h"
#include "cbtm/plugin_host.h"

namespace cbtm::test {

/// A PluginHost with every built-in plugin loaded (from the build tree), shared per process.
PluginHost& plugins();

/// A fresh empty directory under the build tree, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& name = "tmp");
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

/// Path of a file in the source tree (e.g. "tests/data/toy.jsonl").
std::string source_path(const std::string& rel);
/// ../shared/data/devpile.jsonl.zst (tests that need it SKIP when it is absent).
std::string devpile_path();
bool have_devpile();
/// The first `n` documents of devpile.
std::vector<Document> devpile_docs(int64_t n, int64_t skip = 0);
/// Writes `content` to `path` (creating directories).
void write_text(const std::string& path, const std::string& content);
/// The decompressed contents of a zstd file (fails the test if it cannot be read).
std::string read_zst(const std::string& path);

}  // namespace cbtm::test
