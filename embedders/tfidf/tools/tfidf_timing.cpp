// tfidf_timing: wall time of the tfidf embedder's fit() and embed() on devpile documents,
// with the fit split into vocabulary (tokenize + count + prune + tf-idf rows) and SVD.
// Prints one line per run; measures, asserts nothing.
//
//   build/bin/tfidf_timing [DEVPILE] [--docs 100000] [--stride 1] [--threads 2] [--dims 100]
//                          [--repeat 1]
//   --stride 3: every 3rd of the first 3 x docs documents (mixes devpile's domains).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "cbtm/corpus.h"
#include "cbtm/runtime.h"
#include "randomized_svd.h"
#include "tfidf_embedder.h"
#include "tfidf_vectorizer.h"

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = "/work/shared/data/devpile.jsonl.zst";
  long long docs = 100000, stride = 1, dims = 100, repeat = 1;
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> long long {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atoll(argv[++i]);
    };
    if (a == "--docs") docs = next();
    else if (a == "--stride") stride = next();
    else if (a == "--threads") threads = static_cast<int>(next());
    else if (a == "--dims") dims = next();
    else if (a == "--repeat") repeat = next();
    else if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    } else path = a;
  }
  spdlog::set_level(spdlog::level::warn);
  cbtm::runtime().threads = threads;

  auto t0 = std::chrono::steady_clock::now();
  cbtm::CorpusOptions co;
  co.max_docs = docs * stride;
  std::vector<cbtm::Document> all = cbtm::read_corpus(path, co);
  std::vector<std::string> texts;
  size_t bytes = 0;
  for (size_t i = 0; i < all.size(); i += static_cast<size_t>(stride)) {
    bytes += all[i].text.size();
    texts.push_back(std::move(all[i].text));
  }
  all.clear();
  std::printf("read %zu docs (%.1f MB, stride %lld) in %.2f s; %d threads\n", texts.size(),
              bytes / 1e6, stride, since(t0), threads);

  for (long long r = 0; r < repeat; ++r) {
    cbtm::tfidf::TfidfOptions o;
    o.dims = static_cast<int>(dims);
    // The parts of fit(), timed separately.
    t0 = std::chrono::steady_clock::now();
    cbtm::tfidf::TfidfVectorizer v(cbtm::tfidf::vectorizer_options(o));
    const cbtm::tfidf::CsrMatrix x = v.fit_transform(texts, threads);
    const double t_vocab = since(t0);
    cbtm::tfidf::RandomizedSvdOptions so;
    so.components = dims;
    so.threads = threads;
    t0 = std::chrono::steady_clock::now();
    const cbtm::tfidf::SvdResult svd = cbtm::tfidf::randomized_svd(x, so);
    const double t_svd = since(t0);

    cbtm::tfidf::TfidfEmbedder e(o);
    t0 = std::chrono::steady_clock::now();
    e.fit(texts);
    const double t_fit = since(t0);
    t0 = std::chrono::steady_clock::now();
    const cbtm::Matrix y = e.embed(texts);
    const double t_embed = since(t0);
    double check = 0;
    for (int64_t k = 0; k < y.cols; ++k) check += y.at(0, k) * (k + 1);
    std::printf(
        "tfidf %zu docs: %zu terms, %lld nonzeros | vectorizer %.3f s, svd %.3f s | embedder "
        "fit %.3f s, embed %.3f s | sv[0] %.6g sv[%lld] %.6g | row0 check %.6f\n",
        texts.size(), v.vocabulary().size(), static_cast<long long>(x.nnz()), t_vocab, t_svd,
        t_fit, t_embed, svd.singular_values[0], dims - 1, svd.singular_values[dims - 1], check);
    std::fflush(stdout);
  }
  return 0;
}
