// Router "performance": few-shot performance routing (the paper's §A.7). The weights of a
// task are a softmax over each expert's accuracy, then top_k and renormalisation:
//   estimate: validation      fixed; accuracy on `probes` training examples not among the
//                             demonstrations, each prompted with all the demonstrations
//   estimate: demonstrations  fixed; accuracy on `probes` random permutations of the
//                             demonstrations, the last one labelled from the others
//   estimate: updating        starts uniform; after each test example (in order)
//                             p <- (1 - ema) p + ema softmax(correct / temperature)
//                             and the next example uses p (causal: an example never sees its own label)
// w = top_k(softmax(accuracy / temperature)). Accuracies lie in [0, 1], so at temperature 1
// the softmax is mild (the paper's choice); top_k makes it sparse. Experts tied with the k-th
// largest weight are all kept (a few probes make equal accuracies common, and nothing tells
// tied experts apart: keeping the lowest index would favour expert 0), so top_k is a minimum.
// Only for few-shot tasks: route() (perplexity evaluation, serving) is an error.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "cbtm/error.h"
#include "cbtm/matrix.h"
#include "cbtm/plugin.h"
#include "cbtm/router.h"

namespace cbtm {

class PerformanceRouter : public Router {
 public:
  struct Options {
    std::string estimate = "validation";
    int probes = 8;
    double temperature = 1.0;
    double ema = 0.3;
    int top_k = 0;
    template <class V> void visit(V& v) {
      v("estimate", estimate, "validation | demonstrations | updating: how the accuracies are estimated (docs/fewshot.md)");
      v("probes", probes, "validation examples or demonstration permutations scored per task and seed");
      v("temperature", temperature, "softmax temperature over the accuracies (which lie in [0, 1], so 1 is a mild preference)");
      v("ema", ema, "estimate updating: weight of each test example's softmax in the moving average");
      v("top_k", top_k, "keep the k largest weights and any tied with the k-th, renormalised (0: all)");
    }
    void validate() const {
      require(estimate == "validation" || estimate == "demonstrations" || estimate == "updating", "estimate",
              "must be validation, demonstrations or updating (got '" + estimate + "')");
      require(estimate == "updating" || probes >= 1, "probes", "must be >= 1");
      require(temperature > 0, "temperature", "must be > 0");
      require(ema > 0 && ema <= 1, "ema", "must be in (0, 1]");
      require(top_k >= 0, "top_k", "must be >= 0 (0 keeps every expert)");
    }
  };
  explicit PerformanceRouter(const Options& o) : opt_(o) {}

  void bind(const RoutingContext& ctx) override {
    if (ctx.experts < 1) throw Error("router performance: no experts");
    k_ = ctx.experts;
    p_.assign(static_cast<size_t>(k_), 1.0 / k_);
  }

  Matrix route(const Document&, const std::vector<std::string>&) const override {
    throw Error("router performance weighs experts by their accuracy on a few-shot task; use it in a few-shot "
                "suite (cbtm fewshot), not for perplexity or serving");
  }

  FewShotRouting fewshot_routing() const override {
    FewShotRouting r;
    r.by_accuracy = true;
    if (opt_.estimate != "updating") {
      r.probes = opt_.estimate;
      r.probe_count = opt_.probes;
    }
    return r;
  }

  void fewshot_begin(const std::vector<std::vector<float>>& correct) override {
    p_.assign(static_cast<size_t>(k_), 1.0 / k_);
    if (opt_.estimate == "updating") return;
    if (correct.empty()) throw Error("router performance: estimate " + opt_.estimate + " needs probe results");
    std::vector<double> acc(static_cast<size_t>(k_), 0.0);
    for (const auto& c : correct) {
      check(c, "a probe");
      for (int32_t j = 0; j < k_; ++j) acc[j] += c[j] / static_cast<double>(correct.size());
    }
    p_ = softmax(acc);
  }

  std::vector<float> fewshot_weights() const override {
    std::vector<double> w = p_;
    if (opt_.top_k > 0 && opt_.top_k < k_) {
      std::vector<double> sorted = p_;
      std::nth_element(sorted.begin(), sorted.begin() + (opt_.top_k - 1), sorted.end(), std::greater<>());
      const double cut = sorted[static_cast<size_t>(opt_.top_k - 1)];
      for (auto& v : w)
        if (v < cut) v = 0;  // ties with the k-th largest stay
    }
    double z = 0;
    for (double v : w) z += v;
    std::vector<float> out(w.size());
    for (size_t j = 0; j < w.size(); ++j) out[j] = static_cast<float>(w[j] / z);
    return out;
  }

  void fewshot_observe(const std::vector<float>& correct) override {
    if (opt_.estimate != "updating") return;
    check(correct, "a test example");
    std::vector<double> c(correct.begin(), correct.end());
    const auto s = softmax(c);
    for (int32_t j = 0; j < k_; ++j) p_[j] = (1 - opt_.ema) * p_[j] + opt_.ema * s[j];
  }

 private:
  Options opt_;
  int32_t k_ = 1;
  std::vector<double> p_;

  void check(const std::vector<float>& c, const std::string& what) const {
    if (static_cast<int32_t>(c.size()) != k_)
      throw Error("router performance: " + what + " has results for " + std::to_string(c.size()) + " experts, not " +
                  std::to_string(k_));
  }
  std::vector<double> softmax(const std::vector<double>& a) const {
    const double m = *std::max_element(a.begin(), a.end());
    std::vector<double> e(a.size());
    double z = 0;
    for (size_t j = 0; j < a.size(); ++j) z += e[j] = std::exp((a[j] - m) / opt_.temperature);
    for (auto& v : e) v /= z;
    return e;
  }
};

}  // namespace cbtm

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::PerformanceRouter>(
      "performance", "few-shot performance routing: softmax of each expert's accuracy on probes or past test examples"));
}
