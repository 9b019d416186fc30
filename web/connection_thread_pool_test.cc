#include "web/connection_thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace rwd {
namespace {

// A gate jobs wait at until it opens.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Waits (up to 10 s) until `n` reaches `want`.
bool Reaches(const std::atomic<int>& n, int want) {
  for (int i = 0; i < 10000 && n.load() < want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return n.load() >= want;
}

TEST(ConnectionThreadPool, OneJobAtATimeUsesOneThread) {
  ConnectionThreadPool pool(64);
  std::mutex mu;
  std::set<std::thread::id> ran_on;
  std::atomic<int> done{0};
  for (int i = 0; i < 200; ++i) {
    pool.Enqueue([&] {
      std::lock_guard<std::mutex> l(mu);
      ran_on.insert(std::this_thread::get_id());
      ++done;
    });
    ASSERT_TRUE(Reaches(done, i + 1));
    // As a client's next request would, find the thread back on the idle list.
    for (int k = 0; k < 10000 && pool.threads_idle() == 0; ++k) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  pool.Shutdown();
  EXPECT_EQ(done.load(), 200);
  EXPECT_EQ(pool.threads_started(), 1u);
  EXPECT_EQ(ran_on.size(), 1u);
}

TEST(ConnectionThreadPool, StartsThreadsUpToItsLimitThenQueues) {
  ConnectionThreadPool pool(4);
  Gate gate;
  std::atomic<int> started{0};
  std::mutex mu;
  std::vector<int> order;  // as the jobs started
  for (int i = 0; i < 10; ++i) {
    pool.Enqueue([&, i] {
      {
        std::lock_guard<std::mutex> l(mu);
        order.push_back(i);
      }
      ++started;
      gate.Wait();
    });
  }
  ASSERT_TRUE(Reaches(started, 4));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(started.load(), 4);  // the other six wait for a thread
  EXPECT_EQ(pool.threads_started(), 4u);
  gate.Open();
  pool.Shutdown();  // runs the waiting jobs before it returns
  ASSERT_EQ(order.size(), 10u);
  EXPECT_EQ(pool.threads_started(), 4u);
  EXPECT_EQ(std::set<int>(order.begin(), order.begin() + 4), (std::set<int>{0, 1, 2, 3}));
  EXPECT_EQ(std::set<int>(order.begin(), order.end()).size(), 10u);
}

TEST(ConnectionThreadPool, WaitingJobsRunInTheOrderTheyCame) {
  ConnectionThreadPool pool(1);
  Gate gate;
  std::atomic<int> started{0};
  std::vector<int> order;  // one thread: no lock needed
  pool.Enqueue([&] {
    ++started;
    gate.Wait();
  });
  ASSERT_TRUE(Reaches(started, 1));
  for (int i = 0; i < 6; ++i) pool.Enqueue([&, i] { order.push_back(i); });
  gate.Open();
  pool.Shutdown();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

TEST(ConnectionThreadPool, TheThreadIdleLastTakesTheNextJob) {
  ConnectionThreadPool pool(8);
  Gate gates[3];
  std::atomic<int> started{0}, finished{0};
  std::thread::id ids[3];
  for (int i = 0; i < 3; ++i) {
    pool.Enqueue([&, i] {
      ids[i] = std::this_thread::get_id();
      ++started;
      gates[i].Wait();
      ++finished;
    });
  }
  ASSERT_TRUE(Reaches(started, 3));
  // Finish them in the order 0, 2, 1: thread 1 is then the most recently idle.
  for (int i : {0, 2, 1}) {
    int before = finished.load();
    gates[i].Open();
    ASSERT_TRUE(Reaches(finished, before + 1));
    for (int k = 0; k < 10000 && pool.threads_idle() != static_cast<size_t>(before + 1); ++k) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    ASSERT_EQ(pool.threads_idle(), static_cast<size_t>(before + 1));
  }
  std::atomic<int> done{0};
  std::thread::id next;
  pool.Enqueue([&] {
    next = std::this_thread::get_id();
    ++done;
  });
  ASSERT_TRUE(Reaches(done, 1));
  EXPECT_EQ(next, ids[1]);
  EXPECT_EQ(pool.threads_started(), 3u);
}

TEST(ConnectionThreadPool, AfterShutdownJobsStillRun) {
  ConnectionThreadPool pool(2);
  std::atomic<int> done{0};
  pool.Enqueue([&] { ++done; });
  pool.Shutdown();
  EXPECT_EQ(done.load(), 1);
  pool.Enqueue([&] { ++done; });  // on the caller's thread
  EXPECT_EQ(done.load(), 2);
}

}  // namespace
}  // namespace rwd
