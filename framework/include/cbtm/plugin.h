#pragma once
/// \file plugin.h
/// What a plugin library writes. One library may register several plugins:
///
/// \code
///   #include "cbtm/plugin.h"
///   class UniformRouter : public cbtm::Router {
///    public:
///     struct Options { template <class V> void visit(V&) {} };
///     explicit UniformRouter(const Options&) {}
///     ...
///   };
///   CBTM_PLUGIN_LIBRARY(registry) {
///     registry.add(cbtm::make_plugin<UniformRouter>("uniform", "equal weight for every expert"));
///   }
/// \endcode
///
/// `make_plugin<Impl>` requires `Impl::Options` (see options.h) and a constructor taking
/// `const Impl::Options&`; the plugin's kind is the kind of the interface Impl derives from.
#include <memory>
#include <string>

#include "cbtm/abi.h"
#include "cbtm/options.h"
#include "cbtm/registry.h"

namespace cbtm {

template <class Impl>
PluginSpec make_plugin(const std::string& name, const std::string& doc) {
  using Opts = typename Impl::Options;
  PluginSpec s;
  s.kind = Impl::kKind;
  s.name = name;
  s.doc = doc;
  s.options = [] { return describe_options<Opts>(); };
  const std::string owner = s.kind + " '" + name + "'";
  s.resolve = [owner, name](const ConfigNode& n) {
    YAML::Node out(YAML::NodeType::Map);
    out["type"] = name;
    YAML::Node opts = emit_options(parse_options<Opts>(n, owner));
    for (auto it = opts.begin(); it != opts.end(); ++it) out[it->first] = it->second;
    return out;
  };
  s.create = [owner](const ConfigNode& n) -> std::unique_ptr<Component> {
    return std::make_unique<Impl>(parse_options<Opts>(n, owner));
  };
  return s;
}

}  // namespace cbtm

/// Defines the two symbols the host looks up: the ABI version and the registration hook.
#define CBTM_PLUGIN_LIBRARY(registry_param)                                            \
  extern "C" CBTM_EXPORT int cbtm_plugin_abi_version() { return CBTM_PLUGIN_ABI_VERSION; } \
  extern "C" CBTM_EXPORT void cbtm_register_plugins(::cbtm::Registry& registry_param)
