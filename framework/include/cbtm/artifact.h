#pragma once
/// \file artifact.h
/// Self-describing artifacts of fitted components (tokenizer, embedder + clusterer, ...).
///
/// An artifact is a tensor file (see tensor_file.h) whose metadata holds:
///   format: cbtm, format_version, artifact (what it is), cbtm_version,
///   components: JSON map prefix -> {kind, type, options (the resolved YAML)},
///   config: the whole resolved run config (YAML).
/// Loading recreates each component from its recorded plugin and options, then calls its
/// load(), so an artifact can be used without the config that produced it.
///
/// \code
///   ArtifactWriter w("clusterer", resolved_config);
///   w.add("embedder", *embedder, registry.resolve("embedder", cfg.child("embedder")));
///   w.add("clusterer", *clusterer, registry.resolve("clusterer", cfg.child("clusterer")));
///   w.write(out + "/clusterer.safetensors");
///   ArtifactReader r(out + "/clusterer.safetensors", "clusterer");
///   auto emb = r.load<Embedder>(registry, "embedder");
/// \endcode
#include <memory>
#include <string>

#include <yaml-cpp/yaml.h>

#include "cbtm/registry.h"
#include "cbtm/tensor_file.h"

namespace cbtm {

constexpr int kArtifactFormatVersion = 1;

class ArtifactWriter {
 public:
  ArtifactWriter(std::string artifact, const YAML::Node& config);
  /// Saves `c` under `prefix`, recording its kind and resolved options (`options` must hold
  /// `type:`). C is any component with save(TensorFileWriter&, prefix).
  template <class C>
  void add(const std::string& prefix, const C& c, const YAML::Node& options) {
    record(prefix, C::kKind, options);
    c.save(tensors_, prefix);
  }
  TensorFileWriter& tensors() { return tensors_; }
  void set_meta(const std::string& key, const std::string& value) {
    tensors_.set_meta(key, value);
  }
  /// Writes atomically.
  void write(const std::string& path);

 private:
  void record(const std::string& prefix, const std::string& kind, const YAML::Node& options);
  std::string artifact_;
  TensorFileWriter tensors_;
  YAML::Node components_;
};

class ArtifactReader {
 public:
  /// Reads and checks magic, version and artifact name (Error naming the file otherwise).
  ArtifactReader(const std::string& path, const std::string& artifact);
  /// Recreates the component stored under `prefix` and loads its state.
  template <class I>
  std::unique_ptr<I> load(const Registry& registry, const std::string& prefix) const {
    auto c = registry.create<I>(component_config(prefix, I::kKind));
    c->load(file_, prefix);
    return c;
  }
  /// The recorded options of a component (with `type:`).
  ConfigNode component_config(const std::string& prefix, const std::string& kind) const;
  /// The run config recorded in the artifact.
  YAML::Node config() const;
  const TensorFile& file() const { return file_; }

 private:
  TensorFile file_;
  YAML::Node components_;
};

}  // namespace cbtm
