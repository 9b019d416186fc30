#include "capture/rotation_hook.h"

#include "index/log_line.h"
#include "index/thread_name.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>

extern char** environ;

namespace rwd {

RotationHook::RotationHook(std::string command, int max_running, size_t max_queued)
    : command_(std::move(command)), max_running_(max_running < 1 ? 1 : max_running), max_queued_(max_queued) {
  thread_ = std::thread([this] { Loop(); });
}

RotationHook::~RotationHook() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void RotationHook::FileCompleted(const std::string& packet_path, const std::string& index_path) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (queue_.size() >= max_queued_) {
      ++dropped_;
      LogLine(LogLevel::kWarning, "rewind: --on_rotate: queue full, not running it for %s\n", packet_path.c_str());
      return;
    }
    queue_.emplace_back(packet_path, index_path);
  }
  cv_.notify_all();
}

void RotationHook::Loop() {
  NameThisThread("rotation-hook");
  std::map<pid_t, std::string> running;  // pid -> packet file
  // Reaps the hook's own children only (waitpid(-1) would take other threads' too). A child the kernel
  // reaped already (SIGCHLD ignored: ECHILD) is done, its result unknown.
  auto reap = [&] {
    for (auto it = running.begin(); it != running.end();) {
      int status = 0;
      pid_t r = waitpid(it->first, &status, WNOHANG);
      if (r == 0) {
        ++it;
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r > 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
        ++failures_;
        if (WIFEXITED(status)) {
          LogLine(LogLevel::kWarning, "rewind: --on_rotate failed for %s: exit status %d\n", it->second.c_str(),
                  WEXITSTATUS(status));
        } else {
          LogLine(LogLevel::kWarning, "rewind: --on_rotate failed for %s: signal %d\n", it->second.c_str(),
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        }
      }
      it = running.erase(it);
    }
  };
  std::chrono::steady_clock::time_point drain_until{};  // set when stopping
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    // Children are polled: every 20 ms while some run, else woken by a file or the stop.
    cv_.wait_for(l, std::chrono::milliseconds(running.empty() ? 1000 : 20), [&] {
      return (stop_ && drain_until == std::chrono::steady_clock::time_point{}) ||
             (!queue_.empty() && static_cast<int>(running.size()) < max_running_);
    });
    if (stop_ && drain_until == std::chrono::steady_clock::time_point{}) {
      drain_until = std::chrono::steady_clock::now() + kDrainTimeout;
    }
    l.unlock();
    reap();
    l.lock();
    bool draining = stop_ && std::chrono::steady_clock::now() >= drain_until;
    while (!draining && !queue_.empty() && static_cast<int>(running.size()) < max_running_) {
      auto [packet, index] = queue_.front();
      queue_.pop_front();
      l.unlock();
      // sh -c 'CMD "$@"' rewind-hook PACKET INDEX: the paths arrive as positional arguments, never parsed.
      std::string script = command_ + " \"$@\"";
      const char* argv[] = {"/bin/sh", "-c", script.c_str(), "rewind-on-rotate", packet.c_str(), index.c_str(), nullptr};
      pid_t pid = 0;
      int err = posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ);
      ++runs_;
      if (err != 0) {
        ++failures_;
        LogLine(LogLevel::kWarning, "rewind: --on_rotate could not start for %s: %s\n", packet.c_str(), std::strerror(err));
      } else {
        running[pid] = packet;
      }
      l.lock();
    }
    if (stop_ && ((queue_.empty() && running.empty()) || draining)) break;
  }
  // Past the drain time: what is still queued is not run, and what runs is left to finish on its own.
  if (!queue_.empty()) {
    dropped_ += queue_.size();
    LogLine(LogLevel::kWarning, "rewind: --on_rotate: stopping; not run for %zu completed file(s), the first %s\n",
            queue_.size(), queue_.front().first.c_str());
  }
  if (!running.empty()) {
    LogLine(LogLevel::kWarning, "rewind: --on_rotate: stopping; %zu command(s) still running are left to finish\n",
            running.size());
  }
}

}  // namespace rwd
