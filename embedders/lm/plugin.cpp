// Registers the "lm" embedder (the algorithm lives in cbtm_lm_embed_core).
//
// The spec is written out instead of make_plugin<LmEmbedder>() because the embedder loads a
// tokenizer artifact, which needs the registry of tokenizer plugins: `create` hands it the
// registry this library registers into (owned by the PluginHost, which outlives every
// component it creates).
#include "cbtm/plugin.h"
#include "lm_embedder.h"

CBTM_PLUGIN_LIBRARY(registry) {
  using cbtm::lm_embed::LmEmbedder;
  using Opts = LmEmbedder::Options;
  const std::string owner = "embedder 'lm'";
  cbtm::PluginSpec s;
  s.kind = cbtm::Embedder::kKind;
  s.name = "lm";
  s.doc = "pooled (mean | last) hidden states of a trained OPT checkpoint, normalised";
  s.options = [] { return cbtm::describe_options<Opts>(); };
  s.resolve = [owner](const cbtm::ConfigNode& n) {
    YAML::Node out(YAML::NodeType::Map);
    out["type"] = "lm";
    YAML::Node opts = cbtm::emit_options(cbtm::parse_options<Opts>(n, owner));
    for (auto it = opts.begin(); it != opts.end(); ++it) out[it->first] = it->second;
    return out;
  };
  const cbtm::Registry* host = &registry;
  s.create = [owner, host](const cbtm::ConfigNode& n) -> std::unique_ptr<cbtm::Component> {
    return std::make_unique<LmEmbedder>(cbtm::parse_options<Opts>(n, owner), *host);
  };
  registry.add(std::move(s));
}
