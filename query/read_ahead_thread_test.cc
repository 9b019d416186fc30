#include "query/read_ahead_thread.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace rwd {
namespace {

TEST(ReadAheadThread, RunsJobsInOrderAndWaitReturnsOnlyAfterTheJob) {
  ReadAheadThread t;
  std::vector<int> order;  // written by the helper only; read after Wait()
  std::atomic<bool> release{false};
  auto first = t.Submit([&] {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    order.push_back(1);
  });
  auto second = t.Submit([&] { order.push_back(2); });
  EXPECT_NE(first, 0u);
  EXPECT_LT(first, second);
  std::atomic<bool> waited{false};
  std::thread waiter([&] {
    t.Wait(second);
    waited = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(waited.load()) << "Wait() returned before the job ran";
  release = true;
  waiter.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  t.Wait(first);  // long done: returns at once
}

TEST(ReadAheadThread, DestructorRunsWhatIsQueued) {
  std::atomic<int> ran{0};
  {
    ReadAheadThread t;
    for (int i = 0; i < 100; ++i) t.Submit([&] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 100);
  ReadAheadThread unused;  // never started: nothing to join
}

}  // namespace
}  // namespace rwd
