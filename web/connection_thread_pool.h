// ConnectionThreadPool: the threads that serve the HTTP server's connections. A thread is started only when a
// job finds every started thread busy (up to `max_threads`; beyond that, jobs wait in order), and the thread
// that became idle last takes the next job. So the threads in use, and the stacks and allocator caches they
// keep warm, follow how many connections were ever served at once rather than the limit: a server that
// answers one query at a time uses one thread, however long it runs. Threads stay until Shutdown().
// Thread-safe.
#ifndef REWIND_WEB_CONNECTION_THREAD_POOL_H_
#define REWIND_WEB_CONNECTION_THREAD_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

namespace rwd {

class ConnectionThreadPool {
 public:
  explicit ConnectionThreadPool(size_t max_threads);
  ~ConnectionThreadPool();  // Shutdown()
  ConnectionThreadPool(const ConnectionThreadPool&) = delete;
  ConnectionThreadPool& operator=(const ConnectionThreadPool&) = delete;

  // Runs `job` on an idle thread (the most recently idle), a new one, or the first to become idle. After
  // Shutdown() has begun, or if no thread can be started at all, on an idle thread or else on the caller's.
  void Enqueue(std::function<void()> job);
  // Waits for every job enqueued, including those still waiting for a thread, then ends the threads.
  void Shutdown();
  size_t threads_started() const;
  size_t threads_idle() const;

 private:
  struct Worker {
    std::condition_variable wake;  // a job was handed over, or the pool shuts down
    std::function<void()> job;     // guarded by mu_: handed over while the worker was idle
    std::thread thread;            // set under mu_ before shutdown_; joined by Shutdown()
  };
  void Work(Worker* self, std::function<void()> job);

  const size_t max_threads_;
  mutable std::mutex mu_;
  std::list<Worker> workers_;                // guarded by mu_ (no longer changes once shutdown_ is set)
  std::vector<Worker*> idle_;                // guarded by mu_: the most recently idle last
  std::deque<std::function<void()>> waiting_;  // guarded by mu_: jobs for which no thread was free
  bool shutdown_ = false;                    // guarded by mu_
};

}  // namespace rwd

#endif  // REWIND_WEB_CONNECTION_THREAD_POOL_H_
