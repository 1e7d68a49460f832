#pragma once
/// \file lm_trainer.h
/// The "lm" trainer: trains an OPT-style checkpoint (models/opt/opt.h) on token shards with
/// the paper's recipe (§3.2): Adam (0.9, 0.95), eps 1e-6, no weight decay, gradient clipping
/// at 1.0, linear decay of the learning rate to 0 with no warmup, dropout on, bf16 autocast.
///
/// Data: every document as [bos] + tokens, shuffled by the job seed, packed into blocks of
/// seq_len+1 (block_dataset.h), visited in a fresh permutation each epoch, prepared on a
/// background thread (batch_loader.h). A step is grad_accum micro-batches of
/// max(1, batch_size / job.batch_divisor) sequences; the run takes
/// ceil(job.tokens / (sequences per step * seq_len)) steps.
///
/// Resumable and exactly reproducible: dropout is re-seeded from (seed, step) every step, and
/// checkpoints (checkpoint_store.h) hold model, optimizer and trainer state, so a run killed
/// and restarted logs the same losses as an uninterrupted one. out_dir/metrics.jsonl gets one
/// line per step (metrics_log.h). The result is out_dir/final (Hugging Face layout plus
/// trainer_state.json); step checkpoints are removed once it is written.
///
/// Errors (cbtm::Error): missing/too little data, seq_len above the model's max_positions,
/// token ids outside the vocabulary, a missing init checkpoint, an out_dir holding another
/// job's checkpoints, a non-finite loss or gradient norm (the last good checkpoint is kept and
/// named), and the deliberate stop of max_steps_this_run.
///
/// One train() at a time per process: it sets LibTorch's global thread count and RNG seed.
///
/// \code
///   trainer:
///     type: lm
///     lr: 1.0e-3
///     batch_size: 16
///     seq_len: 256
/// \endcode
#include <cstdint>

#include "cbtm/error.h"
#include "cbtm/trainer.h"

namespace cbtm::lm {

class LmTrainer : public Trainer {
 public:
  struct Options {
    double lr = 1e-3;
    int64_t batch_size = 16;
    int64_t seq_len = 256;
    int64_t grad_accum = 1;
    double adam_beta1 = 0.9;
    double adam_beta2 = 0.95;
    double adam_eps = 1e-6;
    double weight_decay = 0.0;
    double clip = 1.0;
    int64_t warmup_steps = 0;
    int64_t checkpoint_every = 200;
    int64_t keep_checkpoints = 2;
    int64_t log_every = 10;
    int64_t loader_queue = 4;
    int64_t max_steps_this_run = 0;

    template <class V>
    void visit(V& v) {
      v("lr", lr, "peak learning rate (linear decay to 0 over the run)");
      v("batch_size", batch_size,
        "sequences per micro-batch (divided by the job's batch_divisor, at least 1)");
      v("seq_len", seq_len, "tokens per training sequence (<= the model's max_positions)");
      v("grad_accum", grad_accum, "micro-batches accumulated per optimizer step");
      v("adam_beta1", adam_beta1, "Adam beta1");
      v("adam_beta2", adam_beta2, "Adam beta2");
      v("adam_eps", adam_eps, "Adam epsilon");
      v("weight_decay", weight_decay, "L2 penalty as in torch.optim.Adam (the paper: 0)");
      v("clip", clip, "clip gradients to this global L2 norm (0: no clipping)");
      v("warmup_steps", warmup_steps, "linear warmup steps before the decay (the paper: 0)");
      v("checkpoint_every", checkpoint_every,
        "write a resumable checkpoint every this many steps (0: only the final model)");
      v("keep_checkpoints", keep_checkpoints, "step checkpoints kept (older ones are deleted)");
      v("log_every", log_every,
        "steps per loss window (first_loss/last_loss average the first/last window)");
      v("loader_queue", loader_queue, "batches the background loader prepares ahead");
      v("max_steps_this_run", max_steps_this_run,
        "stop after this many steps in this process, leaving a checkpoint to resume from "
        "(an Error says so); for tests and time-sliced jobs (0: no limit)");
    }
    void validate() const;
  };

  explicit LmTrainer(const Options& options);
  TrainResult train(const TrainJob& job) override;

 private:
  Options options_;
};

}  // namespace cbtm::lm
