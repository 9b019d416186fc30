// `rewind serve`: the HTTP query server over a store.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>

#include "web/command_line.h"
#include "web/commands.h"
#include "web/exit_deadline.h"
#include "web/http_server.h"
#include "index/log_line.h"

namespace rwd {
namespace {

const char kServeUsage[] =
    "usage: rewind serve --dir DIR [flags]\n"
    "  --listen HOST:PORT          address to listen on (default 127.0.0.1:9123)\n"
    "  --tls_cert F --tls_key F    serve HTTPS\n"
    "  --tls_client_ca F           require client certificates signed by this CA (mutual TLS)\n"
    "  --token_file F              require 'Authorization: Bearer <the file's first line>'\n"
    "  --max_lookups N             lookups (few index candidates, or at most 5 minutes) running at once (default 32)\n"
    "  --lookup_queue N            lookups waiting for a slot before 429 (default 64)\n"
    "  --max_scans N               other queries running at once (default 2; --max_queries: old name)\n"
    "  --scan_queue N              scans waiting for a slot before 429 (default 64)\n"
    "  --queue_wait_sec N          a waiting query gives up after N s with 503 (default 60)\n"
    "  --request_timeout_sec N     a request must arrive whole within N s (default 10)\n"
    "  --idle_timeout_sec N        close kept-alive connections idle for N s (default 5)\n"
    "  --query_time_limit_sec N    cut queries off after N s (default: never)\n"
    "  --query_byte_limit N        cut answers short before N bytes of packets (default: never)\n";

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

}  // namespace

Status ParseListen(const std::string& listen, std::string* host, int* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("--listen wants HOST:PORT, got '" + listen + "'");
  *host = listen.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  try {
    *port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    return Status::InvalidArgument("--listen: bad port in '" + listen + "'");
  }
  if (*port < 0 || *port > 65535) return Status::InvalidArgument("--listen: port out of range");
  return Status::OK();
}

Status CheckServerLimits(uint64_t lookups, uint64_t lookup_queue, uint64_t scans, uint64_t scan_queue,
                         uint64_t request_timeout_sec, uint64_t idle_timeout_sec, uint64_t queue_wait_sec,
                         uint64_t query_time_limit_sec) {
  if (lookups < 1 || scans < 1) return Status::InvalidArgument("max_lookups and max_scans must be at least 1");
  if (lookups + lookup_queue + scans + scan_queue > 4096) {
    return Status::InvalidArgument("max_lookups + lookup_queue + max_scans + scan_queue must be at most 4096 "
                                   "(each is a server thread)");
  }
  if (request_timeout_sec < 1 || idle_timeout_sec < 1) {
    return Status::InvalidArgument("request_timeout_sec and idle_timeout_sec must be at least 1");
  }
  // Counted in nanoseconds of a 64-bit clock: far beyond these, a deadline would overflow (and cut every query).
  if (request_timeout_sec > 86400 || idle_timeout_sec > 86400 || queue_wait_sec > 86400) {
    return Status::InvalidArgument("request_timeout_sec, idle_timeout_sec and queue_wait_sec must be at most 86400");
  }
  if (query_time_limit_sec > 31536000) return Status::InvalidArgument("query_time_limit_sec must be at most 31536000 (a year)");
  return Status::OK();
}

Status ReadTokenFile(const std::string& path, std::string* token) {
  std::ifstream f(path);
  if (!f) return Status::IOError("cannot read token file " + path);
  std::getline(f, *token);
  while (!token->empty() && (token->back() == '\r' || token->back() == ' ')) token->pop_back();
  if (token->empty()) return Status::InvalidArgument("token file " + path + " is empty");
  return Status::OK();
}

int RunServeCommand(int argc, char** argv) {
  auto cl = CommandLine::Parse(argc, argv,
                               {"dir", "listen", "tls_cert", "tls_key", "tls_client_ca", "token_file", "max_queries",
                                "max_lookups", "lookup_queue", "max_scans", "scan_queue", "queue_wait_sec",
                                "request_timeout_sec", "idle_timeout_sec", "query_time_limit_sec",
                                "query_byte_limit"},
                               {"help"}, false);
  if (!cl.ok() || (!cl->Has("help") && !cl->Has("dir"))) {
    std::fprintf(stderr, "rewind serve: %s\n%s", cl.ok() ? "needs --dir" : cl.status().message().c_str(), kServeUsage);
    return 2;
  }
  if (cl->Has("help")) {
    std::fputs(kServeUsage, stdout);
    return 0;
  }
  ServerOptions o;
  o.store = cl->Get("dir");
  Status s = ParseListen(cl->Get("listen", "127.0.0.1:9123"), &o.host, &o.port);
  ServerOptions d;
  uint64_t lookups = static_cast<uint64_t>(d.lookups.running), lookup_queue = static_cast<uint64_t>(d.lookups.queued);
  uint64_t scans = static_cast<uint64_t>(d.scans.running), scan_queue = static_cast<uint64_t>(d.scans.queued);
  uint64_t wait = static_cast<uint64_t>(d.queue_wait_sec), request = static_cast<uint64_t>(d.request_timeout_sec);
  uint64_t idle = static_cast<uint64_t>(d.idle_timeout_sec), tl = 0, bl = 0;
  if (s.ok()) s = cl->GetUint("max_lookups", lookups, &lookups);
  if (s.ok()) s = cl->GetUint("lookup_queue", lookup_queue, &lookup_queue);
  if (s.ok()) s = cl->GetUint("max_queries", scans, &scans);
  if (s.ok()) s = cl->GetUint("max_scans", scans, &scans);
  if (s.ok()) s = cl->GetUint("scan_queue", scan_queue, &scan_queue);
  if (s.ok()) s = cl->GetUint("queue_wait_sec", wait, &wait);
  if (s.ok()) s = cl->GetUint("request_timeout_sec", request, &request);
  if (s.ok()) s = cl->GetUint("idle_timeout_sec", idle, &idle);
  if (s.ok()) s = cl->GetUint("query_time_limit_sec", 0, &tl);
  if (s.ok()) s = cl->GetUint("query_byte_limit", 0, &bl);
  if (s.ok() && cl->Has("token_file")) s = ReadTokenFile(cl->Get("token_file"), &o.bearer_token);
  if (s.ok()) s = CheckServerLimits(lookups, lookup_queue, scans, scan_queue, request, idle, wait, tl);
  if (!s.ok()) {
    std::fprintf(stderr, "rewind serve: %s\n", s.message().c_str());
    return 2;
  }
  o.lookups = {static_cast<int>(lookups), static_cast<int>(lookup_queue)};
  o.scans = {static_cast<int>(scans), static_cast<int>(scan_queue)};
  o.queue_wait_sec = static_cast<int64_t>(wait);
  o.request_timeout_sec = static_cast<int64_t>(request);
  o.idle_timeout_sec = static_cast<int64_t>(idle);
  o.query_time_limit_sec = static_cast<int64_t>(tl);
  o.query_byte_limit = bl;
  o.tls_cert = cl->Get("tls_cert");
  o.tls_key = cl->Get("tls_key");
  o.tls_client_ca = cl->Get("tls_client_ca");
  std::signal(SIGINT, OnSignal);  // before anything slow, and even if SIGINT came ignored
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGHUP, SIG_IGN);  // nothing to reload; ending on it would skip the clean stop
  HttpServer server(o);
  s = server.Start();
  if (!s.ok()) {
    LogLine(LogLevel::kError, "rewind serve: %s\n", s.ToString().c_str());
    return 1;
  }
  std::string scheme = server.tls() ? "https" : "http";
  LogLine(LogLevel::kInfo, "rewind serve: %s://%s:%d/ (store %s)\n", scheme.c_str(), o.host.c_str(), server.port(),
               o.store.c_str());
  std::fflush(stderr);
  // Polled: the signal may be delivered to any of the server's threads, and pause() here would miss it.
  while (!g_stop) usleep(50000);
  ExitAfterDeadline(1800, "rewind serve", 1);  // SIGTERM ends the server within 2 s, whatever it is doing
  server.Stop();
  return 0;
}

}  // namespace rwd
