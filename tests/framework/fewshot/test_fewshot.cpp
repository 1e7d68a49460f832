// Few-shot classification: suite parsing and its errors, prompts, and accuracy on a toy task
// whose answer is known (fewshot/task.h, fewshot/evaluate.h).
#include "support/catch.h"

#include <algorithm>
#include <set>

#include "cbtm/error.h"
#include "cbtm/fewshot/evaluate.h"
#include "cbtm/fewshot/task.h"
#include "cbtm/matrix.h"
#include "cbtm/router.h"
#include "support/fewshot_toys.h"
#include "support/test_support.h"

namespace {

// The toy task plus one example of a label the task does not have.
std::string toy_data() {
  return cbtm::test::toy_task_jsonl() + R"({"text": "z", "label": "z", "split": "test"})" "\n";
}

std::string suite_yaml(const std::string& extra = "", const std::string& task_extra = "") {
  return "demonstrations: 4\nseeds: [1, 2]\n" + extra +
         "tasks:\n  - name: toy\n    data: toy.jsonl\n    template: \"{text}:\"\n    separator: \"\\n\"\n"
         "    labels: {x: \"X\", y: \"Y\"}\n" + task_extra;
}

// Weight 1 on one expert at every position.
class OneExpert : public cbtm::Router {
 public:
  OneExpert(int k, int e) : k_(k), e_(e) {}
  void bind(const cbtm::RoutingContext&) override {}
  cbtm::Matrix route(const cbtm::Document&, const std::vector<std::string>& pieces) const override {
    cbtm::Matrix w(static_cast<int64_t>(pieces.size()), k_, 0.f);
    for (int64_t t = 0; t < w.rows; ++t) w.at(t, e_) = 1.f;
    return w;
  }

 private:
  int k_, e_;
};

using cbtm::test::fewshot_accuracy;
double accuracy(const nlohmann::json& r, const std::string& name) { return fewshot_accuracy(r, name); }

}  // namespace

TEST_CASE("fewshot: a suite is parsed, its data split, unknown labels ignored, prompts formatted") {
  cbtm::test::TempDir t("fewshot");
  cbtm::test::write_text(t / "toy.jsonl", toy_data());
  cbtm::test::write_text(t / "suite.yaml", suite_yaml("ensembles:\n  a: {type: uniform}\n"));
  const auto s = cbtm::load_fewshot_suite(t / "suite.yaml", {"test_examples=5"});
  CHECK(s.demonstrations == 4);
  CHECK(s.seeds == std::vector<uint64_t>{1, 2});
  CHECK(s.test_examples == 5);
  REQUIRE(s.ensembles.size() == 1);
  CHECK(s.ensembles[0].first == "a");
  CHECK(s.ensembles[0].second.path == "ensembles.a");
  REQUIRE(s.tasks.size() == 1);
  const auto& task = s.tasks[0];
  CHECK(task.labels == std::vector<std::string>{"x", "y"});
  CHECK(task.train.size() == 10);
  CHECK(task.test.size() == 20);
  CHECK(task.ignored == 1);
  CHECK(cbtm::fewshot_prompt(task, {task.train[0], task.train[1]}, "y") == "x:X\ny:Y\ny:");
  // demonstrations: distinct, seeded, the rest left for validation
  const auto [d1, rest1] = cbtm::draw_demonstrations(task, 4, 1);
  const auto [d1b, rest1b] = cbtm::draw_demonstrations(task, 4, 1);
  const auto [d2, rest2] = cbtm::draw_demonstrations(task, 4, 2);
  CHECK(rest1.size() == 6);
  CHECK(rest1 == rest1b);
  CHECK(rest1 != rest2);
  CHECK(cbtm::cut_utf8("h\xc3\xa9llo", 2) == "h");  // never half a character
  CHECK(cbtm::cut_utf8("h\xc3\xa9llo", 3) == "h\xc3\xa9");
}

TEST_CASE("fewshot: bad suites and task data fail naming the file, line and key") {
  cbtm::test::TempDir t("fewshot");
  cbtm::test::write_text(t / "toy.jsonl", toy_data());
  auto fails = [&](const std::string& yaml, const std::string& msg) {
    INFO(msg);
    cbtm::test::write_text(t / "bad.yaml", yaml);
    CHECK_THROWS_WITH(cbtm::load_fewshot_suite(t / "bad.yaml"), ContainsText(msg));
  };
  fails(suite_yaml("demonstration: 3\n"), "unknown key 'demonstration'");
  fails(suite_yaml("", "    verbaliser: X\n"), "unknown key 'tasks.0.verbaliser'");
  fails("tasks:\n  - name: toy\n    data: toy.jsonl\n    template: \"no slot\"\n    labels: {x: X, y: Y}\n", "tasks.0.template: must contain {text}");
  fails("tasks:\n  - name: toy\n    data: toy.jsonl\n    labels: {x: X}\n", "a map of at least two labels");
  fails("tasks:\n  - name: toy\n    data: toy.jsonl\n    labels: {x: X, y: X}\n", "share a verbaliser");
  fails("demonstrations: 11\n" + suite_yaml().substr(suite_yaml().find("tasks:")), "has 10 training examples; 11 demonstrations");
  fails("seeds: []\n" + suite_yaml().substr(suite_yaml().find("tasks:")), "seeds: give at least one seed");
  fails("tasks: []\n", "a list of at least one task");
  fails("tasks:\n  - name: toy\n    data: missing.jsonl\n    labels: {x: X, y: Y}\n", "missing.jsonl");
  cbtm::test::write_text(t / "badsplit.jsonl", R"({"text": "x", "label": "x", "split": "dev"})" "\n");
  fails("tasks:\n  - name: toy\n    data: badsplit.jsonl\n    labels: {x: X, y: Y}\n", "badsplit.jsonl: document 1");
  fails("tasks: [\n", "bad.yaml:");
  CHECK_THROWS_WITH(cbtm::load_fewshot_suite(t / "suite.yaml"), ContainsText("cannot read"));
  cbtm::test::write_text(t / "suite.yaml", suite_yaml());
  CHECK_THROWS_WITH(cbtm::load_fewshot_suite(t / "suite.yaml", {"novalue"}), ContainsText("expected KEY=VALUE"));
}

TEST_CASE("fewshot: accuracy on a toy task whose answer is known, for models, experts and routed ensembles") {
  cbtm::test::TempDir t("fewshot");
  cbtm::test::write_text(t / "toy.jsonl", toy_data());
  cbtm::test::write_text(t / "suite.yaml", suite_yaml());
  const auto s = cbtm::load_fewshot_suite(t / "suite.yaml");
  cbtm::test::ByteTokenizer tok;
  cbtm::test::ToyTaskLM right(false), wrong(true), right_next(false, true);
  OneExpert to_right(2, 1), to_wrong(2, 0);
  cbtm::FewShotModels m;
  m.tokenizer = &tok;
  m.experts = {&wrong, &right};
  m.singles = {{"dense", &right_next}};
  m.ensembles = {{"to-right", &to_right}, {"to-wrong", &to_wrong}};
  const auto r = cbtm::evaluate_fewshot_task(s.tasks[0], s, m);
  CHECK(r["test_examples"] == 20);
  CHECK(r["chance"].get<double>() == Approx(0.5));
  CHECK(accuracy(r, "expert 0 alone") == 0.0);
  CHECK(accuracy(r, "expert 1 alone") == 1.0);
  CHECK(accuracy(r, "dense") == 1.0);  // scored through next_token_log_probs: the same answers
  CHECK(right_next.score_calls == 0);
  CHECK(accuracy(r, "c-btm to-right") == 1.0);
  CHECK(accuracy(r, "c-btm to-wrong") == 0.0);
  for (const auto& x : r["models"]) {
    CHECK(x["per_seed"].size() == 2);
    if (x["role"] == "ensemble") CHECK(x["mean_active_experts"].get<double>() == 1.0);
  }
  CHECK(r["truncated_prompt_fraction"].get<double>() == 0.0);

  SECTION("equal weights on a right and a wrong expert tie: the first label wins, so accuracy = the share of gold x") {
    struct Half : OneExpert {
      Half() : OneExpert(2, 0) {}
      cbtm::Matrix route(const cbtm::Document&, const std::vector<std::string>& p) const override {
        return cbtm::Matrix(static_cast<int64_t>(p.size()), 2, 0.5f);
      }
    } half;
    m.ensembles = {{"half", &half}};
    const auto h = cbtm::evaluate_fewshot_task(s.tasks[0], s, m);
    CHECK(accuracy(h, "c-btm half") == 0.5);
  }
  SECTION("prompts longer than the model are cut from the left, keeping the example") {
    cbtm::test::write_text(t / "long.yaml", "demonstrations: 10\nseeds: [3]\n" + suite_yaml().substr(suite_yaml().find("tasks:")));
    const auto l = cbtm::load_fewshot_suite(t / "long.yaml");
    const auto x = cbtm::evaluate_fewshot_task(l.tasks[0], l, m);
    CHECK(x["truncated_prompt_fraction"].get<double>() == 1.0);  // 1 + 10 x 4 + 2 + 1 > 32 tokens
    CHECK(accuracy(x, "expert 1 alone") == 1.0);
  }
  SECTION("a router of the wrong shape fails clearly") {
    OneExpert three(3, 0);
    m.ensembles = {{"three", &three}};
    CHECK_THROWS_WITH(cbtm::evaluate_fewshot_task(s.tasks[0], s, m), ContainsText("ensemble three: the router returned"));
  }
}
