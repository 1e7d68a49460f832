#include "cbtm/registry.h"

#include <algorithm>

namespace cbtm {

void Registry::add(PluginSpec spec) {
  if (spec.kind.empty() || spec.name.empty()) throw Error("plugin from " + current_library_ + " has an empty kind or name");
  spec.library = current_library_;
  auto key = std::make_pair(spec.kind, spec.name);
  auto it = plugins_.find(key);
  if (it != plugins_.end())
    throw Error("duplicate plugin " + spec.kind + " '" + spec.name + "': registered by " +
                it->second.library + " and by " + spec.library);
  plugins_.emplace(key, std::move(spec));
}

bool Registry::has(const std::string& kind, const std::string& name) const {
  return plugins_.count({kind, name}) > 0;
}

const PluginSpec& Registry::get(const std::string& kind, const std::string& name) const {
  auto it = plugins_.find({kind, name});
  if (it != plugins_.end()) return it->second;
  std::string known;
  for (const auto& n : names(kind)) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown " + kind + " '" + name + "' (available " + kind + "s: " +
              (known.empty() ? "none loaded" : known) + ")");
}

std::vector<const PluginSpec*> Registry::list(const std::string& kind) const {
  std::vector<const PluginSpec*> out;
  for (const auto& [key, spec] : plugins_)
    if (kind.empty() || key.first == kind) out.push_back(&spec);
  return out;  // std::map order: kind, then name
}

std::vector<std::string> Registry::names(const std::string& kind) const {
  std::vector<std::string> out;
  for (const auto& [key, spec] : plugins_)
    if (key.first == kind) out.push_back(key.second);
  return out;
}

const PluginSpec& Registry::get(const std::string& kind, const ConfigNode& node) const {
  const std::string name = node.type(kind);
  if (has(kind, name)) return get(kind, name);
  try {
    return get(kind, name);  // throws, listing the loaded ones
  } catch (const Error& e) {
    const YAML::Node t = node.node && node.node.IsMap() ? node.node["type"] : node.node;
    throw Error(node.where(t) + ": " + (node.node && node.node.IsMap() ? node.key_path("type") : node.path) + ": " +
                e.what());
  }
}

YAML::Node Registry::resolve(const std::string& kind, const ConfigNode& node) const {
  return get(kind, node).resolve(node);
}

}  // namespace cbtm
