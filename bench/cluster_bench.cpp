// cluster_bench: C-BTM clustering (tf-idf -> SVD -> balanced k-means) against the
// scikit-learn pipeline on the same devpile documents, and the balanced auction at the size
// the reference implementation needs 139 s for (n = 50,000 points, k = 128, dim = 100).
//
// 1. --docs documents of --data spaced evenly over the whole file (document floor(i T / N)
//    of T, so every domain is in), written to a temporary JSONL that the peer reads too
//    (each timed pipeline starts after --cooldown seconds idle):
//    - ours (in-process, library calls): fit = tfidf embedder fit + embed + balanced_kmeans
//      fit (k = --k, 20 iterations at most, default tol); assign = embed in batches of
//      --batch documents + nearest centre (Clusterer::assign). NMI/purity of the assign
//      labels against `domain` (cbtm/cluster_analysis.h).
//    - peak memory of assign: this program re-run as a child (--assign-child) that loads the
//      saved embedder + clusterer and streams the JSONL once (N documents) and --mem-repeat
//      times (e.g. 4 N), keeping only per-domain cluster counts; its VmHWM is the peak RSS.
//    - the peer (--no-peer skips it): bench/peers/sklearn_cluster.py under /usr/bin/python3
//      (TfidfVectorizer as in the reference C-BTM + TruncatedSVD(100) + Normalizer + KMeans)
//      with the same thread count; its labels come back and are scored the same way.
//    Prints the figures and the ratios ours : peer.
// 2. Synthetic topic-like embeddings (--n x --dim unit rows around 300 Zipf-weighted
//    topics), on 1 thread and on --threads threads: one cold E-step (distances + balanced
//    auction, with the auction's statistics; its size spread is `balance_spread`) and a full
//    --iters-iteration fit (tol 0). auction_50k_128_s = the cold E-step on --threads threads.
//
//   build/bin/cluster_bench --data FILE --docs N --k K [--threads T] [--json OUT]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "cluster_seed_study.h"
#include "cluster_synthetic.h"
#include "cbtm/cluster_analysis.h"
#include "cbtm/corpus.h"
#include "cbtm/error.h"
#include "cbtm/matrix.h"
#include "cbtm/runtime.h"
#include "cbtm/tensor_file.h"
#include "kmeans_core/auction.h"
#include "kmeans_core/distances.h"
#include "kmeans_core/init.h"
#include "kmeans_core/lloyd.h"
#include "kmeans_core/lloyd_clusterer.h"
#include "tfidf_embedder.h"

namespace bench = cbtm::bench;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// A fresh temporary directory, removed with everything in it when this goes away.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "cluster_bench.XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw cbtm::Error("cannot create a temporary directory " + tmpl);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};


/// Peak resident set (VmHWM of /proc/self/status) in MiB; -1 if unknown.
double peak_rss_mb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  return -1;
}

// --embedder / --clusterer: YAML maps of the plugins' options (the keys of the config's
// `embedder:` and `clusterer:` sections), applied over the defaults; --dim and --k win.
std::string g_embedder_yaml = "{}", g_clusterer_yaml = "{}";

template <class T>
T options_from(const std::string& yaml, const char* flag, const std::string& owner) {
  cbtm::ConfigNode at;
  try {
    at.node = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw cbtm::Error(std::string(flag) + ": not YAML: " + e.what());
  }
  at.path = std::string(flag).substr(2);
  at.file = flag;
  return cbtm::parse_options<T>(at, owner);
}

cbtm::tfidf::TfidfOptions embedder_options(int64_t dims) {
  auto o = options_from<cbtm::tfidf::TfidfOptions>(g_embedder_yaml, "--embedder", "embedder 'tfidf'");
  // --dim sets the size unless --embedder names one itself (it was silently overridden)
  const YAML::Node n = YAML::Load(g_embedder_yaml);
  if (!(n.IsMap() && n["dims"])) o.dims = static_cast<int>(dims);
  return o;
}

cbtm::kmeans::KMeansOptions kmeans_options(int32_t k) {
  // Defaults: 20 iterations at most, default tol.
  auto o = options_from<cbtm::kmeans::KMeansOptions>(g_clusterer_yaml, "--clusterer",
                                                    "clusterer 'balanced_kmeans'");
  o.k = k;
  return o;
}

std::string one_line(const YAML::Node& n) {
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

/// NMI, purity and sizes of `cluster` against `domains`.
json score(const std::vector<std::string>& domains, const std::vector<int32_t>& cluster,
           int32_t k) {
  const cbtm::Contingency t = cbtm::contingency(domains, cluster, k);
  const cbtm::SizeSummary s = cbtm::size_summary(t.cluster_totals());
  // The entropies NMI divides by: I / ((H(domain) + H(cluster)) / 2), natural logs.
  auto entropy = [](const std::vector<int64_t>& counts) {
    double n = 0, h = 0;
    for (int64_t c : counts) n += double(c);
    for (int64_t c : counts)
      if (c > 0) h -= double(c) / n * std::log(double(c) / n);
    return h;
  };
  return {{"nmi", cbtm::nmi(t)},       {"purity", cbtm::purity(t)}, {"mi", cbtm::mutual_information(t)},
          {"h_cluster", entropy(t.cluster_totals())}, {"h_domain", entropy(t.label_totals())},
          {"size_min", s.min},
          {"size_max", s.max},         {"size_cv", s.cv},           {"empty_clusters", s.empty}};
}

/// Child mode (--assign-child MODEL): loads the embedder and clusterer saved in MODEL and
/// streams `data` `repeat` times in batches, keeping only per-domain cluster counts; writes
/// the peak RSS, throughput and NMI to `out`. Its memory is the memory of assignment alone.
json assign_child(const std::string& model, const std::string& data, int repeat, int32_t k,
                  int64_t dims, int64_t batch_size) {
  const double start_mb = peak_rss_mb();
  cbtm::tfidf::TfidfEmbedder emb(embedder_options(dims));
  cbtm::kmeans::BalancedKMeans cl(kmeans_options(k));
  {
    const cbtm::TensorFile f = cbtm::TensorFile::read(model);
    emb.load(f, "embedder");
    cl.load(f, "clusterer");
  }
  const double loaded_mb = peak_rss_mb();
  std::map<std::string, std::vector<int64_t>> counts;  // domain -> per-cluster count
  std::vector<std::string> texts, domains;
  int64_t docs = 0;
  auto flush = [&] {
    if (texts.empty()) return;
    const cbtm::Assignment a = cl.assign(emb.embed(texts));
    for (size_t i = 0; i < texts.size(); ++i) {
      auto& row = counts[domains[i]];
      if (row.empty()) row.assign(size_t(k), 0);
      ++row[size_t(a.cluster[i])];
    }
    docs += int64_t(texts.size());
    texts.clear();
    domains.clear();
  };
  const auto t0 = bench::Clock::now();
  for (int r = 0; r < repeat; ++r) {
    cbtm::CorpusReader reader(data, cbtm::CorpusOptions{});
    cbtm::Document doc;
    while (reader.next(doc)) {
      texts.push_back(std::move(doc.text));
      domains.push_back(doc.field("domain"));
      if (int64_t(texts.size()) == batch_size) flush();
    }
  }
  flush();
  const double seconds = bench::seconds_since(t0);
  // NMI from the counts: rebuild one label per point is what contingency() wants, so fill
  // a Contingency directly.
  cbtm::Contingency t;
  t.k = k;
  for (const auto& [dom, row] : counts) {
    if (dom.empty()) continue;
    t.labels.push_back(dom);
    t.counts.insert(t.counts.end(), row.begin(), row.end());
  }
  return {{"docs", docs},
          {"repeat", repeat},
          {"seconds", seconds},
          {"docs_per_s", docs / seconds},
          {"start_rss_mb", start_mb},
          {"model_loaded_rss_mb", loaded_mb},
          {"peak_rss_mb", peak_rss_mb()},
          {"nmi", cbtm::nmi(t)}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"C-BTM clustering vs scikit-learn on devpile, and the balanced auction"};
  bench::CommonFlags flags;
  bench::add_common_flags(app, flags, true);
  int64_t n = 50000, dim = 100, docs = 100000, batch = 8192;
  int32_t k = 32, auction_k = 128;
  int iters = 20, mem_repeat = 4;
  double cooldown = 3.0;
  int repeat = 3;
  bool no_peer = false;
  std::string python = "/usr/bin/python3", peer_script = CBTM_BENCH_PEERS_DIR "/sklearn_cluster.py";
  std::string peer_n_init = "1";
  int seeds = 0;
  std::string child_model, child_data;
  int child_repeat = 1;
  auto* data_opt = app.add_option("--data", flags.devpile, "corpus JSONL (.zst); same as --devpile");
  data_opt->excludes(app.get_option("--devpile"));
  app.add_option("--docs", docs, "documents to cluster, spread over the corpus (0: skip)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--k", k, "clusters of the documents")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--dim", dim, "embedding size (tf-idf SVD and synthetic points)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "documents per embed + assign batch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--mem-repeat", mem_repeat,
                 "the larger streamed corpus for the assign memory figure: the sample this many "
                 "times (0: skip the memory figure)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--no-peer", no_peer, "skip the scikit-learn pipeline");
  app.add_option("--repeat", repeat,
                 "timed runs of each pipeline (ours, the peer); the fastest of each is reported")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--cooldown", cooldown,
                 "seconds idle before each timed pipeline (ours, the peer), so that neither "
                 "runs on a machine still busy or hot from the previous step")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--python", python, "the peer's interpreter")->capture_default_str();
  app.add_option("--peer-script", peer_script, "the peer")->capture_default_str();
  app.add_option("--seeds", seeds,
                 "seed study after the timed runs: our balanced_kmeans and kmeans, and the peer's KMeans, "
                 "with seeds 0..N-1 on fixed embeddings (NMI and mutual information of each)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--peer-n-init", peer_n_init,
                 "the peer's KMeans n_init (integer or auto; scikit-learn 1.2's default is 10)")
      ->capture_default_str();
  app.add_option("--embedder", g_embedder_yaml,
                 "our tfidf embedder's options as a YAML map over the defaults, e.g. "
                 "'{sublinear_tf: true, min_df: 2}' (the peer keeps scikit-learn's defaults)")
      ->capture_default_str();
  app.add_option("--clusterer", g_clusterer_yaml,
                 "our balanced_kmeans options as a YAML map, e.g. '{init: kmeans++, max_iters: 40}'")
      ->capture_default_str();
  app.add_option("--n", n, "synthetic points")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--auction-k", auction_k, "clusters of the synthetic points")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--iters", iters, "Lloyd iterations of the synthetic fit")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  std::string save_embeddings;
  app.add_option("--save-embeddings", save_embeddings,
                 "also write the fit set's embeddings and domains to this tensor file (for "
                 "experiments on the clustering alone)");
  // Internal: the child process of the memory figure.
  app.add_option("--assign-child", child_model, "")->group("");
  app.add_option("--child-data", child_data, "")->group("");
  app.add_option("--child-repeat", child_repeat, "")->group("");

  return bench::run_main(app, argc, argv, flags, [&] {
    if (!child_model.empty()) {
      bench::write_json(flags.json,
                        assign_child(child_model, child_data, child_repeat, k, dim, batch));
      return 0;
    }
    // Check the inputs before any long part.
    if (docs > 0 && !fs::is_regular_file(flags.devpile))
      throw bench::MissingInput("corpus not found at '" + flags.devpile +
                                "' (pass --data PATH, or --docs 0)");
    if (docs > 0 && !no_peer && !fs::is_regular_file(peer_script))
      throw bench::MissingInput("peer script not found at '" + peer_script +
                                "' (pass --peer-script PATH, or --no-peer)");
    const int threads = cbtm::runtime().resolved_threads();
    json figures = {{"benchmark", "cluster"}, {"machine", bench::machine_state()}};

    // --- 2. synthetic balanced auction (after the documents: a long full load before
    // them would slow whichever pipeline came next) ---------------------------------------
    auto synthetic = [&] { figures.update(cbtm::bench::synthetic_auction(n, dim, auction_k, iters, threads)); };
    if (docs == 0) {
      synthetic();
      bench::write_json(flags.json, figures);
      return 0;
    }

    // --- 1. documents -------------------------------------------------------------------
    TempDir tmp;
    const std::string sample_path = (tmp.path / "docs.jsonl").string();
    std::vector<std::string> texts, domains;
    int64_t corpus_docs = 0;
    {
      auto t0 = bench::Clock::now();
      const auto all = bench::read_devpile(flags.devpile);
      corpus_docs = int64_t(all.size());
      const int64_t take = std::min<int64_t>(docs, corpus_docs);
      std::ofstream out(sample_path, std::ios::binary);
      texts.reserve(size_t(take));
      domains.reserve(size_t(take));
      for (int64_t i = 0; i < take; ++i) {
        const auto& d = all[size_t(i * corpus_docs / take)];  // floor(i T / N)
        texts.push_back(d.text);
        domains.push_back(d.field("domain"));
        out << json{{"text", d.text}, {"domain", domains.back()}}.dump() << '\n';
      }
      out.close();
      if (!out) throw cbtm::Error("cannot write the sample " + sample_path);
      std::printf("\n1. documents: %lld of the %lld of %s (evenly spaced), read and written in "
                  "%.1f s; k %d, %d threads\n",
                  (long long)take, (long long)corpus_docs, flags.devpile.c_str(),
                  bench::seconds_since(t0), k, threads);
      std::fflush(stdout);
    }
    const int64_t nd = int64_t(texts.size());
    figures["embedder_options"] = one_line(cbtm::emit_options(embedder_options(dim)));
    figures["clusterer_options"] = one_line(cbtm::emit_options(kmeans_options(k)));
    std::printf("ours: embedder tfidf %s\n      clusterer balanced_kmeans %s\n",
                one_line(cbtm::emit_options(embedder_options(dim))).c_str(),
                one_line(cbtm::emit_options(kmeans_options(k))).c_str());

    // Each timed pipeline (ours, then the peer) starts after --cooldown seconds idle, so
    // neither inherits the other's (or the data loading's) load.
    auto cool_down = [&] {
      if (cooldown > 0) std::this_thread::sleep_for(std::chrono::duration<double>(cooldown));
    };
    // Ours: --repeat runs of fit + assign; the fastest is reported (and used below). The
    // peer gets the same treatment.
    std::unique_ptr<cbtm::tfidf::TfidfEmbedder> emb_best;
    std::unique_ptr<cbtm::kmeans::BalancedKMeans> cl_best;
    cbtm::Matrix fit_y;
    std::vector<int32_t> ours_labels(static_cast<size_t>(nd));
    double t_emb_fit = 0, t_km = 0, ours_fit = 0, ours_assign = 0, assign_embed = 0;
    json ours_runs = json::array();
    cool_down();
    for (int rep = 0; rep < repeat; ++rep) {
      // Fit.
      auto emb = std::make_unique<cbtm::tfidf::TfidfEmbedder>(embedder_options(dim));
      auto cl = std::make_unique<cbtm::kmeans::BalancedKMeans>(kmeans_options(k));
      auto t0 = bench::Clock::now();
      cbtm::Matrix y_fit = emb->fit_embed(texts);  // fit, and the fit set's embeddings
      const double r_emb_fit = bench::seconds_since(t0);
      auto t1 = bench::Clock::now();
      cl->fit(y_fit);
      const double r_km = bench::seconds_since(t1);
      const double r_fit = bench::seconds_since(t0);
      // Assign, in batches. A batch holds its documents' texts (moved in and back out: the
      // peer's transform does not copy its input either).
      std::vector<int32_t> labels(static_cast<size_t>(nd));
      double r_embed = 0;  // the embed share of the assign time
      std::vector<std::string> part;
      t0 = bench::Clock::now();
      for (int64_t b = 0; b < nd; b += batch) {
        const int64_t e = std::min(nd, b + batch);
        part.resize(static_cast<size_t>(e - b));
        for (int64_t i = b; i < e; ++i) part[size_t(i - b)].swap(texts[size_t(i)]);
        const auto tb = bench::Clock::now();
        const cbtm::Matrix y = emb->embed(part);
        r_embed += bench::seconds_since(tb);
        const cbtm::Assignment a = cl->assign(y);
        std::copy(a.cluster.begin(), a.cluster.end(), labels.begin() + b);
        for (int64_t i = b; i < e; ++i) part[size_t(i - b)].swap(texts[size_t(i)]);
      }
      const double r_assign = bench::seconds_since(t0);
      ours_runs.push_back({{"fit_s", r_fit}, {"assign_s", r_assign}});
      std::printf("ours run %d/%d: fit %.2f s + assign %.2f s = %.2f s\n", rep + 1, repeat,
                  r_fit, r_assign, r_fit + r_assign);
      std::fflush(stdout);
      if (rep == 0 || r_fit + r_assign < ours_fit + ours_assign) {
        emb_best = std::move(emb);
        cl_best = std::move(cl);
        fit_y = std::move(y_fit);
        ours_labels = std::move(labels);
        t_emb_fit = r_emb_fit;
        t_km = r_km;
        ours_fit = r_fit;
        ours_assign = r_assign;
        assign_embed = r_embed;
      }
    }
    cbtm::tfidf::TfidfEmbedder& emb = *emb_best;
    cbtm::kmeans::BalancedKMeans& cl = *cl_best;
    if (!save_embeddings.empty()) {  // outside the timings
      cbtm::TensorFileWriter w;
      w.add_f32("embeddings", {fit_y.rows, fit_y.cols}, fit_y.data);
      w.add_strings("domains", domains);
      w.write(save_embeddings);
    }
    const auto& hist = cl.last_fit().history;
    const json ours_fit_score = score(domains, cl.last_fit().cluster, k);
    const json ours_score = score(domains, ours_labels, k);

    // Diagnostic, outside the timings: the greedy k-means clusterer ("kmeans", same options)
    // on the same embeddings, to tell the embedding's share of the NMI from the balancing's.
    json plain;
    {
      cbtm::kmeans::PlainKMeans pk(kmeans_options(k));
      const auto tp = bench::Clock::now();
      pk.fit(fit_y);
      const double t_plain = bench::seconds_since(tp);
      plain = score(domains, pk.assign(fit_y).cluster, k);
      plain["fit_s"] = t_plain;
      plain["iterations"] = pk.last_fit().history.size();
    }
    figures["docs"] = nd;
    figures["corpus_docs"] = corpus_docs;
    figures["k"] = k;
    figures["threads"] = threads;
    figures["ours"] = {{"fit_s", ours_fit},
                       {"embedder_fit_embed_s", t_emb_fit},
                       {"kmeans_fit_s", t_km},
                       {"kmeans_iterations", hist.size()},
                       {"kmeans_converged", cl.last_fit().converged},
                       {"terms", emb.vectorizer().vocabulary().size()},
                       {"fit_labels", ours_fit_score},
                       {"assign_s", ours_assign},
                       {"assign_batch", batch},
                       {"assign_embed_s", assign_embed},
                       {"assign_docs_per_s", nd / ours_assign},
                       {"assign_labels", ours_score},
                       {"diagnostic_plain_kmeans", plain},
                       {"runs", ours_runs}};
    figures["ours_fit_s"] = ours_fit;
    figures["ours_assign_s"] = ours_assign;
    figures["ours_nmi"] = ours_score["nmi"];
    figures["ours_purity"] = ours_score["purity"];
    figures["ours_mi"] = ours_score["mi"];
    figures["ours_kmeans_nmi"] = plain["nmi"];  // our unbalanced kmeans, same embeddings
    figures["ours_assign_docs_per_s"] = nd / ours_assign;
    std::printf("ours: fit %.2f s (embedder fit_embed %.2f, balanced k-means %.2f in %zu "
                "iterations, %zu terms), assign %.2f s (embed %.2f; %.0f docs/s, batches of %lld)\n",
                ours_fit, t_emb_fit, t_km, hist.size(),
                emb.vectorizer().vocabulary().size(), ours_assign, assign_embed,
                nd / ours_assign, (long long)batch);
    std::printf("ours: assign NMI %.4f, purity %.4f, sizes %lld..%lld (balanced fit labels: NMI "
                "%.4f, sizes %lld..%lld)\n",
                ours_score["nmi"].get<double>(), ours_score["purity"].get<double>(),
                (long long)ours_score["size_min"].get<int64_t>(),
                (long long)ours_score["size_max"].get<int64_t>(),
                ours_fit_score["nmi"].get<double>(),
                (long long)ours_fit_score["size_min"].get<int64_t>(),
                (long long)ours_fit_score["size_max"].get<int64_t>());
    std::printf("diagnostic (not timed above): plain k-means on the same embeddings: NMI %.4f, "
                "purity %.4f, sizes %lld..%lld\n",
                plain["nmi"].get<double>(), plain["purity"].get<double>(),
                (long long)plain["size_min"].get<int64_t>(),
                (long long)plain["size_max"].get<int64_t>());
    std::fflush(stdout);

    // The peer.
    for (const char* key : {"peer_fit_s", "peer_assign_s", "peer_nmi", "speedup"})
      figures[key] = nullptr;  // stays null with --no-peer
    if (!no_peer) {
      cool_down();
      const std::string labels_path = (tmp.path / "peer_labels.txt").string();
      const std::string t = std::to_string(threads);
      const std::string cmd = "OMP_NUM_THREADS=" + t + " OPENBLAS_NUM_THREADS=" + t +
                              " MKL_NUM_THREADS=" + t + " " + bench::sh_quote(python) + " " +
                              bench::sh_quote(peer_script) + " --data " + bench::sh_quote(sample_path) +
                              " --k " + std::to_string(k) + " --dims " + std::to_string(dim) +
                              " --threads " + t + " --n-init " + bench::sh_quote(peer_n_init) +
                              " --labels " + bench::sh_quote(labels_path);
      std::printf("peer: %s ...\n", cmd.c_str());
      std::fflush(stdout);
      // --repeat runs; the fastest (fit + assign) is reported, its labels scored.
      json peer, peer_runs = json::array();
      std::vector<int32_t> peer_labels;
      json peer_seed_study;
      for (int rep = 0; rep < repeat; ++rep) {
        // The last run also does the seed study, after its timed pipeline.
        const std::string run_cmd = rep + 1 == repeat && seeds > 0 ? cmd + " --seeds " + std::to_string(seeds) : cmd;
        const json run = bench::last_json_line(bench::run_capture(run_cmd, "the scikit-learn peer"), "the peer");
        if (run.contains("seed_study") && !run["seed_study"].empty()) peer_seed_study = run["seed_study"];
        const double total = run["fit_s"].get<double>() + run["assign_s"].get<double>();
        peer_runs.push_back({{"fit_s", run["fit_s"]}, {"assign_s", run["assign_s"]}});
        std::printf("peer run %d/%d: fit %.2f s + assign %.2f s = %.2f s\n", rep + 1, repeat,
                    run["fit_s"].get<double>(), run["assign_s"].get<double>(), total);
        std::fflush(stdout);
        if (rep > 0 && total >= peer["fit_s"].get<double>() + peer["assign_s"].get<double>())
          continue;
        peer = run;
        peer_labels.clear();
        std::ifstream f(labels_path);
        int32_t v;
        while (f >> v) peer_labels.push_back(v);
      }
      peer["runs"] = peer_runs;
      peer.erase("seed_study");
      figures["peer_seed_study"] = peer_seed_study;
      if (int64_t(peer_labels.size()) != nd)
        throw cbtm::Error("the peer wrote " + std::to_string(peer_labels.size()) +
                          " labels for " + std::to_string(nd) + " documents");
      const json peer_score = score(domains, peer_labels, k);
      const double pf = peer["fit_s"], pa = peer["assign_s"];
      figures["peer"] = peer;
      figures["peer"]["assign_labels"] = peer_score;
      figures["peer_fit_s"] = pf;
      figures["peer_assign_s"] = pa;
      figures["peer_nmi"] = peer["nmi"];
      figures["peer_purity"] = peer_score["purity"];
      figures["peer_mi"] = peer_score["mi"];
      figures["peer_assign_docs_per_s"] = nd / pa;
      figures["speedup"] = (pf + pa) / (ours_fit + ours_assign);
      figures["fit_speedup"] = pf / ours_fit;
      figures["assign_speedup"] = pa / ours_assign;
      std::printf("peer (scikit-learn %s, KMeans n_init %s): fit %.2f s (vectorizer %.2f, SVD + "
                  "normalizer %.2f, k-means %.2f in %d iterations, %d terms), assign %.2f s "
                  "(%.0f docs/s), peak RSS %.0f MB\n",
                  peer["sklearn"].get<std::string>().c_str(), peer["n_init"].dump().c_str(), pf,
                  peer["fit_vectorizer_s"].get<double>(),
                  peer["fit_svd_normalizer_s"].get<double>(),
                  peer["fit_kmeans_s"].get<double>(), peer["kmeans_iterations"].get<int>(),
                  peer["terms"].get<int>(), pa, nd / pa, peer["peak_rss_mb"].get<double>());
      std::printf("peer: NMI %.4f (sklearn; %.4f by cluster_analysis.h), purity %.4f, sizes "
                  "%lld..%lld\n",
                  peer["nmi"].get<double>(), peer_score["nmi"].get<double>(),
                  peer_score["purity"].get<double>(),
                  (long long)peer_score["size_min"].get<int64_t>(),
                  (long long)peer_score["size_max"].get<int64_t>());
    }

    // Ours: peak memory of assignment, in child processes streaming N and mem_repeat x N.
    if (mem_repeat > 0) {
      const std::string model = (tmp.path / "model.safetensors").string();
      {
        cbtm::TensorFileWriter w;
        emb.save(w, "embedder");
        cl.save(w, "clusterer");
        w.write(model);
      }
      char exe[4096];
      const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
      if (len <= 0) throw cbtm::Error("cannot find this program (/proc/self/exe)");
      exe[len] = 0;
      json mem = json::object();
      for (int r : {1, mem_repeat}) {
        const std::string out = (tmp.path / ("child" + std::to_string(r) + ".json")).string();
        const std::string cmd =
            bench::sh_quote(exe) + " --assign-child " + bench::sh_quote(model) + " --child-data " +
            bench::sh_quote(sample_path) + " --child-repeat " + std::to_string(r) + " --k " +
            std::to_string(k) + " --dim " + std::to_string(dim) + " --batch " +
            std::to_string(batch) + " --threads " + std::to_string(threads) + " --embedder " +
            bench::sh_quote(g_embedder_yaml) + " --clusterer " + bench::sh_quote(g_clusterer_yaml) + " --json " +
            bench::sh_quote(out) + " >/dev/null";
        bench::run_capture(cmd, "the assign child");
        std::ifstream f(out);
        const json c = json::parse(f);
        mem[r == 1 ? "n" : "repeat"] = c;
        std::printf("assign memory: %lld docs streamed in a child, peak RSS %.1f MB (at start "
                    "%.1f MB, model loaded %.1f MB), %.0f docs/s with JSONL parsing, NMI %.4f\n",
                    (long long)c["docs"].get<int64_t>(), c["peak_rss_mb"].get<double>(),
                    c["start_rss_mb"].get<double>(), c["model_loaded_rss_mb"].get<double>(), c["docs_per_s"].get<double>(),
                    c["nmi"].get<double>());
        std::fflush(stdout);
      }
      figures["assign_memory"] = mem;
      figures["assign_peak_rss_mb_n"] = mem["n"]["peak_rss_mb"];
      figures["assign_peak_rss_mb_4n"] = mem["repeat"]["peak_rss_mb"];
      figures["assign_memory_repeat"] = mem_repeat;
    }

    if (seeds > 0) {  // outside the timings
      const json ours_study = cbtm::bench::seed_study_ours(fit_y, domains, kmeans_options(k), seeds);
      const json summary = cbtm::bench::summarise_seed_study(ours_study, figures.value("peer_seed_study", json()));
      figures["seed_study"] = summary;
      figures["seed_study"]["ours_rows"] = ours_study;
      figures["ours_nmi_seed_mean"] = summary["ours_balanced"]["nmi_mean"];
      if (summary.contains("peer")) figures["peer_nmi_seed_mean"] = summary["peer"]["nmi_mean"];
    }

    synthetic();

    // Summary against the targets.
    const json end = bench::machine_state();
    figures["machine_end"] = end;
    std::printf("\nsummary (%lld docs, k %d, %d threads; load average at the end %.2f %.2f "
                "%.2f)\n",
                (long long)nd, k, threads, end["load_1m"].get<double>(),
                end["load_5m"].get<double>(), end["load_15m"].get<double>());
    std::printf("  %-34s %12s %12s %10s %s\n", "figure", "ours", "peer", "ratio", "target");
    auto row = [&](const char* name, double ours, const json& peer, double ratio,
                   const char* target) {
      if (peer.is_null())
        std::printf("  %-34s %12.4g %12s %10s %s\n", name, ours, "-", "-", target);
      else
        std::printf("  %-34s %12.4g %12.4g %9.2fx %s\n", name, ours, peer.get<double>(), ratio,
                    target);
    };
    const json pf = figures.value("peer_fit_s", json()), pa = figures.value("peer_assign_s", json());
    const bool peer_ran = !pf.is_null();
    row("fit s", ours_fit, pf, peer_ran ? pf.get<double>() / ours_fit : 0, "");
    row("assign s", ours_assign, pa, peer_ran ? pa.get<double>() / ours_assign : 0, "");
    row("fit + assign s", ours_fit + ours_assign,
        peer_ran ? json(pf.get<double>() + pa.get<double>()) : json(),
        peer_ran ? figures["speedup"].get<double>() : 0, ">= 10x faster");
    row("assign docs/s", nd / ours_assign, figures.value("peer_assign_docs_per_s", json()),
        peer_ran ? figures["assign_speedup"].get<double>() : 0, ">= 100,000 docs/s");
    row("NMI vs domain", ours_score["nmi"], figures.value("peer_nmi", json()),
        peer_ran ? ours_score["nmi"].get<double>() / figures["peer_nmi"].get<double>() : 0,
        ">= peer");
    row("purity vs domain", ours_score["purity"], figures.value("peer_purity", json()),
        peer_ran ? ours_score["purity"].get<double>() / figures["peer_purity"].get<double>() : 0,
        "");
    row("mutual information vs domain (nats)", ours_score["mi"], figures.value("peer_mi", json()),
        peer_ran ? ours_score["mi"].get<double>() / figures["peer_mi"].get<double>() : 0, "");
    row("cluster entropy H(C) (nats)", ours_score["h_cluster"],
        peer_ran ? figures["peer"]["assign_labels"]["h_cluster"] : json(),
        peer_ran ? ours_score["h_cluster"].get<double>() /
                       figures["peer"]["assign_labels"]["h_cluster"].get<double>()
                 : 0,
        "(NMI's denominator grows with it)");
    row("NMI, our unbalanced kmeans", plain["nmi"], figures.value("peer_nmi", json()),
        peer_ran ? plain["nmi"].get<double>() / figures["peer_nmi"].get<double>() : 0,
        "(same method as the peer)");
    std::printf("  %-34s %12.3f %12s %10s %s\n", "auction 50k x 128 (cold E-step) s",
                figures["auction_50k_128_s"].get<double>(), "~139 (ref)", "", "<= 2 s");
    std::printf("  %-34s %12lld %12s %10s %s\n", "balance spread (max - min size)",
                (long long)figures["balance_spread"].get<int64_t>(), "", "", "<= 1");
    if (figures.contains("assign_peak_rss_mb_n"))
      std::printf("  %-34s %5.0f / %5.0f %12s %10s %s\n", "assign peak RSS MB, N / 4N",
                  figures["assign_peak_rss_mb_n"].get<double>(),
                  figures["assign_peak_rss_mb_4n"].get<double>(), "", "",
                  "independent of corpus size");
    bench::write_json(flags.json, figures);
    return 0;
  });
}
