// serve_bench: a loopback load test of `cbtm serve` -- the ensemble of a finished run behind
// the HTTP JSON endpoint (in-process, the same server and handler as the command), hit by C
// concurrent clients posting /score with held-out documents for a bounded time.
//
// Reports, for each client count: requests/s, scored tokens/s, latency p50/p95/max, and the
// share of requests answered 200; plus the direct RunEnsemble::score rate with no HTTP (what
// the server's parsing, JSON and sockets cost is the difference). Scoring runs inside
// RunEnsemble on the main thread, as in `cbtm serve`, one evaluation at a time (each uses
// every core); texts that arrive while it is busy are scored together, up to the server's
// max_batch. Each --max-batch value is measured at every client count (1 = one text at a
// time, the server without batching), and the last is compared with the first.
//
// Then generation: RunEnsemble::generate of --gen-tokens tokens (end-of-document ignored) from
// a few held-out documents' openings: tokens/s, ms per token and experts run per token.
//
//   build/bin/serve_bench --run out/quickstart [--ensemble top1] [--clients 1 4 16] [--seconds 5]
//                         [--max-batch 1 16] [--gen-tokens 200] [--json OUT]
#include <algorithm>
#include <array>
#include <atomic>
#include <filesystem>
#include <functional>
#include <thread>

#include "bench_util.h"
#include "cbtm/corpus.h"
#include "cbtm/pipeline/run_config.h"
#include "cbtm/plugin_host.h"
#include "cbtm/serve/ensemble_api.h"
#include "cbtm/serve/http_server.h"
#include "cbtm/serve/run_ensemble.h"

namespace bench = cbtm::bench;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  CLI::App app{"loopback load test of cbtm serve: requests/s and latency under concurrent clients"};
  bench::CommonFlags flags;
  bench::add_common_flags(app, flags, false);
  std::string run, ensemble;
  std::vector<int> clients = {1, 4, 16};
  std::vector<int64_t> max_batches = {1, 16};
  double seconds = 5;
  int64_t max_docs = 100, gen_tokens = 200;
  int gen_prompts = 5;
  app.add_option("--run", run, "a finished run directory (e.g. out/quickstart)")->required();
  app.add_option("--ensemble,-e", ensemble, "which of the run's eval.ensembles (default: the first)");
  app.add_option("--clients", clients, "concurrent client counts to measure")->capture_default_str();
  app.add_option("--seconds", seconds, "duration of each load level")->capture_default_str();
  app.add_option("--docs", max_docs, "held-out documents the clients cycle through")->capture_default_str();
  app.add_option("--max-batch", max_batches,
                 "the server's max_batch values to measure, each at every client count (the last is the headline; "
                 "the others are compared with it)")
      ->capture_default_str();
  app.add_option("--gen-tokens", gen_tokens, "tokens generated per prompt (0: skip generation)")->capture_default_str();
  app.add_option("--gen-prompts", gen_prompts, "prompts: the first 60 bytes of this many held-out documents")
      ->capture_default_str()->check(CLI::PositiveNumber);
  return bench::run_main(app, argc, argv, flags, [&] {
    if (!fs::exists(fs::path(run) / "manifest.json"))
      throw bench::MissingInput(run + ": not a finished run directory; run `cbtm run` first");
    cbtm::PluginHost host;
    host.load_builtin();
    auto ens = cbtm::RunEnsemble::open(run, ensemble, {}, host);
    const cbtm::RunConfig cfg = cbtm::RunConfig::load(run + "/config.yaml", {}, host);
    cbtm::CorpusOptions co;
    co.text_field = cfg.data.text_field;
    co.max_docs = max_docs;
    const auto docs = cbtm::read_corpus(cfg.data.eval, co);
    std::vector<std::string> bodies;
    for (const auto& d : docs) bodies.push_back(nlohmann::json{{"text", d.text}}.dump());

    // Every phase's callers run on a helper thread while the main thread runs the models, as
    // in `cbtm serve` (RunEnsemble::run_with_this_thread).
    auto on_main = [&](const std::function<void()>& work) { ens->run_with_this_thread(work); };

    // direct: no HTTP. `callers` threads call RunEnsemble::score in a loop; the models run on
    // the main thread, as in `cbtm serve`. Returns {requests/s, tokens/s, texts per evaluation}.
    auto direct_rate = [&](int callers) {
      std::atomic<int64_t> n{0}, toks{0};
      const auto info0 = ens->info();
      auto t0 = bench::Clock::now();
      on_main([&] {
        t0 = bench::Clock::now();
        std::vector<std::thread> th;
        for (int c = 0; c < callers; ++c)
          th.emplace_back([&, c] {
            size_t next = static_cast<size_t>(c) * 7;
            while (bench::seconds_since(t0) < seconds) {
              toks += ens->score(docs[next++ % docs.size()].text).tokens;
              ++n;
            }
          });
        for (auto& t : th) t.join();
      });
      const double s = bench::seconds_since(t0);
      const auto info1 = ens->info();
      const double per_batch =
          static_cast<double>(info1["score_requests"].get<int64_t>() - info0["score_requests"].get<int64_t>()) /
          std::max<int64_t>(1, info1["score_batches"].get<int64_t>() - info0["score_batches"].get<int64_t>());
      return std::array<double, 3>{n / s, toks / s, per_batch};
    };
    ens->set_max_batch(1);
    const auto one = direct_rate(1);
    const double direct_n = one[0], direct_tokens = one[1], direct_s = 1.0;
    std::printf("direct RunEnsemble::score, one caller: %.1f requests/s, %.0f tokens/s\n", one[0], one[1]);
    nlohmann::json direct_many = nlohmann::json::object();
    const int many = clients.empty() ? 16 : *std::max_element(clients.begin(), clients.end());
    for (int64_t mb : max_batches) {
      ens->set_max_batch(mb);
      const auto r = direct_rate(many);
      direct_many[std::to_string(mb)] = {{"callers", many}, {"requests_per_s", r[0]}, {"tokens_per_s", r[1]}, {"texts_per_batch", r[2]}};
      std::printf("direct RunEnsemble::score, %d callers, max_batch %lld: %.1f requests/s, %.0f tokens/s, %.2f texts per evaluation\n",
                  many, (long long)mb, r[0], r[1], r[2]);
    }

    cbtm::HttpServerOptions so;
    so.max_connections = 16;
    cbtm::HttpServer server(so, cbtm::ensemble_api(*ens));
    std::atomic<bool> stop{false};
    std::thread srv([&] { server.serve(stop); });
    nlohmann::json by_batch = nlohmann::json::object();
    for (int64_t mb : max_batches) {
      ens->set_max_batch(mb);
      nlohmann::json levels = nlohmann::json::array();
      std::printf("max_batch %lld:\n%8s %12s %12s %10s %10s %10s %8s %12s\n", (long long)mb, "clients", "requests/s", "tokens/s",
                  "p50 ms", "p95 ms", "max ms", "ok", "texts/batch");
      for (int c : clients) {
        const auto info0 = ens->info();
        std::vector<std::vector<double>> lat(static_cast<size_t>(c));
        std::vector<int64_t> ok(static_cast<size_t>(c), 0), toks(static_cast<size_t>(c), 0), fail(static_cast<size_t>(c), 0);
        auto start = bench::Clock::now();
        // the main thread runs the models, as in `cbtm serve`, until the clients are done
        on_main([&] {
          start = bench::Clock::now();
          std::vector<std::thread> th;
          for (int i = 0; i < c; ++i)
            th.emplace_back([&, i] {
              size_t next = static_cast<size_t>(i) * 7;
              while (bench::seconds_since(start) < seconds) {
                const auto r0 = bench::Clock::now();
                const auto r = cbtm::http_call(server.port(), "POST", "/score", bodies[next++ % bodies.size()]);
                lat[i].push_back(1e3 * bench::seconds_since(r0));
                if (r.status == 200) {
                  ++ok[i];
                  toks[i] += nlohmann::json::parse(r.body)["tokens"].get<int64_t>();
                } else {
                  ++fail[i];
                }
              }
            });
          for (auto& t : th) t.join();
        });
        const double wall = bench::seconds_since(start);
        std::vector<double> all;
        int64_t n_ok = 0, n_fail = 0, n_tok = 0;
        for (int i = 0; i < c; ++i) {
          all.insert(all.end(), lat[i].begin(), lat[i].end());
          n_ok += ok[i];
          n_fail += fail[i];
          n_tok += toks[i];
        }
        std::sort(all.begin(), all.end());
        auto pct = [&](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))]; };
        const double rps = n_ok / wall, tps = n_tok / wall;
        const double share = static_cast<double>(n_ok) / std::max<int64_t>(1, n_ok + n_fail);
        const auto info1 = ens->info();
        const double per_batch =
            static_cast<double>(info1["score_requests"].get<int64_t>() - info0["score_requests"].get<int64_t>()) /
            std::max<int64_t>(1, info1["score_batches"].get<int64_t>() - info0["score_batches"].get<int64_t>());
        std::printf("%8d %12.1f %12.0f %10.1f %10.1f %10.1f %7.1f%% %12.2f\n", c, rps, tps, pct(0.5), pct(0.95),
                    all.empty() ? 0.0 : all.back(), 100 * share, per_batch);
        levels.push_back({{"clients", c}, {"requests_per_s", rps}, {"tokens_per_s", tps}, {"latency_p50_ms", pct(0.5)},
                          {"latency_p95_ms", pct(0.95)}, {"latency_max_ms", all.empty() ? 0.0 : all.back()},
                          {"ok_share", share}, {"requests", n_ok + n_fail}, {"texts_per_batch", per_batch}});
      }
      by_batch[std::to_string(mb)] = levels;
    }
    stop = true;
    srv.join();

    // generation, direct (the models on the main thread, as in `cbtm serve`)
    nlohmann::json gen;
    if (gen_tokens > 0) {
      int64_t n_tok = 0, n_expert_runs = 0;
      auto g0 = bench::Clock::now();
      on_main([&] {
        g0 = bench::Clock::now();
        for (int i = 0; i < gen_prompts; ++i) {
          cbtm::GenerateOptions go;
          go.max_tokens = gen_tokens;
          go.stop_at_eos = false;
          go.seed = static_cast<uint64_t>(i);
          const auto g = ens->generate(docs[static_cast<size_t>(i) % docs.size()].text.substr(0, 60), go);
          n_tok += static_cast<int64_t>(g.tokens.size());
          for (const auto& e : g.experts) n_expert_runs += static_cast<int64_t>(e.size());
        }
      });
      const double gs = bench::seconds_since(g0);
      gen = {{"prompts", gen_prompts}, {"tokens", n_tok}, {"seconds", gs}, {"tokens_per_s", n_tok / gs},
             {"ms_per_token", 1e3 * gs / std::max<int64_t>(1, n_tok)},
             {"experts_per_token", static_cast<double>(n_expert_runs) / std::max<int64_t>(1, n_tok)}};
      std::printf("generate: %lld tokens from %d prompts in %.2f s: %.0f tokens/s, %.2f ms per token, %.2f experts per token\n",
                  (long long)n_tok, gen_prompts, gs, n_tok / gs, 1e3 * gs / std::max<int64_t>(1, n_tok),
                  static_cast<double>(n_expert_runs) / std::max<int64_t>(1, n_tok));
    }
    // The headline: the last --max-batch value (the server's default unless given); against
    // the first (1: one text at a time) at every client count, when both ran.
    const nlohmann::json& levels = by_batch[std::to_string(max_batches.back())];
    const double best = levels.empty() ? 0.0 : levels.back()["requests_per_s"].get<double>();
    std::printf("HTTP at %d clients / direct: %.3f of the direct request rate\n", clients.back(), best / (direct_n / direct_s));
    nlohmann::json ratios = nlohmann::json::object();
    if (max_batches.size() > 1) {
      const nlohmann::json& base = by_batch[std::to_string(max_batches.front())];
      for (size_t i = 0; i < levels.size() && i < base.size(); ++i) {
        const double r = levels[i]["requests_per_s"].get<double>() / std::max(1e-9, base[i]["requests_per_s"].get<double>());
        ratios[std::to_string(clients[i])] = r;
        std::printf("max_batch %lld / %lld at %d clients: %.2fx the requests/s\n", (long long)max_batches.back(),
                    (long long)max_batches.front(), clients[i], r);
      }
    }
    bench::write_json(flags.json, {{"run", run},
                                   {"ensemble", ens->info()["ensemble"]},
                                   {"seconds_per_level", seconds},
                                   {"direct_requests_per_s", direct_n / direct_s},
                                   {"direct_concurrent_by_max_batch", direct_many},
                                   {"direct_tokens_per_s", direct_tokens / direct_s},
                                   {"max_batch", max_batches.back()},
                                   {"levels", levels},
                                   {"levels_by_max_batch", by_batch},
                                   {"batched_vs_first_max_batch", ratios},
                                   {"http_vs_direct", best / (direct_n / direct_s)},
                                   {"generate", gen},
                                   {"machine", bench::machine_state()}});
    return 0;
  });
}
