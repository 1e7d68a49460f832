#pragma once
/// \file checkpoint_store.h
/// The on-disk layout of one training job's `out_dir`, and its rotation and resume rules:
///
///   out_dir/step-00000200/   config.json, model.safetensors   (the model, HF layout)
///                            optimizer.pt                      (torch::save of the optimizer)
///                            trainer_state.json                (TrainerState, written last)
///   out_dir/final/           config.json, model.safetensors, trainer_state.json
///   out_dir/metrics.jsonl    one line per step (metrics_log.h)
///
/// A checkpoint is built in a staging directory (a `.tmp-` sibling) and renamed into place,
/// so a killed job never leaves a half-written `step-*`; trainer_state.json records the
/// byte size of every other file, so a checkpoint damaged later is recognised (validate()).
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cbtm::lm {

/// trainer_state.json: where a job stands.
struct TrainerState {
  static constexpr const char* kFormat = "cbtm-trainer-state";
  static constexpr int kVersion = 1;

  int64_t step = 0;         ///< optimizer updates done
  int64_t tokens = 0;       ///< input positions trained on so far
  int64_t total_steps = 0;  ///< updates of the whole job
  uint64_t seed = 0;
  nlohmann::json job = nlohmann::json::object();   ///< what must match to resume (job_key)
  nlohmann::json info = nlohmann::json::object();  ///< descriptive only (name, data dirs)
  std::vector<double> first_losses;  ///< losses of the first log window (steps 1..window)
  std::vector<double> last_losses;   ///< losses of the latest log window
  double seconds = 0;                ///< training wall time over all runs so far
  nlohmann::json result = nlohmann::json::object();  ///< the TrainResult (final only)
  std::map<std::string, int64_t> files;              ///< file name -> bytes

  nlohmann::json to_json() const;
  /// Error naming `where` on a missing field or another format/version.
  static TrainerState from_json(const nlohmann::json& j, const std::string& where);
};

/// The keys of two job identities that differ, as "key: saved vs now" (empty when equal);
/// nested objects by their dotted keys ("recipe.lr: 0.001 vs 0.002"). A top-level key named in
/// `optional`, and any key inside a nested object, is compared only when both sides have it (a
/// checkpoint written before the key existed, or an input that can no longer be read).
std::string job_difference(const nlohmann::json& saved, const nlohmann::json& now,
                           const std::vector<std::string>& optional = {});

class CheckpointStore {
 public:
  /// `keep`: step checkpoints kept (>= 1).
  CheckpointStore(std::string out_dir, int64_t keep);

  const std::string& out_dir() const { return out_dir_; }
  std::string step_dir(int64_t step) const;  ///< out_dir/step-%08d
  std::string final_dir() const;             ///< out_dir/final
  bool has_final() const;

  /// Steps of the step-* directories present, newest first.
  std::vector<int64_t> steps() const;
  /// Reads dir/trainer_state.json and checks the recorded file sizes: Error naming the
  /// directory and the problem (missing, truncated, unreadable) otherwise.
  static TrainerState validate(const std::string& dir);

  /// Removes staging directories left by a killed run.
  void remove_stale_staging() const;
  /// A fresh staging directory for `target` (a step dir or final_dir()).
  std::string staging_for(const std::string& target) const;
  /// Records the sizes of the files in `staging`, writes trainer_state.json last, and renames
  /// the directory to step_dir(state.step). Then keeps the newest `keep` checkpoints up to
  /// this step and removes the others (including any newer, abandoned ones).
  void commit_step(const std::string& staging, TrainerState state) const;
  /// Like commit_step for final_dir(); then removes every step checkpoint.
  void commit_final(const std::string& staging, TrainerState state) const;

 private:
  void seal(const std::string& staging, TrainerState& state) const;
  std::string out_dir_;
  int64_t keep_;
};

}  // namespace cbtm::lm
