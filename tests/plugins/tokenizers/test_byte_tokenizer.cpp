// The `byte` tokenizer.
#include "support/catch.h"

#include <string>
#include <vector>

#include "byte_tokenizer.h"
#include "cbtm/tensor_file.h"
#include "support/test_support.h"

using cbtm::Error;
using cbtm::Tokenizer;
using cbtm::byte_tok::ByteTokenizer;

TEST_CASE("byte: ids and round trip", "[byte]") {
  ByteTokenizer tok;
  tok.train({"ignored"});
  CHECK(tok.vocab_size() == 260);
  CHECK(tok.bos_id() == 2);
  CHECK(tok.eos_id() == 2);
  CHECK(tok.pad_id() == 1);
  CHECK(tok.encode("A\n") == std::vector<int32_t>{4 + 65, 4 + 10});
  CHECK(tok.encode(std::string("\0\xFF", 2)) == std::vector<int32_t>{4, 259});
  for (int id = 0; id < 4; ++id) CHECK(tok.piece(id).empty());
  for (int b = 0; b < 256; ++b) CHECK(tok.piece(4 + b) == std::string(1, static_cast<char>(b)));
  CHECK_THROWS_AS(tok.piece(260), Error);
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  CHECK(tok.decode(tok.encode(all)) == all);
  CHECK(tok.decode({2, 4 + 'h', 1, 4 + 'i', 3}) == "hi");
  CHECK(tok.encode("").empty());
}

TEST_CASE("byte: plugin - save and load", "[byte][plugin]") {
  auto& reg = cbtm::test::plugins().registry();
  auto tok = reg.create<Tokenizer>(cbtm::ConfigNode{YAML::Load("{type: byte}"), "tokenizer", ""});
  CHECK(tok->vocab_size() == 260);
  CHECK(tok->encode("ok") == std::vector<int32_t>{4 + 'o', 4 + 'k'});
  const cbtm::ConfigNode bad{YAML::Load("{type: byte, vocab_size: 3}"), "tokenizer", ""};
  CHECK_THROWS_WITH(reg.create<Tokenizer>(bad), ContainsText("vocab_size"));

  cbtm::test::TempDir dir("byte");
  cbtm::TensorFileWriter w;
  tok->save(w, "tok");
  w.add_i32("bad.vocab_size", {1}, {300});
  w.write(dir / "t.safetensors");
  const auto f = cbtm::TensorFile::read(dir / "t.safetensors");
  ByteTokenizer back;
  back.load(f, "tok");
  CHECK_THROWS_WITH(back.load(f, "bad"), ContainsText("t.safetensors"));
  CHECK_THROWS_AS(back.load(f, "missing"), Error);
}
