#include "bpe_tokenizer.h"

#include <spdlog/spdlog.h>

#include "bpe_trainer.h"
#include "gpt2_export.h"
#include "cbtm/runtime.h"
#include "cbtm/tensor_file.h"

namespace cbtm::bpe {

void BpeTokenizer::train(const std::vector<std::string>& texts) {
  spdlog::info("bpe: training vocab_size {} (min_frequency {}, max_train_bytes {}) on {} texts",
               opts_.vocab_size, opts_.min_frequency, opts_.max_train_bytes, texts.size());
  const auto words = count_pretokens(texts, opts_.max_train_bytes, runtime().resolved_threads());
  model_ = BpeModel(learn_merges(words, opts_.vocab_size, opts_.min_frequency));
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  model_.encode(text, ids);
  return ids;
}

void BpeTokenizer::save(TensorFileWriter& out, const std::string& prefix) const {
  const auto& merges = model_.merges();
  std::vector<int32_t> flat;
  flat.reserve(merges.size() * 2);
  for (const auto& [a, b] : merges) {
    flat.push_back(a);
    flat.push_back(b);
  }
  out.add_i32(prefix + ".merges", {static_cast<int64_t>(merges.size()), 2}, flat);
  out.add_i32(prefix + ".vocab_size", {1}, {model_.vocab_size()});
}

void BpeTokenizer::load(const TensorFile& in, const std::string& prefix) {
  const std::string mname = prefix + ".merges", vname = prefix + ".vocab_size";
  const TensorFile::Info& mi = in.info(mname);
  if (mi.dtype != DType::I32 || mi.shape.size() != 2 || mi.shape[1] != 2)
    throw Error(in.path() + ": tensor '" + mname + "' must be I32 [n, 2]");
  const TensorFile::Info& vi = in.info(vname);
  if (vi.dtype != DType::I32 || vi.numel() != 1)
    throw Error(in.path() + ": tensor '" + vname + "' must be one I32");
  const std::vector<int32_t> flat = in.i32(mname);
  const int32_t stored_vocab = in.i32(vname)[0];
  const int64_t n = mi.shape[0];
  if (stored_vocab != kFirstMergeId + n)
    throw Error(in.path() + ": '" + vname + "' is " + std::to_string(stored_vocab) + " but '" +
                mname + "' holds " + std::to_string(n) + " merges (expected vocab " +
                std::to_string(kFirstMergeId + n) + ")");
  std::vector<Merge> merges(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) merges[i] = {flat[2 * i], flat[2 * i + 1]};
  try {
    model_ = BpeModel(std::move(merges));
  } catch (const Error& e) {
    throw Error(in.path() + ": tensor '" + mname + "': " + e.what());
  }
}

bool BpeTokenizer::export_hf(const std::string& dir) const {
  export_gpt2(model(), dir + "/vocab.json", dir + "/merges.txt");
  write_hf_tokenizer_config(dir, {"</s>", "</s>", "<pad>", "<unk>"}, /*add_bos_token=*/true);
  return true;
}

}  // namespace cbtm::bpe
