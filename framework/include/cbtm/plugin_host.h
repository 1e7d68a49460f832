#pragma once
/// \file plugin_host.h
/// Loads plugin libraries with Boost.DLL and keeps them loaded for the life of the process
/// (objects a plugin created must never outlive its code, so libraries are never unloaded).
#include <string>
#include <vector>

#include "cbtm/registry.h"

namespace cbtm {

class PluginHost {
 public:
  PluginHost();
  ~PluginHost();
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  /// Loads one library: Error if it cannot be opened, lacks the cbtm symbols, or was built
  /// for another ABI version. Loading the same file twice is a no-op.
  void load(const std::string& path);
  /// Loads every `libcbtm_*.so` in `dir` (sorted). A missing directory is an Error.
  void load_directory(const std::string& dir);
  /// Loads the built-in plugins: $CBTM_PLUGIN_PATH (':'-separated directories) if set, else
  /// `<dir of the running executable>/../lib/cbtm/plugins`.
  void load_builtin();

  Registry& registry() { return registry_; }
  const Registry& registry() const { return registry_; }
  const std::vector<std::string>& libraries() const { return loaded_; }

  /// The built-in plugin directory for the running executable.
  static std::string builtin_directory();

 private:
  Registry registry_;
  std::vector<std::string> loaded_;
};

}  // namespace cbtm
