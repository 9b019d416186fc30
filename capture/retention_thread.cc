#include "capture/retention_thread.h"

#include "index/log_line.h"
#include "index/thread_name.h"
#include "index/wall_clock.h"

#include <cstdio>

namespace rwd {
RetentionThread::RetentionThread(std::string store, RetentionPolicy policy, std::chrono::milliseconds interval,
                                 std::string who, bool quiet)
    : store_(std::move(store)),
      policy_(policy),
      interval_(interval.count() > 0 ? interval : std::chrono::milliseconds(1)),
      who_(std::move(who)),
      quiet_(quiet) {}

RetentionThread::~RetentionThread() { Stop(); }

void RetentionThread::Start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void RetentionThread::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RetentionThread::Loop() {
  NameThisThread("retention");
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    l.unlock();
    RunOnce();
    l.lock();
    cv_.wait_for(l, interval_, [this] { return stop_; });
  }
}

void RetentionThread::RunOnce() {
  PruneResult r;
  Status s = PruneStore(store_, policy_, WallClockNs(), &r);
  ++runs_;
  files_removed_ += r.files;
  bytes_removed_ += r.bytes;
  if (!quiet_) {
    for (const PrunedFile& f : r.removed) {
      LogLine(LogLevel::kInfo, "%s: retention removed %s and its index (%.1f MiB, %s)\n", who_.c_str(),
                   f.file.packet_path.c_str(), f.bytes / 1048576.0, f.reason.c_str());
    }
  }
  // Limits it cannot meet and unreadable indexes are reported when they appear, not on every run.
  std::string report;
  for (const std::string& u : r.unmet) report += who_ + ": retention: " + u + "\n";
  std::string problems;
  for (const std::string& p : r.problems) problems += who_ + ": retention: " + p + "\n";
  if (!r.unmet.empty() && !last_unmet_) std::fputs(report.c_str(), stderr);
  if (problems != last_problems_) std::fputs(problems.c_str(), stderr);
  last_unmet_ = !r.unmet.empty();
  last_problems_ = problems;
  if (!s.ok()) LogLine(LogLevel::kError, "%s: retention: %s\n", who_.c_str(), s.ToString().c_str());
}

}  // namespace rwd
