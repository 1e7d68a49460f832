#include "byte_tokenizer.h"

#include "cbtm/error.h"
#include "cbtm/tensor_file.h"

namespace cbtm::byte_tok {

namespace {
void check_id(int32_t id) {
  if (id < 0 || id >= ByteTokenizer::kVocabSize)
    throw Error("byte tokenizer: token id " + std::to_string(id) + " out of range [0, " +
                std::to_string(ByteTokenizer::kVocabSize) + ")");
}
}  // namespace

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i)
    ids[i] = kFirstByteId + static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::piece(int32_t id) const {
  check_id(id);
  return id < kFirstByteId ? std::string() : std::string(1, static_cast<char>(id - kFirstByteId));
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  for (int32_t id : ids) {
    check_id(id);
    if (id >= kFirstByteId) out += static_cast<char>(id - kFirstByteId);
  }
  return out;
}

void ByteTokenizer::save(TensorFileWriter& out, const std::string& prefix) const {
  out.add_i32(prefix + ".vocab_size", {1}, {kVocabSize});
}

void ByteTokenizer::load(const TensorFile& in, const std::string& prefix) {
  const std::string name = prefix + ".vocab_size";
  const TensorFile::Info& info = in.info(name);
  if (info.numel() != 1)
    throw Error(in.path() + ": tensor '" + name + "' must hold one value");
  const int32_t v = in.i32(name)[0];
  if (v != kVocabSize)
    throw Error(in.path() + ": tensor '" + name + "' is " + std::to_string(v) +
                ", the byte tokenizer has " + std::to_string(kVocabSize));
}

}  // namespace cbtm::byte_tok
