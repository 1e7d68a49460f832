#pragma once
/// \file bpe_tokenizer.h
/// The `bpe` tokenizer plugin: GPT-2-style byte-level BPE trained on the corpus sample.
///
/// \code
///   # YAML
///   tokenizer: {type: bpe, vocab_size: 8192, min_frequency: 2}
/// \endcode
///
/// Ids 0..3 are `<s>`, `<pad>`, `</s>`, `<unk>`; 4..259 the bytes; 260.. the merges in the
/// order learned (see bpe_model.h); vocab_size() is 260 + the merges learned, which is less
/// than the option when training ran out of pairs occurring min_frequency times. State in an
/// artifact: `<prefix>.merges` (I32 [n, 2]) and `<prefix>.vocab_size` (I32 [1], = 260 + n).
/// GPT-2 / Hugging Face files: see gpt2_export.h.
#include <cstdint>
#include <string>
#include <vector>

#include "bpe_model.h"
#include "cbtm/error.h"
#include "cbtm/tokenizer.h"

namespace cbtm::bpe {

class BpeTokenizer : public Tokenizer {
 public:
  struct Options {
    int vocab_size = 8192;
    int64_t min_frequency = 2;
    int64_t max_train_bytes = 50000000;
    template <class V> void visit(V& v) {
      v("vocab_size", vocab_size, "target vocabulary size: 4 specials + 256 bytes + merges");
      v("min_frequency", min_frequency, "stop when the best pair occurs fewer times");
      v("max_train_bytes", max_train_bytes,
        "stop adding sample texts to the pre-token counts after this many bytes");
    }
    void validate() const {
      require(vocab_size >= kFirstMergeId, "vocab_size",
              "must be at least " + std::to_string(kFirstMergeId) + " (specials + bytes), got " +
                  std::to_string(vocab_size));
      require(min_frequency >= 1, "min_frequency",
              "must be at least 1, got " + std::to_string(min_frequency));
      require(max_train_bytes > 0, "max_train_bytes",
              "must be positive, got " + std::to_string(max_train_bytes));
    }
  };

  explicit BpeTokenizer(const Options& opts) : opts_(opts) {}

  /// Learns merges on runtime().resolved_threads() threads (replaces any earlier vocabulary).
  void train(const std::vector<std::string>& texts) override;
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string piece(int32_t id) const override { return model_.piece(id); }
  int32_t vocab_size() const override { return model_.vocab_size(); }
  void save(TensorFileWriter& out, const std::string& prefix) const override;
  /// Error naming the file when a tensor is missing or the merges are inconsistent.
  void load(const TensorFile& in, const std::string& prefix) override;
  /// vocab.json + merges.txt (gpt2_export.h) and the GPT2Tokenizer config: OPT's specials
  /// (`</s>` as bos and eos, `<pad>`, `<unk>`), a bos token added before every text.
  bool export_hf(const std::string& dir) const override;

  const BpeModel& model() const { return model_; }
  const Options& options() const { return opts_; }

 private:
  Options opts_;
  BpeModel model_;
};

}  // namespace cbtm::bpe
