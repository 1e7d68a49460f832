// Balanced k-means on real documents (devpile; skipped when absent), embedded here with a
// simple hashed bag of words so that the test depends on no embedder plugin.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "support/catch.h"

#include "blobs.h"
#include "kmeans_core/auction.h"
#include "kmeans_core/distances.h"
#include "kmeans_core/lloyd.h"
#include "kmeans_core/minibatch.h"
#include "support/test_support.h"

namespace {
// Lower-cased alphanumeric words hashed (FNV-1a) into `dim` signed buckets, L2-normalised.
cbtm::Matrix hashed_bow(const std::vector<cbtm::Document>& docs, int64_t dim) {
  cbtm::Matrix x(static_cast<int64_t>(docs.size()), dim);
  for (size_t i = 0; i < docs.size(); ++i) {
    const std::string& t = docs[i].text;
    size_t p = 0;
    while (p < t.size()) {
      while (p < t.size() && !std::isalnum(static_cast<unsigned char>(t[p]))) ++p;
      uint64_t h = 0xcbf29ce484222325ULL;
      size_t len = 0;
      while (p < t.size() && std::isalnum(static_cast<unsigned char>(t[p]))) {
        h = (h ^ static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(t[p])))) *
            0x100000001b3ULL;
        ++p;
        ++len;
      }
      if (len < 2) continue;
      x.at(i, static_cast<int64_t>(h % dim)) += (h >> 63) ? 1.f : -1.f;
    }
    double s = 0;
    for (int64_t d = 0; d < dim; ++d) s += double(x.at(i, d)) * x.at(i, d);
    if (s > 0)
      for (int64_t d = 0; d < dim; ++d) x.at(i, d) = float(x.at(i, d) / std::sqrt(s));
  }
  return x;
}
}  // namespace

TEST_CASE("clusterer devpile: balanced k-means gives equal clusters - objective decreases",
          "[lloyd][devpile]") {
  if (!cbtm::test::have_devpile()) {
    WARN("devpile absent: skipped");
    return;
  }
  // 500 documents from each of six regions of the file (it is sorted by domain).
  std::vector<cbtm::Document> docs;
  for (int64_t skip : {0, 34200, 41000, 60000, 200000, 310000})
    for (auto& d : cbtm::test::devpile_docs(500, skip)) docs.push_back(std::move(d));
  REQUIRE(docs.size() == 3000);
  std::map<std::string, int32_t> domain_id;
  std::vector<int32_t> domain;
  for (const auto& d : docs) {
    auto it = domain_id.emplace(d.field("domain"), int32_t(domain_id.size())).first;
    domain.push_back(it->second);
  }
  const cbtm::Matrix x = hashed_bow(docs, 64);

  cbtm::kmeans::LloydOptions o;
  o.k = 8;
  o.threads = 2;
  o.max_iters = 20;
  o.tol = 1e-4;
  o.seed = 1;
  const cbtm::kmeans::LloydResult bal = cbtm::kmeans::lloyd(x, o);
  for (const auto& it : bal.history) {
    CHECK(it.min_size == 375);
    CHECK(it.max_size == 375);
  }
  REQUIRE(bal.history.size() >= 3);
  for (size_t t = 1; t < bal.history.size(); ++t)
    CHECK(bal.history[t].objective <= bal.history[t - 1].objective + 1e-3);
  CHECK(bal.history.back().objective < 0.9 * bal.history.front().objective);

  o.balanced = false;
  const cbtm::kmeans::LloydResult plain = cbtm::kmeans::lloyd(x, o);
  for (size_t t = 1; t < plain.history.size(); ++t)
    CHECK(plain.history[t].objective <= plain.history[t - 1].objective + 1e-6);
  // Plain k-means reaches a lower objective (no size constraint) with uneven clusters.
  CHECK(plain.history.back().objective <= bal.history.back().objective);
  CHECK(plain.history.back().max_size > plain.history.back().min_size);

  const int32_t domains = int32_t(domain_id.size());
  const double p_bal = cbtm::test::purity(bal.cluster, domain, 8, domains);
  const double p_plain = cbtm::test::purity(plain.cluster, domain, 8, domains);
  INFO("domains " << domains << ", purity balanced " << p_bal << ", plain " << p_plain);
  CHECK(p_bal > 0.5);  // clusters follow the sources (random clusters: ~1/6)

  // Mini-batch balanced k-means (6 batches of 500 per epoch) ends within a few percent of
  // full-batch Lloyd: both objectives are of the final balanced assignment of all points.
  cbtm::kmeans::MiniBatchOptions mo;
  mo.k = 8;
  mo.threads = 2;
  mo.batch_size = 500;
  mo.max_epochs = 20;
  mo.tol = 1e-4;
  mo.seed = 1;
  const cbtm::kmeans::MiniBatchResult mb = cbtm::kmeans::minibatch_kmeans(x, mo);
  std::vector<int64_t> mb_size(8, 0);
  for (int32_t j : mb.cluster) ++mb_size[j];
  CHECK(mb_size == std::vector<int64_t>(8, 375));
  std::vector<float> dist(size_t(x.rows) * 8);
  cbtm::kmeans::squared_distances(x, bal.centers, dist.data(), 2);
  const double full_obj = cbtm::kmeans::BalancedAuction().solve(dist.data(), x.rows, 8).cost;
  INFO("full-batch " << full_obj << ", mini-batch " << mb.objective);
  CHECK(mb.objective <= 1.03 * full_obj);
  const double p_mb = cbtm::test::purity(mb.cluster, domain, 8, domains);
  INFO("purity mini-batch " << p_mb);
  CHECK(p_mb > 0.5);
}
