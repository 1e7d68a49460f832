#include "cbtm/plugin_host.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <spdlog/spdlog.h>

#include "cbtm/abi.h"

namespace fs = std::filesystem;

namespace cbtm {
namespace {

// Libraries are intentionally never unloaded: components created by a plugin may live until
// exit, and their code must outlive them.
std::vector<boost::dll::shared_library>& kept_libraries() {
  static auto* libs = new std::vector<boost::dll::shared_library>();
  return *libs;
}

}  // namespace

PluginHost::PluginHost() = default;
PluginHost::~PluginHost() = default;

void PluginHost::load(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(path), ec);
  const std::string canon = ec ? path : p.string();
  if (std::find(loaded_.begin(), loaded_.end(), canon) != loaded_.end()) return;
  if (!fs::exists(canon)) throw Error("plugin library " + path + " does not exist");

  boost::dll::shared_library lib;
  try {
    // rtld_now: a framework symbol the plugin needs and this build lacks fails the load, naming it,
    // instead of a "symbol lookup error" exit mid-run
    lib.load(canon, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw Error("cannot load plugin library " + canon + ": " + e.what());
  }
  if (!lib.has("cbtm_plugin_abi_version") || !lib.has("cbtm_register_plugins"))
    throw Error(canon + " is not a cbtm plugin (it does not export cbtm_plugin_abi_version "
                "and cbtm_register_plugins; see framework/include/cbtm/plugin.h)");
  const int abi = lib.get<int()>("cbtm_plugin_abi_version")();
  if (abi != CBTM_PLUGIN_ABI_VERSION)
    throw Error("plugin library " + canon + " was built for cbtm plugin ABI version " +
                std::to_string(abi) + ", but this cbtm uses ABI version " +
                std::to_string(CBTM_PLUGIN_ABI_VERSION) + "; rebuild the plugin against this cbtm");
  registry_.set_current_library(canon);
  auto register_fn = lib.get<void(Registry&)>("cbtm_register_plugins");
  kept_libraries().push_back(std::move(lib));  // before registering: specs point into it
  try {
    register_fn(registry_);
  } catch (...) {
    registry_.set_current_library("<built in>");
    throw;
  }
  registry_.set_current_library("<built in>");
  loaded_.push_back(canon);
  spdlog::debug("loaded plugin library {}", canon);
}

void PluginHost::load_directory(const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error("plugin directory " + dir + " does not exist");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("libcbtm_", 0) == 0 && e.path().extension() == ".so") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) load(f);
}

std::string PluginHost::builtin_directory() {
  fs::path exe = boost::dll::program_location().string();
  return (exe.parent_path().parent_path() / "lib" / "cbtm" / "plugins").string();
}

void PluginHost::load_builtin() {
  if (const char* env = std::getenv("CBTM_PLUGIN_PATH"); env && *env) {
    std::string s = env;
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(':', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) load_directory(s.substr(start, end - start));
      start = end + 1;
    }
    return;
  }
  load_directory(builtin_directory());
}

}  // namespace cbtm
