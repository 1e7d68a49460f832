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
};

}  // namespace cbtm
