// Suite files: parsing, validation and expansion into cells; see suite.h.
#include "cbtm/suite/suite.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "cbtm/config_node.h"
#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/pipeline/run_config.h"
#include "ensemble_grid.h"

namespace fs = std::filesystem;

namespace cbtm {
namespace {

const std::set<std::string> kRootKeys = {"description", "base", "set", "share_seed", "axes", "dense_from", "ensemble_grid", "figures"};
const std::set<std::string> kAxisKeys = {"name", "key", "values", "labels", "variants"};

bool label_ok(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '+' || c == '-')) return false;
  return true;
}

bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end && *end == '\0';
}

/// Overrides of a `{key.path: value, ...}` map (a variant, or `set:`).
std::vector<std::string> map_overrides(const ConfigNode& n) {
  std::vector<std::string> out;
  if (!n.node || n.node.IsNull()) return out;
  if (!n.node.IsMap()) throw Error(n.where() + ": " + n.path + ": expected a map of key.path: value");
  for (auto it = n.node.begin(); it != n.node.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    if (key.empty() || key.find('=') != std::string::npos)
      throw Error(n.where(it->first) + ": " + n.path + ": '" + key + "' is not a config key path");
    out.push_back(override_text(key, it->second));
  }
  return out;
}

SuiteAxis parse_axis(const ConfigNode& n, size_t index) {
  const std::string at = n.where() + ": axes." + std::to_string(index);
  if (!n.node.IsMap()) throw Error(at + ": expected a map with name and key + values, or variants");
  for (auto it = n.node.begin(); it != n.node.end(); ++it)
    if (!kAxisKeys.count(it->first.as<std::string>()))
      throw Error(n.where(it->first) + ": axes." + std::to_string(index) + ": unknown key '" +
                  it->first.as<std::string>() + "' (known: name, key, values, labels, variants)");
  SuiteAxis a;
  const bool has_values = static_cast<bool>(n.node["values"]);
  const bool has_variants = static_cast<bool>(n.node["variants"]);
  if (has_values == has_variants)
    throw Error(at + ": give either key + values (a value axis) or variants (label -> overrides)");
  if (n.node["name"]) a.name = n.node["name"].as<std::string>();
  if (has_values) {
    if (!n.node["key"]) throw Error(at + ": a value axis needs key (the config key path it sweeps)");
    a.key = n.node["key"].as<std::string>();
    if (a.name.empty()) a.name = a.key.substr(a.key.rfind('.') == std::string::npos ? 0 : a.key.rfind('.') + 1);
    const YAML::Node vals = n.node["values"];
    if (!vals.IsSequence() || vals.size() == 0) throw Error(n.where(vals) + ": axes." + std::to_string(index) + ".values: expected a non-empty list");
    const YAML::Node labels = n.node["labels"];
    if (labels && (!labels.IsSequence() || labels.size() != vals.size()))
      throw Error(n.where(labels) + ": axes." + std::to_string(index) + ".labels: expected a list of " +
                  std::to_string(vals.size()) + " labels, one per value");
    for (size_t i = 0; i < vals.size(); ++i) {
      std::string label;
      if (labels) label = labels[i].as<std::string>();
      else if (vals[i].IsScalar()) label = vals[i].as<std::string>();
      else
        throw Error(n.where(vals[i]) + ": axes." + std::to_string(index) + ".values." + std::to_string(i) +
                    ": a value that is not a scalar needs a label (give the axis labels: [...])");
      a.labels.push_back(label);
      a.overrides.push_back({override_text(a.key, vals[i])});
    }
  } else {
    if (n.node["key"] || n.node["labels"])
      throw Error(at + ": a variant axis takes no key or labels (each variant's label is its key)");
    if (a.name.empty()) throw Error(at + ": a variant axis needs a name");
    const ConfigNode v{n.node["variants"], "axes." + std::to_string(index) + ".variants", n.file};
    if (!v.node.IsMap() || v.node.size() == 0) throw Error(v.where() + ": " + v.path + ": expected a map label -> overrides");
    for (auto it = v.node.begin(); it != v.node.end(); ++it) {
      const std::string label = it->first.as<std::string>();
      a.labels.push_back(label);
      a.overrides.push_back(map_overrides({it->second, v.path + "." + label, n.file}));
    }
  }
  if (!label_ok(a.name)) throw Error(at + ".name: '" + a.name + "' may hold only letters, digits and . _ + -");
  std::set<std::string> seen;
  for (const auto& l : a.labels) {
    if (!label_ok(l))
      throw Error(at + ": label '" + l + "' may hold only letters, digits and . _ + - (it becomes part of a directory name; give labels: [...])");
    if (!seen.insert(l).second) throw Error(at + ": label '" + l + "' appears twice");
  }
  bool numeric = true;
  for (const auto& l : a.labels) {
    double d = 0;
    if (!parse_number(l, d)) numeric = false;
    else a.numbers.push_back(d);
  }
  if (!numeric) a.numbers.clear();
  return a;
}

}  // namespace

std::string override_text(const std::string& key, const YAML::Node& value) {
  YAML::Emitter e;
  e << YAML::Flow << value;
  return key + "=" + e.c_str();
}

Suite Suite::load(const std::string& file, const std::vector<std::string>& overrides) {
  if (!fs::exists(file)) throw Error(file + ": no such suite file");
  return parse(read_file(file), file, overrides);
}

Suite Suite::parse(const std::string& yaml, const std::string& file, const std::vector<std::string>& overrides) {
  Suite s;
  s.file = fs::absolute(file).lexically_normal().string();
  try {
    s.tree = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw Error(file + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML (" + e.msg + ")");
  }
  if (!s.tree.IsMap()) throw Error(file + ": a suite file is a map (base, set, share_seed, axes, figures)");
  reject_duplicate_keys(s.tree, file);
  for (const auto& o : overrides) apply_override(s.tree, o);
  const ConfigNode root{s.tree, "", file};
  for (auto it = s.tree.begin(); it != s.tree.end(); ++it)
    if (!kRootKeys.count(it->first.as<std::string>()))
      throw Error(root.where(it->first) + ": unknown key '" + it->first.as<std::string>() +
                  "' (a suite has description, base, set, share_seed, axes, dense_from, ensemble_grid, figures)");
  if (!s.tree["base"] || !s.tree["base"].IsScalar())
    throw Error(file + ": base: required (the run config every cell starts from)");
  fs::path base = s.tree["base"].as<std::string>();
  if (base.is_relative()) base = fs::path(s.file).parent_path() / base;
  s.base = base.lexically_normal().string();
  if (!fs::exists(s.base)) throw Error(root.where(s.tree["base"]) + ": base: " + s.base + " does not exist");
  s.set = map_overrides(root.child("set"));
  if (s.tree["share_seed"]) {
    try {
      s.share_seed = s.tree["share_seed"].as<bool>();
    } catch (const YAML::Exception&) {
      throw Error(root.where(s.tree["share_seed"]) + ": share_seed: expected true or false");
    }
  }
  if (const YAML::Node axes = s.tree["axes"]) {
    if (!axes.IsSequence()) throw Error(root.where(axes) + ": axes: expected a list");
    std::set<std::string> names;
    for (size_t i = 0; i < axes.size(); ++i) {
      s.axes.push_back(parse_axis({axes[i], "axes." + std::to_string(i), file}, i));
      if (!names.insert(s.axes.back().name).second)
        throw Error(root.where(axes[i]) + ": axes." + std::to_string(i) + ": a second axis named '" + s.axes.back().name + "'");
    }
  }
  if (const YAML::Node df = s.tree["dense_from"]) {
    if (!df.IsMap() || df.size() == 0)
      throw Error(root.where(df) + ": dense_from: expected a map of axis name -> label, e.g. {k: \"1\"}");
    for (auto it = df.begin(); it != df.end(); ++it) {
      const std::string name = it->first.as<std::string>();
      const int a = s.axis(name);
      if (a < 0) throw Error(root.where(it->first) + ": dense_from." + name + ": no axis named '" + name + "'");
      if (!it->second.IsScalar()) throw Error(root.where(it->second) + ": dense_from." + name + ": expected a label");
      const std::string label = it->second.as<std::string>();
      const auto& labels = s.axes[static_cast<size_t>(a)].labels;
      if (std::find(labels.begin(), labels.end(), label) == labels.end())
        throw Error(root.where(it->second) + ": dense_from." + name + ": '" + label + "' is not one of the axis's labels");
      s.dense_from[name] = label;
    }
  }
  if (const YAML::Node g = s.tree["ensemble_grid"]) {
    check_ensemble_grid(ConfigNode{g, "ensemble_grid", file});
    s.ensemble_grid = g;
  }
  s.figures = s.tree["figures"] ? s.tree["figures"] : YAML::Node(YAML::NodeType::Sequence);
  if (!s.figures.IsSequence()) throw Error(root.where(s.figures) + ": figures: expected a list");
  return s;
}

std::vector<SuiteCell> Suite::cells() const {
  std::vector<SuiteCell> out;
  if (axes.empty()) {
    out.push_back({"base", {}, set});
    return out;
  }
  std::vector<size_t> at(axes.size(), 0);
  for (;;) {
    SuiteCell c;
    c.overrides = set;
    for (size_t a = 0; a < axes.size(); ++a) {
      const std::string& l = axes[a].labels[at[a]];
      c.labels.push_back(l);
      c.name += (a ? "," : "") + axes[a].name + "=" + l;
      for (const auto& o : axes[a].overrides[at[a]]) c.overrides.push_back(o);
    }
    out.push_back(std::move(c));
    size_t a = axes.size();
    while (a > 0) {
      --a;
      if (++at[a] < axes[a].labels.size()) break;
      at[a] = 0;
      if (a == 0) return out;
    }
  }
}

int Suite::axis(const std::string& name) const {
  for (size_t i = 0; i < axes.size(); ++i)
    if (axes[i].name == name) return static_cast<int>(i);
  return -1;
}

}  // namespace cbtm
