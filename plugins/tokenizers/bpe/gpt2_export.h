#pragma once
/// \file gpt2_export.h
/// GPT-2 / Hugging Face file format for a byte-level BPE vocabulary: `vocab.json` (token
/// string -> id) and `merges.txt` ("#version: 0.2" then one "first second" line per merge,
/// in rank order). Token strings spell bytes with GPT-2's byte-to-unicode table (printable
/// bytes stand for themselves, the others map to U+0100..), as in GPT-2's encoder.py.
/// The specials are written as "<s>", "<pad>", "</s>", "<unk>" with ids 0..3.
///
/// \code
///   export_gpt2(tokenizer.model(), dir + "/vocab.json", dir + "/merges.txt");
///   BpeModel same(import_gpt2(dir + "/vocab.json", dir + "/merges.txt"));
/// \endcode
#include <string>
#include <string_view>
#include <vector>

#include "bpe_model.h"

namespace cbtm::bpe {

/// GPT-2's bytes_to_unicode(): the code point that stands for each byte.
const std::vector<char32_t>& gpt2_byte_to_unicode();
/// The GPT-2 token string (UTF-8) of a piece of raw bytes.
std::string gpt2_token_string(std::string_view bytes);
/// Inverse of gpt2_token_string; throws cbtm::Error if a character is not in the table.
std::string gpt2_token_bytes(std::string_view token);

/// Writes vocab.json and merges.txt (atomically; parent directories are created).
void export_gpt2(const BpeModel& model, const std::string& vocab_json,
                 const std::string& merges_txt);

/// Reads merges.txt back as id pairs, checked against vocab.json: the files must use this
/// project's layout (specials 0..3, byte b at 4 + b, merge i at 260 + i). Errors name the
/// file and line.
std::vector<Merge> import_gpt2(const std::string& vocab_json, const std::string& merges_txt);

}  // namespace cbtm::bpe
