#include "gpt2_export.h"

#include <nlohmann/json.hpp>

#include <sstream>
#include <unordered_map>

#include "cbtm/error.h"
#include "cbtm/fs.h"

namespace cbtm::bpe {
namespace {

const char* const kSpecials[kNumSpecials] = {"<s>", "<pad>", "</s>", "<unk>"};

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {  // the table only uses code points below U+0800
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

const std::unordered_map<char32_t, unsigned char>& unicode_to_byte() {
  static const auto table = [] {
    std::unordered_map<char32_t, unsigned char> t;
    const auto& b2u = gpt2_byte_to_unicode();
    for (int b = 0; b < 256; ++b) t[b2u[b]] = static_cast<unsigned char>(b);
    return t;
  }();
  return table;
}

}  // namespace

const std::vector<char32_t>& gpt2_byte_to_unicode() {
  static const std::vector<char32_t> table = [] {
    std::vector<char32_t> t(256, 0);
    std::vector<bool> printable(256, false);
    for (int b = '!'; b <= '~'; ++b) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) t[b] = printable[b] ? static_cast<char32_t>(b) : next++;
    return t;
  }();
  return table;
}

std::string gpt2_token_string(std::string_view bytes) {
  const auto& b2u = gpt2_byte_to_unicode();
  std::string out;
  for (unsigned char c : bytes) append_utf8(out, b2u[c]);
  return out;
}

std::string gpt2_token_bytes(std::string_view token) {
  const auto& u2b = unicode_to_byte();
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(token.data());
  const size_t n = token.size();
  for (size_t i = 0; i < n;) {
    char32_t cp;
    size_t len;
    if (p[i] < 0x80) {
      cp = p[i], len = 1;
    } else if ((p[i] & 0xE0) == 0xC0 && i + 1 < n) {
      cp = (char32_t(p[i] & 0x1F) << 6) | (p[i + 1] & 0x3F), len = 2;
    } else {
      throw Error("token '" + std::string(token) + "' has a character outside GPT-2's byte table");
    }
    auto it = u2b.find(cp);
    if (it == u2b.end())
      throw Error("token '" + std::string(token) + "' has a character outside GPT-2's byte table");
    out += static_cast<char>(it->second);
    i += len;
  }
  return out;
}

void export_gpt2(const BpeModel& model, const std::string& vocab_json,
                 const std::string& merges_txt) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int32_t id = 0; id < model.vocab_size(); ++id)
    vocab[id < kNumSpecials ? kSpecials[id] : gpt2_token_string(model.piece(id))] = id;
  write_file_atomic(vocab_json, vocab.dump() + "\n");
  std::string merges = "#version: 0.2\n";
  for (const auto& [a, b] : model.merges())
    merges += gpt2_token_string(model.piece(a)) + " " + gpt2_token_string(model.piece(b)) + "\n";
  write_file_atomic(merges_txt, merges);
}

std::vector<Merge> import_gpt2(const std::string& vocab_json, const std::string& merges_txt) {
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(read_file(vocab_json));
  } catch (const nlohmann::json::exception& e) {
    throw Error(vocab_json + ": not valid JSON (" + e.what() + ")");
  }
  if (!vocab.is_object()) throw Error(vocab_json + ": expected a JSON object of token -> id");
  auto id_of = [&](const std::string& token) -> int64_t {
    auto it = vocab.find(token);
    if (it == vocab.end() || !it->is_number_integer())
      throw Error(vocab_json + ": no integer id for token '" + token + "'");
    return it->get<int64_t>();
  };
  for (int32_t i = 0; i < kNumSpecials; ++i)
    if (id_of(kSpecials[i]) != i)
      throw Error(vocab_json + ": special '" + kSpecials[i] + "' must have id " +
                  std::to_string(i));
  std::unordered_map<std::string, int32_t> ids;  // raw bytes -> id
  for (int b = 0; b < 256; ++b) {
    const std::string bytes(1, static_cast<char>(b));
    const int64_t id = id_of(gpt2_token_string(bytes));
    if (id != kFirstByteId + b)
      throw Error(vocab_json + ": byte " + std::to_string(b) + " has id " + std::to_string(id) +
                  ", expected " + std::to_string(kFirstByteId + b));
    ids[bytes] = static_cast<int32_t>(id);
  }

  std::istringstream lines(read_file(merges_txt));
  std::string line;
  std::vector<Merge> merges;
  for (int64_t lineno = 1; std::getline(lines, line); ++lineno) {
    if (line.empty() || (lineno == 1 && line.rfind("#version", 0) == 0)) continue;
    const std::string where = merges_txt + ":" + std::to_string(lineno) + ": ";
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
      throw Error(where + "expected two tokens separated by one space");
    std::string left, right;
    try {
      left = gpt2_token_bytes(line.substr(0, sp));
      right = gpt2_token_bytes(line.substr(sp + 1));
    } catch (const Error& e) {
      throw Error(where + e.what());
    }
    auto a = ids.find(left), b = ids.find(right);
    if (a == ids.end() || b == ids.end())
      throw Error(where + "a token is not defined by an earlier line");
    const int32_t id = kFirstMergeId + static_cast<int32_t>(merges.size());
    const std::string token = gpt2_token_string(left + right);
    auto v = vocab.find(token);
    if (v == vocab.end() || !v->is_number_integer() || v->get<int64_t>() != id)
      throw Error(where + "merged token '" + token + "' must have id " + std::to_string(id) +
                  " in " + vocab_json);
    if (!ids.emplace(left + right, id).second)
      throw Error(where + "duplicate token '" + token + "'");
    merges.emplace_back(a->second, b->second);
  }
  if (static_cast<int64_t>(vocab.size()) != kFirstMergeId + static_cast<int64_t>(merges.size()))
    throw Error(vocab_json + ": has " + std::to_string(vocab.size()) + " tokens but " +
                merges_txt + " defines " + std::to_string(kFirstMergeId + merges.size()));
  return merges;
}

}  // namespace cbtm::bpe
