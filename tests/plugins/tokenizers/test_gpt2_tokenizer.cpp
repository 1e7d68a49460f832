// The `gpt2` tokenizer: GPT-2's own vocabulary files against encodings computed by OpenAI's
// encoder.py (tests/plugins/tokenizers/golden/gen_gpt2_golden.py, cross-checked with the
// gpt-3-encoder JavaScript port), OPT's layout, tokenizer.json, the artifact round trip and
// the errors for broken files.
#include "support/catch.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cbtm/config_node.h"
#include "cbtm/error.h"
#include "cbtm/plugin.h"
#include "cbtm/tensor_file.h"
#include "bpe_tokenizer.h"
#include "cbtm/fs.h"
#include "gpt2_export.h"
#include "gpt2_tokenizer.h"
#include "gpt2_vocab.h"
#include "support/test_support.h"

using cbtm::gpt2::Gpt2Tokenizer;
using cbtm::gpt2::Gpt2Vocab;
using json = nlohmann::json;

namespace {

/// GPT-2's vocab.json and merges.txt, unpacked into a temporary directory.
struct Gpt2Files {
  cbtm::test::TempDir dir{"gpt2"};
  std::string vocab = dir / "vocab.json", merges = dir / "merges.txt";
  Gpt2Files() {
    cbtm::test::write_text(vocab, cbtm::test::read_zst(cbtm::test::source_path("tests/data/gpt2/vocab.json.zst")));
    cbtm::test::write_text(merges, cbtm::test::read_zst(cbtm::test::source_path("tests/data/gpt2/merges.txt.zst")));
  }
};

json golden() {
  std::ifstream in(cbtm::test::source_path("tests/data/gpt2/golden.json"));
  REQUIRE(in.good());
  return json::parse(in);
}

Gpt2Tokenizer::Options opts(const std::string& path) {
  Gpt2Tokenizer::Options o;
  o.path = path;
  return o;
}

}  // namespace

TEST_CASE("gpt2 tokenizer: GPT-2's files encode as OpenAI's encoder.py does", "[tokenizer][gpt2]") {
  Gpt2Files f;
  const Gpt2Tokenizer tok(opts(f.dir.path()));
  CHECK(tok.vocab_size() == 50257);
  CHECK(tok.bos_id() == 50256);  // <|endoftext|>
  CHECK(tok.eos_id() == 50256);
  CHECK(tok.pad_id() == 50256);
  CHECK(tok.piece(50256).empty());
  const json g = golden();
  REQUIRE(g["cases"].size() >= 30);
  for (const auto& c : g["cases"]) {
    const std::string text = c["text"];
    INFO(json(text).dump());
    CHECK(tok.encode(text) == c["ids"].get<std::vector<int32_t>>());
    CHECK(tok.decode(tok.encode(text)) == text);
  }
  CHECK(tok.encode("Hello world") == std::vector<int32_t>{15496, 995});  // the well-known pair
  // Bytes that are not UTF-8 still round-trip (one byte token each where no merge applies).
  const std::string raw = "ok \xff\xfe\x80 end";
  CHECK(tok.decode(tok.encode(raw)) == raw);
}

TEST_CASE("gpt2 tokenizer: OPT's layout and tokenizer.json give the same tokens renumbered",
          "[tokenizer][gpt2]") {
  Gpt2Files f;
  const Gpt2Tokenizer gpt2(opts(f.dir.path()));
  const Gpt2Vocab v = cbtm::gpt2::read_gpt2_files(f.vocab, f.merges);
  // OPT-style: <s> <pad> </s> <unk> at 0..3, GPT-2's tokens after them in another order.
  std::vector<int32_t> perm(50256);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937(3));
  json opt_vocab = {{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}};
  for (int32_t i = 0; i < 50256; ++i) opt_vocab[v.tokens[i]] = 4 + perm[i];
  json merges = json::array();
  for (const auto& [a, b] : v.merges) merges.push_back(a + " " + b);

  cbtm::test::TempDir opt_dir("opt-tok"), hf_dir("hf-tok");
  cbtm::test::write_text(opt_dir / "vocab.json", opt_vocab.dump());
  cbtm::test::write_text(opt_dir / "merges.txt", cbtm::test::read_zst(cbtm::test::source_path("tests/data/gpt2/merges.txt.zst")));
  json tj = {{"version", "1.0"},
             {"added_tokens", json::array({{{"id", 0}, {"content", "<s>"}, {"special", true}},
                                           {{"id", 1}, {"content", "<pad>"}, {"special", true}},
                                           {{"id", 2}, {"content", "</s>"}, {"special", true}},
                                           {{"id", 3}, {"content", "<unk>"}, {"special", true}}})},
             {"model", {{"type", "BPE"}, {"vocab", opt_vocab}, {"merges", merges}}}};
  cbtm::test::write_text(hf_dir / "tokenizer.json", tj.dump());

  const Gpt2Tokenizer opt(opts(opt_dir.path())), hf(opts(hf_dir.path()));
  CHECK(opt.bos_id() == 2);  // </s>, as OPT puts before every document
  CHECK(opt.pad_id() == 1);
  CHECK(hf.bos_id() == 2);
  for (const auto& c : golden()["cases"]) {
    std::vector<int32_t> want = c["ids"];
    for (int32_t& id : want) id = 4 + perm[static_cast<size_t>(id)];
    CHECK(opt.encode(c["text"].get<std::string>()) == want);
    CHECK(hf.encode(c["text"].get<std::string>()) == want);
  }
  for (int32_t s = 0; s < 4; ++s) CHECK(opt.piece(s).empty());
  // merges as [a, b] pairs (newer tokenizers) read the same
  for (auto& m : tj["model"]["merges"]) {
    const std::string s = m;
    m = json::array({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  cbtm::test::write_text(hf_dir / "tokenizer.json", tj.dump());
  const Gpt2Tokenizer pairs(opts(hf_dir.path()));
  CHECK(pairs.encode("The quick brown fox") == opt.encode("The quick brown fox"));
}

TEST_CASE("gpt2 tokenizer: the artifact holds the whole vocabulary", "[tokenizer][gpt2]") {
  Gpt2Files f;
  cbtm::test::TempDir out("gpt2-art");
  const std::string path = out / "tok.safetensors";
  Gpt2Tokenizer::Options o = opts(f.dir.path());
  o.pad = "!";  // a non-default choice survives
  {
    const Gpt2Tokenizer tok(o);
    cbtm::TensorFileWriter w;
    tok.save(w, "tokenizer");
    w.write(path);
  }
  std::filesystem::remove_all(f.dir.path());  // the files are not needed any more
  Gpt2Vocab tiny;  // a placeholder vocabulary, replaced by load()
  tiny.source = "tiny";
  for (int b = 0; b < 256; ++b) {
    tiny.tokens.push_back(cbtm::bpe::gpt2_token_string(std::string(1, static_cast<char>(b))));
    tiny.present.push_back(true);
  }
  tiny.tokens.push_back("<|endoftext|>");
  tiny.present.push_back(true);
  Gpt2Tokenizer back(Gpt2Tokenizer::Options{"unused", "", "", ""}, tiny);
  back.load(cbtm::TensorFile::read(path), "tokenizer");
  CHECK(back.vocab_size() == 50257);
  CHECK(back.pad_id() == 0);
  CHECK(back.bos_id() == 50256);
  for (const auto& c : golden()["cases"])
    CHECK(back.encode(c["text"].get<std::string>()) == c["ids"].get<std::vector<int32_t>>());
}

TEST_CASE("gpt2 tokenizer: broken files fail naming the file and line", "[tokenizer][gpt2]") {
  cbtm::test::TempDir d("gpt2-bad");
  auto write = [&](const std::string& vocab, const std::string& merges) {
    cbtm::test::write_text(d / "vocab.json", vocab);
    cbtm::test::write_text(d / "merges.txt", merges);
  };
  json bytes = json::object();
  for (int b = 0; b < 256; ++b) bytes[cbtm::bpe::gpt2_token_string(std::string(1, static_cast<char>(b)))] = b;
  json ab = bytes;
  ab["ab"] = 256;
  ab["<|endoftext|>"] = 257;

  write("{not json", "#version: 0.2\n");
  CHECK_THROWS_WITH(Gpt2Tokenizer(opts(d.path())), ContainsText(d / "vocab.json") && ContainsText("not valid JSON"));
  write(ab.dump(), "#version: 0.2\na b\nabc\n");
  CHECK_THROWS_WITH(Gpt2Tokenizer(opts(d.path())), ContainsText((d / "merges.txt") + ":3") && ContainsText("two tokens"));
  write(ab.dump(), "#version: 0.2\na c\n");
  CHECK_THROWS_WITH(Gpt2Tokenizer(opts(d.path())), ContainsText("merge 1") && ContainsText("'ac'") && ContainsText("not in the vocabulary"));
  write(ab.dump(), "#version: 0.2\na b\nab zz\n");
  CHECK_THROWS_WITH(Gpt2Tokenizer(opts(d.path())), ContainsText("'zz'") && ContainsText("no byte or earlier merge"));
  json no_byte = ab;
  no_byte.erase("a");
  write(no_byte.dump(), "#version: 0.2\n");
  CHECK_THROWS_WITH(Gpt2Tokenizer(opts(d.path())), ContainsText("no token for byte 97"));
  write(ab.dump(), "#version: 0.2\na b\n");
  Gpt2Tokenizer::Options o = opts(d.path());
  o.bos = "<nope>";
  CHECK_THROWS_WITH(Gpt2Tokenizer(o), ContainsText("option bos") && ContainsText("<nope>"));
  const Gpt2Tokenizer ok(opts(d.path()));
  CHECK(ok.encode("abab") == std::vector<int32_t>{256, 256});
  CHECK_THROWS_WITH(ok.piece(9999), ContainsText("out of range"));
  CHECK_THROWS_WITH(Gpt2Tokenizer(opts(d / "missing")), ContainsText("does not exist"));
  std::filesystem::remove(d / "merges.txt");
  CHECK_THROWS_WITH(Gpt2Tokenizer(opts(d.path())), ContainsText("neither tokenizer.json nor vocab.json + merges.txt"));
}

TEST_CASE("gpt2 tokenizer: the plugin is created from YAML", "[tokenizer][gpt2]") {
  Gpt2Files f;
  cbtm::PluginHost& host = cbtm::test::plugins();
  cbtm::ConfigNode node;
  node.node = YAML::Load("{type: gpt2, path: '" + f.dir.path() + "'}");
  node.path = "tokenizer";
  auto tok = host.registry().create<cbtm::Tokenizer>(node);
  CHECK(tok->encode("Hello world") == std::vector<int32_t>{15496, 995});
  cbtm::ConfigNode bad;
  bad.node = YAML::Load("{type: gpt2}");
  bad.path = "tokenizer";
  CHECK_THROWS_WITH(host.registry().create<cbtm::Tokenizer>(bad), ContainsText("path") && ContainsText("required"));
}

TEST_CASE("export_hf: a trained bpe tokenizer's Hugging Face files load as a gpt2 tokenizer that encodes the same",
          "[tokenizer][gpt2][export]") {
  cbtm::test::TempDir t("export-hf");
  cbtm::bpe::BpeTokenizer::Options bo;
  bo.vocab_size = 400;
  cbtm::bpe::BpeTokenizer bpe(bo);
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i)
    texts.push_back("The quick brown fox " + std::to_string(i) + " jumps over the lazy dog; naïve café — ok?\n  ");
  bpe.train(texts);
  REQUIRE(bpe.vocab_size() > 300);
  REQUIRE(bpe.export_hf(t / "hf"));
  for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"})
    CHECK(std::filesystem::exists(t / ("hf/" + std::string(f))));
  const auto cfg = nlohmann::json::parse(cbtm::read_file(t / "hf/tokenizer_config.json"));
  CHECK(cfg["tokenizer_class"] == "GPT2Tokenizer");
  CHECK(cfg["bos_token"] == "</s>");
  CHECK(cfg["pad_token"] == "<pad>");

  cbtm::gpt2::Gpt2Tokenizer::Options go;
  go.path = t / "hf";
  cbtm::gpt2::Gpt2Tokenizer back(go);
  CHECK(back.vocab_size() == bpe.vocab_size());
  CHECK(back.bos_id() == bpe.bos_id());
  CHECK(back.pad_id() == bpe.pad_id());
  for (const std::string s : {"The quick brown fox 7 jumps", "naïve café — ok?", "  lazy\n\ndogs 123456", "unseen zxqj words"})
    CHECK(back.encode(s) == bpe.encode(s));
  // and out again: the gpt2 tokenizer writes the same vocabulary
  REQUIRE(back.export_hf(t / "again"));
  CHECK(cbtm::read_file(t / "again/vocab.json").size() > 0);
  cbtm::gpt2::Gpt2Tokenizer::Options go2;
  go2.path = t / "again";
  CHECK(cbtm::gpt2::Gpt2Tokenizer(go2).encode("The quick brown fox") == bpe.encode("The quick brown fox"));
}
