#include "cbtm/artifact.h"

#include "cbtm/error.h"
#include "cbtm/version.h"

namespace cbtm {
namespace {
std::string to_yaml(const YAML::Node& n) {
  YAML::Emitter e;
  e << n;
  return e.c_str();
}
}  // namespace

ArtifactWriter::ArtifactWriter(std::string artifact, const YAML::Node& config)
    : artifact_(std::move(artifact)), components_(YAML::NodeType::Map) {
  tensors_.set_meta("format", "cbtm");
  tensors_.set_meta("format_version", std::to_string(kArtifactFormatVersion));
  tensors_.set_meta("artifact", artifact_);
  tensors_.set_meta("cbtm_version", kVersion);
  if (config) tensors_.set_meta("config", to_yaml(config));
}

void ArtifactWriter::record(const std::string& prefix, const std::string& kind,
                            const YAML::Node& options) {
  YAML::Node c;
  c["kind"] = kind;
  c["options"] = options;
  components_[prefix] = c;
}

void ArtifactWriter::write(const std::string& path) {
  tensors_.set_meta("components", to_yaml(components_));
  tensors_.write(path);
}

ArtifactReader::ArtifactReader(const std::string& path, const std::string& artifact)
    : file_(TensorFile::read_artifact(path, artifact, kArtifactFormatVersion)) {
  try {
    components_ = file_.has_meta("components") ? YAML::Load(file_.meta("components")) : YAML::Node();
  } catch (const std::exception& e) {
    throw Error(path + ": corrupt component table (" + e.what() + ")");
  }
}

ConfigNode ArtifactReader::component_config(const std::string& prefix, const std::string& kind) const {
  YAML::Node c = components_ ? components_[prefix] : YAML::Node();
  if (!c || !c["options"])
    throw Error(file_.path() + ": holds no component '" + prefix + "'");
  std::string has;
  try {
    has = c["kind"] ? c["kind"].as<std::string>() : std::string();
  } catch (const YAML::Exception&) {
  }
  if (has.empty()) throw Error(file_.path() + ": component '" + prefix + "' has no kind (a corrupt component table)");
  if (has != kind) throw Error(file_.path() + ": component '" + prefix + "' is a " + has + ", not a " + kind);
  ConfigNode n;
  n.node = c["options"];
  n.path = prefix;
  n.file = file_.path();
  return n;
}

YAML::Node ArtifactReader::config() const {
  try {
    return file_.has_meta("config") ? YAML::Load(file_.meta("config")) : YAML::Node();
  } catch (const YAML::Exception& e) {
    throw Error(file_.path() + ": corrupt config metadata (" + e.what() + ")");
  }
}

}  // namespace cbtm
