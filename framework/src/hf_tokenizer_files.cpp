// Hugging Face side files of an exported tokenizer (see tokenizer.h).
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/tokenizer.h"

namespace cbtm {

void write_hf_tokenizer_config(const std::string& dir, const HfSpecialTokens& s, bool add_bos_token) {
  nlohmann::json specials = {{"bos_token", s.bos}, {"eos_token", s.eos}, {"pad_token", s.pad}, {"unk_token", s.unk}};
  nlohmann::json cfg = specials;
  cfg["tokenizer_class"] = "GPT2Tokenizer";
  cfg["add_bos_token"] = add_bos_token;
  cfg["add_prefix_space"] = false;
  cfg["errors"] = "replace";
  make_dirs(dir);
  write_file_atomic(dir + "/tokenizer_config.json", cfg.dump(2) + "\n");
  write_file_atomic(dir + "/special_tokens_map.json", specials.dump(2) + "\n");
}

void set_hf_config_token_ids(const std::string& dir, const Tokenizer& tokenizer) {
  const std::string file = dir + "/config.json";
  if (!std::filesystem::exists(file)) throw Error(file + ": no such file (not a model checkpoint directory)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw Error(file + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(file + ": expected a JSON object");
  // already the tokenizer's (the trainer wrote them): leave a sealed checkpoint untouched
  if (j.value("bos_token_id", -1) == tokenizer.bos_id() && j.value("eos_token_id", -1) == tokenizer.eos_id() &&
      j.value("pad_token_id", -1) == tokenizer.pad_id())
    return;
  j["bos_token_id"] = tokenizer.bos_id();
  j["eos_token_id"] = tokenizer.eos_id();
  j["pad_token_id"] = tokenizer.pad_id();
  write_file_atomic(file, j.dump(2) + "\n");
}

}  // namespace cbtm
