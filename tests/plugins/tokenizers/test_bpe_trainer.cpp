// BPE training against the naive reference in naive_bpe.h, plus the hand-checked classic
// example.
#include "support/catch.h"

#include <map>
#include <random>
#include <string>
#include <vector>

#include "bpe_model.h"
#include "bpe_trainer.h"
#include "naive_bpe.h"
#include "pretokenizer.h"
#include "devpile_sample.h"
#include "support/test_support.h"

using namespace cbtm::bpe;

namespace {

std::map<std::string, int64_t> naive_counts(const std::vector<std::string>& texts) {
  std::map<std::string, int64_t> m;
  for (const auto& t : texts)
    for (auto w : pretokenize(t)) ++m[std::string(w)];
  return m;
}

std::vector<WordCount> as_words(const std::map<std::string, int64_t>& m) {
  return {m.begin(), m.end()};
}

std::vector<naive::Pair> as_strings(const BpeModel& model) {
  std::vector<naive::Pair> out;
  for (const auto& [a, b] : model.merges()) out.emplace_back(model.piece(a), model.piece(b));
  return out;
}

std::vector<std::string> pieces_of(const BpeModel& model, std::string_view text) {
  std::vector<int32_t> ids;
  model.encode(text, ids);
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(model.piece(id));
  return out;
}

std::vector<std::string> naive_pieces(const std::vector<naive::Pair>& merges,
                                      const std::string& text) {
  std::vector<std::string> out;
  for (auto w : pretokenize(text))
    for (auto& p : naive::encode_word(std::string(w), merges)) out.push_back(p);
  return out;
}

/// Sentences over a small syllable inventory: many repeated pairs and many ties.
std::vector<std::string> syllable_corpus(int n, uint32_t seed) {
  const char* syl[] = {"ka", "to", "ri", "ne", "so", "la", "mi", "da", "ke", "ro", "tan", "les"};
  const char* punct[] = {".", ",", "!", " -", "'s", "'t"};
  std::mt19937 rng(seed);
  std::vector<std::string> texts;
  for (int i = 0; i < n; ++i) {
    std::string t;
    const int words = 3 + static_cast<int>(rng() % 12);
    for (int w = 0; w < words; ++w) {
      if (w) t += (rng() % 9 == 0) ? "  " : " ";
      const int k = 1 + static_cast<int>(rng() % 3);
      for (int j = 0; j < k; ++j) t += syl[rng() % 12];
      if (rng() % 5 == 0) t += punct[rng() % 6];
      if (rng() % 11 == 0) t += std::to_string(rng() % 1000);
    }
    if (rng() % 3 == 0) t += "\n\n";
    texts.push_back(t);
  }
  return texts;
}

/// Words over {a, b, c}: long runs, overlapping pairs such as (a, a), and many ties.
std::vector<std::string> abc_corpus(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> texts;
  for (int i = 0; i < n; ++i) {
    std::string t;
    const int words = 1 + static_cast<int>(rng() % 8);
    for (int w = 0; w < words; ++w) {
      t += ' ';
      const int len = 1 + static_cast<int>(rng() % 9);
      for (int j = 0; j < len; ++j) t += "abc"[rng() % 3];
    }
    texts.push_back(t);
  }
  return texts;
}

void check_against_naive(const std::vector<std::string>& texts, int vocab, int64_t min_freq,
                         const std::vector<std::string>& extra_texts) {
  const auto counts = naive_counts(texts);
  const auto ref = naive::learn(counts, vocab - kFirstMergeId, min_freq);
  const BpeModel model(learn_merges(as_words(counts), vocab, min_freq));
  REQUIRE(as_strings(model) == ref);
  for (const auto& t : texts) REQUIRE(pieces_of(model, t) == naive_pieces(ref, t));
  for (const auto& t : extra_texts) REQUIRE(pieces_of(model, t) == naive_pieces(ref, t));
}

}  // namespace

TEST_CASE("count_pretokens equals a serial count - and honours max_train_bytes", "[bpe][train]") {
  const auto texts = syllable_corpus(400, 1);
  const auto expect = as_words(naive_counts(texts));
  CHECK(count_pretokens(texts, 1 << 30, 1) == expect);
  CHECK(count_pretokens(texts, 1 << 30, 4) == expect);
  // Texts are taken while fewer than max_bytes bytes have been taken.
  const int64_t first_two = static_cast<int64_t>(texts[0].size() + texts[1].size());
  const std::vector<std::string> head(texts.begin(), texts.begin() + 2);
  CHECK(count_pretokens(texts, first_two, 3) == as_words(naive_counts(head)));
  CHECK(count_pretokens(texts, static_cast<int64_t>(texts[0].size()) + 1, 2) ==
        as_words(naive_counts(head)));
  CHECK(count_pretokens({}, 100, 2).empty());
}

TEST_CASE("learn_merges equals naive BPE on a syllable corpus", "[bpe][train]") {
  const auto texts = syllable_corpus(300, 2);
  check_against_naive(texts, kFirstMergeId + 200, 2, syllable_corpus(50, 99));
  check_against_naive(texts, kFirstMergeId + 400, 1, syllable_corpus(50, 98));
}

TEST_CASE("learn_merges equals naive BPE on a three-letter alphabet", "[bpe][train]") {
  check_against_naive(abc_corpus(300, 3), kFirstMergeId + 150, 2, abc_corpus(40, 4));
  check_against_naive(abc_corpus(100, 6), kFirstMergeId + 1000, 1, abc_corpus(40, 7));
}

TEST_CASE("learn_merges equals naive BPE on devpile text", "[bpe][train][devpile]") {
  if (!cbtm::test::have_devpile()) {
    WARN("devpile absent: skipped");
    return;
  }
  const auto texts = tok_test::spread_texts(60);
  check_against_naive(texts, kFirstMergeId + 120, 2, {"unseen words: tokenization, 2024!"});
}

TEST_CASE("classic example: low lower newest widest", "[bpe][train]") {
  const std::string text =
      "low low low low low lower lower newest newest newest newest newest newest "
      "widest widest widest";
  const auto words = count_pretokens({text}, 1 << 20, 1);
  // "low" once, " low" 4x, " lower" 2x, " newest" 6x, " widest" 3x.
  REQUIRE(words.size() == 5);
  const BpeModel model(learn_merges(words, 1000, 2));
  // (e,s) and (s,t) both occur 9 times: the smaller pair wins; then (es,t) = 9; then (l,o)
  // and (o,w) tie at 7; then the 6s, space-led pairs first, and so on down to count 2.
  const std::vector<naive::Pair> expect = {
      {"e", "s"},      {"es", "t"},    {"l", "o"},     {"lo", "w"},   {" ", "low"},
      {" ", "n"},      {" n", "e"},    {" ne", "w"},   {" new", "est"}, {" ", "w"},
      {" w", "i"},     {" wi", "d"},   {" wid", "est"}, {" low", "e"}, {" lowe", "r"}};
  CHECK(as_strings(model) == expect);
  CHECK(model.vocab_size() == kFirstMergeId + 15);
  CHECK(pieces_of(model, " lowest") == std::vector<std::string>{" low", "est"});
  CHECK(pieces_of(model, "newer") == std::vector<std::string>{"n", "e", "w", "e", "r"});
  // min_frequency 7 keeps only the merges whose pair occurred at least 7 times.
  CHECK(BpeModel(learn_merges(words, 1000, 7)).merges().size() == 4);
  // vocab_size caps the number of merges.
  CHECK(BpeModel(learn_merges(words, kFirstMergeId + 3, 1)).merges().size() == 3);
  CHECK(learn_merges(words, kFirstMergeId, 1).empty());
}

TEST_CASE("encode_word on long words matches merging in order", "[bpe][train]") {
  const auto texts = abc_corpus(300, 5);
  const auto counts = naive_counts(texts);
  const BpeModel model(learn_merges(as_words(counts), kFirstMergeId + 100, 2));
  const auto merges = as_strings(model);
  std::mt19937 rng(11);
  for (int t = 0; t < 20; ++t) {
    std::string w;
    const int len = 1 + static_cast<int>(rng() % 3000);
    for (int i = 0; i < len; ++i) w += "abc"[rng() % 3];
    std::vector<int32_t> ids;
    model.encode_word(w, ids);
    std::vector<std::string> got;
    for (int32_t id : ids) got.push_back(model.piece(id));
    REQUIRE(got == naive::encode_word(w, merges));
  }
}
