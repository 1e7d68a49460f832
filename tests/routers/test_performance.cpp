// The "performance" router (few-shot performance routing, the paper's §A.7): weights by
// hand, and on a toy task with a right and a wrong expert.
#include "support/catch.h"

#include <cmath>

#include "cbtm/fewshot/evaluate.h"
#include "cbtm/router.h"
#include "support/fewshot_toys.h"
#include "support/test_support.h"

namespace {

std::unique_ptr<cbtm::Router> make(const std::string& yaml, int experts = 2) {
  cbtm::ConfigNode n;
  n.node = YAML::Load(yaml);
  n.path = "ensembles.perf";
  auto r = cbtm::test::plugins().registry().create<cbtm::Router>(n);
  cbtm::RoutingContext ctx;
  ctx.experts = experts;
  r->bind(ctx);
  return r;
}

using cbtm::test::fewshot_accuracy;
double accuracy(const nlohmann::json& r, const std::string& name) { return fewshot_accuracy(r, name); }

}  // namespace

TEST_CASE("performance router: softmax of the probe accuracies, top-k, and the updating EMA by hand") {
  auto r = make("{type: performance, estimate: validation, probes: 3, temperature: 0.5}", 3);
  const auto how = r->fewshot_routing();
  CHECK(how.by_accuracy);
  CHECK(how.probes == "validation");
  CHECK(how.probe_count == 3);
  // accuracies (1/3, 1, 0) -> softmax(acc / 0.5)
  r->fewshot_begin({{0, 1, 0}, {1, 1, 0}, {0, 1, 0}});
  const double e0 = std::exp(2.0 / 3), e1 = std::exp(2.0), e2 = 1, z = e0 + e1 + e2;
  auto w = r->fewshot_weights();
  REQUIRE(w.size() == 3);
  CHECK(w[0] == Approx(e0 / z).epsilon(1e-5));
  CHECK(w[1] == Approx(e1 / z).epsilon(1e-5));
  CHECK(w[2] == Approx(e2 / z).epsilon(1e-5));
  r->fewshot_observe({0, 0, 1});  // fixed estimates ignore test examples
  CHECK(r->fewshot_weights()[1] == Approx(e1 / z).epsilon(1e-5));

  auto top = make("{type: performance, estimate: demonstrations, probes: 2, top_k: 2}", 3);
  CHECK(top->fewshot_routing().probes == "demonstrations");
  top->fewshot_begin({{1, 0, 1}, {1, 0, 0}});  // accuracies (1, 0, 1/2)
  const double a = std::exp(1.0), c = std::exp(0.5);
  w = top->fewshot_weights();
  CHECK(w[0] == Approx(a / (a + c)).epsilon(1e-5));
  CHECK(w[1] == 0.f);
  CHECK(w[2] == Approx(c / (a + c)).epsilon(1e-5));

  // experts tied with the k-th largest weight all stay (not the lowest index alone)
  auto tied = make("{type: performance, estimate: validation, probes: 2, top_k: 1}", 3);
  tied->fewshot_begin({{1, 0, 1}, {0, 0, 1}});  // accuracies (1/2, 0, 1): no tie at the top
  w = tied->fewshot_weights();
  CHECK(w[0] == 0.f);
  CHECK(w[1] == 0.f);
  CHECK(w[2] == 1.f);
  tied->fewshot_begin({{1, 0, 1}, {0, 0, 0}});  // accuracies (1/2, 0, 1/2): experts 0 and 2 tie
  w = tied->fewshot_weights();
  CHECK(w[0] == Approx(0.5));
  CHECK(w[1] == 0.f);
  CHECK(w[2] == Approx(0.5));
  auto tied_up = make("{type: performance, estimate: updating, top_k: 1}", 3);
  tied_up->fewshot_begin({});
  CHECK(tied_up->fewshot_weights() == std::vector<float>(3, 1.f / 3));  // nothing known yet: all tie
  tied_up->fewshot_observe({0, 1, 1});
  w = tied_up->fewshot_weights();
  CHECK(w[0] == 0.f);
  CHECK(w[1] == Approx(0.5));

  auto up = make("{type: performance, estimate: updating, ema: 0.25}");
  CHECK(up->fewshot_routing().probes.empty());
  up->fewshot_begin({});
  CHECK(up->fewshot_weights()[0] == Approx(0.5));
  up->fewshot_observe({0, 1});  // p = 0.75 (1/2, 1/2) + 0.25 softmax(0, 1)
  const double s1 = std::exp(1.0) / (1 + std::exp(1.0));
  CHECK(up->fewshot_weights()[1] == Approx(0.375 + 0.25 * s1).epsilon(1e-5));
  up->fewshot_begin({});  // a new task starts uniform again
  CHECK(up->fewshot_weights()[1] == Approx(0.5));
}

TEST_CASE("performance router: on a toy task each estimate finds the right expert") {
  cbtm::test::TempDir t("perf");
  cbtm::test::write_text(t / "toy.jsonl", cbtm::test::toy_task_jsonl());
  cbtm::test::write_text(t / "suite.yaml", "demonstrations: 4\nseeds: [1, 2]\ntasks:\n  - name: toy\n    data: toy.jsonl\n"
                                          "    template: \"{text}:\"\n    separator: \"\\n\"\n    labels: {x: X, y: Y}\n");
  const auto s = cbtm::load_fewshot_suite(t / "suite.yaml");
  cbtm::test::ByteTokenizer tok;
  cbtm::test::ToyTaskLM right(false), wrong(true);
  auto val = make("{type: performance, estimate: validation, probes: 4, top_k: 1}");
  auto val_all = make("{type: performance, estimate: validation, probes: 4}");
  auto demos = make("{type: performance, estimate: demonstrations, probes: 4, top_k: 1}");
  auto upd = make("{type: performance, estimate: updating, ema: 0.3, top_k: 1}");
  cbtm::FewShotModels m;
  m.tokenizer = &tok;
  m.experts = {&wrong, &right};
  m.ensembles = {{"val", val.get()}, {"val-all", val_all.get()}, {"demos", demos.get()}, {"upd", upd.get()}};
  const auto r = cbtm::evaluate_fewshot_task(s.tasks[0], s, m);
  CHECK(accuracy(r, "c-btm val") == 1.0);
  CHECK(accuracy(r, "c-btm val-all") == 1.0);  // weights (0.27, 0.73): the mixture still favours the right answer
  CHECK(accuracy(r, "c-btm demos") == 1.0);
  // updating starts uniform: at top-1 both experts tie and both stay (the mixture, as with
  // val-all, favours the right answer; keeping expert 0 alone -- the wrong one -- missed the
  // first example of each seed: 19 of 20), then moves to expert 1
  CHECK(accuracy(r, "c-btm upd") == 1.0);
  for (const auto& model : r["models"])  // 2 experts for the first example of each seed, then 1
    if (model["name"] == "c-btm upd") CHECK(model["mean_active_experts"].get<double>() == Approx(21.0 / 20));
}

TEST_CASE("performance router: perplexity routing, bad options and mismatched results fail clearly") {
  auto r = make("{type: performance}");
  CHECK_THROWS_WITH(r->route({}, {""}), ContainsText("cbtm fewshot"));
  CHECK_THROWS_WITH(r->fewshot_begin({{1, 0, 1}}), ContainsText("results for 3 experts, not 2"));
  CHECK_THROWS_WITH(r->fewshot_begin({}), ContainsText("needs probe results"));
  CHECK_THROWS_WITH(make("{type: performance, estimate: oracle}"), ContainsText("estimate"));
  CHECK_THROWS_WITH(make("{type: performance, ema: 0}"), ContainsText("ema"));
  CHECK_THROWS_WITH(make("{type: performance, temperature: -1}"), ContainsText("temperature"));
}
