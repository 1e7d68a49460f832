#include "cbtm/pipeline/run_config.h"

#include <filesystem>
#include <set>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/options.h"
#include "cbtm/plugin_host.h"

namespace fs = std::filesystem;

namespace cbtm {

YAML::Node component_node(const char* type) {
  YAML::Node n(YAML::NodeType::Map);
  n["type"] = type;
  return n;
}

YAML::Node default_ensembles() {
  YAML::Node ens(YAML::NodeType::Map);
  for (auto [name, k] : {std::pair<const char*, int>{"all", 0}, {"top1", 1}, {"top2", 2}}) {
    YAML::Node n = component_node("cluster_distance");
    n["temperature"] = "0.1";
    n["top_k"] = k;
    ens[name] = n;
  }
  return ens;
}

// ---- section validation -----------------------------------------------------------
void DataOptions::validate() const {
  require(!train.empty(), "train", "required: the training corpus (JSONL or JSONL.zst)");
  require(!eval.empty(), "eval", "required: the held-out corpus (JSONL or JSONL.zst)");
  require(!text_field.empty(), "text_field", "must not be empty");
  require_one_of(on_bad_document, {"skip", "fail"}, "on_bad_document");
  require(max_train_docs >= 0, "max_train_docs", "must be >= 0");
  require(tokenizer_docs >= 0, "tokenizer_docs", "must be >= 0");
  require(cluster_docs >= 0, "cluster_docs", "must be >= 0");
  require_one_of(sample, {"uniform", "first"}, "sample");
  require_one_of(cluster_text, {"document", "prefix", "window"}, "cluster_text");
  require(cluster_text_chars >= 1, "cluster_text_chars", "must be >= 1");
  require(assign_part_docs >= 1, "assign_part_docs", "must be >= 1");
  require(assign_batch_docs >= 1, "assign_batch_docs", "must be >= 1");
}
void SeedLmOptions::validate() const { require(tokens >= 0, "tokens", "must be >= 0"); }
void BranchOptions::validate() const {
  require(tokens > 0, "tokens", "required: the total training tokens after branching (> 0)");
  require_one_of(expert_batch, {"split", "full"}, "expert_batch");
}
void LaunchOptions::validate() const {
  require_one_of(scheduler, {"local", "slurm"}, "scheduler");
  require(max_parallel >= 0, "max_parallel", "must be >= 0");
  require(threads_per_job >= 0, "threads_per_job", "must be >= 0 (0: cores / jobs)");
  require(procs_per_expert >= 1, "procs_per_expert", "must be >= 1");
  for (const auto& g : gpus)
    require(!g.empty() && g.find_first_of(", \t") == std::string::npos, "gpus",
            "entries are GPU indices or UUIDs as CUDA_VISIBLE_DEVICES takes them (got '" + g + "')");
  require(master_port > 0 && master_port < 65536, "master_port", "must be a TCP port (1..65535)");
  require(progress_s > 0, "progress_s", "must be > 0");
  require(!slurm || slurm.IsNull() || slurm.IsMap(), "slurm", "must be a map of Slurm options");
}
void SlurmOptions::validate() const {
  require(cpus_per_task >= 0, "cpus_per_task", "must be >= 0");
  require(gpus_per_task >= 0, "gpus_per_task", "must be >= 0");
  require(nodes_per_expert >= 1, "nodes_per_expert", "must be >= 1");
  require(array_limit >= 0, "array_limit", "must be >= 0 (0: no limit)");
  require(poll_s > 0, "poll_s", "must be > 0");
}
void EvalOptions::validate() const {
  require(docs >= 0, "docs", "must be >= 0");
  require(max_length >= 0, "max_length", "must be >= 0");
  require(!ensembles || ensembles.IsNull() || ensembles.IsMap(), "ensembles",
          "must be a map of name -> router");
}

// ---- overrides ------------------------------------------------------------------------
namespace {

std::vector<std::string> split_path(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= key.size()) {
    size_t dot = key.find('.', start);
    if (dot == std::string::npos) dot = key.size();
    parts.push_back(key.substr(start, dot - start));
    start = dot + 1;
  }
  return parts;
}

bool is_index(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

void apply_override(YAML::Node& root, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error("--set '" + assignment + "': expected key.path=value");
  const std::string key = assignment.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw Error("--set '" + assignment + "': value is not valid YAML (" + e.msg + ")");
  }
  if (!value || value.IsNull()) value = YAML::Node(assignment.substr(eq + 1));
  const auto parts = split_path(key);
  for (const auto& p : parts)
    if (p.empty()) throw Error("--set '" + assignment + "': empty key in path '" + key + "'");
  // Walk with YAML::Node references; yaml-cpp's operator[] on a non-const node creates maps.
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node cur = chain.back();
    YAML::Node next;
    if (cur.IsSequence() && is_index(parts[i])) {
      const size_t idx = std::stoul(parts[i]);
      if (idx >= cur.size())
        throw Error("--set '" + assignment + "': index " + parts[i] + " is past the end of the list");
      next = cur[idx];
    } else {
      if (cur.IsScalar()) throw Error("--set '" + assignment + "': '" + parts[i - 1] + "' is not a map");
      if (is_index(parts[i]) && !cur[parts[i]])
        throw Error("--set '" + assignment + "': there is no list to take item " + parts[i] + " of" +
                    (i > 0 ? " ('" + parts[i - 1] + "' is not a list in the config)" : ""));
      next = cur[parts[i]];
      if (!next || next.IsNull()) {
        cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
        next = cur[parts[i]];
      }
    }
    chain.push_back(next);
  }
  YAML::Node last = chain.back();
  if (last.IsSequence() && is_index(parts.back())) {
    const size_t idx = std::stoul(parts.back());
    if (idx >= last.size())
      throw Error("--set '" + assignment + "': index " + parts.back() + " is past the end of the list");
    last[idx] = value;
  } else {
    if (last.IsScalar() || last.IsSequence())  // seed.value=2: 'seed' holds a number (yaml-cpp would throw BadSubscript)
      throw Error("--set '" + assignment + "': '" + (parts.size() > 1 ? parts[parts.size() - 2] : std::string("the config")) +
                  "' is not a map" + (last.IsSequence() ? " (it is a list: use an index)" : ""));
    last[parts.back()] = value;
  }
}

// ---- loading and resolution -------------------------------------------------------------
namespace {

const char* const kTopKeys[] = {"plugins", "seed", "runtime", "data", "tokenizer", "embedder",
                                "clusterer", "model", "seed_lm", "branch", "baselines", "eval", "launch"};

YAML::Node default_component(const char* type) { return component_node(type); }

std::string absolute_from(const std::string& base_dir, const std::string& p) {
  if (p.empty()) return p;
  fs::path path(p);
  if (path.is_absolute()) return p;
  return fs::weakly_canonical(fs::path(base_dir) / path).string();
}

// Paths in the file are relative to the file's directory.
void absolutise_paths(YAML::Node& root, const std::string& base_dir) {
  auto fix = [&](YAML::Node n) {
    if (n && n.IsScalar()) n = absolute_from(base_dir, n.as<std::string>());
  };
  if (root["data"] && root["data"].IsMap()) {
    fix(root["data"]["train"]);
    fix(root["data"]["eval"]);
    fix(root["data"]["tokenizer_from"]);
  }
  if (root["seed_lm"] && root["seed_lm"].IsMap()) fix(root["seed_lm"]["init"]);
  if (root["plugins"] && root["plugins"].IsSequence())
    for (size_t i = 0; i < root["plugins"].size(); ++i) {
      YAML::Node item = root["plugins"][i];
      fix(item);
    }
}

ConfigNode at(const YAML::Node& n, const std::string& path, const std::string& file) {
  ConfigNode c;
  c.node = n;
  c.path = path;
  c.file = file;
  return c;
}

}  // namespace

RunConfig RunConfig::load(const std::string& file, const std::vector<std::string>& overrides,
                          PluginHost& host) {
  if (!fs::exists(file)) throw Error("config " + file + ": no such file");
  return parse(read_file(file), file, overrides, host);
}

RunConfig RunConfig::parse(const std::string& text, const std::string& file,
                           const std::vector<std::string>& overrides, PluginHost& host) {
  RunConfig rc;
  rc.file_ = file;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw Error(file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                ": YAML syntax error: " + e.msg);
  }
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw Error(file + ": expected a map of sections at the top level");
  reject_duplicate_keys(root, file);
  const std::string base_dir = fs::absolute(fs::path(file)).parent_path().string();
  absolutise_paths(root, base_dir);
  for (const auto& o : overrides) apply_override(root, o);
  absolutise_paths(root, fs::current_path().string());  // override paths: relative to cwd
  rc.user_ = YAML::Clone(root);
  try {
    resolve_into(rc, root, file, host);
  } catch (const Error& e) {
    // A bad value set by --set: its position in the file means nothing; name the override
    const std::string msg = e.what();
    for (const auto& o : overrides) {
      const std::string key = o.substr(0, o.find('='));
      for (const std::string& mark : {": " + key + ":", ": " + key + " ("}) {
        const size_t at_key = msg.find(mark);
        if (at_key != std::string::npos) throw Error("--set '" + o + "': " + msg.substr(at_key + 2));
      }
    }
    throw;
  }
  return rc;
}

void RunConfig::resolve_into(RunConfig& rc, YAML::Node& root, const std::string& file, PluginHost& host) {
  const ConfigNode top = at(root, "", file);
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    bool known = false;
    std::string list;
    for (const char* k : kTopKeys) {
      known = known || key == k;
      list += (list.empty() ? "" : ", ") + std::string(k);
    }
    if (!known)
      throw Error(top.where(it->first) + ": " + key + ": unknown top-level key (known: " + list + ")" +
                  (key == "base" || key == "axes" || key == "tasks"
                       ? std::string("; this looks like a suite file: `cbtm suite` (or `cbtm fewshot --suite`) reads those")
                       : std::string()));
  }

  // Extra plugin libraries first: they may provide the types used below.
  if (root["plugins"]) {
    detail::read_value(top, root["plugins"], "plugins", rc.plugins);
    for (const auto& p : rc.plugins) host.load(p);
  }
  if (root["seed"]) detail::read_value(top, root["seed"], "seed", rc.seed);
  const Registry& reg = host.registry();

  // The framework's own sections are not plugins: `type` (allowed in a plugin's section) is
  // an unknown key there, as any other would be.
  auto section = [](const ConfigNode& n) {
    if (n.node && n.node.IsMap() && n.node["type"])
      for (auto it = n.node.begin(); it != n.node.end(); ++it)
        if (it->first.as<std::string>() == "type")
          throw Error(n.where(it->first) + ": " + n.key_path("type") + ": unknown key for section " + n.path +
                      " (a section of the framework, not a plugin: it has no type)");
    return n;
  };
  rc.runtime = parse_options<Runtime>(section(top.child("runtime")), "section runtime");
  rc.data = parse_options<DataOptions>(section(top.child("data")), "section data");
  rc.seed_lm = parse_options<SeedLmOptions>(section(top.child("seed_lm")), "section seed_lm");
  rc.branch = parse_options<BranchOptions>(section(top.child("branch")), "section branch");
  rc.eval = parse_options<EvalOptions>(section(top.child("eval")), "section eval");
  rc.launch = parse_options<LaunchOptions>(section(top.child("launch")), "section launch");
  rc.slurm = parse_options<SlurmOptions>(section(top.child("launch").child("slurm")), "section launch.slurm");

  // A component section without `type:` (e.g. made by `--set clusterer.k=8`) is the
  // documented default plugin of that section.
  auto component = [&](const std::string& kind, const YAML::Node& n, const std::string& path,
                       const char* dflt) {
    YAML::Node use = (n && !n.IsNull()) ? n : default_component(dflt);
    if (use.IsMap() && !use["type"]) {
      YAML::Node typed = default_component(dflt);
      for (auto it = use.begin(); it != use.end(); ++it) typed[it->first] = it->second;
      use.reset(typed);
    }
    return reg.resolve(kind, at(use, path, file));
  };

  YAML::Node r(YAML::NodeType::Map);
  YAML::Node plugins(YAML::NodeType::Sequence);
  for (const auto& p : rc.plugins) plugins.push_back(p);
  r["plugins"] = plugins;
  r["seed"] = rc.seed;
  r["runtime"] = emit_options(rc.runtime);
  r["data"] = emit_options(rc.data);
  r["tokenizer"] = component("tokenizer", root["tokenizer"], "tokenizer", "bpe");
  r["embedder"] = component("embedder", root["embedder"], "embedder", "tfidf");
  r["clusterer"] = component("clusterer", root["clusterer"], "clusterer", "balanced_kmeans");
  r["model"] = component("model", root["model"], "model", "opt");

  YAML::Node seed_lm = emit_options(rc.seed_lm);
  seed_lm["trainer"] = component("trainer", rc.seed_lm.trainer, "seed_lm.trainer", "lm");
  r["seed_lm"] = seed_lm;
  YAML::Node branch = emit_options(rc.branch);
  branch["trainer"] = component("trainer", rc.branch.trainer, "branch.trainer", "lm");
  r["branch"] = branch;

  YAML::Node baselines(YAML::NodeType::Sequence);
  YAML::Node raw_baselines = root["baselines"];
  if (!raw_baselines) {
    YAML::Node dflt(YAML::NodeType::Sequence);
    dflt.push_back(default_component("dense"));
    raw_baselines.reset(dflt);
  }
  if (!raw_baselines.IsNull()) {
    if (!raw_baselines.IsSequence())
      throw Error(top.where(raw_baselines) + ": baselines: expected a list of {type: ...}");
    std::set<std::string> seen;
    for (size_t i = 0; i < raw_baselines.size(); ++i) {
      YAML::Node b = component("baseline", raw_baselines[i], "baselines." + std::to_string(i), "dense");
      const std::string name = b["type"].as<std::string>();
      if (!seen.insert(name).second)
        throw Error(top.where(raw_baselines[i]) + ": baselines." + std::to_string(i) + ": baseline '" +
                    name + "' listed twice");
      baselines.push_back(b);
    }
  }
  r["baselines"] = baselines;

  YAML::Node eval = emit_options(rc.eval);
  YAML::Node ens;
  ens.reset(rc.eval.ensembles);
  if (!ens || ens.IsNull()) ens.reset(default_ensembles());
  YAML::Node resolved_ens(YAML::NodeType::Map);
  for (auto it = ens.begin(); it != ens.end(); ++it) {
    const std::string name = it->first.as<std::string>();
    if (name.empty() || name.find('.') != std::string::npos)
      throw Error(top.where(it->first) + ": eval.ensembles: the name '" + name +
                  "' must be non-empty and hold no '.' (ensemble names are parts of key paths)");
    resolved_ens[name] = component("router", it->second, "eval.ensembles." + name, "cluster_distance");
    rc.ensemble_names.push_back(name);
  }
  eval["ensembles"] = resolved_ens;
  r["eval"] = eval;
  YAML::Node launch = emit_options(rc.launch);
  launch["slurm"] = emit_options(rc.slurm);
  r["launch"] = launch;
  rc.launch.slurm.reset(launch["slurm"]);

  rc.seed_lm.trainer.reset(seed_lm["trainer"]);
  rc.branch.trainer.reset(branch["trainer"]);
  rc.eval.ensembles.reset(resolved_ens);
  rc.resolved_ = r;
}

ConfigNode RunConfig::node(const std::string& path) const {
  YAML::Node cur = resolved_;
  for (const auto& part : split_path(path)) {
    // reset(), not operator=: assigning a yaml-cpp node rebinds the node it refers to.
    YAML::Node next = (cur.IsSequence() && is_index(part)) ? cur[std::stoul(part)] : cur[part];
    cur.reset(next);
  }
  return at(cur, path, file_);
}

std::string RunConfig::yaml() const {
  YAML::Emitter e;
  e << resolved_;
  return std::string(e.c_str()) + "\n";
}

std::string RunConfig::user_section_text(const std::vector<std::string>& keys) const {
  std::string out;
  for (const auto& k : keys) {
    const YAML::Node root = user_;  // const: operator[] must not insert missing keys
    YAML::Node cur = YAML::Clone(root);
    bool present = true;
    for (const auto& part : split_path(k)) {
      const YAML::Node c = cur;
      if (c.IsSequence() && is_index(part) && std::stoul(part) < c.size()) {
        cur.reset(YAML::Clone(c[std::stoul(part)]));
      } else if (c.IsMap() && c[part]) {
        cur.reset(YAML::Clone(c[part]));
      } else {
        present = false;
        break;
      }
    }
    YAML::Emitter e;
    e.SetMapFormat(YAML::Flow);
    e.SetSeqFormat(YAML::Flow);
    if (present) e << cur;
    out += k + ": " + (present ? std::string(e.c_str()) : std::string("~")) + "\n";
  }
  return out;
}

std::string RunConfig::section_text(const std::vector<std::string>& keys) const {
  std::string out;
  for (const auto& k : keys) {
    YAML::Emitter e;
    e.SetMapFormat(YAML::Flow);
    e.SetSeqFormat(YAML::Flow);
    e << node(k).node;
    out += k + ": " + e.c_str() + "\n";
  }
  return out;
}

}  // namespace cbtm
