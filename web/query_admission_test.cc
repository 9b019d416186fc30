#include "web/query_admission.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "query/query_parser.h"

namespace rwd {
namespace {

using Clock = QueryAdmission::Clock;
using Outcome = QueryAdmission::Outcome;

constexpr int64_t kSecond = 1000000000;
constexpr int64_t kNow = int64_t{1795341600} * kSecond;  // 2026-11-22T10:00:00Z

Clock::time_point In(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

// `index_narrows`: what Query::NarrowedByIndex would say of the query in some store.
QueryClass Classify(const std::string& text, bool index_narrows = false) {
  ParsedQuery q;
  QuerySyntaxError e;
  EXPECT_TRUE(ParseQuery(text, kNow, &q, &e)) << text;
  return ClassifyQuery(QueryPlan::Build(q.root.get()), kNow, index_narrows);
}

TEST(ClassifyQuery, IndexLookupsAndNarrowTimeRangesAreLookups) {
  EXPECT_EQ(Classify("host 10.0.0.1", true), QueryClass::kLookup);
  EXPECT_EQ(Classify("port 53 and after 3h ago", true), QueryClass::kLookup);
  EXPECT_EQ(Classify("after 2m ago"), QueryClass::kLookup) << "an open end is now";
  EXPECT_EQ(Classify("after 2026-11-22T09:00:00Z and before 2026-11-22T09:05:00Z"), QueryClass::kLookup);
  EXPECT_EQ(Classify("tcp[13] & 2 != 0 and after 2026-11-22T09:00:00Z and before 2026-11-22T09:04:00Z"),
            QueryClass::kLookup);
}

TEST(ClassifyQuery, EverythingElseIsAScan) {
  EXPECT_EQ(Classify(""), QueryClass::kScan);
  EXPECT_EQ(Classify("not host 10.0.0.1"), QueryClass::kScan);
  EXPECT_EQ(Classify("tcp[13] & 2 != 0"), QueryClass::kScan);
  EXPECT_EQ(Classify("after 10m ago"), QueryClass::kScan);
  EXPECT_EQ(Classify("before 2026-11-22T09:00:00Z"), QueryClass::kScan);
  EXPECT_EQ(Classify("after 2026-11-22T09:00:00Z and before 2026-11-22T09:05:00.001Z"), QueryClass::kScan);
  // An indexed query with many candidates (`tcp` over a busy store) is a scan unless its time range is narrow.
  EXPECT_EQ(Classify("tcp"), QueryClass::kScan);
  EXPECT_EQ(Classify("port 443 and after 3h ago"), QueryClass::kScan);
  EXPECT_EQ(Classify("tcp and after 2m ago"), QueryClass::kLookup);
  // A start centuries back: now - start does not fit 64 bits of nanoseconds (it must not wrap to a lookup).
  EXPECT_EQ(Classify("after 1680-01-01"), QueryClass::kScan);
  EXPECT_EQ(Classify("after 1678-01-01 and before 1678-01-01T00:01:00Z"), QueryClass::kLookup);
}

TEST(QueryAdmission, LookupsNeverWaitBehindScans) {
  QueryAdmission a({2, 4}, {1, 4});
  QueryAdmission::Slot scan;
  ASSERT_EQ(a.Admit(QueryClass::kScan, In(1000), &scan), Outcome::kAdmitted);
  QueryAdmission::Slot l1, l2;
  EXPECT_EQ(a.Admit(QueryClass::kLookup, In(0), &l1), Outcome::kAdmitted);
  EXPECT_EQ(a.Admit(QueryClass::kLookup, In(0), &l2), Outcome::kAdmitted);
  EXPECT_EQ(a.counters(QueryClass::kLookup).running, 2);
  EXPECT_EQ(a.counters(QueryClass::kScan).running, 1);
}

TEST(QueryAdmission, RefusesWhenTheQueueIsFullAndTimesOutWaiters) {
  QueryAdmission a({1, 0}, {1, 1});
  QueryAdmission::Slot running;
  ASSERT_EQ(a.Admit(QueryClass::kScan, In(0), &running), Outcome::kAdmitted);
  std::atomic<bool> waiting_done{false};
  Outcome waited = Outcome::kAdmitted;
  std::thread waiter([&] {
    QueryAdmission::Slot s;
    waited = a.Admit(QueryClass::kScan, In(200), &s);
    waiting_done = true;
  });
  while (a.counters(QueryClass::kScan).waiting == 0) std::this_thread::yield();
  QueryAdmission::Slot refused;
  EXPECT_EQ(a.Admit(QueryClass::kScan, In(1000), &refused), Outcome::kQueueFull);
  EXPECT_FALSE(refused.held());
  waiter.join();
  EXPECT_EQ(waited, Outcome::kTimedOut);
  QueryAdmission::Counters c = a.counters(QueryClass::kScan);
  EXPECT_EQ(c.admitted, 1u);
  EXPECT_EQ(c.queued, 1u);
  EXPECT_EQ(c.rejected, 1u);
  EXPECT_EQ(c.timed_out, 1u);
  EXPECT_EQ(c.running, 1);
  EXPECT_EQ(c.waiting, 0);
  // A lookup class with no queue refuses as soon as its slots are taken.
  QueryAdmission::Slot l1, l2;
  EXPECT_EQ(a.Admit(QueryClass::kLookup, In(0), &l1), Outcome::kAdmitted);
  EXPECT_EQ(a.Admit(QueryClass::kLookup, In(1000), &l2), Outcome::kQueueFull);
}

TEST(QueryAdmission, AReleasedSlotGoesToTheLongestWaiter) {
  QueryAdmission a({1, 0}, {1, 8});
  auto first = std::make_unique<QueryAdmission::Slot>();
  ASSERT_EQ(a.Admit(QueryClass::kScan, In(0), first.get()), Outcome::kAdmitted);
  std::vector<int> order;
  std::mutex order_mu;
  std::vector<std::thread> waiters;
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([&, i] {
      QueryAdmission::Slot s;
      ASSERT_EQ(a.Admit(QueryClass::kScan, In(10000), &s), Outcome::kAdmitted);
      std::lock_guard<std::mutex> l(order_mu);
      order.push_back(i);
    });
    while (a.counters(QueryClass::kScan).waiting != i + 1) std::this_thread::yield();
  }
  first.reset();  // each waiter releases in turn as it leaves
  for (auto& t : waiters) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  QueryAdmission::Counters c = a.counters(QueryClass::kScan);
  EXPECT_EQ(c.admitted, 5u);
  EXPECT_EQ(c.queued, 4u);
  EXPECT_EQ(c.running, 0);
}

TEST(QueryAdmission, CloseWakesWaiters) {
  QueryAdmission a({1, 0}, {1, 4});
  QueryAdmission::Slot running;
  ASSERT_EQ(a.Admit(QueryClass::kScan, In(0), &running), Outcome::kAdmitted);
  Outcome waited = Outcome::kAdmitted;
  std::thread waiter([&] {
    QueryAdmission::Slot s;
    waited = a.Admit(QueryClass::kScan, In(60000), &s);
  });
  while (a.counters(QueryClass::kScan).waiting == 0) std::this_thread::yield();
  a.Close();
  waiter.join();
  EXPECT_EQ(waited, Outcome::kClosed);
  QueryAdmission::Slot later;
  EXPECT_EQ(a.Admit(QueryClass::kLookup, In(0), &later), Outcome::kClosed);
}

TEST(QueryAdmission, MovedSlotsReleaseOnce) {
  QueryAdmission a({1, 0}, {1, 0});
  QueryAdmission::Slot s;
  ASSERT_EQ(a.Admit(QueryClass::kLookup, In(0), &s), Outcome::kAdmitted);
  QueryAdmission::Slot t(std::move(s));
  EXPECT_FALSE(s.held());
  EXPECT_TRUE(t.held());
  EXPECT_EQ(a.counters(QueryClass::kLookup).running, 1);
  t = QueryAdmission::Slot();
  EXPECT_EQ(a.counters(QueryClass::kLookup).running, 0);
}

}  // namespace
}  // namespace rwd
