#include "batch_loader.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace cbtm::lm {

Batch make_batch(const BlockDataset& data, EpochOrder& order, const BatchPlan& plan, int64_t step) {
  Batch b;
  b.step = step;
  b.micro_batches = plan.micro_batches;
  b.rows = plan.rows;
  b.block_len = data.seq_len() + 1;
  const int64_t n = plan.micro_batches * plan.rows;
  b.tokens.resize(static_cast<size_t>(n * b.block_len));
  for (int64_t i = 0; i < n; ++i)
    data.copy_block(order.block(step * n + i), b.tokens.data() + i * b.block_len);
  return b;
}

BatchLoader::BatchLoader(const BlockDataset& data, BatchPlan plan, int64_t first_step,
                         int64_t end_step, int64_t queue)
    : data_(data),
      plan_(plan),
      next_step_(first_step),
      end_step_(end_step),
      capacity_(static_cast<size_t>(std::max<int64_t>(1, queue))),
      produced_until_(first_step),
      thread_([this] { run(); }) {}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BatchLoader::run() {
  try {
    EpochOrder order(data_.blocks(), plan_.seed);
    for (int64_t step = produced_until_; step < end_step_; ++step) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || ready_.size() < capacity_; });
        if (stop_) return;
      }
      Batch b = make_batch(data_, order, plan_, step);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ready_.push_back(std::move(b));
        produced_until_ = step + 1;
      }
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
    cv_.notify_all();
  }
}

Batch BatchLoader::next() {
  if (next_step_ >= end_step_)
    throw std::out_of_range("BatchLoader::next past step " + std::to_string(end_step_));
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !ready_.empty() || error_; });
  if (ready_.empty()) std::rethrow_exception(error_);
  Batch b = std::move(ready_.front());
  ready_.pop_front();
  ++next_step_;
  lock.unlock();
  cv_.notify_all();
  return b;
}

}  // namespace cbtm::lm
