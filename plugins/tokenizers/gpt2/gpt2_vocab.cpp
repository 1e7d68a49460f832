#include "gpt2_vocab.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cbtm/error.h"
#include "cbtm/fs.h"

namespace cbtm::gpt2 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string read_all(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(std::string(what) + " '" + path + "' cannot be read (does it exist?)");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json parse_json(const std::string& path, const char* what) {
  try {
    return json::parse(read_all(path, what));
  } catch (const json::parse_error& e) {
    throw Error(std::string(what) + " '" + path + "' is not valid JSON: " + e.what());
  }
}

/// Fills tokens/present from a {token: id} object.
void set_vocab(const json& vocab, const std::string& where, Gpt2Vocab& v) {
  if (!vocab.is_object() || vocab.empty())
    throw Error(where + ": the vocabulary must be a non-empty object of token -> id");
  int64_t max_id = -1;
  for (const auto& [tok, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 24))
      throw Error(where + ": token " + json(tok).dump() + " has id " + id.dump() +
                  " (expected an integer in 0 .. 2^24)");
    max_id = std::max<int64_t>(max_id, id.get<int64_t>());
  }
  v.tokens.assign(static_cast<size_t>(max_id + 1), std::string());
  v.present.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [tok, id] : vocab.items()) {
    const size_t i = static_cast<size_t>(id.get<int64_t>());
    if (v.present[i])
      throw Error(where + ": tokens " + json(v.tokens[i]).dump() + " and " + json(tok).dump() +
                  " share id " + std::to_string(i));
    v.tokens[i] = tok;
    v.present[i] = true;
  }
}

/// "a b" -> (a, b); false when the line is not two tokens separated by one space.
bool split_merge(const std::string& line, std::pair<std::string, std::string>& out) {
  const size_t sp = line.find(' ');
  if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() ||
      line.find(' ', sp + 1) != std::string::npos)
    return false;
  out = {line.substr(0, sp), line.substr(sp + 1)};
  return true;
}

/// The usual special-token spellings, treated as specials when no added_tokens list says.
bool conventional_special(const std::string& t) {
  return t == "<s>" || t == "</s>" || t == "<pad>" || t == "<unk>" || t == "<mask>" ||
         t == "<|endoftext|>";
}

void mark_conventional_specials(Gpt2Vocab& v) {
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (v.present[i] && conventional_special(v.tokens[i]))
      v.special_ids.push_back(static_cast<int32_t>(i));
}

}  // namespace

Gpt2Vocab read_gpt2_files(const std::string& vocab_json, const std::string& merges_txt) {
  Gpt2Vocab v;
  v.source = vocab_json + " + " + merges_txt;
  set_vocab(parse_json(vocab_json, "vocab.json"), vocab_json, v);
  std::istringstream in(read_all(merges_txt, "merges.txt"));
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (lineno == 1 && line.rfind("#version", 0) == 0)) continue;
    std::pair<std::string, std::string> m;
    if (!split_merge(line, m))
      throw Error(merges_txt + ":" + std::to_string(lineno) +
                  ": expected two tokens separated by one space, got " + json(line).dump());
    v.merges.push_back(std::move(m));
  }
  mark_conventional_specials(v);
  return v;
}

Gpt2Vocab read_tokenizer_json(const std::string& path) {
  const json j = parse_json(path, "tokenizer.json");
  Gpt2Vocab v;
  v.source = path;
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    throw Error(path + ": no \"model\" object (is this a Hugging Face tokenizer.json?)");
  const json& model = j["model"];
  if (model.contains("type") && model["type"] != "BPE")
    throw Error(path + ": model.type is " + model["type"].dump() + "; only BPE is supported");
  if (!model.contains("vocab")) throw Error(path + ": model.vocab is missing");
  set_vocab(model["vocab"], path + ": model.vocab", v);
  if (!model.contains("merges") || !model["merges"].is_array())
    throw Error(path + ": model.merges is missing or not a list");
  size_t i = 0;
  for (const auto& m : model["merges"]) {
    std::pair<std::string, std::string> p;
    if (m.is_string()) {
      if (!split_merge(m.get<std::string>(), p))
        throw Error(path + ": model.merges[" + std::to_string(i) + "] = " + m.dump() +
                    ": expected two tokens separated by one space");
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      p = {m[0].get<std::string>(), m[1].get<std::string>()};
    } else {
      throw Error(path + ": model.merges[" + std::to_string(i) + "] = " + m.dump() +
                  ": expected \"a b\" or [\"a\", \"b\"]");
    }
    v.merges.push_back(std::move(p));
    ++i;
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t.contains("content")) continue;
      const int64_t id = t["id"].get<int64_t>();
      if (id < 0) continue;
      if (static_cast<size_t>(id) >= v.tokens.size()) {
        v.tokens.resize(static_cast<size_t>(id + 1));
        v.present.resize(static_cast<size_t>(id + 1), false);
      }
      v.tokens[static_cast<size_t>(id)] = t["content"].get<std::string>();
      v.present[static_cast<size_t>(id)] = true;
      v.special_ids.push_back(static_cast<int32_t>(id));
    }
  } else {
    mark_conventional_specials(v);
  }
  return v;
}

Gpt2Vocab read_gpt2_dir(const std::string& dir) {
  const fs::path d(dir);
  if (!fs::is_directory(d)) throw Error("tokenizer directory '" + dir + "' does not exist");
  if (fs::is_regular_file(d / "tokenizer.json")) return read_tokenizer_json((d / "tokenizer.json").string());
  if (fs::is_regular_file(d / "vocab.json") && fs::is_regular_file(d / "merges.txt"))
    return read_gpt2_files((d / "vocab.json").string(), (d / "merges.txt").string());
  throw Error("tokenizer directory '" + dir +
              "' has neither tokenizer.json nor vocab.json + merges.txt");
}

void write_gpt2_files(const Gpt2Vocab& v, const std::string& vocab_json,
                      const std::string& merges_txt) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();  // in id order
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (v.present[i]) vocab[v.tokens[i]] = static_cast<int64_t>(i);
  std::string merges = "#version: 0.2\n";
  for (const auto& [a, b] : v.merges) merges += a + " " + b + "\n";
  write_file_atomic(vocab_json, vocab.dump());
  write_file_atomic(merges_txt, merges);
}

}  // namespace cbtm::gpt2
