#include "training_run.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <numeric>
#include <set>

#include <c10/core/impl/DeviceGuardImplInterface.h>

#include "batch_loader.h"
#include "block_dataset.h"
#include "cbtm/fs.h"
#include "cbtm/hash.h"
#include "cbtm/progress.h"
#include "cbtm/runtime.h"
#include "checkpoint_store.h"
#include "data_parallel.h"
#include "lr_schedule.h"
#include "metrics_log.h"
#include "opt/fused_ops.h"
#include "opt/opt.h"
#include "seed_mix.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace cbtm::lm {

namespace {

// Dropout of update s draws from derive_seed(job seed, kDropoutStream + s).
constexpr uint64_t kDropoutStream = 1ull << 62;

struct JsonEmitter {
  json& out;
  template <class T>
  void operator()(const char* key, T& field, const char*) {
    out[key] = field;
  }
};

json options_json(LmTrainer::Options o) {
  json j = json::object();
  JsonEmitter e{j};
  o.visit(e);
  return j;
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Job-identity keys that older checkpoints lack, or that cannot always be computed.
const std::vector<std::string> kOptionalJobKeys = {"recipe", "init"};

// The init checkpoint's identity: a fingerprint of its config.json, trainer_state.json (a
// trained model's steps, data and losses) and model.safetensors' size plus 64 slices of 4 KiB
// spread over it (two random inits of one config differ in every slice); "" when it cannot be
// read. Cheap: 256 KiB read however large the model.
std::string init_identity(const std::string& init) {
  const fs::path dir(init);
  std::error_code ec;
  if (init.empty() || !fs::exists(dir / "config.json", ec)) return "";
  try {
    std::string id = read_file((dir / "config.json").string());
    if (fs::exists(dir / "trainer_state.json")) id += read_file((dir / "trainer_state.json").string());
    std::ifstream weights(dir / "model.safetensors", std::ios::binary);
    const auto bytes = fs::file_size(dir / "model.safetensors", ec);
    if (!weights || ec) return "";
    id += "\nmodel.safetensors " + std::to_string(static_cast<long long>(bytes)) + "\n";
    constexpr uint64_t kSlices = 64, kSlice = 4096;
    std::string slice(kSlice, '\0');
    for (uint64_t i = 0; i < kSlices; ++i) {
      const uint64_t at = bytes > kSlice ? (bytes - kSlice) / (kSlices - 1) * i : 0;
      weights.seekg(static_cast<std::streamoff>(at));
      weights.read(slice.data(), static_cast<std::streamsize>(std::min<uint64_t>(kSlice, bytes)));
      if (!weights) return "";
      id += slice;
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(id)));
    return hex;
  } catch (const std::exception&) {  // Error, or std::filesystem's (permissions): not comparable
    return "";
  }
}

// One call of train(): plan, resume or start, loop, finish.
class TrainingRun {
 public:
  TrainingRun(const LmTrainer::Options& o, const TrainJob& job);
  TrainResult run();

 private:
  TrainResult finished() const;
  void restore_or_start();
  void make_optimizer();
  void check_model() const;
  void check_data(const BlockDataset& data) const;
  struct StepStats {
    double loss, grad_norm;
    double moe_aux = 0, moe_dropped = 0;  // mixture-of-experts models: load-balancing loss, dropped share
  };
  StepStats train_step(const Batch& batch, int64_t step);
  void write_checkpoint();
  void check_ranks_agree();
  TrainResult write_final();
  [[noreturn]] void non_finite(const char* what, double value, int64_t step) const;
  json extra() const;
  double seconds_so_far() const;

  const LmTrainer::Options& o_;
  const TrainJob& job_;
  std::string name_;
  CheckpointStore store_;
  int64_t rows_ = 0, tokens_per_step_ = 0, total_steps_ = 0;
  json job_key_;
  torch::Device device_ = torch::kCPU;
  models::OptLM net_{nullptr};
  std::vector<torch::Tensor> params_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  TrainerState state_;
  std::string last_good_;  // newest checkpoint of this job on disk
  std::unique_ptr<DataParallel> dp_;  // one rank of a data-parallel group, or a single process
  bool lead() const { return !dp_ || dp_->rank() == 0; }  // writes checkpoints, logs, metrics
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  double seconds_before_ = 0;
};

// ---- plan: batch, steps and the identity of the job ----------------------------------

TrainingRun::TrainingRun(const LmTrainer::Options& o, const TrainJob& job)
    : o_(o),
      job_(job),
      name_(job.name.empty() ? "train" : job.name),
      store_(job.out_dir, o.keep_checkpoints) {
  if (job.out_dir.empty()) throw Error(name_ + ": the training job has no out_dir");
  if (job.tokens <= 0)
    throw Error(name_ + ": the token budget must be positive (got " + std::to_string(job.tokens) +
                ")");
  if (job.batch_divisor < 1)
    throw Error(name_ + ": batch_divisor must be >= 1 (got " + std::to_string(job.batch_divisor) +
                ")");
  if (job.data.empty()) throw Error(name_ + ": the training job lists no token data directories");
  if (job.bos_id < 0) throw Error(name_ + ": bos_id must be >= 0");
  rows_ = std::max<int64_t>(1, o.batch_size / job.batch_divisor);
  tokens_per_step_ = rows_ * o.grad_accum * o.seq_len;
  total_steps_ = (job.tokens + tokens_per_step_ - 1) / tokens_per_step_;
  job_key_ = {{"total_steps", total_steps_},
              {"seed", job.seed},
              {"data", BlockDataset::fingerprint(job.data)},
              {"seq_len", o.seq_len},
              {"sequences_per_micro_batch", rows_},
              {"grad_accum", o.grad_accum},
              {"bos_id", job.bos_id}};
  if (job.eos_id >= 0 && job.eos_id != job.bos_id) job_key_["eos_id"] = job.eos_id;  // it changes the stream
  // What the optimizer does and where it starts: resuming under another recipe or from another
  // init would splice two runs into one loss curve. Both are optional in job_difference:
  // checkpoints written before they were recorded resume, and an init that is gone by the time
  // a job resumes (it is only read at the start) is not compared.
  job_key_["recipe"] = {{"lr", o.lr},
                        {"adam_beta1", o.adam_beta1},
                        {"adam_beta2", o.adam_beta2},
                        {"adam_eps", o.adam_eps},
                        {"weight_decay", o.weight_decay},
                        {"clip", o.clip},
                        {"warmup_steps", o.warmup_steps}};
  if (const std::string init = init_identity(job.init); !init.empty()) job_key_["init"] = init;
  if (job.batch_divisor > 1 && o.batch_size % job.batch_divisor != 0)
    spdlog::warn("{}: batch_size {} is not a multiple of {} (the experts' split): each batch holds {} sequences, so this "
                 "job takes {:.1f}% more steps than the dense model for the same tokens",
                 name_, o.batch_size, job.batch_divisor, rows_,
                 100.0 * (static_cast<double>(o.batch_size) / static_cast<double>(job.batch_divisor * rows_) - 1.0));
}

// ---- start: a finished job, a checkpoint to resume, or the init model -----------------

TrainResult TrainingRun::finished() const {
  const std::string dir = store_.final_dir();
  TrainerState s = CheckpointStore::validate(dir);
  const std::string diff = job_difference(s.job, job_key_, kOptionalJobKeys);
  if (!diff.empty())
    throw Error(name_ + ": " + dir + " was trained for a different job (" + diff +
                "); use a fresh out_dir for this one");
  TrainResult r;
  r.checkpoint = dir;
  r.steps = s.step;
  r.tokens = s.tokens;
  r.first_loss = s.result.value("first_loss", mean(s.first_losses));
  r.last_loss = s.result.value("last_loss", mean(s.last_losses));
  r.seconds = s.seconds;
  r.flops = s.result.value("flops", 0.0);
  spdlog::info("{}: already trained ({}), {} steps, last loss {:.4f}", name_, dir, r.steps,
               r.last_loss);
  return r;
}

void TrainingRun::make_optimizer() {
  params_.clear();
  std::set<const void*> seen;  // a tied weight is one parameter
  for (const auto& p : net_->parameters())
    if (p.requires_grad() && seen.insert(p.unsafeGetTensorImpl()).second) params_.push_back(p);
  torch::optim::AdamOptions opts(o_.lr);
  opts.betas(std::make_tuple(o_.adam_beta1, o_.adam_beta2))
      .eps(o_.adam_eps)
      .weight_decay(o_.weight_decay);
  optimizer_ = std::make_unique<torch::optim::Adam>(params_, opts);
}

void TrainingRun::restore_or_start() {
  // A checkpoint that cannot be used is set aside (renamed DIR.unreadable), not left where the
  // next commit would delete it as "newer than the checkpoint just written": it may be good on
  // another machine, or worth a look.
  // Only the lead renames (data-parallel ranks share the directory); every rank then checks
  // that all start from the same step and weights (check_ranks_agree).
  auto set_aside = [&](const std::string& dir, const std::string& why) {
    if (!lead()) {
      spdlog::warn("{}: skipping checkpoint {} ({})", name_, dir, why);
      return;
    }
    const std::string aside = dir + ".unreadable";
    std::error_code ec;
    if (fs::exists(aside, ec)) {  // an earlier one is kept: never deleted to make room
      spdlog::warn("{}: skipping checkpoint {} ({}); it stays in place ({} exists)", name_, dir, why, aside);
      return;
    }
    fs::rename(dir, aside, ec);
    spdlog::warn("{}: skipping checkpoint {} ({}); {}", name_, dir, why,
                 ec ? "it stays in place" : "kept as " + aside);
  };
  for (int64_t step : store_.steps()) {
    const std::string dir = store_.step_dir(step);
    TrainerState s;
    try {
      s = CheckpointStore::validate(dir);
    } catch (const Error& e) {
      set_aside(dir, std::string("damaged: ") + e.what());
      continue;
    }
    const std::string diff = job_difference(s.job, job_key_, kOptionalJobKeys);
    if (!diff.empty())
      throw Error(name_ + ": " + dir + " belongs to a different training job (" + diff +
                  "); use a fresh out_dir for this one" +
                  (diff.find("recipe.") != std::string::npos
                       ? " (to go on from these weights under the new recipe -- e.g. a lower lr after a divergence -- "
                         "give the new job this checkpoint as its init)"
                       : std::string()));
    // Damage (a file that does not parse) sets the checkpoint aside; running out of memory on
    // the device or the host does not -- the checkpoint is fine, and falling back to an older
    // one would throw its progress (and the metrics after it) away.
    try {
      net_ = models::load_checkpoint(dir);
      net_->to(device_);
      make_optimizer();
      // onto this run's device: a checkpoint written on another one (CUDA <-> CPU) resumes
      torch::load(*optimizer_, (fs::path(dir) / "optimizer.pt").string(), device_);
    } catch (const c10::OutOfMemoryError& e) {
      throw Error(name_ + ": out of memory loading checkpoint " + dir + " (" + e.what_without_backtrace() +
                  "); it is left as it is -- free the device and rerun");
    } catch (const std::bad_alloc&) {
      throw Error(name_ + ": out of memory loading checkpoint " + dir + "; it is left as it is -- rerun with more memory");
    } catch (const c10::Error& e) {
      set_aside(dir, std::string("unreadable: ") + e.what_without_backtrace());
      continue;
    } catch (const std::exception& e) {
      set_aside(dir, std::string("unreadable: ") + e.what());
      continue;
    }
    state_ = s;
    seconds_before_ = s.seconds;
    last_good_ = dir;
    spdlog::info("{}: resuming from {} (step {}/{})", name_, dir, s.step, s.total_steps);
    return;
  }
  if (job_.init.empty()) throw Error(name_ + ": the training job names no init checkpoint");
  if (!fs::is_directory(job_.init))
    throw Error(name_ + ": init checkpoint " + job_.init + " does not exist");
  net_ = models::load_checkpoint(job_.init);
  net_->to(device_);
  make_optimizer();
  state_ = TrainerState{};
  state_.total_steps = total_steps_;
  state_.seed = job_.seed;
  state_.job = job_key_;
  state_.info = {{"name", name_},
                 {"init", job_.init},
                 {"data", job_.data},
                 {"token_budget", job_.tokens},
                 {"options", options_json(o_)}};
}

void TrainingRun::check_model() const {
  const models::OptConfig& c = net_->config();
  if (o_.seq_len > c.max_positions)
    throw Error(name_ + ": trainer.seq_len = " + std::to_string(o_.seq_len) +
                " exceeds the model's max_positions = " + std::to_string(c.max_positions));
}

void TrainingRun::check_data(const BlockDataset& data) const {
  const models::OptConfig& c = net_->config();
  const auto& s = data.stream();
  const int32_t top = *std::max_element(s.begin(), s.end());
  const int32_t low = *std::min_element(s.begin(), s.end());
  if (top >= c.vocab_size || low < 0)
    throw Error(name_ + ": token data in " + join(job_.data) + " holds id " +
                std::to_string(top >= c.vocab_size ? top : low) +
                " outside the model's vocabulary of " + std::to_string(c.vocab_size));
}

// ---- one step, checkpoints, the final model ---------------------------------------------

double TrainingRun::seconds_so_far() const {
  return seconds_before_ +
         std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

json TrainingRun::extra() const {
  return {{"trainer",
           {{"type", "lm"},
            {"job", name_},
            {"step", state_.step},
            {"total_steps", total_steps_},
            {"tokens", state_.tokens},
            {"seed", job_.seed},
            {"options", options_json(o_)}}}};
}

void TrainingRun::non_finite(const char* what, double value, int64_t step) const {
  throw Error(name_ + ": " + what + " became " + (std::isnan(value) ? "nan" : "inf") + " at step " +
              std::to_string(step) + "; last good checkpoint: " +
              (last_good_.empty() ? "none (the run started from " + job_.init + ")" : last_good_));
}

// One optimizer update (0-based `step`): the mean loss over the step's sequences and the
// gradient norm before clipping.
TrainingRun::StepStats TrainingRun::train_step(const Batch& batch, int64_t step) {
  uint64_t dropout_seed = derive_seed(job_.seed, kDropoutStream + static_cast<uint64_t>(step));
  if (dp_ && dp_->active()) dropout_seed = derive_seed(dropout_seed, static_cast<uint64_t>(dp_->rank()));
  torch::manual_seed(dropout_seed);
  optimizer_->zero_grad();
  const torch::Tensor all =
      torch::from_blob(const_cast<int64_t*>(batch.tokens.data()),
                       {batch.micro_batches, batch.rows, batch.block_len}, torch::kLong);
  double loss_sum = 0, aux_sum = 0, dropped_sum = 0;
  const bool moe = net_->config().moe_experts > 0;
  // Data parallel: this rank's equal share of every micro-batch's rows.
  const int64_t world = dp_ ? dp_->world() : 1, share = batch.rows / world;
  const int64_t row0 = dp_ ? dp_->rank() * share : 0;
  for (int64_t m = 0; m < batch.micro_batches; ++m) {
    const torch::Tensor x = all[m].slice(0, row0, row0 + share).to(device_);
    const torch::Tensor inputs = x.slice(1, 0, batch.block_len - 1).contiguous();
    const torch::Tensor targets = x.slice(1, 1).reshape({-1});
    torch::Tensor logits;
    {
      models::AutocastGuard autocast(device_, models::use_bf16(device_));
      logits = net_->forward(inputs);
    }
    const torch::Tensor loss = models::fused_cross_entropy(logits.reshape({-1, logits.size(-1)}), targets);
    // A mixture-of-experts model adds its load-balancing loss (the logged loss stays the LM's).
    const double aux_weight = moe ? net_->config().moe_aux_weight : 0.0;
    const torch::Tensor aux = moe ? net_->aux_loss() : torch::Tensor();
    const torch::Tensor objective = aux_weight > 0 ? loss + aux_weight * aux : loss;
    (objective / static_cast<double>(batch.micro_batches)).backward();
    loss_sum += loss.item<double>();
    if (moe) {
      aux_sum += aux.item<double>();
      dropped_sum += net_->dropped_fraction();
    }
  }
  const double micro = static_cast<double>(batch.micro_batches);
  double loss = loss_sum / micro;
  if (dp_ && dp_->active()) {
    // The mean over the ranks' equal shares is the mean over the whole batch.
    std::vector<torch::Tensor> grads;
    for (const auto& p : params_) grads.push_back(p.grad());
    dp_->average(grads);
    loss = dp_->average(loss);
  }
  if (!std::isfinite(loss)) non_finite("loss", loss, step + 1);
  const double max_norm = o_.clip > 0 ? o_.clip : std::numeric_limits<double>::infinity();
  const double grad_norm = torch::nn::utils::clip_grad_norm_(params_, max_norm);
  if (!std::isfinite(grad_norm)) non_finite("gradient norm", grad_norm, step + 1);
  optimizer_->step();
  return {loss, grad_norm, aux_sum / micro, dropped_sum / micro};
}

// Every rank must start from the same step and weights: a rank that could not load the newest
// checkpoint (or, with a node-local out_dir, saw none) would otherwise average its gradients
// with the others' from another point of training. Each rank compares through the mean and
// the mean square over ranks, so all of them see a difference and stop together.
void TrainingRun::check_ranks_agree() {
  const double step = static_cast<double>(state_.step);
  double sum = 0;
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : net_->parameters()) sum += p.to(torch::kDouble).sum().item<double>();
  }
  const double ms = dp_->average(step), ms2 = dp_->average(step * step);
  const double mw = dp_->average(sum), mw2 = dp_->average(sum * sum);
  if (ms2 - ms * ms > 0.25 || mw2 - mw * mw > 1e-9 * (mw * mw + 1))
    throw Error(name_ + ": the data-parallel ranks start from different points: this rank (" + std::to_string(dp_->rank()) +
                ") from step " + std::to_string(state_.step) + ", the mean over ranks is step " + std::to_string(ms) +
                (ms2 - ms * ms > 0.25 ? "" : " (the weights differ)") +
                "; every rank must read the same checkpoints (a shared out_dir) -- look for a checkpoint set aside as "
                "unreadable, and rerun");
}

void TrainingRun::write_checkpoint() {
  const std::string target = store_.step_dir(state_.step);
  state_.seconds = seconds_so_far();
  if (lead()) {  // every rank holds the same model: one writes it
    const std::string staging = store_.staging_for(target);
    models::save_checkpoint(net_, staging, extra(), {job_.bos_id, job_.eos_id, job_.pad_id});
    const std::string opt_file = (fs::path(staging) / "optimizer.pt").string();
    torch::save(*optimizer_, opt_file);
    sync_file(opt_file);  // durable before commit_step deletes older checkpoints
    store_.commit_step(staging, state_);
  }
  if (dp_) dp_->barrier();
  last_good_ = target;
}

TrainResult TrainingRun::write_final() {
  TrainResult r;
  r.checkpoint = store_.final_dir();
  r.steps = state_.step;
  r.tokens = state_.tokens;
  r.first_loss = mean(state_.first_losses);
  r.last_loss = mean(state_.last_losses);
  r.seconds = state_.seconds = seconds_so_far();
  r.flops = models::training_flops(net_->config(), o_.seq_len, state_.tokens);
  state_.result = {{"steps", r.steps},         {"tokens", r.tokens},   {"first_loss", r.first_loss},
                   {"last_loss", r.last_loss}, {"seconds", r.seconds}, {"flops", r.flops}};
  if (lead()) {
    const std::string staging = store_.staging_for(r.checkpoint);
    models::save_checkpoint(net_, staging, extra(), {job_.bos_id, job_.eos_id, job_.pad_id});
    store_.commit_final(staging, state_);
  }
  if (dp_) dp_->barrier();
  return r;
}

// ---- the run -------------------------------------------------------------------------------

TrainResult TrainingRun::run() {
  torch::set_num_threads(runtime().resolved_threads());
  device_ = models::model_device();
  const DistEnv dist = DistEnv::from_environment();
  if (dist.world > 1) {
    if (device_.is_cuda() && !device_.has_index()) {  // runtime.device auto/cuda: one GPU per local rank
      const int local = dist.local_rank >= 0 ? dist.local_rank : dist.rank;
      device_ = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local % static_cast<int>(torch::cuda::device_count())));
    }
    // the current device too, so that whatever allocates on "the" CUDA device (a default
    // stream, NCCL's helpers) does so on this rank's GPU and not on GPU 0
    if (device_.is_cuda()) c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(device_);
    if (rows_ % dist.world != 0)
      throw Error(name_ + ": " + std::to_string(rows_) + " sequences per micro-batch (trainer.batch_size) "
                  "cannot be split evenly over " + std::to_string(dist.world) +
                  " data-parallel ranks; make batch_size a multiple of the world size");
    spdlog::info("{}: data parallel rank {} of {} ({}{}), rendezvous {}:{}, on {}", name_, dist.rank, dist.world,
                 dist.source, dist.local_rank >= 0 ? ", local rank " + std::to_string(dist.local_rank) : "",
                 dist.addr, dist.port, device_.str());
    dp_ = std::make_unique<DataParallel>(dist, device_);
    spdlog::info("{}: gradients averaged over {}", name_, dp_->backend());
  }
  if (lead()) store_.remove_stale_staging();
  if (dp_) dp_->barrier();  // no rank scans the checkpoints while the lead cleans up
  // (after the rendezvous: the lead's pipeline may just have discarded an earlier attempt's final)
  if (store_.has_final()) return finished();
  restore_or_start();
  if (dp_ && dp_->active()) check_ranks_agree();
  check_model();
  const BlockDataset data = BlockDataset::load(job_.data, job_.bos_id, o_.seq_len, job_.seed, job_.eos_id);
  check_data(data);

  const int64_t start = state_.step;
  spdlog::info(
      "{}: {} steps x {} sequences x {} tokens = {} tokens (budget {}); {} blocks from "
      "{} documents ({:.2f} epochs); device {}, bf16 {}",
      name_, total_steps_, rows_ * o_.grad_accum, o_.seq_len, total_steps_ * tokens_per_step_,
      job_.tokens, data.blocks(), data.documents(),
      double(total_steps_ * rows_ * o_.grad_accum) / double(data.blocks()), device_.str(),
      models::use_bf16(device_));
  std::unique_ptr<MetricsLog> metrics;  // the lead rank's
  if (lead()) {
    metrics = std::make_unique<MetricsLog>((fs::path(job_.out_dir) / "metrics.jsonl").string());
    metrics->truncate_after(start);
  }
  const LrSchedule schedule{o_.lr, o_.warmup_steps, total_steps_};
  BatchLoader loader(data, {rows_, o_.grad_accum, job_.seed}, start, total_steps_, o_.loader_queue);
  Progress progress(name_, double((total_steps_ - start) * tokens_per_step_), "tok");
  net_->train();

  for (int64_t step = start; step < total_steps_; ++step) {
    const Batch batch = loader.next();
    const auto t0 = std::chrono::steady_clock::now();
    const double lr = schedule.at(step);
    for (auto& group : optimizer_->param_groups())
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    const StepStats stats = train_step(batch, step);
    const double loss = stats.loss;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    state_.step = step + 1;
    state_.tokens = state_.step * tokens_per_step_;
    if (state_.step <= o_.log_every) state_.first_losses.push_back(loss);
    state_.last_losses.push_back(loss);
    if (static_cast<int64_t>(state_.last_losses.size()) > o_.log_every)
      state_.last_losses.erase(state_.last_losses.begin());
    if (metrics) {
      nlohmann::json line = {{"step", state_.step},
                             {"tokens", state_.tokens},
                             {"loss", loss},
                             {"lr", lr},
                             {"grad_norm", stats.grad_norm},
                             {"tokens_per_s", dt > 0 ? double(tokens_per_step_) / dt : 0.0}};
      if (net_->config().moe_experts > 0) {  // this rank's share of the batch (rank 0 logs); the aux
                                             // loss is summed over the mixture layers (each 1 if balanced)
        line["moe_aux_loss"] = stats.moe_aux;
        line["moe_dropped"] = stats.moe_dropped;
      }
      metrics->append(line);
    }
    if (lead())
      progress.update(double((state_.step - start) * tokens_per_step_),
                    fmt::format("step {}/{}  loss {:.3f}", state_.step, total_steps_,
                                mean(state_.last_losses)));

    const bool done = state_.step == total_steps_;
    if (!done && o_.checkpoint_every > 0 && state_.step % o_.checkpoint_every == 0)
      write_checkpoint();
    if (!done && o_.max_steps_this_run > 0 && state_.step - start == o_.max_steps_this_run) {
      if (last_good_ != store_.step_dir(state_.step)) write_checkpoint();
      throw Error(name_ + ": stopped after " + std::to_string(o_.max_steps_this_run) +
                  " steps in this run (trainer.max_steps_this_run), at step " +
                  std::to_string(state_.step) + "/" + std::to_string(total_steps_) +
                  "; run again to resume from " + last_good_);
    }
  }
  TrainResult r = write_final();
  if (lead()) progress.finish(fmt::format("loss {:.3f} -> {:.3f}", r.first_loss, r.last_loss));
  spdlog::info("{}: trained {} steps, {} tokens, loss {:.4f} -> {:.4f}; final model {}", name_,
               r.steps, r.tokens, r.first_loss, r.last_loss, r.checkpoint);
  return r;
}

}  // namespace

TrainResult run_training(const LmTrainer::Options& options, const TrainJob& job) {
  return TrainingRun(options, job).run();
}

}  // namespace cbtm::lm
