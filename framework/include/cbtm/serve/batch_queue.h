#pragma once
/// \file batch_queue.h
/// Dynamic batching: calls made from many threads, each for one input, are answered by a
/// batch function that takes every input waiting when it starts (up to `max_batch`), so
/// that under concurrent callers the batch function's fixed costs are shared.
/// `cbtm serve` scores the texts of concurrent /score requests this way (run_ensemble.h).
///
/// The batch function runs wherever `post` sends a job (e.g. one worker thread); at most one
/// job is queued at a time: a call that finds none queued queues one, and a job that leaves
/// inputs waiting (more than `max_batch`) queues the next. A caller waits only for its own
/// answer. Inputs are taken in arrival order. If the batch function throws on a batch of
/// several, each of its inputs is retried alone, so that an error reaches only the caller
/// whose input caused it.
///
/// \code
///   BatchQueue<std::string, TextScore> q(
///       [&](const std::vector<std::string>& texts) { return score_all(texts); },
///       [&](std::function<void()> job) { worker.post(std::move(job)); });
///   TextScore s = q.call(text);  // from any thread
/// \endcode
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace cbtm {

template <class In, class Out>
class BatchQueue {
 public:
  /// Answers a batch: one output per input, in order.
  using Process = std::function<std::vector<Out>(const std::vector<In>&)>;
  /// Queues a job (which does not throw) to run later, on any thread (not within post()).
  using Post = std::function<void(std::function<void()>)>;

  BatchQueue(Process process, Post post, int64_t max_batch = 16)
      : process_(std::move(process)), post_(std::move(post)) {
    set_max_batch(max_batch);
  }

  /// Blocks until `in`'s answer; rethrows what answering it threw. Thread-safe.
  Out call(In in) {
    Waiting w{std::move(in), {}};
    auto answer = w.done.get_future();
    bool post = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      waiting_.push_back(&w);
      post = !job_queued_;
      job_queued_ = true;
    }
    if (post) post_([this] { run_batch(); });
    return answer.get();
  }

  /// Most inputs per batch (>= 1; 1: one at a time).
  void set_max_batch(int64_t n) {
    if (n < 1) throw std::invalid_argument("max_batch must be >= 1 (got " + std::to_string(n) + ")");
    max_batch_ = n;
  }
  int64_t max_batch() const { return max_batch_.load(); }
  /// Inputs answered (or failed) so far, and the batches that took them (retries not counted).
  int64_t calls() const { return calls_.load(); }
  int64_t batches() const { return batches_.load(); }
  /// Inputs waiting for a batch now.
  int64_t waiting() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int64_t>(waiting_.size());
  }

 private:
  struct Waiting {
    In in;
    std::promise<Out> done;
  };

  void run_batch() {
    std::vector<Waiting*> batch;
    bool more = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const size_t n = std::min(waiting_.size(), static_cast<size_t>(max_batch_.load()));
      batch.assign(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(n));
      waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(n));
      more = job_queued_ = !waiting_.empty();  // the rest: the next job, queued behind other work
    }
    if (more) post_([this] { run_batch(); });
    if (batch.empty()) return;
    calls_ += static_cast<int64_t>(batch.size());
    ++batches_;
    if (answer(batch) || batch.size() == 1) return;
    for (Waiting* w : batch) answer({w});  // the batch failed: input by input
  }

  // Answers every caller of `batch`: true if process_ succeeded; on failure, a batch of one
  // gets the error, a larger one is left for the caller to retry.
  bool answer(const std::vector<Waiting*>& batch) {
    try {
      std::vector<In> ins;
      ins.reserve(batch.size());
      for (Waiting* w : batch) ins.push_back(w->in);
      std::vector<Out> outs = process_(ins);
      if (outs.size() != batch.size())
        throw std::logic_error("batch function returned " + std::to_string(outs.size()) + " answers for " +
                               std::to_string(batch.size()) + " inputs");
      for (size_t i = 0; i < batch.size(); ++i) batch[i]->done.set_value(std::move(outs[i]));
      return true;
    } catch (...) {
      if (batch.size() == 1) batch[0]->done.set_exception(std::current_exception());
      return false;
    }
  }

  Process process_;
  Post post_;
  std::atomic<int64_t> max_batch_{16}, calls_{0}, batches_{0};
  mutable std::mutex mu_;
  std::deque<Waiting*> waiting_;
  bool job_queued_ = false;
};

}  // namespace cbtm
