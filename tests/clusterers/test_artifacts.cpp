// Clusterer artifacts: every clusterer (and a mini-batch fit) round-trips through a file;
// truncated files, wrong shapes, wrong dtypes, non-finite centres and missing tensors are
// reported with the file and the tensor.
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support/catch.h"

#include "blobs.h"
#include "cbtm/clusterer.h"
#include "cbtm/config_node.h"
#include "cbtm/error.h"
#include "cbtm/tensor_file.h"
#include "support/test_support.h"

using cbtm::Clusterer;
using cbtm::Matrix;

namespace {
std::unique_ptr<Clusterer> make(const std::string& yaml) {
  return cbtm::test::plugins().registry().create<Clusterer>(
      cbtm::ConfigNode{YAML::Load(yaml), "clusterer", "test.yaml"});
}
void fit(Clusterer& cl, const cbtm::test::Blobs& b) {
  std::vector<std::string> meta;
  for (int32_t l : b.label) meta.push_back("d" + std::to_string(l));
  cl.fit_with_metadata(b.x, meta);  // the others ignore the metadata
}
// A hand-made clusterer artifact: centres of `shape`, k, plugin name.
void write_artifact(const std::string& path, const std::vector<int64_t>& shape,
                    std::vector<float> centers, int32_t k, const std::string& plugin) {
  cbtm::TensorFileWriter w;
  w.add_f32("c.centers", shape, centers);
  w.add_i32("c.k", {1}, {k});
  w.add_strings("c.plugin", {plugin});
  w.write(path);
}
}  // namespace

TEST_CASE("clusterer artifacts: every clusterer round-trips through a file", "[artifacts]") {
  const auto b = cbtm::test::make_blobs({50, 40, 30}, 4, 5.f, 1.f, 41);
  const Matrix y = cbtm::test::make_blobs({20, 20}, 4, 5.f, 2.f, 42).x;
  std::vector<std::string> ymeta(y.rows, "d1");
  ymeta[3] = "other";
  for (const std::string cfg :
       {"{type: balanced_kmeans, k: 3}", "{type: balanced_kmeans, k: 3, batch_size: 32}",
        "{type: kmeans, k: 3}", "{type: kmeans, k: 3, batch_size: 16}",
        "{type: random, k: 3, seed: 4}", "{type: metadata, k: 3}"}) {
    INFO(cfg);
    auto cl = make(cfg);
    fit(*cl, b);
    cbtm::test::TempDir dir("artifacts");
    cbtm::TensorFileWriter w;
    cl->save(w, "c");
    w.write(dir / "c.safetensors");
    auto back = make(cfg);
    back->load(cbtm::TensorFile::read(dir / "c.safetensors"), "c");
    CHECK(back->centers().data == cl->centers().data);
    CHECK(back->assign(y).cluster == cl->assign(y).cluster);
    const auto a1 = cl->assign_with_metadata(y, ymeta), a2 = back->assign_with_metadata(y, ymeta);
    CHECK(a1.cluster == a2.cluster);
    CHECK(a1.sqdist == a2.sqdist);
  }
}

TEST_CASE("clusterer artifacts: corrupted files name the problem", "[artifacts]") {
  cbtm::test::TempDir dir("corrupt");
  const std::string path = dir / "c.safetensors";
  auto cl = make("{type: balanced_kmeans, k: 4}");
  const std::vector<float> ok(4 * 3, 0.5f);

  SECTION("truncated file") {
    write_artifact(path, {4, 3}, ok, 4, "balanced_kmeans");
    const auto size = std::filesystem::file_size(path);
    std::filesystem::resize_file(path, size - 5);
    CHECK_THROWS_AS(cbtm::TensorFile::read(path), cbtm::Error);
    CHECK_THROWS_WITH(cbtm::TensorFile::read(path), ContainsText("truncated"));
  }
  SECTION("centres of the wrong shape") {
    write_artifact(path, {3, 4}, ok, 4, "balanced_kmeans");
    CHECK_THROWS_WITH(cl->load(cbtm::TensorFile::read(path), "c"),
                      ContainsText("c.centers' must have shape [4, dim]") &&
                          ContainsText(path));
    write_artifact(path, {12}, ok, 4, "balanced_kmeans");
    CHECK_THROWS_WITH(cl->load(cbtm::TensorFile::read(path), "c"),
                      ContainsText("must have shape [4, dim]"));
  }
  SECTION("centres of the wrong dtype") {
    cbtm::TensorFileWriter w;
    w.add_i32("c.centers", {4, 3}, std::vector<int32_t>(12, 1));
    w.add_i32("c.k", {1}, {4});
    w.add_strings("c.plugin", {"balanced_kmeans"});
    w.write(path);
    CHECK_THROWS_WITH(cl->load(cbtm::TensorFile::read(path), "c"),
                      ContainsText("expected a float type"));
  }
  SECTION("non-finite centres") {
    std::vector<float> bad = ok;
    bad[7] = std::numeric_limits<float>::infinity();
    write_artifact(path, {4, 3}, bad, 4, "balanced_kmeans");
    CHECK_THROWS_WITH(cl->load(cbtm::TensorFile::read(path), "c"), ContainsText("not finite"));
  }
  SECTION("missing tensors") {
    cbtm::TensorFileWriter w;
    w.add_f32("c.centers", {4, 3}, ok);
    w.write(path);
    CHECK_THROWS_WITH(cl->load(cbtm::TensorFile::read(path), "c"),
                      ContainsText("tensor 'c.k' is missing"));
    write_artifact(path, {4, 3}, ok, 4, "random");
    CHECK_THROWS_WITH(make("{type: random, k: 4}")->load(cbtm::TensorFile::read(path), "c"),
                      ContainsText("c.seed' is missing"));
    write_artifact(path, {4, 3}, ok, 4, "metadata");
    CHECK_THROWS_WITH(make("{type: metadata, k: 4}")->load(cbtm::TensorFile::read(path), "c"),
                      ContainsText("c.field.bytes' is missing"));
  }
  SECTION("metadata values that do not match k") {
    cbtm::TensorFileWriter w;
    w.add_f32("c.centers", {4, 3}, ok);
    w.add_i32("c.k", {1}, {4});
    w.add_strings("c.plugin", {"metadata"});
    w.add_strings("c.field", {"domain"});
    w.add_strings("c.values", {"a", "b"});
    w.write(path);
    CHECK_THROWS_WITH(make("{type: metadata, k: 4}")->load(cbtm::TensorFile::read(path), "c"),
                      ContainsText("lists 2 cluster values, not k=4"));
  }
  // A failed load leaves the clusterer unfitted.
  CHECK(cl->centers().empty());
}
