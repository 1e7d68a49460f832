// Data stages: tokenizer (+ tokens/all), cluster (Step 0), assign (per-cluster shards).
#include <algorithm>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cbtm/artifact.h"
#include "cbtm/clusterer.h"
#include "cbtm/corpus.h"
#include "cbtm/embedder.h"
#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/pipeline/pipeline.h"
#include "cbtm/plugin_host.h"
#include "cbtm/progress.h"
#include "cbtm/token_shard.h"
#include "cbtm/tokenizer.h"

namespace fs = std::filesystem;

namespace cbtm {
namespace {

constexpr int64_t kBatchDocs = 8192;

CorpusOptions corpus_options(const DataOptions& d, int64_t limit) {
  CorpusOptions o;
  o.text_field = d.text_field;
  o.id_field = d.id_field;
  o.on_bad_document = d.on_bad_document;
  o.max_docs = d.max_train_docs;
  if (limit > 0) o.max_docs = o.max_docs > 0 ? std::min(o.max_docs, limit) : limit;
  return o;
}

std::vector<std::string> texts_of(std::vector<Document>& docs) {
  std::vector<std::string> t;
  t.reserve(docs.size());
  for (auto& d : docs) t.push_back(std::move(d.text));
  return t;
}

// Reads the corpus in batches of documents, calling fn(batch) for each.
template <class Fn>
CorpusStats for_each_batch(const std::string& path, const CorpusOptions& o, Fn fn) {
  CorpusReader reader(path, o);
  std::vector<Document> batch;
  Document d;
  while (reader.next(d)) {
    batch.push_back(std::move(d));
    if (static_cast<int64_t>(batch.size()) == kBatchDocs) {
      fn(batch);
      batch.clear();
    }
  }
  if (!batch.empty()) fn(batch);
  return reader.stats();
}

void log_skipped(const std::string& path, const CorpusStats& s) {
  if (s.bad_total() > 0)
    spdlog::warn("{}: skipped {} bad line(s) (first: {})", path, s.bad_total(), s.first_bad);
}

// Removes leftovers of a killed earlier attempt (".tmp-" siblings).
void remove_stale_temps(const std::string& dir) {
  if (!fs::is_directory(dir)) return;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) fs::remove_all(e.path());
}

}  // namespace

// ---- tokenizer --------------------------------------------------------------------------
void Pipeline::tokenize() {
  if (done("tokenizer")) {
    spdlog::info("[tokenizer] finished earlier; skipping");
    return;
  }
  const auto& d = cfg_.data;
  std::unique_ptr<Tokenizer> tok;
  YAML::Node tok_options;
  if (!d.tokenizer_from.empty()) {
    spdlog::info("[tokenizer] loading {}", d.tokenizer_from);
    ArtifactReader r(d.tokenizer_from, "tokenizer");
    tok = r.load<Tokenizer>(host_.registry(), "tokenizer");
    tok_options = r.component_config("tokenizer", Tokenizer::kKind).node;
  } else {
    spdlog::info("[tokenizer] training {} on {} documents of {}", cfg_.node("tokenizer").node["type"].as<std::string>(),
                 d.tokenizer_docs ? "up to " + std::to_string(d.tokenizer_docs) : std::string("all"), d.train);
    std::vector<Document> sample = read_corpus(d.train, corpus_options(d, d.tokenizer_docs));
    tok = host_.registry().create<Tokenizer>(cfg_.node("tokenizer"));
    tok->train(texts_of(sample));
    tok_options = cfg_.node("tokenizer").node;
  }
  ArtifactWriter w("tokenizer", cfg_.resolved());
  w.add("tokenizer", *tok, tok_options);
  w.set_meta("vocab_size", std::to_string(tok->vocab_size()));
  w.write(dir_.tokenizer());
  spdlog::info("[tokenizer] vocabulary of {} tokens -> {}", tok->vocab_size(), dir_.tokenizer());

  // Tokenize the whole training corpus once (the seed LM and the baselines train on it;
  // assign copies each document's tokens into its cluster).
  make_dirs(dir_.path("tokens"));
  remove_stale_temps(dir_.path("tokens"));
  const std::string final_dir = dir_.path("tokens/all");
  const std::string tmp = temp_path_for(final_dir);
  int64_t docs = 0, tokens = 0, bytes = 0;
  {
    TokenShardWriter out(tmp, tok->vocab_size());
    Progress progress("tokenize", 0, "docs");
    const CorpusStats st = for_each_batch(d.train, corpus_options(d, 0), [&](std::vector<Document>& batch) {
      std::vector<std::vector<int32_t>> ids(batch.size());
#pragma omp parallel for schedule(dynamic, 64)
      for (int64_t i = 0; i < static_cast<int64_t>(batch.size()); ++i) ids[i] = tok->encode(batch[i].text);
      for (size_t i = 0; i < batch.size(); ++i) {
        out.add(ids[i]);
        tokens += static_cast<int64_t>(ids[i].size());
        bytes += static_cast<int64_t>(batch[i].text.size());
      }
      docs += static_cast<int64_t>(batch.size());
      progress.update(static_cast<double>(docs), Progress::human(static_cast<double>(tokens)) + " tokens");
    });
    out.close();
    progress.finish(Progress::human(static_cast<double>(tokens)) + " tokens");
    log_skipped(d.train, st);
  }
  if (docs == 0) throw Error("corpus " + d.train + " has no usable documents");
  replace_directory(tmp, final_dir);
  nlohmann::json summary = {{"vocab_size", tok->vocab_size()}, {"docs", docs}, {"tokens", tokens},
                            {"bytes", bytes}, {"bytes_per_token", static_cast<double>(bytes) / std::max<int64_t>(1, tokens)}};
  dir_.finish("tokenizer", fp("tokenizer"), config_text("tokenizer"), summary);
  spdlog::info("[tokenizer] {} documents, {} tokens ({:.2f} bytes/token) -> {}", docs, tokens,
               summary["bytes_per_token"].get<double>(), final_dir);
}

// ---- cluster ----------------------------------------------------------------------------
void Pipeline::cluster() {
  if (done("cluster")) {
    spdlog::info("[cluster] finished earlier; skipping");
    return;
  }
  const auto& d = cfg_.data;
  std::vector<Document> docs = read_corpus(d.train, corpus_options(d, d.cluster_docs));
  const int32_t k = experts();
  if (k > static_cast<int64_t>(docs.size()))
    throw Error(cfg_.file() + ": clusterer.k = " + std::to_string(k) + " is larger than the number of documents used for clustering (" +
                std::to_string(docs.size()) + " from " + d.train + ")");
  std::vector<std::string> domains;
  for (const auto& doc : docs) domains.push_back(doc.field(d.domain_field));
  std::vector<std::string> texts = texts_of(docs);

  Progress timer("cluster", 0, "docs", 1e9);
  auto emb = host_.registry().create<Embedder>(cfg_.node("embedder"));
  spdlog::info("[cluster] fitting embedder '{}' on {} documents", cfg_.node("embedder").node["type"].as<std::string>(), texts.size());
  emb->fit(texts);
  Matrix x = emb->embed(texts);
  const double embed_s = timer.elapsed_s();
  auto cl = host_.registry().create<Clusterer>(cfg_.node("clusterer"));
  spdlog::info("[cluster] fitting clusterer '{}' (k={}) on {} x {} embeddings", cfg_.node("clusterer").node["type"].as<std::string>(), k, x.rows, x.cols);
  cl->fit(x);
  const Assignment a = cl->assign(x);
  std::vector<int64_t> sizes(static_cast<size_t>(k), 0);
  std::map<std::string, std::vector<int64_t>> overlap;
  for (size_t i = 0; i < a.cluster.size(); ++i) {
    ++sizes[a.cluster[i]];
    if (!domains[i].empty()) {
      auto& row = overlap[domains[i]];
      row.resize(static_cast<size_t>(k), 0);
      ++row[a.cluster[i]];
    }
  }
  ArtifactWriter w("clusterer", cfg_.resolved());
  w.add("embedder", *emb, cfg_.node("embedder").node);
  w.add("clusterer", *cl, cfg_.node("clusterer").node);
  w.set_meta("fit_docs", std::to_string(texts.size()));
  w.set_meta("k", std::to_string(k));
  w.write(dir_.clusterer());
  nlohmann::json summary = {{"fit_docs", texts.size()}, {"k", k}, {"sizes", sizes},
                            {"embed_seconds", embed_s}, {"seconds", timer.elapsed_s()}};
  if (!overlap.empty()) summary["domain_overlap"] = overlap;
  dir_.finish("cluster", fp("cluster"), config_text("cluster"), summary);
  auto [mn, mx] = std::minmax_element(sizes.begin(), sizes.end());
  spdlog::info("[cluster] k={} fitted in {:.1f}s; cluster sizes on the fit set: min {} max {} -> {}", k,
               timer.elapsed_s(), *mn, *mx, dir_.clusterer());
}

// ---- assign -----------------------------------------------------------------------------
void Pipeline::assign() {
  require_done("cluster", "cbtm cluster CONFIG --out " + dir_.root());
  if (!done("tokenizer")) tokenize();
  if (done("assign")) {
    spdlog::info("[assign] finished earlier; skipping");
    return;
  }
  const auto& d = cfg_.data;
  ArtifactReader art(dir_.clusterer(), "clusterer");
  auto emb = art.load<Embedder>(host_.registry(), "embedder");
  auto cl = art.load<Clusterer>(host_.registry(), "clusterer");
  const int32_t k = cl->k();
  const int32_t vocab = std::stoi(ArtifactReader(dir_.tokenizer(), "tokenizer").file().meta("vocab_size"));

  remove_stale_temps(dir_.root());
  const std::string tmp = temp_path_for(dir_.clusters());
  std::vector<std::unique_ptr<TokenShardWriter>> writers;
  for (int32_t j = 0; j < k; ++j) {
    char name[32];
    std::snprintf(name, sizeof name, "/cluster-%03d", j);
    writers.push_back(std::make_unique<TokenShardWriter>(tmp + name, vocab));
  }
  TokenShardReader all(dir_.path("tokens/all"));
  std::string tsv = "doc_id\tcluster\tsqdist\n";
  std::vector<int64_t> docs(static_cast<size_t>(k), 0), tokens(static_cast<size_t>(k), 0);
  std::map<std::string, std::vector<int64_t>> overlap;
  int64_t n = 0;
  Progress progress("assign", 0, "docs");
  std::vector<int32_t> toks;
  const CorpusStats st = for_each_batch(d.train, corpus_options(d, 0), [&](std::vector<Document>& batch) {
    std::vector<std::string> texts;
    texts.reserve(batch.size());
    for (const auto& doc : batch) texts.push_back(doc.text);
    const Assignment a = cl->assign(emb->embed(texts));
    for (size_t i = 0; i < batch.size(); ++i) {
      const int32_t c = a.cluster[i];
      if (!all.next(toks))
        throw Error(dir_.path("tokens/all") + " holds fewer documents than " + d.train + "; redo the tokenizer stage (--redo tokenizer)");
      writers[c]->add(toks);
      ++docs[c];
      tokens[c] += static_cast<int64_t>(toks.size());
      const std::string& dom = batch[i].field(d.domain_field);
      if (!dom.empty()) {
        auto& row = overlap[dom];
        row.resize(static_cast<size_t>(k), 0);
        ++row[c];
      }
      tsv += batch[i].id + "\t" + std::to_string(c) + "\t" + std::to_string(a.sqdist[i]) + "\n";
    }
    n += static_cast<int64_t>(batch.size());
    progress.update(static_cast<double>(n));
  });
  if (all.next(toks))
    throw Error(dir_.path("tokens/all") + " holds more documents than " + d.train + "; redo the tokenizer stage (--redo tokenizer)");
  log_skipped(d.train, st);
  for (auto& w : writers) w->close();
  write_file_atomic(tmp + "/assignments.tsv", tsv);
  replace_directory(tmp, dir_.clusters());
  progress.finish();

  nlohmann::json clusters = nlohmann::json::array();
  for (int32_t j = 0; j < k; ++j) clusters.push_back({{"cluster", j}, {"docs", docs[j]}, {"tokens", tokens[j]}});
  nlohmann::json summary = {{"k", k}, {"docs", n}, {"clusters", clusters}};
  if (!overlap.empty()) summary["domain_overlap"] = overlap;
  dir_.finish("assign", fp("assign"), config_text("assign"), summary);
  for (int32_t j = 0; j < k; ++j)
    spdlog::info("[assign] cluster {:>3}: {:>8} docs {:>10} tokens", j, docs[j], tokens[j]);
  for (int32_t j = 0; j < k; ++j)
    if (docs[j] == 0) spdlog::warn("[assign] cluster {} received no documents; its expert cannot be trained", j);
}

}  // namespace cbtm
