#include "support/catch.h"

#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>

#include "cbtm/fs.h"
#include "cbtm/tensor_file.h"
#include "support/test_support.h"

using cbtm::test::TempDir;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const cbtm::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("tensor file: round trip of tensors - strings and metadata") {
  TempDir t("tf");
  cbtm::TensorFileWriter w;
  w.add_f32("x", {2, 3}, {1, 2, 3, 4, 5, 6.5f});
  w.add_i64("n", {2}, {-1, 1LL << 40});
  w.add_strings("vocab", {"alpha", "", "γάμμα"});
  w.set_meta("format", "cbtm");
  w.set_meta("format_version", "1");
  w.set_meta("artifact", "test");
  w.write(t / "a.safetensors");
  auto f = cbtm::TensorFile::read_artifact(t / "a.safetensors", "test", 1);
  CHECK(f.info("x").shape == std::vector<int64_t>{2, 3});
  CHECK(f.f32("x") == std::vector<float>{1, 2, 3, 4, 5, 6.5f});
  CHECK(f.i64("n") == std::vector<int64_t>{-1, 1LL << 40});
  CHECK(f.strings("vocab") == std::vector<std::string>{"alpha", "", "γάμμα"});
  CHECK(f.meta("artifact") == "test");
  // the header is safetensors: 8-byte length then JSON, data 8-byte aligned
  const std::string raw = cbtm::read_file(t / "a.safetensors");
  uint64_t hlen;
  std::memcpy(&hlen, raw.data(), 8);
  CHECK(hlen % 8 == 0);
  CHECK(raw[8] == '{');
  // no temporary files left behind
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(t.path())) files += e.is_regular_file();
  CHECK(files == 1);
}

TEST_CASE("tensor file: truncated - foreign and wrong-kind files are named in errors") {
  TempDir t("tf");
  cbtm::TensorFileWriter w;
  std::vector<float> big(1000, 1.f);
  w.add_f32("w", {1000}, big);
  w.set_meta("format", "cbtm");
  w.set_meta("format_version", "1");
  w.set_meta("artifact", "clusterer");
  w.write(t / "c.safetensors");
  const std::string raw = cbtm::read_file(t / "c.safetensors");
  cbtm::write_file_atomic(t / "cut.safetensors", raw.substr(0, raw.size() - 100));
  std::string e = error_of([&] { cbtm::TensorFile::read(t / "cut.safetensors"); });
  CHECK(e.find("cut.safetensors: truncated") != std::string::npos);
  cbtm::write_file_atomic(t / "tiny.safetensors", raw.substr(0, 5));
  CHECK(error_of([&] { cbtm::TensorFile::read(t / "tiny.safetensors"); }).find("truncated") != std::string::npos);
  cbtm::write_file_atomic(t / "junk.safetensors", std::string(8, '\x10') + "hello world, not json at all");
  CHECK(error_of([&] { cbtm::TensorFile::read(t / "junk.safetensors"); }).find("junk.safetensors") != std::string::npos);
  CHECK(error_of([&] { cbtm::TensorFile::read_artifact(t / "c.safetensors", "tokenizer", 1); })
            .find("expected a 'tokenizer' artifact, found 'clusterer'") != std::string::npos);
  CHECK(error_of([&] { cbtm::TensorFile::read(t / "none.safetensors"); }).find("no such file") != std::string::npos);
  auto f = cbtm::TensorFile::read(t / "c.safetensors");
  CHECK(error_of([&] { f.f32("nope"); }).find("has no tensor 'nope'") != std::string::npos);
}

TEST_CASE("tensor file: a negative or overflowing shape is refused naming the tensor") {
  TempDir t("tf");
  // a hand-made safetensors file: 8-byte little-endian header length, JSON header, data
  auto make = [&](const std::string& name, const std::string& shape) {
    const std::string header = "{\"x\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[0,0]}}";
    std::string raw(8, '\0');
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) raw[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
    cbtm::write_file_atomic(t / name, raw + header);
    return error_of([&] { cbtm::TensorFile::read(t / name); });
  };
  const std::string neg = make("neg.safetensors", "[-1,-1]");  // would count 1 element
  CHECK(neg.find("neg.safetensors") != std::string::npos);
  CHECK(neg.find("negative dimension") != std::string::npos);
  const std::string big = make("big.safetensors", "[4294967296,4294967296]");  // would overflow to 0 elements
  CHECK(big.find("shape too large") != std::string::npos);
  CHECK(make("empty.safetensors", "[0,5]").empty());  // 0 elements in 0 bytes is fine
}
