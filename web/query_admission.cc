#include "web/query_admission.h"

#include <algorithm>
#include <cassert>
#include <limits>

namespace rwd {

const char* QueryClassName(QueryClass c) { return c == QueryClass::kLookup ? "lookup" : "scan"; }

QueryClass ClassifyQuery(const QueryPlan& plan, int64_t now_ns, bool index_narrows) {
  if (index_narrows) return QueryClass::kLookup;
  const TimeRange& t = plan.time_range();
  if (t.empty()) return QueryClass::kLookup;
  if (t.lo == std::numeric_limits<int64_t>::min()) return QueryClass::kScan;
  int64_t hi = std::min(t.hi, now_ns);
  // hi - lo can overflow (an `after` date centuries back): compared as lo >= hi - span, which cannot.
  if (hi < std::numeric_limits<int64_t>::min() + kLookupMaxSpanNs) return QueryClass::kLookup;
  return t.lo >= hi - kLookupMaxSpanNs ? QueryClass::kLookup : QueryClass::kScan;
}

QueryAdmission::Slot::Slot(Slot&& other) noexcept : owner_(other.owner_), class_(other.class_) {
  other.owner_ = nullptr;
}

QueryAdmission::Slot& QueryAdmission::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    if (owner_ != nullptr) owner_->Release(class_);
    owner_ = other.owner_;
    class_ = other.class_;
    other.owner_ = nullptr;
  }
  return *this;
}

QueryAdmission::Slot::~Slot() {
  if (owner_ != nullptr) owner_->Release(class_);
}

QueryAdmission::QueryAdmission(AdmissionLimits lookups, AdmissionLimits scans) {
  classes_[0].limits = lookups;
  classes_[1].limits = scans;
  for (ClassState& s : classes_) {
    s.limits.running = std::max(s.limits.running, 1);
    s.limits.queued = std::max(s.limits.queued, 0);
  }
}

QueryAdmission::~QueryAdmission() {
  Close();
  std::lock_guard<std::mutex> l(mu_);
  for (const ClassState& s : classes_) {
    assert(s.counters.running == 0 && s.waiting.empty());
    (void)s;
  }
}

QueryAdmission::Outcome QueryAdmission::Admit(QueryClass c, Clock::time_point deadline, Slot* slot) {
  ClassState& s = classes_[static_cast<int>(c)];
  std::unique_lock<std::mutex> l(mu_);
  if (closed_) return Outcome::kClosed;
  if (s.counters.running < s.limits.running && s.waiting.empty()) {
    ++s.counters.running;
    ++s.counters.admitted;
    *slot = Slot(this, c);
    return Outcome::kAdmitted;
  }
  if (static_cast<int>(s.waiting.size()) >= s.limits.queued) {
    ++s.counters.rejected;
    return Outcome::kQueueFull;
  }
  Waiter me;
  auto it = s.waiting.insert(s.waiting.end(), &me);
  ++s.counters.queued;
  ++s.counters.waiting;
  s.cv.wait_until(l, deadline, [&] { return me.granted || closed_; });
  --s.counters.waiting;
  if (me.granted) {  // Release() counted the slot as ours and took us off the queue
    ++s.counters.admitted;
    l.unlock();
    *slot = Slot(this, c);
    return Outcome::kAdmitted;
  }
  s.waiting.erase(it);
  if (closed_) return Outcome::kClosed;
  ++s.counters.timed_out;
  return Outcome::kTimedOut;
}

void QueryAdmission::Release(QueryClass c) {
  ClassState& s = classes_[static_cast<int>(c)];
  std::lock_guard<std::mutex> l(mu_);
  if (!s.waiting.empty()) {
    // Hand the slot straight to the longest waiter: `running` stays as it is.
    s.waiting.front()->granted = true;
    s.waiting.pop_front();
    s.cv.notify_all();
    return;
  }
  --s.counters.running;
}

void QueryAdmission::Close() {
  std::lock_guard<std::mutex> l(mu_);
  closed_ = true;
  for (ClassState& s : classes_) s.cv.notify_all();
}

QueryAdmission::Counters QueryAdmission::counters(QueryClass c) const {
  std::lock_guard<std::mutex> l(mu_);
  return classes_[static_cast<int>(c)].counters;
}

}  // namespace rwd
