// QueryAdmission: decides when a query may run. Queries come in two classes — lookups, which the index
// answers with few candidate packets, and scans, which read whole time ranges. Each class has its own bound
// on running queries and its own bounded FIFO of waiting ones, so lookups never wait behind scans; a query
// that finds its class's queue full is refused at once, a waiting one gives up at its deadline.
// Thread-safe.
#ifndef REWIND_WEB_QUERY_ADMISSION_H_
#define REWIND_WEB_QUERY_ADMISSION_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <mutex>

#include "query/query_plan.h"

namespace rwd {

enum class QueryClass { kLookup = 0, kScan = 1 };
const char* QueryClassName(QueryClass c);  // "lookup", "scan"

// A time range at most this wide makes a query a lookup even without the index.
constexpr int64_t kLookupMaxSpanNs = int64_t{5} * 60 * 1000000000;

// What "few candidates" means for a lookup: at most this many files to search (after the time range and
// the key filters), holding at most this many candidate packets in all.
constexpr size_t kLookupMaxFiles = 64;
constexpr uint64_t kLookupMaxCandidates = 16384;
// A lookup's QueryOptions::max_block_buffers (a scan keeps the default): up to 32 lookups run at once.
constexpr size_t kLookupBlockBuffers = 4;

// Classifies a prepared query by what it will read: a lookup if its time range (open ends taken as the
// store's start and `now_ns`) spans at most kLookupMaxSpanNs, or if `index_narrows` (the index narrows it to
// few candidates: Query::NarrowedByIndex(kLookupMaxFiles, kLookupMaxCandidates)); a scan otherwise.
QueryClass ClassifyQuery(const QueryPlan& plan, int64_t now_ns, bool index_narrows);

struct AdmissionLimits {
  int running = 1;  // queries of the class running at once (at least 1)
  int queued = 0;   // queries of the class waiting for a slot; more are refused
};

class QueryAdmission {
 public:
  using Clock = std::chrono::steady_clock;

  // A running slot of one class, given back when destroyed. Move-only; empty when default-constructed.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();
    bool held() const { return owner_ != nullptr; }

   private:
    friend class QueryAdmission;
    Slot(QueryAdmission* owner, QueryClass c) : owner_(owner), class_(c) {}
    QueryAdmission* owner_ = nullptr;
    QueryClass class_ = QueryClass::kScan;
  };

  enum class Outcome {
    kAdmitted,   // *slot holds a running slot
    kQueueFull,  // refused at once: the class's queue is full
    kTimedOut,   // waited until the deadline without getting a slot
    kClosed,     // Close() was called
  };

  struct Counters {
    uint64_t admitted = 0;   // got a slot (at once or after waiting)
    uint64_t queued = 0;     // had to wait
    uint64_t rejected = 0;   // found the queue full
    uint64_t timed_out = 0;  // gave up waiting at the deadline
    int running = 0;         // hold a slot now
    int waiting = 0;         // wait now
  };

  QueryAdmission(AdmissionLimits lookups, AdmissionLimits scans);
  // Every Slot must be gone by then.
  ~QueryAdmission();

  // Takes a running slot of class `c` into *slot, waiting in FIFO order until `deadline` if none is free.
  Outcome Admit(QueryClass c, Clock::time_point deadline, Slot* slot);
  // Refuses every later Admit() and wakes every waiter with kClosed; slots already held stay valid.
  void Close();

  Counters counters(QueryClass c) const;
  AdmissionLimits limits(QueryClass c) const { return classes_[static_cast<int>(c)].limits; }

 private:
  struct Waiter {
    bool granted = false;
  };
  struct ClassState {
    AdmissionLimits limits;
    std::list<Waiter*> waiting;  // FIFO; a released slot goes to the front waiter
    Counters counters;
    std::condition_variable cv;
  };
  void Release(QueryClass c);

  mutable std::mutex mu_;
  bool closed_ = false;
  ClassState classes_[2];
};

}  // namespace rwd

#endif  // REWIND_WEB_QUERY_ADMISSION_H_
