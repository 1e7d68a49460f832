// Data stages: tokenizer, cluster (Step 0). The assign stage is in stage_assign.cpp.
#include <algorithm>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cbtm/artifact.h"
#include "cbtm/cluster_analysis.h"
#include "cbtm/clusterer.h"
#include "cbtm/corpus.h"
#include "cbtm/embedder.h"
#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/pipeline/cluster_text.h"
#include "cbtm/pipeline/pipeline.h"
#include "cbtm/plugin_host.h"
#include "cbtm/progress.h"
#include "cbtm/token_shard.h"
#include "cbtm/tokenizer.h"

namespace fs = std::filesystem;

namespace cbtm {
namespace {

CorpusOptions corpus_options(const DataOptions& d, int64_t limit) {
  CorpusOptions o;
  o.text_field = d.text_field;
  o.id_field = d.id_field;
  o.on_bad_document = d.on_bad_document;
  o.max_docs = d.max_train_docs;
  o.max_docs_per_file = true;  // max_train_docs is per input file (as in assign)
  o.max_total_docs = limit;    // and the first `limit` of those in all
  return o;
}

// `limit` training documents (0: all), picked as data.sample says.
std::vector<Document> training_subset(const DataOptions& d, int64_t limit, uint64_t seed) {
  if (limit == 0 || d.sample == "first") return read_corpus(d.train, corpus_options(d, limit));
  std::vector<Document> docs = sample_corpus(d.train, corpus_options(d, 0), limit, seed);
  spdlog::info("sampled {} documents uniformly from {} (data.sample: uniform)", docs.size(), d.train);
  return docs;
}

std::vector<std::string> texts_of(std::vector<Document>& docs) {
  std::vector<std::string> t;
  t.reserve(docs.size());
  for (auto& d : docs) t.push_back(std::move(d.text));
  return t;
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
    std::vector<Document> sample = training_subset(d, d.tokenizer_docs, cfg_.seed);
    tok = host_.registry().create<Tokenizer>(cfg_.node("tokenizer"));
    tok->train(texts_of(sample));
    tok_options = cfg_.node("tokenizer").node;
  }
  ArtifactWriter w("tokenizer", cfg_.resolved());
  w.add("tokenizer", *tok, tok_options);
  w.set_meta("vocab_size", std::to_string(tok->vocab_size()));
  w.write(dir_.tokenizer());
  spdlog::info("[tokenizer] vocabulary of {} tokens -> {}", tok->vocab_size(), dir_.tokenizer());

  nlohmann::json summary = {{"vocab_size", tok->vocab_size()}};
  finish_stage("tokenizer", summary);
}

// ---- cluster ----------------------------------------------------------------------------
void Pipeline::cluster() {
  if (done("cluster")) {
    spdlog::info("[cluster] finished earlier; skipping");
    return;
  }
  const auto& d = cfg_.data;
  std::vector<Document> docs = training_subset(d, d.cluster_docs, cfg_.seed + 1);  // not the tokenizer's sample
  const int32_t k = experts();
  if (k > static_cast<int64_t>(docs.size()))
    throw Error(cfg_.file() + ": clusterer.k = " + std::to_string(k) + " is larger than the number of documents used for clustering (" +
                std::to_string(docs.size()) + " from " + d.train + ")");
  std::vector<std::string> domains;
  for (const auto& doc : docs) domains.push_back(d.domain_field.empty() ? std::string() : doc.field(d.domain_field));
  std::vector<std::string> texts;
  texts.reserve(docs.size());
  const ClusterTextSpec cut = cluster_text_spec();
  for (auto& doc : docs) texts.push_back(cluster_text(doc.text, doc.id, cut));
  if (cut.mode != "document")
    spdlog::info("[cluster] routing-aware clustering: embedding each document's {} of {} bytes", cut.mode, cut.chars);

  Progress timer("cluster", 0, "docs", 1e9);
  auto emb = host_.registry().create<Embedder>(cfg_.node("embedder"));
  spdlog::info("[cluster] fitting embedder '{}' on {} documents", cfg_.node("embedder").node["type"].as<std::string>(), texts.size());
  Matrix x = emb->fit_embed(texts);
  const double embed_s = timer.elapsed_s();
  auto cl = host_.registry().create<Clusterer>(cfg_.node("clusterer"));
  spdlog::info("[cluster] fitting clusterer '{}' (k={}) on {} x {} embeddings", cfg_.node("clusterer").node["type"].as<std::string>(), k, x.rows, x.cols);
  std::vector<std::string> meta;
  if (!cl->metadata_field().empty()) {
    for (const auto& doc : docs) meta.push_back(doc.field(cl->metadata_field()));
    cl->fit_with_metadata(x, meta);
  } else {
    cl->fit(x);
  }
  const Assignment a = meta.empty() ? cl->assign(x) : cl->assign_with_metadata(x, meta);
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
  if (!overlap.empty()) {
    summary["domain_overlap"] = overlap;
    const Contingency t = contingency(domains, a.cluster, k);
    summary["nmi"] = nmi(t);
    summary["purity"] = purity(t);
  }
  // Top terms of every centre (embedders that can map back to their vocabulary).
  nlohmann::json terms = nlohmann::json::array();
  for (int32_t j = 0; j < k; ++j) {
    nlohmann::json row = nlohmann::json::array();
    for (const auto& tw : emb->top_terms(cl->centers().row(j), 12)) row.push_back({tw.term, tw.weight});
    terms.push_back(row);
  }
  summary["top_terms"] = terms;
  finish_stage("cluster", summary);
  auto [mn, mx] = std::minmax_element(sizes.begin(), sizes.end());
  spdlog::info("[cluster] k={} fitted in {:.1f}s; cluster sizes on the fit set: min {} max {} -> {}", k,
               timer.elapsed_s(), *mn, *mx, dir_.clusterer());
  if (summary.contains("nmi"))
    spdlog::info("[cluster] fit set against '{}': NMI {:.3f}, purity {:.3f} (cbtm inspect {} for the table)", d.domain_field,
                 summary["nmi"].get<double>(), summary["purity"].get<double>(), dir_.root());
}

}  // namespace cbtm
