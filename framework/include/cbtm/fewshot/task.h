#pragma once
/// \file task.h
/// Few-shot classification suites: tasks defined in YAML over JSONL data (docs/fewshot.md).
///
/// A prompt is `demonstrations` training examples, each `template` (with {text} replaced by
/// its text) followed by its label's verbaliser and `separator`, then the test example's
/// `template`; each label is scored by the log-probability of its verbaliser after that.
///
/// \code
///   FewShotSuite s = load_fewshot_suite("configs/fewshot/devpile.yaml");
///   std::string p = fewshot_prompt(s.tasks[0], demos, s.tasks[0].test[0].text);
/// \endcode
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cbtm/config_node.h"

namespace cbtm {

struct FewShotExample {
  std::string text;
  int32_t label = 0;  ///< index into FewShotTask::labels
};

struct FewShotTask {
  std::string name;
  std::string data;                      ///< the JSONL file (resolved against the suite's folder)
  std::string text_field = "text", label_field = "label", split_field = "split";
  std::string templ = "{text}";          ///< YAML key `template`
  std::string separator = "\n\n";
  int64_t max_chars = 0;                 ///< cut each text to this many bytes (UTF-8 safe; 0: no cut)
  std::vector<std::string> labels;       ///< label values, in the order of the YAML map
  std::vector<std::string> verbalisers;  ///< what the model is scored on for each label
  std::vector<FewShotExample> train;     ///< split "train": demonstrations and validation probes
  std::vector<FewShotExample> test;      ///< split "test"
  int64_t ignored = 0;                   ///< examples whose label is not among `labels`
};

struct FewShotSuite {
  std::string file;
  int32_t demonstrations = 8;
  std::vector<uint64_t> seeds = {1, 2, 3, 4, 5};
  int64_t test_examples = 0;             ///< per task (0: the whole test split)
  bool baselines = true;                 ///< also score the run's baselines (e.g. dense)
  bool seed_model = true;                ///< also score the seed model
  std::vector<std::pair<std::string, ConfigNode>> ensembles;  ///< name -> router config
  std::vector<FewShotTask> tasks;
  YAML::Node yaml;                       ///< the file as read (stored in results)
};

/// Parses the suite and reads every task's data; Error naming the file, line and key (or the
/// data file and line) on bad input. `overrides` are "key=value" on the suite's top level
/// (e.g. "test_examples=20").
FewShotSuite load_fewshot_suite(const std::string& path, const std::vector<std::string>& overrides = {});

/// `text` cut to at most max_bytes bytes without splitting a UTF-8 character (0: unchanged).
std::string cut_utf8(const std::string& text, int64_t max_bytes);

/// The prompt for `text` after the demonstrations (see the file comment).
std::string fewshot_prompt(const FewShotTask& task, const std::vector<FewShotExample>& demos, const std::string& text);

}  // namespace cbtm
