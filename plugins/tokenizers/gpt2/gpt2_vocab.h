#pragma once
/// \file gpt2_vocab.h
/// A pretrained GPT-2-style byte-level BPE vocabulary as Hugging Face and OpenAI ship it, read
/// from `vocab.json` (token string -> id) + `merges.txt` (optional "#version" line, then one
/// "first second" line per merge in rank order), or from a `tokenizer.json` (its model.vocab,
/// model.merges — "a b" strings or [a, b] pairs — and added_tokens). Token strings spell bytes
/// with GPT-2's byte-to-unicode table (gpt2_export.h). GPT-2 (`<|endoftext|>` = 50256) and OPT
/// (`<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3, then GPT-2's tokens renumbered) both load.
///
/// \code
///   Gpt2Vocab v = read_gpt2_dir("checkpoints/opt-125m");   // tokenizer.json, or the pair
///   v.tokens[2];   // "</s>";   v.merges[0] == {"Ġ", "t"}
/// \endcode
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cbtm::gpt2 {

struct Gpt2Vocab {
  std::vector<std::string> tokens;  ///< by id; "" for an id no token has
  std::vector<bool> present;        ///< by id: some token has this id
  std::vector<std::pair<std::string, std::string>> merges;  ///< rank order
  std::vector<int32_t> special_ids;  ///< added/special tokens (their piece is "")
  std::string source;                ///< the file(s) read, for messages
};

/// vocab.json + merges.txt. Errors (cbtm::Error) name the file and, for merges, the line.
Gpt2Vocab read_gpt2_files(const std::string& vocab_json, const std::string& merges_txt);
/// A Hugging Face tokenizer.json with a BPE model.
Gpt2Vocab read_tokenizer_json(const std::string& path);
/// DIR/tokenizer.json when present, else DIR/vocab.json + DIR/merges.txt.
Gpt2Vocab read_gpt2_dir(const std::string& dir);

/// Writes vocab.json and merges.txt (atomically) in the Hugging Face layout.
void write_gpt2_files(const Gpt2Vocab& v, const std::string& vocab_json,
                      const std::string& merges_txt);

}  // namespace cbtm::gpt2
