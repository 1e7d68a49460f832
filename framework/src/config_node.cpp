#include "cbtm/config_node.h"

#include <map>

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

namespace {
void check_duplicates(const YAML::Node& n, const std::string& path, const std::string& file) {
  if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) check_duplicates(n[i], path + "." + std::to_string(i), file);
    return;
  }
  if (!n.IsMap()) return;
  std::map<std::string, int> first_line;
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->first.IsScalar()) continue;
    const std::string key = it->first.Scalar();
    const YAML::Mark m = it->first.Mark();
    const auto [at, fresh] = first_line.emplace(key, m.line + 1);
    if (!fresh) {
      const std::string where = file + (m.line >= 0 ? ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) : "");
      throw Error(where + ": key '" + key + "' appears twice in '" + (path.empty() ? std::string("the top level") : path) +
                  "' (first at line " + std::to_string(at->second) + "); remove one");
    }
    check_duplicates(it->second, path.empty() ? key : path + "." + key, file);
  }
}
}  // namespace

void reject_duplicate_keys(const YAML::Node& root, const std::string& file) { check_duplicates(root, "", file); }

}  // namespace cbtm
