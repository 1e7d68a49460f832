#pragma once
/// \file tokenizer.h
/// Extension point: text <-> token ids.
///
/// Ids 0..3 are reserved for specials in every built-in tokenizer, laid out as in OPT:
/// `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3. `</s>` separates documents: the trainer puts it
/// before every document, evaluation scores [</s>, x..., </s>].
///
/// \code
///   auto tok = registry.create<Tokenizer>(cfg.child("tokenizer"));
///   tok->train(sample_texts);            // no-op for fixed vocabularies
///   std::vector<int32_t> ids = tok->encode("Hello world");
///   std::string back = tok->decode(ids); // == "Hello world"
/// \endcode
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cbtm/component.h"

namespace cbtm {

class TensorFile;
class TensorFileWriter;

class Tokenizer : public Component {
 public:
  static constexpr const char* kKind = "tokenizer";

  /// Learns the vocabulary from sample texts (may log progress).
  virtual void train(const std::vector<std::string>& texts) = 0;
  /// Token ids of `text` (no specials added). Thread-safe after train/load.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  /// The raw bytes a token stands for ("" for specials). Concatenating the pieces of an
  /// encoding gives back the exact input bytes.
  virtual std::string piece(int32_t id) const = 0;
  /// Concatenated pieces.
  virtual std::string decode(const std::vector<int32_t>& ids) const;
  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const { return 2; }  ///< document separator `</s>`
  virtual int32_t eos_id() const { return 2; }
  virtual int32_t pad_id() const { return 1; }

  /// State under `prefix` in a cbtm artifact (see artifact.h).
  virtual void save(TensorFileWriter& out, const std::string& prefix) const = 0;
  virtual void load(const TensorFile& in, const std::string& prefix) = 0;

  /// Writes the tokenizer as Hugging Face files into `dir` (e.g. vocab.json, merges.txt,
  /// tokenizer_config.json, special_tokens_map.json: what `AutoTokenizer.from_pretrained(dir)`
  /// reads), atomically. Returns false, writing nothing, when it has no such form (the default).
  /// The pipeline calls it for every trained model's final checkpoint directory.
  virtual bool export_hf(const std::string& dir) const {
    (void)dir;
    return false;
  }
};

/// The special tokens of a GPT-2-style tokenizer, by string.
struct HfSpecialTokens {
  std::string bos, eos, pad, unk;
};
/// Writes dir/tokenizer_config.json (GPT2Tokenizer, add_bos_token as OPT's) and
/// dir/special_tokens_map.json, atomically.
void write_hf_tokenizer_config(const std::string& dir, const HfSpecialTokens& specials, bool add_bos_token);
/// Sets bos_token_id / eos_token_id / pad_token_id of dir/config.json (a Hugging Face model
/// config) to the tokenizer's ids, rewriting the file atomically; Error naming the file if it
/// is missing or not a JSON object.
void set_hf_config_token_ids(const std::string& dir, const Tokenizer& tokenizer);

}  // namespace cbtm
