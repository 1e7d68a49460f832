#pragma once
/// \file worker.h
/// ModelWorker: runs submitted jobs one at a time, on its own long-lived thread or on a thread
/// that lends itself with run_here() (RunEnsemble runs every model call through one; the
/// process's main thread runs the models about twice as fast as any other thread here --
/// measured with bench/serve_bench -- so `cbtm serve` lends it). Model calls made from many
/// short-lived connection threads would also each start a fresh OpenMP team.
///
/// A worker can be closed for good (close_when: `cbtm serve`'s SIGINT/SIGTERM flag): from then
/// on run() throws ShuttingDown at once, and a job queued before but not yet started throws it
/// instead of running, so that stopping does not wait for every queued request to be computed.
///
/// \code
///   ModelWorker w;
///   int x = w.run([] { return 6 * 7; });  // on the worker's thread
/// \endcode
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

#include "cbtm/error.h"

namespace cbtm {

/// The Error of a call to a closed worker (or one queued when it closed): `cbtm serve` answers
/// 503.
class ShuttingDown : public Error {
 public:
  using Error::Error;
};

/// ShuttingDown's message for a call that was never started.
inline constexpr const char* kShuttingDownNotRun = "the server is shutting down: the request was not run";

class ModelWorker {
 public:
  ModelWorker() : thread_([this] { loop(); }) {}
  ~ModelWorker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  ModelWorker(const ModelWorker&) = delete;
  ModelWorker& operator=(const ModelWorker&) = delete;

  /// Runs `f` on the worker and returns what it returned (rethrows what it threw). ShuttingDown
  /// without running `f` if the worker is closed when called or when `f`'s turn comes.
  template <class F> auto run(F f) -> decltype(f()) {
    using R = decltype(f());
    if (closed()) throw ShuttingDown(kShuttingDownNotRun);
    // the check again when the job starts: it may have waited behind a long one
    std::packaged_task<R()> task([this, &f]() -> R {
      if (closed()) throw ShuttingDown(kShuttingDownNotRun);
      return f();
    });
    auto result = task.get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.emplace_back([&task] { task(); });
    }
    cv_.notify_all();
    return result.get();  // rethrows what the job threw
  }

  /// Queues `job` and returns at once (`job` must not throw). Posted jobs run even when the
  /// worker is closed (they answer waiting callers; check closed() inside).
  void post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_all();
  }

  /// Runs the jobs on the calling thread (the own thread then idles) until `stop` is true
  /// (checked between jobs and every 10 ms). `lent`, if given, is called first, on this thread.
  void run_here(const std::atomic<bool>& stop, const std::function<void()>& lent) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++lent_;
    }
    if (lent) lent();
    while (!stop.load()) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (!cv_.wait_for(lock, std::chrono::milliseconds(10), [this] { return !jobs_.empty(); })) continue;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      std::lock_guard<std::mutex> one(running_);
      job();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      --lent_;
    }
    cv_.notify_all();
  }

  /// Closes the worker for good once `flag` is true (read when a call is made or a job starts:
  /// no thread watches it). `flag` must outlive the worker.
  void close_when(const std::atomic<bool>& flag) { close_flag_ = &flag; }
  /// Whether the worker is closed (close_when's flag is true).
  bool closed() const {
    const std::atomic<bool>* f = close_flag_.load();
    return f != nullptr && f->load();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || (lent_ == 0 && !jobs_.empty()); });
        if (stop_ && jobs_.empty()) return;
        if (jobs_.empty() || lent_ > 0) continue;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      std::lock_guard<std::mutex> one(running_);  // one job at a time, whichever thread runs it
      job();
    }
  }
  std::mutex mu_, running_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  int lent_ = 0;
  bool stop_ = false;
  std::atomic<const std::atomic<bool>*> close_flag_{nullptr};
  std::thread thread_;  // declared last: started once the rest is ready
};

}  // namespace cbtm
