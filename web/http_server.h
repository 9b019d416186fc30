// HttpServer: rewind's HTTP API over the query engine (cpp-httplib). POST /query (query in the body) and
// GET /query?q= stream pcap with chunked encoding; GET /preview returns the first matches as JSON; GET
// /stats, /metrics (Prometheus) and /healthz report the sensor; GET / serves the web page.
// Queries are admitted by QueryAdmission (lookups and scans bounded apart; 429 when a class's queue is full).
// Each connection has a thread of the server's pool: the pool holds every running and waiting query plus
// kSpareThreads for /healthz, /stats and idle connections, and a request must arrive whole within
// `request_timeout_sec` (RequestDeadline) so that slow or silent clients give their thread back.
// Start() and Stop() from one thread; requests are served on the server's own threads.
#ifndef REWIND_WEB_HTTP_SERVER_H_
#define REWIND_WEB_HTTP_SERVER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "index/status.h"
#include "web/query_admission.h"

namespace httplib {
class Server;
struct Response;
}

namespace rwd {

class IndexReaderCache;
class Query;
class StoreCatalog;

struct ServerOptions {
  std::string store;
  std::string host = "127.0.0.1";
  int port = 9123;                     // 0: pick a free port (see port())
  std::string tls_cert, tls_key;       // both set: HTTPS
  std::string tls_client_ca;           // set (with TLS): clients must present a certificate this CA signed
  std::string bearer_token;            // set: requests need "Authorization: Bearer <token>"
  AdmissionLimits lookups{32, 64};     // index lookups, narrow time ranges: running at once, waiting
  AdmissionLimits scans{2, 64};        // every other query; past both bounds: 429 with Retry-After
  int64_t queue_wait_sec = 60;         // a waiting query gives up after this (503 with Retry-After)
  int64_t request_timeout_sec = 10;    // a request must arrive whole within this of its connection going idle
  int64_t idle_timeout_sec = 5;        // keep-alive connections are closed after this long without a request
  int64_t write_timeout_sec = 30;      // a reader that takes nothing for this long is dropped
  size_t max_request_bytes = 64 * 1024;
  int64_t query_time_limit_sec = 0;    // 0: none (large exports are never cut off by default)
  uint64_t query_byte_limit = 0;       // 0: none
};

struct ServerCounters {
  std::atomic<uint64_t> queries{0};
  std::atomic<uint64_t> queries_failed{0};
  std::atomic<uint64_t> queries_cancelled{0};  // client went away or a limit was hit
  std::atomic<uint64_t> packets_served{0};
  std::atomic<uint64_t> bytes_served{0};
};

class HttpServer {
 public:
  // Threads beyond those the admission bounds need: /healthz, /stats, refused queries, idle connections.
  static constexpr int kSpareThreads = 32;

  explicit HttpServer(ServerOptions options);
  ~HttpServer();
  // Binds and starts serving on background threads.
  Status Start();
  // Whether `options`' TLS files load (what Start() checks first), for checking a configuration before
  // anything else starts. InvalidArgument says what is wrong.
  static Status CheckTls(const ServerOptions& options);
  // Stops accepting, cancels running queries and joins the threads.
  void Stop();
  // Serves the requests in `raw` (the bytes a client sends on one connection, up to 8 requests) through the
  // same parsing, framing checks, routes and admission as Start()'s threads, on the calling thread and
  // without a socket, and returns the bytes that would have been sent. For the fuzz target
  // (web/http_request_fuzz.cc); never on a started server.
  std::string ServeWithoutSocket(const std::string& raw);
  int port() const { return port_; }
  bool tls() const { return !options_.tls_cert.empty(); }
  const ServerCounters& counters() const { return counters_; }
  const QueryAdmission& admission() const { return *admission_; }

 private:
  // Limits, timeouts, request deadlines and routes of server_ (made by Start() or ServeWithoutSocket()).
  void Configure();
  void Routes();
  // The store's catalog, opened on first use (the store may not exist yet when the server starts).
  Result<std::shared_ptr<StoreCatalog>> Catalog();
  // Waits for a slot of the query's class into *slot; otherwise answers 429/503 and returns false.
  // Sets a lookup's block-buffer bound (kLookupBlockBuffers).
  bool Admit(Query& query, httplib::Response& res, QueryAdmission::Slot* slot);
  ServerOptions options_;
  std::mutex catalog_mu_;
  std::shared_ptr<StoreCatalog> catalog_;        // guarded by catalog_mu_ until set
  std::thread checkpoint_thread_;                // guarded by catalog_mu_: writes the catalog's checkpoint
  std::atomic<bool> checkpoint_busy_{false};     // while checkpoint_thread_ runs
  std::unique_ptr<IndexReaderCache> index_cache_;
  // Every kHousekeepingSeconds, drops the cached readers of tables that retention or repair removed, so that
  // their disk space is freed even on a server no one queries. Ends with Stop().
  void Housekeeping();
  std::thread housekeeping_thread_;
  std::mutex housekeeping_mu_;
  std::condition_variable housekeeping_wake_;  // notified by Stop() (with stopping_ set)
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> listen_done_{false};  // the listening thread (and every server thread) has ended
  ServerCounters counters_;
  std::unique_ptr<QueryAdmission> admission_;
  int64_t started_ns_ = 0;
};

}  // namespace rwd

#endif  // REWIND_WEB_HTTP_SERVER_H_
