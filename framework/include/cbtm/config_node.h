#pragma once
/// \file config_node.h
/// A YAML subtree together with where it came from, so that every config error can name
/// the file, line and full key path ("quickstart.yaml:14:5: clusterer.k: ...").
#include <string>

#include <yaml-cpp/yaml.h>

namespace cbtm {

struct ConfigNode {
  YAML::Node node;    ///< the subtree (a map for a component: `type:` plus its options)
  std::string path;   ///< dotted key path of `node`, e.g. "clusterer" or "eval.ensembles.top1"
  std::string file;   ///< the config file the tree was read from ("" if built in code)

  /// "file:line:col" of `n` (a node inside this tree), or the file alone when unknown.
  std::string where(const YAML::Node& n) const;
  /// where(node).
  std::string where() const { return where(node); }
  /// The child `key` as a ConfigNode with the extended path (an undefined node if absent).
  ConfigNode child(const std::string& key) const;
  /// "path.key" (or "key" when path is empty).
  std::string key_path(const std::string& key) const;
  /// The `type:` value of a component node; throws Error naming the location if missing.
  std::string type(const std::string& kind) const;
};

/// Throws an Error "file:line:col: key 'k' appears twice in 'path' (first at line N)" for the
/// first map (at any depth of `root`) holding a key twice: yaml-cpp keeps both and reads the
/// first, so `k: 4, k: 8` would run with one of them without a word.
void reject_duplicate_keys(const YAML::Node& root, const std::string& file);

}  // namespace cbtm
