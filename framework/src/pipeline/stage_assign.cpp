// The assign stage: every training document -> its nearest cluster, tokenized into that
// cluster's shards. Sharded by input file (one Slurm array task each), committed in parts
// (a killed task resumes after its last part), merged into clusters/ by one command.
//
//   assign/shard-SSSSS/part-PPPPP/cluster-KKK/shard-*.safetensors   tokens of the part
//   assign/shard-SSSSS/part-PPPPP/assignments.tsv                   doc_id  cluster  sqdist
//   assign/shard-SSSSS/part-PPPPP/part.json                          counts, fingerprint
//   assign/shard-SSSSS/shard.json                                    the shard is complete
//   clusters/cluster-KKK/shard-*.safetensors   hard links to every part's files, in order
//   clusters/assignments.tsv                   all parts concatenated (header once)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
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
#include "cbtm/json_file.h"
#include "cbtm/pipeline/cluster_text.h"
#include "cbtm/pipeline/pipeline.h"
#include "cbtm/plugin_host.h"
#include "cbtm/progress.h"
#include "cbtm/token_shard.h"
#include "cbtm/tokenizer.h"

namespace fs = std::filesystem;

namespace cbtm {
namespace {

std::string numbered(const char* prefix, int64_t i, int width = 5) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%0*lld", prefix, width, static_cast<long long>(i));
  return buf;
}

// Removes leftovers of a killed attempt (".tmp-" entries) inside `dir`.
void remove_temps(const std::string& dir) {
  if (!fs::is_directory(dir)) return;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) fs::remove_all(e.path());
}

// The input file a shard (or part) was made from: its name and size, recorded in part.json and
// shard.json. Shard I is data.train's I-th file in sorted order, so a file added to or removed
// from a directory renumbers the shards after it: output made from another file is stale.
nlohmann::json input_identity(const std::string& path) {
  std::error_code ec;
  const auto bytes = fs::file_size(path, ec);
  return {{"input", fs::path(path).filename().string()}, {"input_bytes", ec ? int64_t{-1} : static_cast<int64_t>(bytes)}};
}

bool same_input(const nlohmann::json& rec, const nlohmann::json& id) {
  return rec.value("input", "") == id["input"].get<std::string>() &&
         rec.value("input_bytes", int64_t{-2}) == id["input_bytes"].get<int64_t>();
}

std::string describe_input(const nlohmann::json& rec) {
  if (!rec.contains("input")) return "an unrecorded input";
  return rec.value("input", "") + " (" + std::to_string(rec.value("input_bytes", int64_t{-1})) + " bytes)";
}

// All of data.train's files, names and sizes in shard order, as one line of the assign record.
nlohmann::json inputs_identity(const std::vector<std::string>& files) {
  std::string list;
  for (const auto& f : files) {
    const auto id = input_identity(f);
    list += id["input"].get<std::string>() + "\t" + std::to_string(id["input_bytes"].get<int64_t>()) + "\n";
  }
  return {{"files", files.size()}, {"fingerprint", fingerprint(list)}};
}

// Committed parts of a shard, in order, with their records.
std::vector<std::pair<std::string, nlohmann::json>> committed_parts(const std::string& shard_dir) {
  std::vector<std::pair<std::string, nlohmann::json>> parts;
  if (!fs::is_directory(shard_dir)) return parts;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(shard_dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("part-", 0) == 0 && n.find(".tmp-") == std::string::npos && fs::exists(e.path() / "part.json"))
      names.push_back(n);
  }
  // numeric order: part-99999 before part-100000 (shorter names first, then by name)
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != numbered("part", static_cast<int64_t>(i)))
      throw Error(shard_dir + ": parts are not numbered 0.." + std::to_string(names.size() - 1) + " (found " +
                  names[i] + "); delete the directory to recompute the shard");
    const std::string p = shard_dir + "/" + names[i];
    parts.emplace_back(p, read_json_file(p + "/part.json"));
  }
  return parts;
}

// Per-cluster counters of a part, a shard or the whole corpus.
struct Tally {
  std::vector<int64_t> docs, tokens;
  std::map<std::string, std::vector<int64_t>> overlap;  // domain -> per-cluster docs
  int64_t no_terms = 0;  // documents whose embedding is all zero

  explicit Tally(int32_t k) : docs(static_cast<size_t>(k), 0), tokens(static_cast<size_t>(k), 0) {}
  void add(const nlohmann::json& j) {
    const auto d = j.at("docs").get<std::vector<int64_t>>();
    const auto t = j.at("tokens").get<std::vector<int64_t>>();
    if (d.size() != docs.size()) throw Error("assign record with " + std::to_string(d.size()) + " clusters, expected " + std::to_string(docs.size()));
    for (size_t c = 0; c < d.size(); ++c) {
      docs[c] += d[c];
      tokens[c] += t[c];
    }
    const nlohmann::json ov = j.value("domain_overlap", nlohmann::json::object());
    for (const auto& [dom, row] : ov.items()) {
      auto& mine = overlap[dom];
      mine.resize(docs.size(), 0);
      for (size_t c = 0; c < row.size(); ++c) mine[c] += row[c].get<int64_t>();
    }
    no_terms += j.value("no_terms", int64_t{0});
  }
  int64_t total_docs() const {
    int64_t s = 0;
    for (auto v : docs) s += v;
    return s;
  }
  nlohmann::json json() const {
    nlohmann::json j = {{"docs", docs}, {"tokens", tokens}, {"no_terms", no_terms}};
    if (!overlap.empty()) j["domain_overlap"] = overlap;
    return j;
  }
};

// Removes a shard's folder so that a kill half-way leaves nothing that looks like output: it is
// renamed first (a removal interrupted part-way could leave a part folder without its
// part.json, which a later commit of that part could not rename over).
void discard_shard(const std::string& sdir) {
  if (!fs::exists(sdir)) return;
  const std::string gone = sdir + ".discarded";
  fs::remove_all(gone);  // an earlier discard that was killed
  fs::rename(sdir, gone);
  fs::remove_all(gone);
}

// Part folders without a part.json: left by a removal interrupted before discard_shard renamed
// first. Never output (a part is renamed into place after its part.json is written).
void remove_broken_parts(const std::string& sdir) {
  if (!fs::is_directory(sdir)) return;
  std::vector<fs::path> broken;
  for (const auto& e : fs::directory_iterator(sdir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("part-", 0) == 0 && n.find(".tmp-") == std::string::npos && e.is_directory() &&
        !fs::exists(e.path() / "part.json"))
      broken.push_back(e.path());
  }
  for (const auto& b : broken) {
    spdlog::warn("removing {}: a part folder without part.json (left by an interrupted removal)", b.string());
    fs::remove_all(b);
  }
}

}  // namespace

std::vector<std::string> Pipeline::assign_inputs() const { return corpus_files(cfg_.data.train); }

std::string Pipeline::assign_shard_dir(int64_t shard) const { return dir_.path("assign/" + numbered("shard", shard)); }

void Pipeline::require_assign_inputs() const {
  require_done("tokenizer", "cbtm cluster " + cfg_.file() + " --out " + dir_.root());
  require_done("cluster", "cbtm cluster " + cfg_.file() + " --out " + dir_.root());
}

void Pipeline::assign_shard(int64_t shard) {
  const auto files = assign_inputs();
  if (shard < 0 || shard >= static_cast<int64_t>(files.size()))
    throw Error("--shard " + std::to_string(shard) + ": data.train (" + cfg_.data.train + ") has " +
                std::to_string(files.size()) + " input file(s), so shards are 0.." + std::to_string(files.size() - 1));
  require_assign_inputs();
  const std::string input = files[static_cast<size_t>(shard)];
  const std::string sdir = assign_shard_dir(shard);
  const std::string want = fp("assign");
  const std::string label = "[assign " + numbered("shard", shard) + "]";

  const nlohmann::json id = input_identity(input);
  take_lock("assign-" + numbered("shard", shard), "assign " + numbered("shard", shard));
  struct Release {
    const Pipeline* p;
    std::string name;
    ~Release() { p->release_lock(name); }
  } release{this, "assign-" + numbered("shard", shard)};
  // `--redo assign` with --shard: this shard only (each array task its own); the merge runs again
  if (redo_assign() && !redo_.count("done:" + sdir)) {
    redo_.insert("done:" + sdir);
    if (fs::exists(sdir)) spdlog::info("{} --redo: discarding {}", label, sdir);
    discard_shard(sdir);
    dir_.forget("assign");
  }
  fs::remove_all(sdir + ".discarded");  // a discard that was killed half-way
  remove_broken_parts(sdir);
  // A shard made by another attempt (other config, clusterer or input file) is discarded.
  if (fs::exists(sdir + "/shard.json") || fs::is_directory(sdir)) {
    std::string why;
    auto check = [&](const nlohmann::json& rec) {
      if (!why.empty()) return;
      if (rec.value("fingerprint", "") != want) why = "another config or clusterer";
      else if (!same_input(rec, id))
        why = "another input file: it was assigned from " + describe_input(rec) + ", and data.train's file " +
              std::to_string(shard) + " is now " + describe_input(id);
    };
    if (fs::exists(sdir + "/shard.json")) check(read_json_file(sdir + "/shard.json"));
    for (const auto& [p, rec] : committed_parts(sdir)) check(rec);
    if (!why.empty()) {
      spdlog::info("{} discarding output of an earlier attempt with {}", label, why);
      discard_shard(sdir);
    }
  }
  if (fs::exists(sdir + "/shard.json")) {
    spdlog::info("{} finished earlier; skipping", label);
    return;
  }
  make_dirs(sdir);
  remove_temps(sdir);

  const auto& d = cfg_.data;
  ArtifactReader art(dir_.clusterer(), "clusterer");
  auto emb = art.load<Embedder>(host_.registry(), "embedder");
  auto cl = art.load<Clusterer>(host_.registry(), "clusterer");
  auto tok = load_tokenizer();
  const int32_t k = cl->k();
  const std::string meta_field = cl->metadata_field();
  const ClusterTextSpec cut = cluster_text_spec();

  auto parts = committed_parts(sdir);
  int64_t done_docs = 0;
  for (const auto& [p, rec] : parts) done_docs += rec.at("docs_read").get<int64_t>();
  if (done_docs > 0) spdlog::info("{} resuming after {} committed part(s), {} documents", label, parts.size(), done_docs);

  CorpusOptions co;
  co.text_field = d.text_field;
  co.id_field = d.id_field;
  co.id_corpus = d.train;  // ids as when the whole corpus is read (files sharing a stem stay apart)
  co.on_bad_document = d.on_bad_document;
  co.max_docs = d.max_train_docs > 0 ? d.max_train_docs - done_docs : 0;
  co.skip_docs = done_docs;
  if (d.max_train_docs > 0 && co.max_docs <= 0) co.max_docs = -1;  // limit reached: read nothing
  spdlog::info("{} {} -> {} ({} clusters, {} documents per part)", label, input, sdir, k, d.assign_part_docs);

  CorpusReader reader(input, co);
  const int64_t batch_docs = std::max<int64_t>(1, std::min<int64_t>(d.assign_batch_docs, d.assign_part_docs));
  auto read_batch = [&reader, batch_docs, &co]() {
    std::vector<Document> b;
    if (co.max_docs < 0) return b;
    Document doc;
    while (static_cast<int64_t>(b.size()) < batch_docs && reader.next(doc)) b.push_back(std::move(doc));
    return b;
  };

  Progress progress("assign " + numbered("shard", shard), 0, "docs");
  int64_t shard_docs = done_docs;
  // Batches are read one ahead on another thread; a batch that straddles a part boundary is
  // split, its tail carried into the next part, so parts hold exactly assign_part_docs.
  std::future<std::vector<Document>> ahead;
  bool in_flight = false;
  std::vector<Document> carry;
  auto take = [&]() {
    std::vector<Document> b;
    if (!carry.empty()) b.swap(carry);
    else if (in_flight) {
      in_flight = false;
      b = ahead.get();
    } else {
      b = read_batch();
    }
    return b;
  };
  auto prefetch = [&]() {
    if (in_flight || !carry.empty()) return;
    ahead = std::async(std::launch::async, read_batch);
    in_flight = true;
  };
  std::vector<Document> batch = take();
  int64_t part_index = static_cast<int64_t>(parts.size());
  while (!batch.empty()) {
    // ---- one part: up to assign_part_docs documents, committed atomically ------------
    const std::string part_dir = sdir + "/" + numbered("part", part_index);
    const std::string tmp = temp_path_for(part_dir);
    make_dirs(tmp);
    std::vector<std::unique_ptr<TokenShardWriter>> writers;
    for (int32_t j = 0; j < k; ++j)
      writers.push_back(std::make_unique<TokenShardWriter>(tmp + "/" + numbered("cluster", j, 3), tok->vocab_size(),
                                                           int64_t{16} << 20));
    std::ofstream tsv(tmp + "/assignments.tsv", std::ios::binary);
    if (!tsv) throw Error("cannot write " + tmp + "/assignments.tsv");
    Tally tally(k);
    int64_t part_docs = 0;
    while (!batch.empty() && part_docs < d.assign_part_docs) {
      const int64_t room = d.assign_part_docs - part_docs;
      if (static_cast<int64_t>(batch.size()) > room) {
        carry.assign(std::make_move_iterator(batch.begin() + room), std::make_move_iterator(batch.end()));
        batch.resize(static_cast<size_t>(room));
      }
      prefetch();  // read ahead while we work
      const int64_t n = static_cast<int64_t>(batch.size());
      std::vector<std::string> texts(static_cast<size_t>(n));
      std::vector<std::string> meta;
      for (int64_t i = 0; i < n; ++i) {
        texts[i] = std::move(batch[i].text);
        if (!meta_field.empty()) meta.push_back(batch[i].field(meta_field));
      }
      Matrix x;
      if (cut.mode == "document") {
        x = emb->embed(texts);
      } else {
        std::vector<std::string> cuts(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) cuts[i] = cluster_text(texts[i], batch[i].id, cut);
        x = emb->embed(cuts);
      }
      const Assignment a = meta_field.empty() ? cl->assign(x) : cl->assign_with_metadata(x, meta);
      std::vector<std::vector<int32_t>> ids(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic, 64)
      for (int64_t i = 0; i < n; ++i) ids[i] = tok->encode(texts[i]);
      std::string lines;
      for (int64_t i = 0; i < n; ++i) {
        const int32_t c = a.cluster[i];
        writers[c]->add(ids[i]);
        ++tally.docs[c];
        tally.tokens[c] += static_cast<int64_t>(ids[i].size());
        bool zero = true;
        for (int64_t j = 0; j < x.cols && zero; ++j) zero = x.at(i, j) == 0.f;
        tally.no_terms += zero;
        const std::string& dom = d.domain_field.empty() ? std::string() : batch[i].field(d.domain_field);
        if (!dom.empty()) {
          auto& row = tally.overlap[dom];
          row.resize(static_cast<size_t>(k), 0);
          ++row[c];
        }
        char num[48];
        std::snprintf(num, sizeof num, "\t%d\t%.6g\n", c, a.sqdist[i]);
        lines += batch[i].id;
        lines += num;
      }
      tsv << lines;
      part_docs += n;
      shard_docs += n;
      progress.update(static_cast<double>(shard_docs));
      batch = take();
    }
    for (auto& w : writers) w->close();
    tsv.close();
    if (!tsv) throw Error("cannot write " + tmp + "/assignments.tsv (disk full?)");
    nlohmann::json rec = tally.json();
    rec["docs_read"] = part_docs;
    rec["fingerprint"] = want;
    rec.update(id);
    write_file_atomic(tmp + "/part.json", rec.dump(1));
    fs::rename(tmp, part_dir);
    parts.emplace_back(part_dir, rec);
    ++part_index;
  }
  progress.finish();

  const CorpusStats& st = reader.stats();
  if (st.bad_total() > 0) spdlog::warn("{}: skipped {} bad line(s) (first: {})", input, st.bad_total(), st.first_bad);
  Tally total(k);
  for (const auto& [p, rec] : parts) total.add(rec);
  if (total.total_docs() == 0 && st.bad_total() > 0)  // as read_corpus: not a shard of 0 documents
    throw Error(input + ": no usable documents: all " + std::to_string(st.bad_total()) + " line(s) were bad (first: " +
                st.first_bad + "); is it JSON Lines with a '" + d.text_field + "' field?");
  nlohmann::json shard_rec = total.json();
  shard_rec.update(id);
  shard_rec["parts"] = parts.size();
  shard_rec["fingerprint"] = want;
  shard_rec["bad_lines"] = st.bad_total();  // of this (last) attempt
  write_file_atomic(sdir + "/shard.json", shard_rec.dump(1));
  spdlog::info("{} {} documents in {} part(s)", label, total.total_docs(), parts.size());
}

bool Pipeline::redo_assign() const { return redo_.count("assign") || redo_.count("all"); }

void Pipeline::check_assign_inputs_unchanged() const {
  std::vector<std::string> files;
  try {
    files = assign_inputs();
  } catch (const Error&) {
    return;  // the training data is gone (e.g. purged scratch): the finished stage stands
  }
  const nlohmann::json r = dir_.record("assign");
  nlohmann::json was;
  if (r.is_object() && r.contains("summary") && r["summary"].is_object()) was = r["summary"].value("inputs", nlohmann::json());
  if (was.is_null()) return;  // recorded before inputs were
  const nlohmann::json now = inputs_identity(files);
  if (was.value("fingerprint", "") != now["fingerprint"].get<std::string>())
    throw Error("data.train (" + cfg_.data.train + ") has changed since the assign stage finished in " + dir_.root() +
                ": it listed " + std::to_string(was.value("files", int64_t{0})) + " file(s), it now lists " +
                std::to_string(files.size()) + " (names or sizes differ); `--redo assign` reassigns the corpus " +
                "(and retrains what depends on it)");
}

void Pipeline::merge_assign() {
  if (redo_assign() && !redo_.count("done:assign")) {
    // the shards are redone by their own tasks (--shard --redo) or reused: only the merge reruns
    redo_.insert("done:assign");
    dir_.forget("assign");
  }
  if (done("assign")) {
    check_assign_inputs_unchanged();
    spdlog::info("[assign] finished earlier; skipping");
    return;
  }
  require_assign_inputs();
  take_lock("assign-merge", "the assign merge");
  const auto files = assign_inputs();
  const std::string want = fp("assign");
  std::vector<std::string> missing;
  int64_t n_missing = 0;
  for (size_t s = 0; s < files.size(); ++s) {
    const std::string rec = assign_shard_dir(static_cast<int64_t>(s)) + "/shard.json";
    std::string why;
    if (!fs::exists(rec)) why = "";
    else {
      const nlohmann::json j = read_json_file(rec);
      if (j.value("fingerprint", "") != want) why = " (made with another config)";
      else if (!same_input(j, input_identity(files[s])))
        why = " (made from " + describe_input(j) + ", now " + describe_input(input_identity(files[s])) + ")";
      else continue;
    }
    if (++n_missing <= 20) missing.push_back(std::to_string(s) + why);
  }
  if (n_missing > 0) {
    std::string list;
    for (size_t i = 0; i < missing.size(); ++i) list += (i ? ", " : "") + missing[i];
    if (n_missing > 20) list += ", ...";
    throw Error("cannot merge: " + std::to_string(n_missing) + " of " + std::to_string(files.size()) +
                " input shard(s) are not assigned yet (" + list + "); run `cbtm assign " + cfg_.file() + " --out " +
                dir_.root() + " --shard I` for each");
  }
  ArtifactReader art(dir_.clusterer(), "clusterer");
  const int32_t k = std::stoi(art.file().meta("k"));

  remove_temps(dir_.root());
  const std::string tmp = temp_path_for(dir_.clusters());
  make_dirs(tmp);
  std::vector<int64_t> next_file(static_cast<size_t>(k), 0);
  for (int32_t j = 0; j < k; ++j) make_dirs(tmp + "/" + numbered("cluster", j, 3));
  std::ofstream tsv(tmp + "/assignments.tsv", std::ios::binary);
  tsv << "doc_id\tcluster\tsqdist\n";
  Tally total(k);
  int64_t nparts = 0;
  for (size_t s = 0; s < files.size(); ++s) {
    // The shard's lock, so that a `--shard I --redo assign` running now cannot change it under us;
    // and its committed parts must be the ones its shard.json counted.
    const std::string lock = "assign-" + numbered("shard", static_cast<int64_t>(s));
    take_lock(lock, "assign " + numbered("shard", static_cast<int64_t>(s)));
    struct Release {
      const Pipeline* p;
      std::string name;
      ~Release() { p->release_lock(name); }
    } release{this, lock};
    const std::string sdir = assign_shard_dir(static_cast<int64_t>(s));
    const auto parts = committed_parts(sdir);
    const nlohmann::json srec = read_json_file(sdir + "/shard.json");
    Tally recorded(k), found(k);
    recorded.add(srec);
    for (const auto& [p, rec] : parts) found.add(rec);
    if (static_cast<int64_t>(parts.size()) != srec.value("parts", int64_t{-1}) || found.docs != recorded.docs)
      throw Error(sdir + ": its shard.json counts " + std::to_string(srec.value("parts", int64_t{-1})) + " part(s) and " +
                  std::to_string(recorded.total_docs()) + " documents, but " + std::to_string(parts.size()) +
                  " part(s) with " + std::to_string(found.total_docs()) +
                  " documents are there; `cbtm assign ... --shard " + std::to_string(s) + " --redo assign` recomputes it");
    for (const auto& [p, rec] : parts) {
      total.add(rec);
      ++nparts;
      for (int32_t j = 0; j < k; ++j) {
        const std::string src = p + "/" + numbered("cluster", j, 3);
        for (const auto& f : list_token_shards(src)) {
          const std::string dst = tmp + "/" + numbered("cluster", j, 3) + "/" + numbered("shard", next_file[j]++) + ".safetensors";
          std::error_code ec;
          fs::create_hard_link(f, dst, ec);
          if (ec) fs::copy_file(f, dst);  // another file system: copy
        }
      }
      std::ifstream in(p + "/assignments.tsv", std::ios::binary);
      if (!in) throw Error("cannot read " + p + "/assignments.tsv (a committed part without it: --redo assign)");
      tsv << in.rdbuf();
    }
  }
  tsv.close();
  if (!tsv) throw Error("cannot write " + tmp + "/assignments.tsv (disk full?)");
  replace_directory(tmp, dir_.clusters());

  nlohmann::json clusters = nlohmann::json::array();
  for (int32_t j = 0; j < k; ++j) clusters.push_back({{"cluster", j}, {"docs", total.docs[j]}, {"tokens", total.tokens[j]}});
  nlohmann::json summary = {{"k", k}, {"docs", total.total_docs()}, {"input_shards", files.size()}, {"parts", nparts},
                            {"no_terms", total.no_terms}, {"clusters", clusters}, {"inputs", inputs_identity(files)}};
  const SizeSummary sz = size_summary(total.docs);
  summary["sizes"] = {{"min", sz.min}, {"q1", sz.q1}, {"median", sz.median}, {"q3", sz.q3}, {"max", sz.max},
                      {"cv", sz.cv}, {"empty", sz.empty}};
  if (!total.overlap.empty()) {
    summary["domain_overlap"] = total.overlap;
    Contingency t;
    t.k = k;
    for (const auto& [dom, row] : total.overlap) {
      t.labels.push_back(dom);
      t.counts.insert(t.counts.end(), row.begin(), row.end());
    }
    summary["nmi"] = nmi(t);
    summary["purity"] = purity(t);
  }
  finish_stage("assign", summary);
  for (int32_t j = 0; j < k; ++j)
    spdlog::info("[assign] cluster {:>3}: {:>8} docs {:>10} tokens", j, total.docs[j], total.tokens[j]);
  if (total.no_terms > 0)
    spdlog::info("[assign] {} document(s) had no in-vocabulary term (zero embedding): each went to the centre "
                 "nearest the origin", total.no_terms);
  if (summary.contains("nmi"))
    spdlog::info("[assign] against '{}': NMI {:.3f}, purity {:.3f}", cfg_.data.domain_field, summary["nmi"].get<double>(),
                 summary["purity"].get<double>());
  for (int32_t j = 0; j < k; ++j)
    if (total.docs[j] == 0) spdlog::warn("[assign] cluster {} received no documents; its expert cannot be trained", j);
}

void Pipeline::assign() {
  if (!done("tokenizer")) tokenize();
  require_done("cluster", "cbtm cluster " + cfg_.file() + " --out " + dir_.root());
  if (done("assign")) {
    check_assign_inputs_unchanged();
    spdlog::info("[assign] finished earlier; skipping");
    return;
  }
  const auto files = assign_inputs();
  if (files.size() > 1) spdlog::info("[assign] {} input shards ({})", files.size(), cfg_.data.train);
  for (size_t s = 0; s < files.size(); ++s) assign_shard(static_cast<int64_t>(s));
  merge_assign();
}

}  // namespace cbtm
