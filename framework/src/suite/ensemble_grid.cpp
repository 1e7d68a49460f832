// A suite's ensemble_grid: more ensembles per cell (e.g. temperature x top_k, the paper's
// Table 9) without more training; see suite.h.
#include "ensemble_grid.h"

#include <set>
#include <string>
#include <vector>

#include "cbtm/error.h"
#include "cbtm/suite/suite.h"

namespace cbtm {
namespace {

std::vector<std::string> list_keys(const YAML::Node& g) {
  std::vector<std::string> out;
  for (auto it = g.begin(); it != g.end(); ++it)
    if (it->second.IsSequence()) out.push_back(it->first.as<std::string>());
  return out;
}

std::string default_template(const std::vector<std::string>& keys) {
  std::string t;
  for (const auto& k : keys) t += (t.empty() ? "" : "-") + k + "{" + k + "}";
  return t;
}

// The value as it appears in a name: '.' -> '_' (names are parts of key paths), top_k 0 -> all.
std::string name_value(const std::string& key, const std::string& v) {
  if (key == "top_k" && v == "0") return "all";
  std::string out = v;
  for (char& c : out)
    if (c == '.') c = '_';
  return out;
}

}  // namespace

void check_ensemble_grid(const ConfigNode& n) {
  const std::string at = n.where() + ": ensemble_grid";
  if (!n.node.IsMap()) throw Error(at + ": expected a map: type, name and list-valued router options");
  if (!n.node["type"] || !n.node["type"].IsScalar()) throw Error(at + ".type: required (the router, e.g. cluster_distance)");
  const std::vector<std::string> keys = list_keys(n.node);
  if (keys.empty()) throw Error(at + ": no list-valued key (e.g. temperature: [0.05, 0.1], top_k: [1, 2, 0])");
  for (const auto& k : keys) {
    const YAML::Node v = n.node[k];
    if (v.size() == 0) throw Error(n.where(v) + ": ensemble_grid." + k + ": an empty list");
    for (const auto& x : v)
      if (!x.IsScalar()) throw Error(n.where(x) + ": ensemble_grid." + k + ": list items must be scalars");
  }
  if (n.node["name"]) {
    if (!n.node["name"].IsScalar()) throw Error(n.where(n.node["name"]) + ": ensemble_grid.name: expected a template string");
    const std::string t = n.node["name"].as<std::string>();
    if (t.find('.') != std::string::npos)
      throw Error(n.where(n.node["name"]) + ": ensemble_grid.name: '" + t + "' holds a '.' (ensemble names are parts of key paths)");
    for (const auto& k : keys)
      if (t.find("{" + k + "}") == std::string::npos)
        throw Error(n.where(n.node["name"]) + ": ensemble_grid.name: '" + t + "' lacks {" + k +
                    "}, so ensembles would share names");
  }
}

YAML::Node Suite::grid_ensembles(const YAML::Node& ensembles, int64_t k) const {
  YAML::Node out(YAML::NodeType::Map);
  if (ensembles && ensembles.IsMap())
    for (auto it = ensembles.begin(); it != ensembles.end(); ++it) out[it->first.as<std::string>()] = YAML::Clone(it->second);
  if (!ensemble_grid.IsMap()) return out;  // a default YAML::Node is "defined" (null): test the type
  const std::vector<std::string> keys = list_keys(ensemble_grid);
  if (keys.empty()) return out;
  const std::string tmpl = ensemble_grid["name"] ? ensemble_grid["name"].as<std::string>() : default_template(keys);
  std::vector<size_t> at(keys.size(), 0);
  for (;;) {
    YAML::Node router(YAML::NodeType::Map);
    std::string name = tmpl;
    bool keep = true;
    for (auto it = ensemble_grid.begin(); it != ensemble_grid.end(); ++it) {
      const std::string key = it->first.as<std::string>();
      if (key == "name" || it->second.IsSequence()) continue;
      router[key] = YAML::Clone(it->second);
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      const YAML::Node v = ensemble_grid[keys[i]][at[i]];
      router[keys[i]] = YAML::Clone(v);
      const std::string text = v.as<std::string>();
      if (keys[i] == "top_k" && k > 0) {
        try {
          if (std::stoll(text) > k) keep = false;
        } catch (const std::exception&) {
        }
      }
      const std::string ph = "{" + keys[i] + "}";
      for (size_t p = name.find(ph); p != std::string::npos; p = name.find(ph))
        name.replace(p, ph.size(), name_value(keys[i], text));
    }
    if (keep) out[name] = router;
    size_t i = keys.size();
    while (i > 0) {
      --i;
      if (++at[i] < ensemble_grid[keys[i]].size()) break;
      at[i] = 0;
      if (i == 0) return out;
    }
  }
}

}  // namespace cbtm
