#include "cbtm/language_model.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/registry.h"

namespace cbtm {

std::unique_ptr<LanguageModel> ModelArchitecture::load_on(const std::string& dir, const std::string& device) const {
  if (device.empty()) return load(dir);
  throw Error("checkpoint " + dir + ": its model architecture cannot place a model on device '" + device +
              "' (runtime.expert_devices); it loads on runtime.device only");
}

std::unique_ptr<LanguageModel> load_language_model(const Registry& registry, const std::string& dir,
                                                   const std::string& device) {
  const std::string cfg_path = (std::filesystem::path(dir) / "config.json").string();
  if (!std::filesystem::exists(cfg_path)) throw Error("checkpoint " + dir + ": no config.json");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(cfg_path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(cfg_path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  if (!j.contains("model_type") || !j["model_type"].is_string())
    throw Error(cfg_path + ": no model_type");
  // The architecture's resolved options are stored by the plugin under cbtm.options.
  ConfigNode node;
  node.file = cfg_path;
  node.path = "model";
  if (j.contains("cbtm") && j["cbtm"].contains("options"))
    node.node = YAML::Load(j["cbtm"]["options"].dump());
  else {
    node.node = YAML::Node(YAML::NodeType::Map);
    node.node["type"] = j["model_type"].get<std::string>();
  }
  auto arch = registry.create<ModelArchitecture>(node);
  return arch->load_on(dir, device);
}

}  // namespace cbtm
