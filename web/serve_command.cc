// `rewind serve`: the HTTP query server over a store.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>

#include "web/command_line.h"
#include "web/commands.h"
#include "web/http_server.h"

namespace rwd {
namespace {

const char kServeUsage[] =
    "usage: rewind serve --dir DIR [flags]\n"
    "  --listen HOST:PORT          address to listen on (default 127.0.0.1:9123)\n"
    "  --tls_cert F --tls_key F    serve HTTPS\n"
    "  --tls_client_ca F           require client certificates signed by this CA (mutual TLS)\n"
    "  --token_file F              require 'Authorization: Bearer <the file's first line>'\n"
    "  --max_queries N             concurrent queries before 429 (default 8)\n"
    "  --query_time_limit_sec N    cut queries off after N s (default: never)\n"
    "  --query_byte_limit N        cut answers off after N bytes (default: never)\n";

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
                                "query_time_limit_sec", "query_byte_limit"},
                               {"help"});
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
  uint64_t maxq = 8, tl = 0, bl = 0;
  if (s.ok()) s = cl->GetUint("max_queries", 8, &maxq);
  if (s.ok()) s = cl->GetUint("query_time_limit_sec", 0, &tl);
  if (s.ok()) s = cl->GetUint("query_byte_limit", 0, &bl);
  if (s.ok() && cl->Has("token_file")) s = ReadTokenFile(cl->Get("token_file"), &o.bearer_token);
  if (!s.ok() || maxq == 0) {
    std::fprintf(stderr, "rewind serve: %s\n", s.ok() ? "--max_queries must be at least 1" : s.message().c_str());
    return 2;
  }
  o.max_concurrent_queries = static_cast<int>(maxq);
  o.query_time_limit_sec = static_cast<int64_t>(tl);
  o.query_byte_limit = bl;
  o.tls_cert = cl->Get("tls_cert");
  o.tls_key = cl->Get("tls_key");
  o.tls_client_ca = cl->Get("tls_client_ca");
  HttpServer server(o);
  s = server.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "rewind serve: %s\n", s.ToString().c_str());
    return 1;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::string scheme = server.tls() ? "https" : "http";
  std::fprintf(stderr, "rewind serve: %s://%s:%d/ (store %s)\n", scheme.c_str(), o.host.c_str(), server.port(),
               o.store.c_str());
  std::fflush(stderr);
  while (!g_stop) pause();
  server.Stop();
  return 0;
}

}  // namespace rwd
