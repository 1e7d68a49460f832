// Few-shot suites: YAML parsing and task data (see fewshot/task.h).
#include "cbtm/fewshot/task.h"

#include <filesystem>
#include <set>

#include "cbtm/corpus.h"
#include "cbtm/config_node.h"
#include "cbtm/error.h"

namespace cbtm {

namespace {

void check_keys(const ConfigNode& n, const std::set<std::string>& known) {
  if (!n.node.IsMap()) throw Error(n.where() + ": " + (n.path.empty() ? "the suite" : n.path) + " must be a map");
  for (const auto& kv : n.node) {
    const std::string k = kv.first.as<std::string>();
    if (!known.count(k)) {
      std::string list;
      for (const auto& s : known) list += (list.empty() ? "" : ", ") + s;
      throw Error(n.where(kv.first) + ": unknown key '" + n.key_path(k) + "' (known: " + list + ")");
    }
  }
}

template <class T>
T get(const ConfigNode& n, const std::string& key, const T& def) {
  const YAML::Node v = n.node[key];
  if (!v) return def;
  try {
    return v.as<T>();
  } catch (const YAML::Exception&) {
    throw Error(n.where(v) + ": " + n.key_path(key) + ": cannot read '" + YAML::Dump(v) + "' as the expected type");
  }
}

std::string resolve(const std::string& suite_file, const std::string& data) {
  namespace fs = std::filesystem;
  if (fs::path(data).is_absolute()) return data;
  return (fs::path(suite_file).parent_path() / data).lexically_normal().string();
}

FewShotTask parse_task(const ConfigNode& n, const std::string& suite_file) {
  check_keys(n, {"name", "data", "text_field", "label_field", "split_field", "template", "separator", "max_chars", "labels"});
  FewShotTask t;
  t.name = get<std::string>(n, "name", "");
  if (t.name.empty()) throw Error(n.where() + ": " + n.key_path("name") + ": every task needs a name");
  const std::string data = get<std::string>(n, "data", "");
  if (data.empty()) throw Error(n.where() + ": " + n.key_path("data") + ": task '" + t.name + "' needs a data file");
  t.data = resolve(suite_file, data);
  t.text_field = get<std::string>(n, "text_field", t.text_field);
  t.label_field = get<std::string>(n, "label_field", t.label_field);
  t.split_field = get<std::string>(n, "split_field", t.split_field);
  t.templ = get<std::string>(n, "template", t.templ);
  if (t.templ.find("{text}") == std::string::npos)
    throw Error(n.where(n.node["template"]) + ": " + n.key_path("template") + ": must contain {text}");
  t.separator = get<std::string>(n, "separator", t.separator);
  t.max_chars = get<int64_t>(n, "max_chars", 0);
  if (t.max_chars < 0) throw Error(n.where(n.node["max_chars"]) + ": " + n.key_path("max_chars") + ": must be >= 0");
  const ConfigNode labels = n.child("labels");
  if (!labels.node || !labels.node.IsMap() || labels.node.size() < 2)
    throw Error((labels.node ? labels.where() : n.where()) + ": " + n.key_path("labels") +
                ": a map of at least two labels (label value: verbaliser)");
  for (const auto& kv : labels.node) {
    t.labels.push_back(kv.first.as<std::string>());
    const std::string v = kv.second.IsScalar() ? kv.second.as<std::string>() : "";
    if (v.empty()) throw Error(labels.where(kv.second) + ": " + labels.key_path(t.labels.back()) + ": the verbaliser must be non-empty text");
    t.verbalisers.push_back(v);
  }
  if (std::set<std::string>(t.verbalisers.begin(), t.verbalisers.end()).size() != t.verbalisers.size())
    throw Error(labels.where() + ": " + n.key_path("labels") + ": two labels share a verbaliser");
  return t;
}

void read_examples(FewShotTask& t) {
  CorpusOptions co;
  co.text_field = t.text_field;
  co.on_bad_document = "fail";
  const std::vector<Document> docs = read_corpus(t.data, co);
  for (size_t i = 0; i < docs.size(); ++i) {
    const Document& d = docs[i];
    const std::string& split = d.field(t.split_field);
    if (split != "train" && split != "test")
      throw Error(t.data + ": document " + std::to_string(i + 1) + " (" + d.id + "): field '" + t.split_field +
                  "' is '" + split + "', not train or test");
    const std::string& label = d.field(t.label_field);
    int32_t l = -1;
    for (size_t j = 0; j < t.labels.size(); ++j)
      if (t.labels[j] == label) l = static_cast<int32_t>(j);
    if (l < 0) {
      ++t.ignored;
      continue;
    }
    (split == "train" ? t.train : t.test).push_back({cut_utf8(d.text, t.max_chars), l});
  }
  if (t.test.empty()) throw Error(t.data + ": task '" + t.name + "' has no test examples with one of its labels");
}

}  // namespace

std::string cut_utf8(const std::string& text, int64_t max_bytes) {
  if (max_bytes <= 0 || static_cast<int64_t>(text.size()) <= max_bytes) return text;
  size_t n = static_cast<size_t>(max_bytes);
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;  // text[n] starts a character
  return text.substr(0, n);
}

std::string fewshot_prompt(const FewShotTask& task, const std::vector<FewShotExample>& demos, const std::string& text) {
  auto fill = [&](const std::string& t) {
    std::string out = task.templ;
    const size_t at = out.find("{text}");
    return out.replace(at, 6, t);
  };
  std::string p;
  for (const auto& d : demos) p += fill(d.text) + task.verbalisers[d.label] + task.separator;
  return p + fill(text);
}

FewShotSuite load_fewshot_suite(const std::string& path, const std::vector<std::string>& overrides) {
  FewShotSuite s;
  s.file = path;
  try {
    s.yaml = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error(path + ": cannot read the few-shot suite");
  } catch (const YAML::Exception& e) {
    throw Error(path + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  reject_duplicate_keys(s.yaml, path);
  for (const auto& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0) throw Error("--set '" + o + "': expected KEY=VALUE");
    try {
      s.yaml[o.substr(0, eq)] = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw Error("--set '" + o + "': value is not valid YAML (" + e.msg + ")");
    }
  }
  const ConfigNode root{s.yaml, "", path};
  check_keys(root, {"demonstrations", "seeds", "test_examples", "baselines", "seed_model", "ensembles", "tasks"});
  s.demonstrations = get<int32_t>(root, "demonstrations", s.demonstrations);
  if (s.demonstrations < 0) throw Error(root.where(s.yaml["demonstrations"]) + ": demonstrations: must be >= 0");
  s.seeds = get<std::vector<uint64_t>>(root, "seeds", s.seeds);
  if (s.seeds.empty()) throw Error(root.where(s.yaml["seeds"]) + ": seeds: give at least one seed");
  s.test_examples = get<int64_t>(root, "test_examples", 0);
  if (s.test_examples < 0) throw Error(root.where(s.yaml["test_examples"]) + ": test_examples: must be >= 0");
  s.baselines = get<bool>(root, "baselines", true);
  s.seed_model = get<bool>(root, "seed_model", true);
  const ConfigNode ens = root.child("ensembles");
  if (ens.node && !ens.node.IsNull()) {
    if (!ens.node.IsMap()) throw Error(ens.where() + ": ensembles: a map of name: {type: ROUTER, ...options}");
    for (const auto& kv : ens.node) s.ensembles.emplace_back(kv.first.as<std::string>(), ens.child(kv.first.as<std::string>()));
  }
  const ConfigNode tasks = root.child("tasks");
  if (!tasks.node || !tasks.node.IsSequence() || tasks.node.size() == 0)
    throw Error(path + ": tasks: a list of at least one task");
  std::set<std::string> names;
  for (size_t i = 0; i < tasks.node.size(); ++i) {
    ConfigNode item;
    item.node.reset(tasks.node[i]);
    item.path = "tasks." + std::to_string(i);
    item.file = path;
    FewShotTask t = parse_task(item, path);
    if (!names.insert(t.name).second) throw Error(tasks.where(tasks.node[i]) + ": two tasks are named '" + t.name + "'");
    read_examples(t);
    if (static_cast<int64_t>(t.train.size()) < s.demonstrations)
      throw Error(t.data + ": task '" + t.name + "' has " + std::to_string(t.train.size()) + " training examples; " +
                  std::to_string(s.demonstrations) + " demonstrations are drawn from them");
    s.tasks.push_back(std::move(t));
  }
  return s;
}

}  // namespace cbtm
