// The "hashing" embedder on real documents (devpile; skipped when absent): its geometry
// agrees with the tfidf embedder's. A hidden [.bench] case measures fit/embed throughput.
#include "support/catch.h"
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cbtm/runtime.h"
#include "hashing_embedder.h"
#include "support/test_support.h"
#include "tfidf_embedder.h"

using cbtm::Matrix;

namespace {

// First document of each devpile domain (the file is sorted by domain).
const std::vector<int64_t> kDomainStarts = {0, 34115, 40519, 43422, 169688, 287347, 299366, 305583};

/// `per` documents from each domain (one pass over the file), with their domain index.
void domain_sample(int64_t per, std::vector<std::string>& texts, std::vector<int>& domain) {
  const auto docs = cbtm::test::devpile_docs(kDomainStarts.back() + per);
  for (size_t d = 0; d < kDomainStarts.size(); ++d)
    for (int64_t i = kDomainStarts[d]; i < kDomainStarts[d] + per; ++i) {
      texts.push_back(docs[static_cast<size_t>(i)].text);
      domain.push_back(static_cast<int>(d));
    }
}

double cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t k = 0; k < n; ++k) {
    ab += double(a[k]) * b[k];
    aa += double(a[k]) * a[k];
    bb += double(b[k]) * b[k];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) mx += x[i], my += y[i];
  mx /= n;
  my /= n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

/// Share of documents whose nearest other document (cosine) has the same domain.
double nn_domain_agreement(const Matrix& y, const std::vector<int>& domain) {
  int64_t same = 0;
  for (int64_t i = 0; i < y.rows; ++i) {
    double best = -2;
    int64_t arg = -1;
    for (int64_t j = 0; j < y.rows; ++j) {
      if (j == i) continue;
      const double c = cosine(y.row(i), y.row(j), y.cols);
      if (c > best) best = c, arg = j;
    }
    same += domain[static_cast<size_t>(arg)] == domain[static_cast<size_t>(i)];
  }
  return static_cast<double>(same) / static_cast<double>(y.rows);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("hashing devpile: cosine similarities agree with the tfidf embedder",
          "[hashing][embedder][devpile]") {
  if (!cbtm::test::have_devpile()) {
    WARN("devpile absent: skipped");
    return;
  }
  std::vector<std::string> texts;
  std::vector<int> domain;
  domain_sample(600, texts, domain);  // 4800 documents, 8 domains
  cbtm::hashing::HashingOptions ho;
  ho.dims = 50;
  cbtm::hashing::HashingEmbedder hashing(ho);
  hashing.fit(texts);
  cbtm::tfidf::TfidfOptions to;
  to.dims = 50;
  cbtm::tfidf::TfidfEmbedder tfidf(to);
  tfidf.fit(texts);
  const Matrix yh = hashing.embed(texts), yt = tfidf.embed(texts);

  // Cosine similarities of random pairs under both embeddings.
  std::mt19937 rng(1);
  std::uniform_int_distribution<int64_t> pick(0, yh.rows - 1);
  std::vector<double> ch, ct;
  double same_h = 0, cross_h = 0, same_t = 0, cross_t = 0;
  int64_t n_same = 0, n_cross = 0;
  for (int p = 0; p < 20000; ++p) {
    const int64_t i = pick(rng), j = pick(rng);
    if (i == j) continue;
    ch.push_back(cosine(yh.row(i), yh.row(j), yh.cols));
    ct.push_back(cosine(yt.row(i), yt.row(j), yt.cols));
    if (domain[i] == domain[j]) {
      same_h += ch.back(), same_t += ct.back(), ++n_same;
    } else {
      cross_h += ch.back(), cross_t += ct.back(), ++n_cross;
    }
  }
  same_h /= n_same, cross_h /= n_cross, same_t /= n_same, cross_t /= n_cross;
  const double r = pearson(ch, ct);
  INFO("pearson r = " << r << "; mean cosine same/cross domain: hashing " << same_h << " / "
                      << cross_h << ", tfidf " << same_t << " / " << cross_t);
  CHECK(r > 0.9);
  CHECK(same_h > cross_h + 0.15);
  CHECK(same_h - cross_h > 0.7 * (same_t - cross_t));

  // Nearest neighbours keep their domain about as often as under tf-idf (subsample).
  Matrix sh(800, yh.cols), st(800, yt.cols);
  std::vector<int> sd;
  for (int64_t i = 0; i < 800; ++i) {
    const int64_t src = i * 6;
    std::copy(yh.row(src), yh.row(src) + yh.cols, sh.row(i));
    std::copy(yt.row(src), yt.row(src) + yt.cols, st.row(i));
    sd.push_back(domain[src]);
  }
  const double nn_h = nn_domain_agreement(sh, sd), nn_t = nn_domain_agreement(st, sd);
  INFO("nearest-neighbour domain agreement: hashing " << nn_h << ", tfidf " << nn_t);
  CHECK(nn_h > 0.7);
  CHECK(nn_h > nn_t - 0.05);
  WARN("hashing vs tfidf on 4800 devpile docs: pearson r "
       << r << ", same/cross cosine " << same_h << "/" << cross_h << " (tfidf " << same_t << "/"
       << cross_t << "), nn domain " << nn_h << " (tfidf " << nn_t << ")");
}

TEST_CASE("hashing devpile bench: fit and embed throughput on 50k documents", "[.bench][hashing]") {
  if (!cbtm::test::have_devpile()) {
    WARN("devpile absent: skipped");
    return;
  }
  // 50k documents spread over the whole file (every 6th document from the start: all
  // domains in their proportions).
  std::vector<std::string> texts;
  {
    auto docs = cbtm::test::devpile_docs(300000);
    for (size_t i = 0; i < docs.size() && texts.size() < 50000; i += 6)
      texts.push_back(std::move(docs[i].text));
  }
  size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  const int threads = cbtm::runtime().resolved_threads();
  for (const bool tfidf : {false, true}) {
    std::unique_ptr<cbtm::Embedder> e;
    if (tfidf)
      e = std::make_unique<cbtm::tfidf::TfidfEmbedder>(cbtm::tfidf::TfidfOptions{});
    else
      e = std::make_unique<cbtm::hashing::HashingEmbedder>(cbtm::hashing::HashingOptions{});
    auto t0 = std::chrono::steady_clock::now();
    e->fit(texts);
    const double fit_s = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    const Matrix y = e->embed(texts);
    const double embed_s = seconds_since(t0);
    REQUIRE(y.rows == static_cast<int64_t>(texts.size()));
    std::printf(
        "%s: %zu docs (%.1f MB), %d threads: fit %.2f s (%.0f docs/s), embed %.2f s (%.0f "
        "docs/s)\n",
        tfidf ? "tfidf  " : "hashing", texts.size(), bytes / 1e6, threads, fit_s,
        texts.size() / fit_s, embed_s, texts.size() / embed_s);
  }
}
