#pragma once
/// \file fewshot_toys.h
/// Toys for few-shot tests: a byte tokenizer, and a model that knows (or inverts) the answer
/// of the toy task "<letter>:" -> "X" for x, "Y" for y.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "support/catch.h"
#include <nlohmann/json.hpp>

#include "cbtm/error.h"
#include "cbtm/language_model.h"
#include "cbtm/tokenizer.h"

namespace cbtm::test {

/// Token id = byte + 3 (0..2 reserved; 2 is </s>).
class ByteTokenizer : public Tokenizer {
 public:
  void train(const std::vector<std::string>&) override {}
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(static_cast<int32_t>(c) + 3);
    return ids;
  }
  std::string piece(int32_t id) const override { return id < 3 ? "" : std::string(1, static_cast<char>(id - 3)); }
  int32_t vocab_size() const override { return 259; }
  void save(TensorFileWriter&, const std::string&) const override {}
  void load(const TensorFile&, const std::string&) override {}
};

/// p(next = answer) = 0.9 after "<letter>:" where answer is upper(letter) ('X' for 'x') --
/// or, when `invert`, the other one; every other token gets a flat log-probability.
class ToyTaskLM : public LanguageModel {
 public:
  explicit ToyTaskLM(bool invert, bool next_token = false) : invert_(invert), next_(next_token) {}
  std::vector<std::vector<float>> score(const std::vector<std::vector<int32_t>>& seqs) override {
    ++score_calls;
    std::vector<std::vector<float>> out;
    for (const auto& s : seqs) {
      std::vector<float> lp;
      for (size_t t = 1; t < s.size(); ++t) lp.push_back(logp(s, t, s[t]));
      out.push_back(lp);
    }
    return out;
  }
  std::vector<std::vector<float>> next_token_log_probs(const std::vector<std::vector<int32_t>>& seqs) override {
    if (!next_) return LanguageModel::next_token_log_probs(seqs);
    std::vector<std::vector<float>> out;
    for (auto s : seqs) {
      std::vector<float> v(259);
      s.push_back(0);
      for (int32_t id = 0; id < 259; ++id) v[id] = logp(s, s.size() - 1, id);
      out.push_back(v);
    }
    return out;
  }
  int64_t max_length() const override { return 32; }
  int64_t parameters() const override { return 0; }
  int score_calls = 0;

 private:
  bool invert_, next_;
  // log p(id at position t | s[<t]): 0.9 for the (inverted) answer after "<x|y>:", else ~flat
  float logp(const std::vector<int32_t>& s, size_t t, int32_t id) const {
    if (t >= 2 && s[t - 1] == ':' + 3 && (s[t - 2] == 'x' + 3 || s[t - 2] == 'y' + 3) && (id == 'X' + 3 || id == 'Y' + 3)) {
      const bool x = s[t - 2] == 'x' + 3;
      const int32_t answer = (x != invert_) ? 'X' + 3 : 'Y' + 3;
      return std::log(id == answer ? 0.9f : 0.1f);
    }
    return std::log(1.f / 259.f);
  }
};

/// The toy task's data: 10 training and 20 test examples, texts "x" / "y" alternating (gold
/// x / y), as JSONL.
inline std::string toy_task_jsonl() {
  std::string s;
  for (int i = 0; i < 30; ++i)
    s += std::string(R"({"text": ")") + (i % 2 ? "y" : "x") + R"(", "label": ")" + (i % 2 ? "y" : "x") +
         R"(", "split": ")" + (i < 10 ? "train" : "test") + "\"}\n";
  return s;
}

/// The accuracy of model `name` in an evaluate_fewshot_task() result (fails the test if absent).
inline double fewshot_accuracy(const nlohmann::json& r, const std::string& name) {
  for (const auto& m : r["models"])
    if (m["name"] == name) return m["accuracy"].get<double>();
  FAIL("no model " << name);
  return -1;
}

}  // namespace cbtm::test
