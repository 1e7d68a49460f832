#pragma once
/// \file batch_loader.h
/// Prepares the token batches of the "lm" trainer on a background thread, a bounded number
/// of steps ahead, so the model never waits for data.
///
/// Step s, micro-batch m, row r reads sample (s * micro_batches + m) * rows + r, which
/// EpochOrder maps to a block: the batches depend only on (data, plan, step), so a resumed
/// run reads exactly what an uninterrupted one would.
///
/// \code
///   BatchLoader loader(data, {rows, grad_accum, seed}, start_step, total_steps, 4);
///   for (int64_t s = start_step; s < total_steps; ++s) { Batch b = loader.next(); ... }
/// \endcode
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "block_dataset.h"

namespace cbtm::lm {

/// The shape of one optimizer step's data.
struct BatchPlan {
  int64_t rows = 1;           ///< sequences per micro-batch
  int64_t micro_batches = 1;  ///< gradient-accumulation micro-batches per step
  uint64_t seed = 0;          ///< block order
};

/// One optimizer step's tokens: [micro_batches][rows][seq_len + 1], row-major.
struct Batch {
  int64_t step = 0;
  int64_t micro_batches = 0, rows = 0, block_len = 0;
  std::vector<int64_t> tokens;
  const int64_t* micro(int64_t m) const { return tokens.data() + m * rows * block_len; }
};

/// The batch of `step` (synchronously; what the loader thread runs).
Batch make_batch(const BlockDataset& data, EpochOrder& order, const BatchPlan& plan, int64_t step);

class BatchLoader {
 public:
  /// Starts a thread producing the batches of steps [first_step, end_step), at most
  /// `queue` ahead of the consumer. `data` must outlive the loader.
  BatchLoader(const BlockDataset& data, BatchPlan plan, int64_t first_step, int64_t end_step,
              int64_t queue);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  /// The next step's batch (waits if it is not ready). Rethrows an error of the thread;
  /// std::out_of_range after end_step.
  Batch next();

 private:
  void run();
  const BlockDataset& data_;
  BatchPlan plan_;
  int64_t next_step_, end_step_;
  size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  int64_t produced_until_;  // steps before this have been produced (guarded by mu_)
  std::thread thread_;
};

}  // namespace cbtm::lm
