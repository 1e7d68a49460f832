#pragma once
/// \file registry.h
/// Plugins by (kind, name). Plugin libraries fill it from `cbtm_register_plugins`;
/// the host creates components from config nodes of the form `{type: NAME, ...options}`.
///
/// \code
///   auto embedder = registry.create<Embedder>(config.child("embedder"));
/// \endcode
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cbtm/component.h"
#include "cbtm/config_node.h"
#include "cbtm/error.h"
#include "cbtm/options.h"

namespace cbtm {

/// Everything the host knows about one plugin.
struct PluginSpec {
  std::string kind;  ///< "embedder", "clusterer", "router", "trainer", "baseline", ...
  std::string name;  ///< the `type:` that selects it
  std::string doc;   ///< one-line description
  std::function<std::vector<OptionInfo>()> options;           ///< documented options
  std::function<YAML::Node(const ConfigNode&)> resolve;       ///< validated, defaults filled
  std::function<std::unique_ptr<Component>(const ConfigNode&)> create;
  std::string library;  ///< the shared library it came from (set by the loader)
};

class Registry {
 public:
  /// Adds a plugin; a duplicate (kind, name) throws Error naming both libraries.
  void add(PluginSpec spec);
  /// The plugin, or Error listing the names that exist for that kind.
  const PluginSpec& get(const std::string& kind, const std::string& name) const;
  bool has(const std::string& kind, const std::string& name) const;
  /// All plugins (of one kind if given), sorted by kind then name.
  std::vector<const PluginSpec*> list(const std::string& kind = "") const;
  /// Names registered for a kind, sorted.
  std::vector<std::string> names(const std::string& kind) const;

  /// Creates the component named by `node`'s `type:`. I is the interface (Embedder, ...).
  template <class I>
  std::unique_ptr<I> create(const ConfigNode& node) const {
    const PluginSpec& spec = get(I::kKind, node);
    std::unique_ptr<Component> made = spec.create(node);
    auto* typed = dynamic_cast<I*>(made.get());
    if (!typed)
      throw Error("plugin " + spec.kind + " '" + spec.name + "' from " + spec.library +
                  " did not create a " + I::kKind);
    made.release();
    return std::unique_ptr<I>(typed);
  }
  /// The plugin named by `node`'s `type:`; an unknown one is an Error naming the file, line
  /// and key (`clusterer.type`) as well as the plugins that are loaded.
  const PluginSpec& get(const std::string& kind, const ConfigNode& node) const;
  /// The node with defaults filled in and validated (for `cbtm config` and artifacts).
  YAML::Node resolve(const std::string& kind, const ConfigNode& node) const;

  /// Set by the loader while a library registers, so specs record where they came from.
  void set_current_library(std::string path) { current_library_ = std::move(path); }

 private:
  std::map<std::pair<std::string, std::string>, PluginSpec> plugins_;
  std::string current_library_ = "<built in>";
};

}  // namespace cbtm
