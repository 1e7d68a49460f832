#pragma once
/// \file gpt2_tokenizer.h
/// The `gpt2` tokenizer plugin: a pretrained GPT-2 / OPT byte-level BPE vocabulary read from
/// files (gpt2_vocab.h), encoding exactly as OpenAI's encoder.py and Hugging Face's
/// GPT2Tokenizer do: GPT-2's pre-tokenising pattern (pretokenizer.h), then the merges in rank
/// order inside each pre-token. train() learns nothing (the vocabulary is fixed).
///
/// \code
///   # YAML: an OPT checkpoint directory, or any directory with tokenizer.json or
///   # vocab.json + merges.txt
///   tokenizer: {type: gpt2, path: checkpoints/opt-125m}
/// \endcode
///
/// Document separator and padding: `bos`/`eos`/`pad` name tokens; by default `</s>` and
/// `<pad>` when the vocabulary has them (OPT: ids 2 and 1), else `<|endoftext|>` (GPT-2:
/// 50256) for all three. The artifact holds the whole vocabulary (`<prefix>.tokens`, strings
/// by id; `<prefix>.merges`, "a b" strings; `<prefix>.specials`, I32 ids; `<prefix>.ids`, I32
/// [bos, eos, pad]), so a fitted run needs the files no more.
#include <cstdint>
#include <string>
#include <vector>

#include "bpe_model.h"
#include "cbtm/error.h"
#include "cbtm/tokenizer.h"
#include "gpt2_vocab.h"

namespace cbtm::gpt2 {

class Gpt2Tokenizer : public Tokenizer {
 public:
  struct Options {
    std::string path;
    std::string bos, eos, pad;
    template <class V> void visit(V& v) {
      v("path", path,
        "required: directory with tokenizer.json, or vocab.json + merges.txt (e.g. an OPT checkpoint); "
        "relative paths: to the working directory");
      v("bos", bos, "token put before every document (\"\": </s> if present, else <|endoftext|>)");
      v("eos", eos, "end-of-document token (\"\": as bos)");
      v("pad", pad, "padding token (\"\": <pad> if present, else as bos)");
    }
    void validate() const { require(!path.empty(), "path", "is required (a tokenizer directory)"); }
  };

  explicit Gpt2Tokenizer(const Options& options);
  /// From an already read vocabulary (tests, tools).
  Gpt2Tokenizer(const Options& options, Gpt2Vocab vocab);

  void train(const std::vector<std::string>& texts) override;
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string piece(int32_t id) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(vocab_.tokens.size()); }
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  int32_t pad_id() const override { return pad_; }
  void save(TensorFileWriter& out, const std::string& prefix) const override;
  void load(const TensorFile& in, const std::string& prefix) override;
  /// The vocabulary as vocab.json + merges.txt and a GPT2Tokenizer config naming this
  /// tokenizer's bos/eos/pad (unk: `<unk>` if present, else eos); bos added before every text,
  /// as the pipeline trains.
  bool export_hf(const std::string& dir) const override;

  const Gpt2Vocab& vocabulary() const { return vocab_; }
  /// The id of a token string, or -1.
  int32_t id_of(const std::string& token) const;

 private:
  void build();
  Options options_;
  Gpt2Vocab vocab_;
  bpe::BpeModel model_;             // internal ids: bytes 4..259, merge i -> 260 + i
  std::vector<int32_t> external_;   // internal id -> vocabulary id
  std::vector<std::string> pieces_; // vocabulary id -> bytes ("" for specials and gaps)
  int32_t bos_ = -1, eos_ = -1, pad_ = -1;
};

}  // namespace cbtm::gpt2
