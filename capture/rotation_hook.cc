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
  auto reap = [&](bool block) {
    while (!running.empty()) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, block ? 0 : WNOHANG);
      if (pid <= 0) return;
      auto it = running.find(pid);
      if (it == running.end()) continue;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        ++failures_;
        if (WIFEXITED(status)) {
          LogLine(LogLevel::kWarning, "rewind: --on_rotate failed for %s: exit status %d\n", it->second.c_str(),
                       WEXITSTATUS(status));
        } else {
          LogLine(LogLevel::kWarning, "rewind: --on_rotate failed for %s: signal %d\n", it->second.c_str(),
                       WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        }
      }
      running.erase(it);
      block = false;
    }
  };
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait_for(l, std::chrono::milliseconds(100), [this] { return stop_ || !queue_.empty(); });
    l.unlock();
    reap(false);
    l.lock();
    while (!queue_.empty() && static_cast<int>(running.size()) < max_running_) {
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
    if (stop_ && queue_.empty()) break;
    if (static_cast<int>(running.size()) >= max_running_) {
      l.unlock();
      reap(true);
      l.lock();
    }
  }
  l.unlock();
  reap(true);
  while (!running.empty()) reap(true);
}

}  // namespace rwd
