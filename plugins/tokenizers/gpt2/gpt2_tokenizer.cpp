#include "gpt2_tokenizer.h"

#include <algorithm>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "cbtm/fs.h"
#include "cbtm/tensor_file.h"
#include "gpt2_export.h"

namespace cbtm::gpt2 {

Gpt2Tokenizer::Gpt2Tokenizer(const Options& options)
    : Gpt2Tokenizer(options, read_gpt2_dir(options.path)) {}

Gpt2Tokenizer::Gpt2Tokenizer(const Options& options, Gpt2Vocab vocab)
    : options_(options), vocab_(std::move(vocab)) {
  build();
}

int32_t Gpt2Tokenizer::id_of(const std::string& token) const {
  for (size_t i = 0; i < vocab_.tokens.size(); ++i)
    if (vocab_.present[i] && vocab_.tokens[i] == token) return static_cast<int32_t>(i);
  return -1;
}

void Gpt2Tokenizer::build() {
  const std::string where = "tokenizer 'gpt2' (" + vocab_.source + ")";
  std::unordered_map<std::string, int32_t> id;  // token string -> vocabulary id
  id.reserve(vocab_.tokens.size());
  for (size_t i = 0; i < vocab_.tokens.size(); ++i)
    if (vocab_.present[i]) id.emplace(vocab_.tokens[i], static_cast<int32_t>(i));
  // Internal ids, as bpe::BpeModel numbers them: byte b is 4 + b, merge r makes 260 + r.
  std::unordered_map<std::string, int32_t> internal;
  internal.reserve(256 + vocab_.merges.size());
  external_.assign(static_cast<size_t>(bpe::kFirstMergeId + vocab_.merges.size()), -1);
  for (int b = 0; b < 256; ++b) {
    const std::string t = bpe::gpt2_token_string(std::string(1, static_cast<char>(b)));
    const auto it = id.find(t);
    if (it == id.end())
      throw Error(where + ": the vocabulary has no token for byte " + std::to_string(b) + " (" + t +
                  "): not a byte-level BPE vocabulary");
    internal[t] = bpe::kFirstByteId + b;
    external_[static_cast<size_t>(bpe::kFirstByteId + b)] = it->second;
  }
  std::vector<bpe::Merge> merges;
  merges.reserve(vocab_.merges.size());
  for (size_t r = 0; r < vocab_.merges.size(); ++r) {
    const auto& [a, b] = vocab_.merges[r];
    const auto ia = internal.find(a), ib = internal.find(b);
    if (ia == internal.end() || ib == internal.end())
      throw Error(where + ": merge " + std::to_string(r + 1) + " (\"" + a + " " + b + "\") uses '" +
                  (ia == internal.end() ? a : b) + "', which no byte or earlier merge makes");
    const std::string joined = a + b;
    const auto out = id.find(joined);
    if (out == id.end())
      throw Error(where + ": merge " + std::to_string(r + 1) + " makes '" + joined +
                  "', which is not in the vocabulary");
    const int32_t me = bpe::kFirstMergeId + static_cast<int32_t>(r);
    if (!internal.emplace(joined, me).second)
      throw Error(where + ": merge " + std::to_string(r + 1) + " makes '" + joined +
                  "' again (an earlier merge made it already)");
    merges.emplace_back(ia->second, ib->second);
    external_[static_cast<size_t>(me)] = out->second;
  }
  model_ = bpe::BpeModel(std::move(merges));
  // Pieces: the bytes each token spells; specials (and ids no token has) are "".
  std::vector<bool> special(vocab_.tokens.size(), false);
  for (int32_t s : vocab_.special_ids) special[static_cast<size_t>(s)] = true;
  pieces_.assign(vocab_.tokens.size(), std::string());
  for (size_t i = 0; i < vocab_.tokens.size(); ++i) {
    if (!vocab_.present[i] || special[i]) continue;
    try {
      pieces_[i] = bpe::gpt2_token_bytes(vocab_.tokens[i]);
    } catch (const Error&) {
      // Not spelled in GPT-2's byte alphabet (an added token): no bytes of its own.
    }
  }
  auto pick = [&](const std::string& name, const char* key, std::initializer_list<const char*> defaults) {
    if (!name.empty()) {
      const auto it = id.find(name);
      if (it == id.end())
        throw Error(where + ": option " + key + " names '" + name + "', which is not in the vocabulary");
      return it->second;
    }
    for (const char* d : defaults) {
      const auto it = id.find(d);
      if (it != id.end()) return it->second;
    }
    throw Error(where + ": option " + key + " is empty and the vocabulary has none of its defaults"
                " (set it to a token of the vocabulary)");
  };
  bos_ = pick(options_.bos, "bos", {"</s>", "<|endoftext|>"});
  eos_ = options_.eos.empty() ? bos_ : pick(options_.eos, "eos", {});
  pad_ = pick(options_.pad, "pad", {"<pad>", "</s>", "<|endoftext|>"});
}

void Gpt2Tokenizer::train(const std::vector<std::string>&) {
  spdlog::info("gpt2: fixed vocabulary of {} tokens and {} merges from {} (nothing to train)",
               vocab_.tokens.size(), vocab_.merges.size(), vocab_.source);
}

std::vector<int32_t> Gpt2Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  model_.encode(text, ids);
  for (int32_t& i : ids) i = external_[static_cast<size_t>(i)];
  return ids;
}

std::string Gpt2Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw Error("tokenizer 'gpt2': token id " + std::to_string(id) + " is out of range (vocabulary of " +
                std::to_string(vocab_size()) + ")");
  return pieces_[static_cast<size_t>(id)];
}

void Gpt2Tokenizer::save(TensorFileWriter& out, const std::string& prefix) const {
  std::vector<std::string> tokens(vocab_.tokens.size());
  std::vector<int32_t> present;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (vocab_.present[i]) {
      tokens[i] = vocab_.tokens[i];
      present.push_back(static_cast<int32_t>(i));
    }
  std::vector<std::string> merges;
  merges.reserve(vocab_.merges.size());
  for (const auto& [a, b] : vocab_.merges) merges.push_back(a + " " + b);
  out.add_strings(prefix + ".tokens", tokens);
  out.add_i32(prefix + ".present", {static_cast<int64_t>(present.size())}, present);
  out.add_strings(prefix + ".merges", merges);
  out.add_i32(prefix + ".specials", {static_cast<int64_t>(vocab_.special_ids.size())}, vocab_.special_ids);
  out.add_i32(prefix + ".ids", {3}, {bos_, eos_, pad_});
}

void Gpt2Tokenizer::load(const TensorFile& in, const std::string& prefix) {
  Gpt2Vocab v;
  v.source = in.path();
  for (const char* t : {".tokens.bytes", ".present", ".merges.bytes", ".specials", ".ids"})
    if (!in.has(prefix + t))
      throw Error(in.path() + ": tokenizer 'gpt2': tensor '" + prefix + t + "' is missing");
  v.tokens = in.strings(prefix + ".tokens");
  v.present.assign(v.tokens.size(), false);
  for (int32_t i : in.i32(prefix + ".present")) {
    if (i < 0 || static_cast<size_t>(i) >= v.tokens.size())
      throw Error(in.path() + ": tokenizer 'gpt2': tensor '" + prefix + ".present' has id " +
                  std::to_string(i) + " outside the " + std::to_string(v.tokens.size()) + " tokens");
    v.present[static_cast<size_t>(i)] = true;
  }
  for (const std::string& m : in.strings(prefix + ".merges")) {
    const size_t sp = m.find(' ');
    if (sp == std::string::npos)
      throw Error(in.path() + ": tokenizer 'gpt2': merge '" + m + "' has no space");
    v.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
  }
  v.special_ids = in.i32(prefix + ".specials");
  for (int32_t s : v.special_ids)
    if (s < 0 || static_cast<size_t>(s) >= v.tokens.size())
      throw Error(in.path() + ": tokenizer 'gpt2': special id " + std::to_string(s) + " is out of range");
  const std::vector<int32_t> ids = in.i32(prefix + ".ids");
  if (ids.size() != 3) throw Error(in.path() + ": tokenizer 'gpt2': tensor '" + prefix + ".ids' must hold 3 ids");
  Options o = options_;
  o.bos = v.tokens.at(static_cast<size_t>(ids[0]));
  o.eos = v.tokens.at(static_cast<size_t>(ids[1]));
  o.pad = v.tokens.at(static_cast<size_t>(ids[2]));
  options_ = o;
  vocab_ = std::move(v);
  build();
}

bool Gpt2Tokenizer::export_hf(const std::string& dir) const {
  make_dirs(dir);
  write_gpt2_files(vocab_, dir + "/vocab.json", dir + "/merges.txt");
  const auto& t = vocab_.tokens;
  const int32_t unk = id_of("<unk>");
  write_hf_tokenizer_config(dir, {t[static_cast<size_t>(bos_)], t[static_cast<size_t>(eos_)], t[static_cast<size_t>(pad_)],
                                  unk >= 0 ? std::string("<unk>") : t[static_cast<size_t>(eos_)]},
                            /*add_bos_token=*/true);
  return true;
}

}  // namespace cbtm::gpt2
