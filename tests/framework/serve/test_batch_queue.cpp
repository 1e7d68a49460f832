// BatchQueue (framework/include/cbtm/serve/batch_queue.h): callers waiting while the worker
// is busy are answered in batches of at most max_batch, in arrival order, each with its own
// answer; a failing batch is retried input by input. ModelWorker (worker.h): once closed, the
// calls not started are answered with ShuttingDown instead of being run.
#include "support/catch.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cbtm/serve/batch_queue.h"
#include "cbtm/serve/worker.h"

namespace {

// Runs posted jobs on its own thread, but only while open (the test holds it closed to let
// callers pile up).
class GatedWorker {
 public:
  GatedWorker() : thread_([this] { loop(); }) {}
  ~GatedWorker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      open_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
      ++posted_;
    }
    cv_.notify_all();
  }
  void open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  int posted() {
    std::lock_guard<std::mutex> lock(mu_);
    return posted_;
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return (open_ && !jobs_.empty()) || (stop_ && jobs_.empty()); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool open_ = false, stop_ = false;
  int posted_ = 0;
  std::thread thread_;
};

using Queue = cbtm::BatchQueue<int, int>;

// Starts one caller thread per input, each after the previous one is waiting (so arrival order
// is the input order); the worker is still closed.
void call_in_order(Queue& q, const std::vector<int>& inputs, std::vector<std::thread>& threads, std::vector<int>& out,
                   std::vector<std::string>& errors) {
  out.assign(inputs.size(), -1);
  errors.assign(inputs.size(), "");
  for (size_t i = 0; i < inputs.size(); ++i) {
    threads.emplace_back([&q, &out, &errors, i, x = inputs[i]] {
      try {
        out[i] = q.call(x);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (q.waiting() < static_cast<int64_t>(i + 1) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    REQUIRE(q.waiting() == static_cast<int64_t>(i + 1));
  }
}

}  // namespace

TEST_CASE("BatchQueue: callers waiting for a busy worker are answered in batches of at most max_batch, in arrival order") {
  GatedWorker worker;
  std::mutex seen_mu;
  std::vector<std::vector<int>> seen;
  Queue q(
      [&](const std::vector<int>& xs) {
        std::lock_guard<std::mutex> lock(seen_mu);
        seen.push_back(xs);
        std::vector<int> ys;
        for (int x : xs) ys.push_back(10 * x);
        return ys;
      },
      [&](std::function<void()> job) { worker.post(std::move(job)); }, 4);
  std::vector<std::thread> threads;
  std::vector<int> out;
  std::vector<std::string> errors;
  call_in_order(q, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, threads, out, errors);
  CHECK(worker.posted() == 1);  // one job queued, however many wait
  worker.open();
  for (auto& t : threads) t.join();
  for (int i = 0; i < 10; ++i) {
    CHECK(out[static_cast<size_t>(i)] == 10 * i);
    CHECK(errors[static_cast<size_t>(i)].empty());
  }
  CHECK(seen == std::vector<std::vector<int>>{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}});
  CHECK(q.calls() == 10);
  CHECK(q.batches() == 3);
  CHECK(worker.posted() == 3);
  CHECK(q.waiting() == 0);

  // a caller that finds nobody waiting is answered alone
  CHECK(q.call(7) == 70);
  CHECK(seen.back() == std::vector<int>{7});
  CHECK(q.batches() == 4);
}

TEST_CASE("BatchQueue: a failing batch is retried input by input: only the caller whose input fails gets the error") {
  GatedWorker worker;
  std::vector<std::vector<int>> seen;
  Queue q(
      [&](const std::vector<int>& xs) {
        seen.push_back(xs);
        std::vector<int> ys;
        for (int x : xs) {
          if (x == 13) throw std::runtime_error("cannot answer 13");
          ys.push_back(x + 1);
        }
        return ys;
      },
      [&](std::function<void()> job) { worker.post(std::move(job)); }, 16);
  std::vector<std::thread> threads;
  std::vector<int> out;
  std::vector<std::string> errors;
  call_in_order(q, {11, 12, 13, 14}, threads, out, errors);
  worker.open();
  for (auto& t : threads) t.join();
  CHECK(out == std::vector<int>{12, 13, -1, 15});
  CHECK(errors == std::vector<std::string>{"", "", "cannot answer 13", ""});
  CHECK(seen == std::vector<std::vector<int>>{{11, 12, 13, 14}, {11}, {12}, {13}, {14}});
  CHECK(q.calls() == 4);
  CHECK(q.batches() == 1);
}

TEST_CASE("BatchQueue: a batch function that answers the wrong number of inputs, and a bad max_batch, are errors") {
  GatedWorker worker;
  worker.open();
  Queue q([](const std::vector<int>&) { return std::vector<int>{}; }, [&](std::function<void()> job) { worker.post(std::move(job)); });
  CHECK(q.max_batch() == 16);
  CHECK_THROWS_WITH(q.call(1), ContainsText("returned 0 answers for 1 inputs"));
  CHECK_THROWS_AS(q.set_max_batch(0), std::invalid_argument);
  CHECK_THROWS_AS(Queue([](const std::vector<int>& x) { return x; }, [](std::function<void()>) {}, -1), std::invalid_argument);
}

TEST_CASE("BatchQueue: many threads calling at once each get their own answer") {
  GatedWorker worker;
  worker.open();
  Queue q(
      [](const std::vector<int>& xs) {
        std::this_thread::sleep_for(std::chrono::microseconds(300));  // a busy worker: callers pile up
        std::vector<int> ys;
        for (int x : xs) ys.push_back(x * x);
        return ys;
      },
      [&](std::function<void()> job) { worker.post(std::move(job)); }, 5);
  constexpr int kThreads = 8, kCalls = 40;
  std::vector<int> wrong(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const int x = t * 1000 + i;
        if (q.call(x) != x * x) ++wrong[static_cast<size_t>(t)];
      }
    });
  for (auto& t : threads) t.join();
  CHECK(wrong == std::vector<int>(kThreads, 0));
  CHECK(q.calls() == kThreads * kCalls);
  CHECK(q.batches() <= q.calls());
  CHECK(q.batches() >= q.calls() / 5);  // never more than max_batch per batch
}

TEST_CASE("ModelWorker: once closed - a call queued behind a running one throws ShuttingDown without running - so do new calls") {
  cbtm::ModelWorker w;
  std::atomic<bool> closed{false}, entered{false}, release{false}, queued_ran{false};
  w.close_when(closed);
  CHECK(w.run([] { return 7; }) == 7);
  int running_result = -1;
  std::thread running([&] {
    running_result = w.run([&] {
      entered = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      return 1;
    });
  });
  while (!entered) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::string queued_error;
  std::thread queued([&] {
    try {
      w.run([&] {
        queued_ran = true;
        return 2;
      });
    } catch (const cbtm::ShuttingDown& e) {
      queued_error = e.what();
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // queued behind the running call
  closed = true;
  release = true;
  running.join();
  queued.join();
  CHECK(running_result == 1);  // started before the close: it finishes
  CHECK(!queued_ran);
  CHECK(queued_error.find("shutting down") != std::string::npos);
  CHECK(w.closed());
  CHECK_THROWS_AS(w.run([] { return 3; }), cbtm::ShuttingDown);
  // posted jobs still run: they answer callers that wait (BatchQueue)
  std::promise<void> posted;
  w.post([&posted] { posted.set_value(); });
  CHECK(posted.get_future().wait_for(std::chrono::seconds(2)) == std::future_status::ready);
}
