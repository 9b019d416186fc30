#include "web/http_server.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "index/test_frames.h"
#include "index/test_temp_dir.h"
#include "web/commands.h"

namespace rwd {
namespace {

// A store of 400 UDP frames 10.0.0.1:(1000 + i % 7) -> 10.0.0.2:53, imported as `rewind import` does.
std::string MakeStore(const TempDir& dir) {
  std::string pcap = dir.path() + "/in.pcap", store = dir.path() + "/store";
  test_frames::WriteUdpPcap(pcap, 400, int64_t{1700000000} * 1000000000);
  std::vector<std::string> args = {"-q", "--dir", store, pcap};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  EXPECT_EQ(RunImportCommand(static_cast<int>(argv.size()), argv.data()), 0);
  return store;
}

std::string StatusLine(const std::string& answer) { return answer.substr(0, answer.find("\r\n")); }

// The request path without a socket (what the fuzz target drives): parsing, the framing screen, routes,
// the bearer token, query errors and a streamed answer, on one connection of several requests.
TEST(HttpServer, ServesRequestsWithoutASocket) {
  TempDir dir;
  ServerOptions o;
  o.store = MakeStore(dir);
  o.bearer_token = "secret";
  HttpServer server(o);
  struct Case {
    const char* request;
    const char* status;
    const char* says;  // in the answer
  };
  const Case cases[] = {
      {"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK", "ok"},
      {"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 401 Unauthorized", "missing or wrong bearer token"},
      {"GET /nowhere HTTP/1.1\r\nAuthorization: Bearer secret\r\n\r\n", "HTTP/1.1 404 Not Found",
       "\"error\":\"no such page"},
      {"POST /query HTTP/1.1\r\nAuthorization: Bearer secret\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
       "0\r\n\r\n",
       "HTTP/1.1 400 Bad Request", "framed ambiguously"},
      {"POST /query HTTP/1.1\r\nAuthorization: Bearer secret\r\nContent-Length: 9\r\n\r\nport 99x9",
       "HTTP/1.1 400 Bad Request", "\"position\""},
  };
  for (const Case& c : cases) {
    std::string a = server.ServeWithoutSocket(c.request);
    EXPECT_EQ(StatusLine(a), c.status) << c.request;
    EXPECT_NE(a.find(c.says), std::string::npos) << a;
  }
  // Two requests on one connection: a chunked query body, then a GET; the pcap answer holds the 57 packets
  // of port 1003 (i % 7 == 3 for i < 400): a 24-byte header and 57 records of 16 + 200 bytes.
  std::string a = server.ServeWithoutSocket(
      "POST /query HTTP/1.1\r\nAuthorization: Bearer secret\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\nport\r\n5\r\n 1003\r\n0\r\n\r\n"
      "GET /healthz HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusLine(a), "HTTP/1.1 200 OK");
  size_t body = a.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos);
  size_t second = a.find("HTTP/1.1 200 OK", body);
  ASSERT_NE(second, std::string::npos) << "the second request of the connection went unanswered";
  // De-chunk the first answer's body.
  std::string pcap;
  for (size_t at = body + 4; at < second;) {
    size_t eol = a.find("\r\n", at);
    size_t n = std::stoul(a.substr(at, eol - at), nullptr, 16);
    if (n == 0) break;
    pcap += a.substr(eol + 2, n);
    at = eol + 2 + n + 2;
  }
  EXPECT_EQ(pcap.size(), 24u + 57u * (16u + 200u)) << a.substr(0, 600);
}

}  // namespace
}  // namespace rwd
