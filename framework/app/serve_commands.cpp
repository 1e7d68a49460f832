// `cbtm generate` and `cbtm serve`: a finished run's ensemble, loaded once.
#include <signal.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/serve/ensemble_api.h"
#include "cbtm/serve/http_server.h"
#include "cbtm/serve/run_ensemble.h"
#include "commands.h"

namespace cbtm::app {

namespace {

std::atomic<bool> g_stop{false};

// Sets `sig`'s action (sigaction: no SysV reset-on-delivery quirks). Async-signal-safe.
void set_action(int sig, void (*action)(int)) {
  struct sigaction sa {};
  sa.sa_handler = action;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(sig, &sa, nullptr);
}

// The first SIGINT/SIGTERM asks for a clean stop; it then restores the default actions, so
// that a second one (an impatient Ctrl-C) ends the process at once.
void on_signal(int) {
  g_stop = true;
  set_action(SIGINT, SIG_DFL);
  set_action(SIGTERM, SIG_DFL);
}

}  // namespace

int run_generate(const GenerateArgs& a, PluginHost& host) {
  if (a.prompt.empty() == a.prompt_file.empty()) throw Error("generate: give exactly one of --prompt TEXT or --prompt-file FILE");
  const std::string prompt = a.prompt_file.empty() ? a.prompt : read_file(a.prompt_file);
  auto ens = RunEnsemble::open(a.run, a.ensemble, a.set, host);
  GenerateOptions o;
  o.max_tokens = a.max_tokens;
  o.stop_at_eos = !a.ignore_eos;
  o.temperature = a.temperature;
  o.top_p = a.top_p;
  o.seed = a.seed;
  // the main thread runs the models (as in `cbtm serve`; docs/design.md, Threads)
  Generation g;
  ens->run_with_this_thread([&] { g = ens->generate(prompt, o); });
  if (a.json) {
    nlohmann::json j = {{"prompt", prompt}, {"text", g.text}, {"tokens", g.tokens}, {"experts", g.experts},
                        {"stop_reason", g.stop_reason}, {"ensemble", ens->info()}};
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s%s\n", prompt.c_str(), g.text.c_str());
    std::fflush(stdout);
    spdlog::info("[generate] {} tokens, stopped at {}", g.tokens.size(), g.stop_reason);
  }
  return 0;
}

int run_serve(const ServeArgs& a, PluginHost& host) {
  auto ens = RunEnsemble::open(a.run, a.ensemble, a.set, host);
  ens->set_max_batch(a.max_batch);
  HttpServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.max_connections = a.max_connections;
  so.max_queue = a.max_queue;
  so.queue_timeout_s = a.queue_timeout_s;  // over kHttpNoTimeout (1e6 s, inf): no limit
  // before listening: a SIGTERM sent as soon as the port (file) appears stops the server
  // cleanly instead of killing it
  set_action(SIGINT, on_signal);
  set_action(SIGTERM, on_signal);
  // on stop, the requests not yet run get 503 and a generation ends before its next token,
  // instead of the models working through the queue first
  ens->shut_down_when(g_stop);
  HttpServer server(so, ensemble_api(*ens));
  const auto info = ens->info();
  spdlog::info("[serve] run {} ensemble '{}' ({} experts) on http://{}:{} -- GET /health, POST /score, POST /generate; "
               "Ctrl-C stops", a.run, info["ensemble"].get<std::string>(), info["experts"].get<int64_t>(), a.host, server.port());
  if (!a.port_file.empty()) write_file_atomic(a.port_file, std::to_string(server.port()) + "\n");
  // the main thread runs the models (run_ensemble.h); the server accepts on another, started
  // once the main thread is lent, so that every request runs here
  std::thread accept;
  ens->run_requests_here(g_stop, [&] { accept = std::thread([&] { server.serve(g_stop); }); });
  // the ensemble is shut down (requests not yet run get 503); serve() closes the listening
  // socket, answers the requests still arriving or queued with 503 and returns once the
  // connections are closed
  spdlog::info("[serve] stopping: new connections are refused, requests not yet run get 503 (a second Ctrl-C quits at once)");
  if (accept.joinable()) accept.join();
  const auto end = ens->info();
  spdlog::info("[serve] stopped after {} requests ({} texts scored in {} evaluations)", server.served(),
               end["score_requests"].get<int64_t>(), end["score_batches"].get<int64_t>());
  return 0;
}

}  // namespace cbtm::app
