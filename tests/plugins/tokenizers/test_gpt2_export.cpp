// GPT-2 vocab.json / merges.txt export and re-import.
#include "support/catch.h"

#include <nlohmann/json.hpp>

#include <random>
#include <string>
#include <vector>

#include "bpe_model.h"
#include "bpe_trainer.h"
#include "cbtm/fs.h"
#include "gpt2_export.h"
#include "devpile_sample.h"
#include "support/test_support.h"

using namespace cbtm::bpe;

namespace {
std::vector<std::string> texts() {
  std::vector<std::string> t;
  if (cbtm::test::have_devpile()) {
    t = tok_test::spread_texts(300);
  } else {
    for (int i = 0; i < 200; ++i)
      t.push_back("Hello world\n\tnumbers " + std::to_string(i * 37) + " caf\xC3\xA9 \xFF\xFE!");
  }
  return t;
}
}  // namespace

TEST_CASE("gpt2 byte-to-unicode table", "[bpe][gpt2]") {
  const auto& t = gpt2_byte_to_unicode();
  REQUIRE(t.size() == 256);
  // Values known from GPT-2's vocabulary: 'Ġ' is the space, 'Ċ' the newline.
  CHECK(t[' '] == 0x120);
  CHECK(t['\n'] == 0x10A);
  CHECK(t['\t'] == 0x109);
  CHECK(t[0] == 0x100);
  CHECK(t['A'] == 'A');
  CHECK(t[0xA1] == 0xA1);
  CHECK(t[0xAD] == 0x143);  // the soft hyphen is not printable
  CHECK(t[0xFF] == 0xFF);
  CHECK(gpt2_token_string(" the") == "\xC4\xA0the");
  for (int b = 0; b < 256; ++b) {
    const std::string s(1, static_cast<char>(b));
    REQUIRE(gpt2_token_bytes(gpt2_token_string(s)) == s);
  }
  CHECK_THROWS_AS(gpt2_token_bytes(" "), cbtm::Error);  // a raw space is not in the table
}

TEST_CASE("gpt2 export reloads to the same tokenizer", "[bpe][gpt2]") {
  const BpeModel model(learn_merges(count_pretokens(texts(), 1 << 30, 2), 900, 2));
  REQUIRE(model.merges().size() > 100);
  cbtm::test::TempDir dir("gpt2");
  export_gpt2(model, dir / "vocab.json", dir / "merges.txt");

  const auto vocab = nlohmann::json::parse(cbtm::read_file(dir / "vocab.json"));
  CHECK(static_cast<int32_t>(vocab.size()) == model.vocab_size());
  CHECK(vocab["</s>"] == 2);
  CHECK(vocab["\xC4\xA0"] == 4 + ' ');
  const std::string merges = cbtm::read_file(dir / "merges.txt");
  CHECK(merges.rfind("#version: 0.2\n", 0) == 0);

  const BpeModel back(import_gpt2(dir / "vocab.json", dir / "merges.txt"));
  CHECK(back.merges() == model.merges());
  for (const auto& t : texts()) {
    std::vector<int32_t> a, b;
    model.encode(t, a);
    back.encode(t, b);
    REQUIRE(a == b);
  }

  SECTION("a bad merges line names the file and line") {
    cbtm::test::write_text(dir / "merges.txt", "#version: 0.2\nab\n");
    CHECK_THROWS_WITH(import_gpt2(dir / "vocab.json", dir / "merges.txt"),
                      ContainsText("merges.txt:2"));
  }
  SECTION("merges that do not match the vocabulary") {
    cbtm::test::write_text(dir / "merges.txt", "#version: 0.2\nx y\n");
    CHECK_THROWS_WITH(import_gpt2(dir / "vocab.json", dir / "merges.txt"),
                      ContainsText("merges.txt:2"));
  }
}
