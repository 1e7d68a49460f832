#include "cbtm/config_node.h"

#include "cbtm/error.h"

namespace cbtm {

std::string ConfigNode::where(const YAML::Node& n) const {
  std::string f = file.empty() ? std::string("<config>") : file;
  if (n) {
    const YAML::Mark m = n.Mark();
    if (m.line >= 0) return f + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }
  return f;
}

ConfigNode ConfigNode::child(const std::string& key) const {
  ConfigNode c;
  if (node && node.IsMap()) {
    // Copy-construct: assigning the invalid node that a missing key yields would throw.
    const YAML::Node v = node[key];
    if (v) c.node.reset(v);
  }
  c.path = key_path(key);
  c.file = file;
  return c;
}

std::string ConfigNode::key_path(const std::string& key) const {
  return path.empty() ? key : path + "." + key;
}

std::string ConfigNode::type(const std::string& kind) const {
  if (!node || node.IsNull())
    throw Error(where() + ": " + path + ": missing; expected a " + kind + " with a `type:` key");
  if (node.IsScalar()) return node.as<std::string>();  // `router: uniform` shorthand
  if (!node.IsMap())
    throw Error(where() + ": " + path + ": expected a map with a `type:` key for the " + kind);
  YAML::Node t = node["type"];
  if (!t || !t.IsScalar())
    throw Error(where() + ": " + path + ": missing `type:` (which " + kind + " plugin to use)");
  return t.as<std::string>();
}

}  // namespace cbtm
