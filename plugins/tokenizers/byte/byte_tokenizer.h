#pragma once
/// \file byte_tokenizer.h
/// The `byte` tokenizer plugin: a fixed vocabulary of the 256 bytes.
///
/// \code
///   tokenizer: {type: byte}
/// \endcode
///
/// Ids 0..3 are `<s>`, `<pad>`, `</s>`, `<unk>` (piece ""), id 4 + b is byte b; vocab 260.
/// train() does nothing. State in an artifact: `<prefix>.vocab_size` (I32 [1] = 260).
#include <cstdint>
#include <string>
#include <vector>

#include "cbtm/tokenizer.h"

namespace cbtm::byte_tok {

class ByteTokenizer : public Tokenizer {
 public:
  static constexpr int32_t kFirstByteId = 4;
  static constexpr int32_t kVocabSize = kFirstByteId + 256;

  struct Options {
    template <class V> void visit(V&) {}
  };
  explicit ByteTokenizer(const Options& = {}) {}

  void train(const std::vector<std::string>&) override {}
  std::vector<int32_t> encode(std::string_view text) const override;
  /// "" for specials; Error for ids outside [0, 260).
  std::string piece(int32_t id) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int32_t vocab_size() const override { return kVocabSize; }
  void save(TensorFileWriter& out, const std::string& prefix) const override;
  /// Error naming the file unless `<prefix>.vocab_size` holds 260.
  void load(const TensorFile& in, const std::string& prefix) override;
};

}  // namespace cbtm::byte_tok
