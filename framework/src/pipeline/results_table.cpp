#include "cbtm/pipeline/results_table.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <vector>

namespace cbtm {
namespace {

// A number of the results; JSON writes a non-finite one (an infinite perplexity) as null.
double num(const nlohmann::json& v) { return v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN(); }

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string pad(const std::string& s, size_t w, bool right = false) {
  if (s.size() >= w) return s;
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

}  // namespace

std::string format_results(const nlohmann::json& r) {
  const nlohmann::json& models = r.at("models");
  double dense = 0;
  for (const auto& m : models)
    if (m.value("role", "") == "dense") dense = num(m["ppl"]);
  std::string out;
  const auto& ev = r.at("eval");
  out += "held-out: " + std::to_string(ev.value("docs", 0)) + " documents, " + std::to_string(ev.value("tokens", 0)) +
         " scored tokens; training tokens after branching: " + std::to_string(r.value("branch_tokens", 0)) +
         " (k=" + std::to_string(r.value("k", 0)) + ", " + std::to_string(r.value("tokens_per_expert", 0)) + " per expert)\n\n";
  size_t w = 22;
  for (const auto& m : models) w = std::max(w, m["name"].get<std::string>().size() + 2);
  out += pad("model", w) + pad("ppl", 10, true) + pad("bits/byte", 11, true) + pad("vs dense", 10, true) +
         pad("experts/token", 15, true) + "\n";
  out += std::string(w + 46, '-') + "\n";
  for (const auto& m : models) {
    const double ppl = num(m["ppl"]);
    out += pad(m["name"].get<std::string>(), w) + pad(fmt("%.3f", ppl), 10, true) +
           pad(fmt("%.4f", num(m["bits_per_byte"])), 11, true) +
           pad(dense > 0 && std::isfinite(dense) ? fmt("%.3f", ppl / dense) : "-", 10, true) +
           pad(m.contains("mean_token_experts") ? fmt("%.2f", m["mean_token_experts"].get<double>()) : "1", 15, true) + "\n";
  }
  // per-domain perplexity
  std::set<std::string> domains;
  for (const auto& m : models)
    if (m.contains("by_domain"))
      for (auto it = m["by_domain"].begin(); it != m["by_domain"].end(); ++it) domains.insert(it.key());
  if (!domains.empty()) {
    std::vector<const nlohmann::json*> cols;
    for (const auto& m : models)
      if (m.value("role", "") != "expert") cols.push_back(&m);
    out += "\nper-domain perplexity\n";
    out += pad("domain", 16) + pad("docs", 6, true);
    for (const auto* m : cols) out += pad((*m)["name"].get<std::string>(), std::max<size_t>(12, (*m)["name"].get<std::string>().size() + 2), true);
    out += "\n";
    for (const auto& d : domains) {
      int64_t docs = 0;
      std::string line;
      for (const auto* m : cols) {
        const size_t cw = std::max<size_t>(12, (*m)["name"].get<std::string>().size() + 2);
        if ((*m).contains("by_domain") && (*m)["by_domain"].contains(d)) {
          docs = (*m)["by_domain"][d]["docs"].get<int64_t>();
          line += pad(fmt("%.3f", num((*m)["by_domain"][d]["ppl"])), cw, true);
        } else {
          line += pad("-", cw, true);
        }
      }
      out += pad(d, 16) + pad(std::to_string(docs), 6, true) + line + "\n";
    }
  }
  // expert specialisation (Fig. 15)
  if (r.contains("specialisation")) {
    const auto& sp = r["specialisation"];
    const size_t K = sp["docs"].size();
    out += "\nexpert specialisation: ppl(expert j) / ppl(cluster's own expert) on each cluster's held-out documents\n";
    out += pad("cluster", 8) + pad("docs", 6, true);
    for (size_t j = 0; j < K; ++j) out += pad("e" + std::to_string(j), 8, true);
    out += "\n";
    for (size_t c = 0; c < K; ++c) {
      out += pad(std::to_string(c), 8) + pad(std::to_string(sp["docs"][c].get<int64_t>()), 6, true);
      for (size_t j = 0; j < K; ++j) {
        const auto& v = sp["ratio"][c][j];
        out += pad(v.is_null() ? "-" : fmt("%.3f", v.get<double>()), 8, true);
      }
      out += "\n";
    }
  }
  return out;
}

}  // namespace cbtm
