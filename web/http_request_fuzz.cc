// libFuzzer target: the HTTP request path. The input is the bytes a client sends on one connection (one or
// more requests: request line, headers, body, chunked framing, parameters); HttpServer::ServeWithoutSocket
// runs them through cpp-httplib's parser and rewind's framing checks, routes, query parsing, admission and
// answers, over a small store made at start-up (400 UDP packets). The first byte picks a server with or
// without a bearer token. Anything may come back as an HTTP error; nothing may crash, hang or read out of
// bounds (ASan, UBSan).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "index/test_frames.h"
#include "web/commands.h"
#include "web/http_server.h"

namespace {

std::string MakeStore() {
  char dir[] = "/tmp/rewind-http-fuzz.XXXXXX";
  if (mkdtemp(dir) == nullptr) abort();
  std::string pcap = std::string(dir) + "/in.pcap", store = std::string(dir) + "/store";
  rwd::test_frames::WriteUdpPcap(pcap, 400, int64_t{1700000000} * 1000000000);
  std::vector<std::string> args = {"-q", "--filesize_mb", "1", "--dir", store, pcap};  // after "rewind import"
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  if (rwd::RunImportCommand(static_cast<int>(argv.size()), argv.data()) != 0) abort();
  return store;
}

rwd::HttpServer* Server(bool token) {
  static const std::string store = MakeStore();
  static std::unique_ptr<rwd::HttpServer> servers[2];
  std::unique_ptr<rwd::HttpServer>& s = servers[token ? 1 : 0];
  if (!s) {
    rwd::ServerOptions o;
    o.store = store;
    o.queue_wait_sec = 0;
    o.query_time_limit_sec = 5;
    if (token) o.bearer_token = "fuzz-token";
    s = std::make_unique<rwd::HttpServer>(o);
  }
  return s.get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 16384) return 0;
  std::string request(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string answer = Server(data[0] & 1)->ServeWithoutSocket(request);
  if (!answer.empty() && answer.compare(0, 9, "HTTP/1.1 ") != 0) __builtin_trap();  // not an HTTP answer
  return 0;
}
