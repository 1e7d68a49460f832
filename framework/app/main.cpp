// cbtm: the C-BTM host executable. Loads the built-in plugins, then runs a subcommand.
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cbtm/error.h"
#include "cbtm/version.h"
#include "cbtm/pipeline/launch.h"
#include "cbtm/process_defaults.h"
#include "commands.h"

namespace {
// The command word: the first argument that is not one of the global flags ("" if none).
std::string command_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-v" || a == "--verbose" || a == "-q" || a == "--quiet") continue;
    return a.empty() || a[0] == '-' ? std::string() : a;
  }
  return "";
}

// Commands that run no model: not worth re-executing for (~0.4 s).
bool light_command(int argc, char** argv) {
  const std::string first = command_word(argc, argv);
  if (first.empty() || first == "config" || first == "plugins") return true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h" || a == "--version") return true;
  }
  return false;
}

// A CLI11 check with a short message ("must be >= 0, got -1"), not CLI11's 300-digit range.
CLI::Validator at_least(double lo) {
  return CLI::Validator(
      [lo](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != 0) return "not a number: '" + s + "'";
        if (!(v >= lo)) return "must be >= " + CLI::detail::to_string(lo) + ", got " + s;
        return "";
      },
      ">= " + CLI::detail::to_string(lo));
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cbtm: Cluster-Branch-Train-Merge -- cluster a corpus, branch a seed LM into "
               "one expert per cluster, train them independently, evaluate them as a sparse ensemble"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("cbtm ") + cbtm::kVersion);
  bool verbose = false, quiet = false;
  app.add_flag("-v,--verbose", verbose, "debug logging");
  app.add_flag("-q,--quiet", quiet, "warnings and errors only");

  cbtm::app::PipelineArgs pa;
  auto add_pipeline = [&](const char* name, const char* help) {
    CLI::App* c = app.add_subcommand(name, help);
    c->add_option("config", pa.config, "the run config (YAML)")->required()->check(CLI::ExistingFile);
    c->add_option("--out,-o", pa.out, "output directory (created; reruns resume and skip finished stages)")->required();
    c->add_option("--set", pa.set, "override a config key: --set clusterer.k=8 (repeatable)");
    c->add_option("--redo", pa.redo,
                  "recompute a finished stage and what depends on it: tokenizer, cluster, assign, seed, "
                  "expert-NNN, experts, baseline-NAME, baselines, eval, all (repeatable)");
    return c;
  };
  add_pipeline("run", "the whole pipeline: tokenizer, cluster, assign, seed, experts, baselines, eval");
  add_pipeline("cluster", "Step 0: train the tokenizer, fit the embedder and the clusterer");
  CLI::App* assign = add_pipeline(
      "assign",
      "write every training document's tokens to its nearest cluster (all input shards, then merge; "
      "or one shard per Slurm array task with --shard, then --merge)");
  assign->add_option("--shard", pa.shard,
                     "assign only input file I of data.train (0-based; e.g. $SLURM_ARRAY_TASK_ID); no merge")
      ->check(at_least(0));
  assign->add_flag("--merge", pa.merge, "merge the finished shards into clusters/ (fails listing unfinished shards)");
  assign->add_flag("--count-shards", pa.count_shards, "print the number of input shards and exit");
  CLI::App* train = add_pipeline("train", "Steps 1-2: the seed LM, then the experts (branched from it) and the baselines");
  train->add_option("--expert", pa.experts, "train only expert N (repeatable; for one job per expert)");
  train->add_flag("--seed", pa.seed_only, "train only the seed LM");
  train->add_option("--baseline", pa.baselines, "train only this baseline (repeatable)");
  train->add_flag("--no-baselines", pa.no_baselines, "skip the baselines");
  add_pipeline("eval", "Step 3: held-out perplexity of the baselines and the expert ensembles");

  cbtm::LaunchRequest lr;
  bool no_wait = false;
  CLI::App* launch = app.add_subcommand(
      "launch",
      "the whole pipeline with one independent job per expert and baseline: child processes on this "
      "machine (launch.max_parallel at a time) or a chain of Slurm job arrays (--scheduler slurm)");
  launch->add_option("config", lr.config, "the run config (YAML)")->required()->check(CLI::ExistingFile);
  launch->add_option("--out,-o", lr.out, "output directory (reruns resume and skip finished jobs)")->required();
  launch->add_option("--set", lr.overrides, "override a config key (repeatable; passed on to every job)");
  launch->add_option("--scheduler", lr.scheduler, "local | slurm (default: launch.scheduler)")
      ->check(CLI::IsMember({"local", "slurm"}));
  launch->add_option("--redo", lr.redo, "recompute a finished stage and what depends on it (as for run; repeatable)");
  launch->add_flag("--no-wait", no_wait, "slurm: submit and return instead of waiting for the jobs");

  cbtm::SuiteRequest sr;
  bool suite_no_wait = false, no_figures = false;
  CLI::App* suite = app.add_subcommand(
      "suite",
      "run every cell of a suite (a base config x sweep axes; docs/suites.md), skipping finished cells, then "
      "write its tables (results.md, .csv, .json) and figures");
  suite->add_option("suite", sr.suite, "the suite file (YAML)")->required()->check(CLI::ExistingFile);
  suite->add_option("--out,-o", sr.out, "the suite's directory (reruns resume and skip finished cells)")->required();
  suite->add_option("--set", sr.overrides, "override a key of the suite file: --set axes.0.values=[2,4] (repeatable)");
  suite->add_option("--cell", sr.cells, "run only this cell (repeatable; names as --list prints them)");
  suite->add_option("--seed-from", sr.seed_from,
                    "another suite's --out directory: reuse its finished shared seeds of the same fingerprint (repeatable)")
      ->check(CLI::ExistingDirectory);
  suite->add_option("--scheduler", sr.scheduler, "local | slurm (default: the base config's launch.scheduler)")
      ->check(CLI::IsMember({"local", "slurm"}));
  suite->add_flag("--no-wait", suite_no_wait, "slurm: submit every cell and return (then --tables)");
  suite->add_option("--redo", sr.redo,
                    "recompute a stage and what depends on it in every selected cell, finished or not (e.g. eval after "
                    "adding an ensemble; repeatable)");
  suite->add_flag("--tables", sr.tables_only, "run nothing: (re)write the tables and figures of what finished");
  suite->add_flag("--list", sr.list_only, "print the cells and whether each finished, run nothing");
  suite->add_flag("--no-figures", no_figures, "write figure data and gnuplot scripts but do not run gnuplot");
  suite->add_option("--gnuplot", sr.gnuplot, "the gnuplot executable")->capture_default_str();

  std::string config_file;
  std::vector<std::string> config_set;
  CLI::App* cfg = app.add_subcommand("config", "print the fully resolved config (every default filled in)");
  cfg->add_option("config", config_file, "the run config (YAML)")->required()->check(CLI::ExistingFile);
  cfg->add_option("--set", config_set, "override a config key (repeatable)");

  cbtm::app::InspectArgs ia;
  CLI::App* inspect = app.add_subcommand(
      "inspect", "a run's clusters: sizes, top terms per cluster, overlap with the domain field (NMI, purity)");
  inspect->add_option("run", ia.run, "run directory (after `cbtm cluster`)")->required()->check(CLI::ExistingDirectory);
  inspect->add_option("--compare", ia.compare, "another run directory: its cluster sizes side by side (e.g. unbalanced)")
      ->check(CLI::ExistingDirectory);
  inspect->add_option("--terms", ia.terms, "top terms shown per cluster")->capture_default_str()->check(at_least(0));
  inspect->add_flag("--json", ia.json, "print the analysis as JSON");

  cbtm::app::GenerateArgs ga;
  CLI::App* gen = app.add_subcommand(
      "generate", "sample a continuation of a prompt from a finished run's ensemble (re-routed before every token)");
  gen->add_option("run", ga.run, "run directory (after `cbtm run`)")->required()->check(CLI::ExistingDirectory);
  gen->add_option("--ensemble,-e", ga.ensemble, "which of the run's eval.ensembles routes (default: the first)");
  gen->add_option("--set", ga.set, "override a key of the run's config: --set eval.ensembles.top1.top_k=2 (repeatable)");
  gen->add_option("--prompt,-p", ga.prompt, "the text to continue");
  gen->add_option("--prompt-file", ga.prompt_file, "read the prompt from a file")->check(CLI::ExistingFile);
  gen->add_option("--max-tokens", ga.max_tokens, "new tokens at most")->capture_default_str()->check(at_least(0));
  gen->add_option("--temperature", ga.temperature, "sampling temperature (0: greedy)")->capture_default_str()->check(at_least(0));
  gen->add_option("--top-p", ga.top_p, "nucleus sampling mass")->capture_default_str()->check(CLI::Range(0.000001, 1.0));
  gen->add_option("--seed", ga.seed, "sampling seed (same seed, same text)")->capture_default_str();
  gen->add_flag("--json", ga.json, "print the prompt, text, token ids and the experts that ran per token as JSON");
  gen->add_flag("--ignore-eos", ga.ignore_eos, "keep going past an end-of-document token (exactly --max-tokens, up to the model's length)");

  cbtm::app::ServeArgs sa;
  CLI::App* serve = app.add_subcommand(
      "serve", "serve a finished run's ensemble over HTTP JSON on loopback: GET /health, POST /score, POST /generate");
  serve->add_option("run", sa.run, "run directory (after `cbtm run`)")->required()->check(CLI::ExistingDirectory);
  serve->add_option("--ensemble,-e", sa.ensemble, "which of the run's eval.ensembles routes (default: the first)");
  serve->add_option("--set", sa.set, "override a key of the run's config (repeatable)");
  serve->add_option("--host", sa.host, "IPv4 address to listen on")->capture_default_str();
  serve->add_option("--port", sa.port, "TCP port (0: any free port, printed and written to --port-file)")
      ->capture_default_str()->check(CLI::Range(0, 65535));
  serve->add_option("--port-file", sa.port_file, "write the port here once listening");
  serve->add_option("--max-connections", sa.max_connections, "requests handled at once (more wait in the queue)")
      ->capture_default_str()->check(at_least(1));
  serve->add_option("--max-queue", sa.max_queue, "connections waiting for a slot (more get 503 at once)")
      ->capture_default_str()->check(at_least(0));
  serve->add_option("--queue-timeout", sa.queue_timeout_s, "seconds a queued request waits before 503")
      ->capture_default_str()->check(at_least(0));
  serve->add_option("--max-batch", sa.max_batch,
                    "most /score texts that arrive while the models are busy scored together as one evaluation (1: one at a time)")
      ->capture_default_str()->check(at_least(1));

  cbtm::app::FewShotArgs fa;
  CLI::App* few = app.add_subcommand(
      "fewshot", "few-shot classification accuracy of a finished run's models and ensembles on a task suite (docs/fewshot.md)");
  few->add_option("run", fa.run, "run directory (after `cbtm run`)")->required()->check(CLI::ExistingDirectory);
  few->add_option("--suite", fa.suite, "the suite: tasks, seeds, demonstrations, ensembles")->required()->check(CLI::ExistingFile);
  few->add_option("--set", fa.set, "override a top-level key of the suite: --set test_examples=20 (repeatable)");
  few->add_option("--out", fa.out, "results JSON (default RUN/fewshot.json)");

  std::string kind;
  bool markdown = false;
  CLI::App* plugins = app.add_subcommand("plugins", "list loaded plugins with their options, defaults and docs");
  plugins->add_option("--kind", kind, "only this kind (embedder, clusterer, router, tokenizer, model, trainer, baseline)");
  plugins->add_flag("--markdown", markdown, "print the config reference as Markdown (sections and plugins)");

  // Logs and errors go to stderr; stdout carries only what a command prints as its result
  // (`cbtm config`, `cbtm generate`, `--count-shards`, JSON), so it can be redirected.
  spdlog::set_default_logger(spdlog::stderr_color_mt("cbtm"));
  const std::string word = command_word(argc, argv);
  if (!word.empty()) {
    bool known = false;
    std::string names;
    for (const CLI::App* c : app.get_subcommands([](CLI::App*) { return true; })) {
      known = known || c->get_name() == word;
      names += (names.empty() ? "" : ", ") + c->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "cbtm: unknown command '%s' (commands: %s; cbtm --help)\n", word.c_str(), names.c_str());
      return 2;
    }
  }
  // may re-execute this program (process_defaults.h): before any thread starts
  if (!light_command(argc, argv)) cbtm::apply_openmp_defaults(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, the version, or the error on stderr
    return rc == 0 ? 0 : 2;      // bad command lines exit 2, as bad configs do
  }
  spdlog::set_pattern("[%H:%M:%S] %^%l%$ %v");
  spdlog::set_level(verbose ? spdlog::level::debug : quiet ? spdlog::level::warn : spdlog::level::info);

  try {
    cbtm::PluginHost host;
    host.load_builtin();
    if (cfg->parsed()) return cbtm::app::print_config(config_file, config_set, host);
    if (plugins->parsed()) return cbtm::app::list_plugins(host, kind, markdown);
    if (inspect->parsed()) return cbtm::app::inspect_run(ia, host);
    if (gen->parsed()) return cbtm::app::run_generate(ga, host);
    if (serve->parsed()) return cbtm::app::run_serve(sa, host);
    if (few->parsed()) return cbtm::app::run_fewshot(fa, host);
    if (suite->parsed()) {
      sr.wait = !suite_no_wait;
      if (no_figures) sr.gnuplot.clear();
      return cbtm::app::run_suite_command(sr, host);
    }
    if (launch->parsed()) {
      lr.wait = !no_wait;
      return cbtm::app::run_launch(lr, host);
    }
    for (const char* name : {"run", "cluster", "assign", "train", "eval"})
      if (app.get_subcommand(name)->parsed()) return cbtm::app::run_pipeline(name, pa, host);
  } catch (const cbtm::Error& e) {
    spdlog::error("{}", e.what());
    return 2;
  } catch (const std::exception& e) {
    spdlog::critical("internal error: {}", e.what());
    return 3;
  }
  return 1;
}
