#include "web/http_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <malloc.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "index/index_reader_cache.h"
#include "index/log_line.h"
#include "index/packet_dissector.h"
#include "index/store_catalog.h"
#include "index/store_summary.h"
#include "index/thread_name.h"
#include "query/query_engine.h"
#include "index/wall_clock.h"
#include "web/command_line.h"
#include "web/connection_shutdown.h"
#include "web/http_chunk_sink.h"
#include "web/tls_write_buffer.h"
#include "web/request_deadline.h"
#include "web/web_page.h"

namespace rwd {
namespace {

using Json = rapidjson::Writer<rapidjson::StringBuffer>;

// Queries read at the lowest best-effort I/O priority so that capture writes win (ioprio_set(2)).
void LowerIoPriority() {
  constexpr int kWhoProcess = 1, kClassBestEffort = 2, kClassShift = 13;
  syscall(SYS_ioprio_set, kWhoProcess, 0, (kClassBestEffort << kClassShift) | 7);
}

void SendJsonError(httplib::Response& res, int status, const std::string& message, long position = -1) {
  rapidjson::StringBuffer buf;
  Json w(buf);
  w.StartObject();
  w.Key("error");
  w.String(message.c_str());
  if (position >= 0) {
    w.Key("position");
    w.Int64(position);
  }
  w.EndObject();
  res.status = status;
  res.set_content(buf.GetString(), "application/json");
}

// A request whose body length can be read two ways (Content-Length and Transfer-Encoding both, Content-Length
// values that disagree, a transfer coding other than chunked) is refused with 400 and the connection closed:
// a proxy in front may have read it the other way (request smuggling, RFC 9112 sections 6.1 and 6.3).
bool RefuseAmbiguousFraming(const httplib::Request& req, httplib::Response& res) {
  size_t lengths = req.get_header_value_count("Content-Length");
  size_t codings = req.get_header_value_count("Transfer-Encoding");
  std::string problem;
  if (lengths > 0 && codings > 0) problem = "both Content-Length and Transfer-Encoding";
  for (size_t i = 1; problem.empty() && i < lengths; ++i) {
    if (req.get_header_value("Content-Length", i) != req.get_header_value("Content-Length", 0)) {
      problem = "Content-Length values that disagree";
    }
  }
  if (problem.empty() && (codings > 1 || (codings == 1 && req.get_header_value("Transfer-Encoding") != "chunked"))) {
    problem = "a Transfer-Encoding other than chunked";
  }
  if (problem.empty()) return false;
  SendJsonError(res, 400, "the request's body is framed ambiguously: " + problem);
  res.set_header("Connection", "close");
  return true;
}

// True when the request's TE field lists "trailers": the client reads trailer fields (RFC 9110 section 10.1.4).
bool AcceptsTrailers(const httplib::Request& req) {
  std::string te = req.get_header_value("TE");
  std::transform(te.begin(), te.end(), te.begin(), [](unsigned char c) { return std::tolower(c); });
  size_t at = 0;
  while ((at = te.find("trailers", at)) != std::string::npos) {
    bool starts = at == 0 || te[at - 1] == ',' || te[at - 1] == ' ';
    size_t after = at + 8;
    bool ends = after == te.size() || te[after] == ',' || te[after] == ' ' || te[after] == ';';
    if (starts && ends) return true;
    at = after;
  }
  return false;
}

// A field value made safe to send: control characters become spaces.
std::string FieldValue(std::string v) {
  for (char& c : v) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return v;
}

// A query that read this much gives the allocator's free memory back to the system when it ends.
constexpr uint64_t kTrimAfterBytesRead = 64 << 20;
// How often the server looks for cached index readers of removed tables (HttpServer::Housekeeping).
constexpr int kHousekeepingSeconds = 5;
// Bytes of TLS records gathered before a write to the socket (see TlsWriteBuffer).
constexpr size_t kTlsWriteBufferBytes = 256 << 10;

// glibc keeps freed memory in per-thread arenas (up to 8 per core) and serves 128 KiB and larger buffers from
// the heap once the first such buffer is freed, so broad queries leave hundreds of MB behind per arena. Few
// arenas, large buffers always mmapped (and unmapped when freed), and free heap tops given back. Process-wide.
void LimitAllocatorRetention() {
  mallopt(M_ARENA_MAX, 4);
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
}

bool ParseBool(const std::string& v) { return v == "1" || v == "true" || v == "yes"; }

std::string AddressText(const PacketFields::Flow& f, const std::array<uint8_t, 16>& a) {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(f.ip_version == 4 ? AF_INET : AF_INET6, a.data(), buf, sizeof(buf));
  return buf;
}

// Who asked, for the audit log: address and port, and the client certificate's subject or "token" (a
// request that passed the bearer-token check).
std::string ClientOf(const httplib::Request& req, bool token) {
  std::string who = req.remote_addr + ":" + std::to_string(req.remote_port);
  if (req.ssl != nullptr) {
    if (X509* cert = SSL_get1_peer_certificate(req.ssl)) {
      char subject[256];
      X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
      who += std::string(" cert ") + subject;
      X509_free(cert);
    }
  }
  if (token) who += " token";
  return who;
}

// A query's text on one line, quoted, at most 512 bytes.
std::string QuotedQuery(const std::string& text) {
  std::string out = "\"";
  for (char c : text.substr(0, 512)) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) out += ' ';
    else out += c;
  }
  return out + (text.size() > 512 ? "...\"" : "\"");
}

// The capture threads' counter files, DIR/capture<n>.json, concatenated into a JSON array.
std::string CaptureStatsArray(const std::string& store) {
  std::string out = "[";
  DIR* d = opendir(store.c_str());
  if (d == nullptr) return "[]";
  bool first = true;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("capture", 0) != 0 || name.size() < 12 || name.substr(name.size() - 5) != ".json") continue;
    std::ifstream f(store + "/" + name);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string j = ss.str();
    while (!j.empty() && (j.back() == '\n' || j.back() == ' ')) j.pop_back();
    if (j.empty() || j[0] != '{') continue;
    out += (first ? "" : ",") + j;
    first = false;
  }
  closedir(d);
  return out + "]";
}

}  // namespace

HttpServer::HttpServer(ServerOptions options)
    : options_(std::move(options)), admission_(std::make_unique<QueryAdmission>(options_.lookups, options_.scans)) {
  index_cache_ = std::make_unique<IndexReaderCache>(IndexCacheCapacityForFdLimit(256));
}

Result<std::shared_ptr<StoreCatalog>> HttpServer::Catalog() {
  std::lock_guard<std::mutex> l(catalog_mu_);
  if (!catalog_) {
    auto opened = StoreCatalog::Open(options_.store);
    if (!opened.ok()) return opened.status();
    catalog_ = *opened;
  } else {
    Status s = catalog_->Refresh();
    if (!s.ok()) return s;
  }
  // Keeps the checkpoint near the journal for the CLI's queries (StoreCatalog::OpenRange), on a thread of its
  // own: at a million files it takes a few hundred milliseconds.
  if (!checkpoint_busy_.load() && catalog_->CheckpointDue()) {
    if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
    checkpoint_busy_.store(true);
    checkpoint_thread_ = std::thread([this, c = catalog_] {
      NameThisThread("catalog-ckpt");
      Status s = c->WriteCheckpoint();
      if (!s.ok()) LogLine(LogLevel::kWarning, "rewind serve: catalog checkpoint: %s", s.ToString().c_str());
      checkpoint_busy_.store(false);
    });
  }
  return catalog_;
}

HttpServer::~HttpServer() { Stop(); }

namespace {

// The TLS server of `options` (null without TLS), or what is wrong with its files.
Result<std::unique_ptr<httplib::SSLServer>> MakeTlsServer(const ServerOptions& options) {
  if (options.tls_cert.empty() && options.tls_key.empty()) {
    if (!options.tls_client_ca.empty()) return Status::InvalidArgument("a client CA needs TLS (a certificate and key)");
    return std::unique_ptr<httplib::SSLServer>();
  }
  if (options.tls_cert.empty() || options.tls_key.empty()) {
    return Status::InvalidArgument("TLS needs both a certificate and a key");
  }
  auto ssl = std::make_unique<httplib::SSLServer>(options.tls_cert.c_str(), options.tls_key.c_str(),
                                                  options.tls_client_ca.empty() ? nullptr : options.tls_client_ca.c_str());
  if (!ssl->is_valid()) {
    return Status::InvalidArgument("cannot load the TLS certificate, key or client CA (" + options.tls_cert + ", " +
                                   options.tls_key + ", " + options.tls_client_ca + ")");
  }
  return ssl;
}

}  // namespace

Status HttpServer::CheckTls(const ServerOptions& options) { return MakeTlsServer(options).status(); }

Status HttpServer::Start() {
  auto made = MakeTlsServer(options_);
  if (!made.ok()) return made.status();
  if (*made) {
    auto ssl = std::move(*made);
    // A server that asks for client certificates must name its sessions' context, or OpenSSL refuses to
    // resume them: every client that resumes (curl fetching several URLs, every browser) would fail on each
    // new connection after the first.
    static const unsigned char kSessionIdContext[] = "rewind";
    SSL_CTX_set_session_id_context(ssl->ssl_context(), kSessionIdContext, sizeof(kSessionIdContext) - 1);
    server_ = std::move(ssl);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  LimitAllocatorRetention();
  Configure();
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.host);
    if (port_ <= 0) return Status::IOError("cannot bind " + options_.host);
  } else {
    if (!server_->bind_to_port(options_.host, options_.port)) {
      return Status::IOError("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                             " (in use, or not an address of this machine)");
    }
    port_ = options_.port;
  }
  started_ns_ = WallClockNs();
  thread_ = std::thread([this] {
    NameThisThread("http");  // cpp-httplib's worker threads, started from here, inherit it
    server_->listen_after_bind();
    listen_done_.store(true);
  });
  housekeeping_thread_ = std::thread([this] {
    NameThisThread("housekeeping");
    Housekeeping();
  });
  return Status::OK();
}

void HttpServer::Housekeeping() {
  std::unique_lock<std::mutex> l(housekeeping_mu_);
  while (!housekeeping_wake_.wait_for(l, std::chrono::seconds(kHousekeepingSeconds), [this] { return stopping_.load(); })) {
    l.unlock();
    index_cache_->DropRemoved();
    l.lock();
  }
}

void HttpServer::Configure() {
  const AdmissionLimits& l = admission_->limits(QueryClass::kLookup);
  const AdmissionLimits& sc = admission_->limits(QueryClass::kScan);
  size_t threads = static_cast<size_t>(l.running + l.queued + sc.running + sc.queued + kSpareThreads);
  auto request_timeout = std::chrono::milliseconds(std::max<int64_t>(options_.request_timeout_sec, 1) * 1000);
  RequestDeadline::Install(server_.get(), threads, request_timeout, RefuseAmbiguousFraming);
  server_->set_payload_max_length(options_.max_request_bytes);
  // Answers end with a small final chunk; without TCP_NODELAY, Nagle's algorithm holds it until the client's
  // delayed ACK (~40 ms per request on a kept-alive connection).
  server_->set_tcp_nodelay(true);
  server_->set_keep_alive_timeout(std::max<int64_t>(options_.idle_timeout_sec, 1));
  server_->set_keep_alive_max_count(100);
  server_->set_read_timeout(std::max<int64_t>(options_.request_timeout_sec, 1), 0);
  server_->set_write_timeout(std::max<int64_t>(options_.write_timeout_sec, 1), 0);
  Routes();
}

namespace {

// One connection's bytes in memory: reads come from `in`, writes go to `out`.
class MemoryStream : public httplib::Stream {
 public:
  explicit MemoryStream(const std::string& in) : in_(in) {}
  bool is_readable() const override { return at_ < in_.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    size_t n = std::min(size, in_.size() - at_);
    std::memcpy(ptr, in_.data() + at_, n);
    at_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    out_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 40000;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 9123;
  }
  socket_t socket() const override { return INVALID_SOCKET; }
  const std::string& out() const { return out_; }

 private:
  const std::string& in_;
  size_t at_ = 0;
  std::string out_;
};

// cpp-httplib's request processing (parsing, routing, answering) on a stream of our own.
class SocketlessServer : public httplib::Server {
 public:
  // cpp-httplib streams a content provider's answer only while its listening socket is set (else it is
  // shutting down); this server listens on none, so the field holds a value no descriptor has. Never closed:
  // stop() closes it only on a server that listened.
  SocketlessServer() { svr_sock_ = std::numeric_limits<int>::max(); }
  bool Serve(httplib::Stream& stream, bool last) {
    bool closed = false;
    return process_request(stream, last, closed, nullptr) && !closed;
  }
};

}  // namespace

std::string HttpServer::ServeWithoutSocket(const std::string& raw) {
  if (!server_) {
    server_ = std::make_unique<SocketlessServer>();
    Configure();
  }
  auto* server = static_cast<SocketlessServer*>(server_.get());
  MemoryStream stream(raw);
  for (int i = 0; i < 8 && stream.is_readable(); ++i) {
    if (!server->Serve(stream, i == 7)) break;
  }
  RequestDeadline::Disarm();  // armed by the logger for a next request on a connection that has none
  return stream.out();
}

void HttpServer::Stop() {
  {
    std::lock_guard<std::mutex> l(housekeeping_mu_);
    stopping_.store(true);  // running queries watch it (QueryOptions::cancel) and end
  }
  housekeeping_wake_.notify_all();
  if (housekeeping_thread_.joinable()) housekeeping_thread_.join();
  admission_->Close();
  if (server_) server_->stop();
  {
    std::lock_guard<std::mutex> l(catalog_mu_);
    if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
  }
  if (!thread_.joinable()) return;
  // cpp-httplib's listening thread ends once every server thread has: one waiting on an idle keep-alive
  // connection, on a slow request or on a client that does not read would hold it for up to a timeout
  // (5, 10, 30 s). Their connections are shut down (again, for any accepted meanwhile) until it ends.
  while (!listen_done_.load()) {
    ShutdownConnections(port_);
    for (int i = 0; i < 10 && !listen_done_.load(); ++i) usleep(2000);
  }
  thread_.join();
}

bool HttpServer::Admit(Query& query, httplib::Response& res, QueryAdmission::Slot* slot) {
  QueryClass c = ClassifyQuery(query.plan(), WallClockNs(), query.NarrowedByIndex(kLookupMaxFiles, kLookupMaxCandidates));
  if (c == QueryClass::kLookup) query.set_max_block_buffers(kLookupBlockBuffers);
  auto deadline = QueryAdmission::Clock::now() + std::chrono::seconds(std::max<int64_t>(options_.queue_wait_sec, 0));
  QueryAdmission::Outcome outcome = admission_->Admit(c, deadline, slot);
  if (outcome == QueryAdmission::Outcome::kAdmitted) return true;
  const char* name = QueryClassName(c);
  AdmissionLimits l = admission_->limits(c);
  switch (outcome) {
    case QueryAdmission::Outcome::kQueueFull:
      res.set_header("Retry-After", c == QueryClass::kLookup ? "1" : "5");
      SendJsonError(res, 429, std::string("too many ") + name + " queries (" + std::to_string(l.running) +
                                  " running, " + std::to_string(l.queued) + " waiting); retry shortly");
      break;
    case QueryAdmission::Outcome::kTimedOut:
      res.set_header("Retry-After", "5");
      SendJsonError(res, 503, std::string("waited ") + std::to_string(options_.queue_wait_sec) + " s for one of " +
                                  std::to_string(l.running) + " " + name + " query slots; retry later");
      break;
    default:
      SendJsonError(res, 503, "the server is stopping");
      break;
  }
  return false;
}

void HttpServer::Routes() {
  httplib::Server& srv = *server_;
  // Errors cpp-httplib answers itself (no route, a body over its limit, a malformed request) get a JSON body
  // like rewind's own; answers that already have a body keep it.
  srv.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = "HTTP " + std::to_string(res.status);
    if (res.status == 413) {
      message = "request too large (a query text above 8 KiB must be sent with -H 'Content-Type: text/plain')";
    } else if (res.status == 404) {
      message = "no such page (the API: POST /query, GET /query?q=, /stats, /metrics, /healthz)";
    }
    SendJsonError(res, res.status, message);
    return httplib::Server::HandlerResponse::Handled;
  }));
  auto authorized = [this](const httplib::Request& req, httplib::Response& res) {
    if (options_.bearer_token.empty()) return true;
    std::string want = "Bearer " + options_.bearer_token;
    std::string got = req.get_header_value("Authorization");
    if (got.empty() && req.has_param("token")) got = "Bearer " + req.get_param_value("token");
    // Compare without an early exit, so timing does not reveal a prefix.
    unsigned diff = got.size() != want.size();
    for (size_t i = 0; i < want.size() && i < got.size(); ++i) diff |= static_cast<unsigned>(got[i] ^ want[i]);
    if (diff == 0) return true;
    res.set_header("WWW-Authenticate", "Bearer");
    SendJsonError(res, 401, "missing or wrong bearer token");
    return false;
  };

  // Shared by POST /query and GET /query.
  auto query = [this, authorized](const httplib::Request& req, httplib::Response& res, const std::string& text) {
    if (!authorized(req, res)) return;
    if (req.has_header("Range") || !req.ranges.empty()) {
      // An answer is made as it is sent, so a part of it cannot be sent alone (cpp-httplib would label the
      // whole answer 206 Partial Content).
      SendJsonError(res, 416, "Range is not supported for query answers: ask for the packets you want with the query");
      return;
    }
    QueryOptions qo;
    qo.cancel = &stopping_;
    // Digits only (std::stoull would take "-1" for 2^64 - 1).
    if (req.has_param("limit") && !ParseDecimalUint(req.get_param_value("limit"), &qo.limit)) {
      SendJsonError(res, 400, "limit must be a non-negative integer");
      return;
    }
    // Stenographer's clients (stenoread) ask for limits in headers: at most this many packets, or this many
    // bytes of packets; the answer ends cleanly before the packet past the limit.
    for (const char* h : {"Steno-Limit-Packets", "Steno-Limit-Bytes"}) {
      if (!req.has_header(h)) continue;
      uint64_t v = 0;
      if (!ParseDecimalUint(req.get_header_value(h), &v)) {
        SendJsonError(res, 400, std::string(h) + " must be a non-negative integer");
        return;
      }
      uint64_t* limit = std::strcmp(h, "Steno-Limit-Packets") == 0 ? &qo.limit : &qo.limit_bytes;
      if (v != 0 && (*limit == 0 || v < *limit)) *limit = v;
    }
    qo.nanos = req.has_param("nanos") && ParseBool(req.get_param_value("nanos"));
    std::string format = req.has_param("format") ? req.get_param_value("format") : "pcap";
    if (format != "pcap" && format != "pcapng") {
      SendJsonError(res, 400, "format must be pcap or pcapng");
      return;
    }
    qo.pcapng = format == "pcapng";
    qo.vlan_fold = !(req.has_param("exact") && ParseBool(req.get_param_value("exact")));
    if (options_.query_time_limit_sec > 0) qo.deadline_ns = WallClockNs() + options_.query_time_limit_sec * 1000000000;
    auto catalog = Catalog();
    if (catalog.ok()) qo.catalog = *catalog;
    qo.index_cache = index_cache_.get();
    qo.cut_bytes = options_.query_byte_limit;
    int64_t started_ns = WallClockNs();
    std::string client = ClientOf(req, !options_.bearer_token.empty());
    auto q = Query::Prepare(options_.store, text, qo);
    if (!q.ok()) {
      ++counters_.queries_failed;
      const Status& s = q.status();
      long pos = -1;
      std::sscanf(s.message().c_str(), "at position %ld", &pos);
      if (s.code() == Status::kInvalidArgument) SendJsonError(res, 400, s.message(), pos);
      else SendJsonError(res, 500, s.ToString());
      LogLine(LogLevel::kInfo, "rewind serve: query from %s %s: %d (%s)", client.c_str(), QuotedQuery(text).c_str(),
              res.status, s.message().c_str());
      return;
    }
    // Held until the answer is written (or abandoned); released exactly once with the provider.
    int64_t admit_from_ns = WallClockNs();
    auto slot = std::make_shared<QueryAdmission::Slot>();
    if (!Admit(**q, res, slot.get())) {
      LogLine(LogLevel::kWarning, "rewind serve: query from %s %s: %d (not admitted)", client.c_str(),
              QuotedQuery(text).c_str(), res.status);
      return;
    }
    ++counters_.queries;
    std::shared_ptr<Query> shared(std::move(*q));
    if (qo.deadline_ns != 0) {
      // The time limit counts compiling the query, not the wait for a slot: a query admitted after waiting
      // longer than the limit would otherwise answer an empty pcap.
      shared->set_deadline_ns(qo.deadline_ns + (WallClockNs() - admit_from_ns));
    }
    bool pcapng = shared->WritesPcapng();
    if (req.method == "GET") {
      res.set_header("Content-Disposition",
                     std::string("attachment; filename=\"rewind.") + (pcapng ? "pcapng" : "pcap") + "\"");
    }
    // The body is chunked here, not by cpp-httplib (HttpChunkSink says why), so the provider is one
    // "without length" and the framing header is set by hand.
    res.set_header("Transfer-Encoding", "chunked");
    bool trailers = AcceptsTrailers(req);
    if (trailers) res.set_header("Trailer", "Rewind-Result");
    res.set_content_provider(
        pcapng ? "application/x-pcapng" : "application/vnd.tcpdump.pcap",
        [this, shared, slot, client, text, started_ns, trailers, ssl = const_cast<SSL*>(req.ssl)](size_t, httplib::DataSink& sink) {
          (void)slot;
          LowerIoPriority();
          // Over TLS, a chunk's 64 records leave in a few large writes instead of one each. (cpp-httplib hands
          // out the connection's SSL as const; it is used here on the connection's own thread, as it does.)
          TlsWriteBuffer tls(ssl, kTlsWriteBufferBytes);
          HttpChunkSink out([&sink, &tls](const char* data, size_t n) { return sink.write(data, n) && tls.Flush(); });
          QueryStats st;
          Status s = shared->Execute(&out, &st);
          if (s.ok() && st.cut_short) {  // a file the answer needed went away while it ran (retention)
            std::string why = "a file the answer needed was removed while it ran";
            for (const std::string& w : st.warnings) {
              if (w.rfind("answer cut short", 0) == 0) {
                why = w;
                break;
              }
            }
            s = Status::Cancelled(why);
          }
          // Sends what is gathered (whole packets, also of an answer cut short) before it is counted.
          Status flushed = out.Flush();
          if (s.ok()) s = flushed;
          counters_.packets_served += st.packets_matched;
          counters_.bytes_served += out.written();
          LogLine(LogLevel::kInfo, "rewind serve: query from %s %s: %s, %llu packets, %llu bytes, %.3f s",
                  client.c_str(), QuotedQuery(text).c_str(), s.ok() ? "200" : ("200 cut short: " + s.message()).c_str(),
                  static_cast<unsigned long long>(st.packets_matched), static_cast<unsigned long long>(out.written()),
                  static_cast<double>(WallClockNs() - started_ns) / 1e9);
          if (st.bytes_read >= kTrimAfterBytesRead) malloc_trim(0);
          if (!s.ok()) ++counters_.queries_cancelled;
          // Cut short (client gone, a limit, an error): a client that reads trailers gets the last chunk and
          // the reason; any other client gets no last chunk, so it sees an incomplete transfer rather than a
          // silently short answer.
          if (!s.ok() && !trailers) return false;
          std::string result = s.ok() ? "complete" : "cut-short; " + s.message();
          if (!out.Finish(trailers ? "Rewind-Result: " + FieldValue(result) + "\r\n" : "").ok()) return false;
          sink.done();
          return true;
        });
  };
  srv.Post("/query", [query](const httplib::Request& req, httplib::Response& res) {
    RequestDeadline::Disarm();  // the body has been read whole within the request's deadline
    query(req, res, req.body);
  });
  srv.Get("/query", [query](const httplib::Request& req, httplib::Response& res) {
    RequestDeadline::Disarm();  // (a GET may carry a body too)
    query(req, res, req.has_param("q") ? req.get_param_value("q") : "");
  });

  // The first matches as JSON rows, plus how many matched (up to `scan` packets).
  srv.Get("/preview", [this, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    std::string text = req.has_param("q") ? req.get_param_value("q") : "";
    size_t rows = 50, scan = 100000;
    try {
      if (req.has_param("rows")) rows = std::min<size_t>(std::stoul(req.get_param_value("rows")), 1000);
      if (req.has_param("scan")) scan = std::min<size_t>(std::stoul(req.get_param_value("scan")), 10000000);
    } catch (...) {
      SendJsonError(res, 400, "rows and scan must be integers");
      return;
    }
    if (scan == 0) {  // QueryOptions::limit 0 would mean no limit
      SendJsonError(res, 400, "scan must be at least 1");
      return;
    }
    QueryOptions qo;
    qo.cancel = &stopping_;
    qo.limit = scan;
    if (options_.query_time_limit_sec > 0) qo.deadline_ns = WallClockNs() + options_.query_time_limit_sec * 1000000000;
    qo.vlan_fold = !(req.has_param("exact") && ParseBool(req.get_param_value("exact")));
    auto catalog = Catalog();
    if (catalog.ok()) qo.catalog = *catalog;
    qo.index_cache = index_cache_.get();
    auto q = Query::Prepare(options_.store, text, qo);
    if (!q.ok()) {
      long pos = -1;
      std::sscanf(q.status().message().c_str(), "at position %ld", &pos);
      SendJsonError(res, q.status().code() == Status::kInvalidArgument ? 400 : 500, q.status().message(), pos);
      return;
    }
    QueryAdmission::Slot slot;
    if (!Admit(**q, res, &slot)) return;
    LowerIoPriority();
    rapidjson::StringBuffer buf;
    Json w(buf);
    w.StartObject();
    w.Key("rows");
    w.StartArray();
    uint64_t count = 0, bytes = 0;
    PacketFields f;
    QueryStats st;
    Status s = (*q)->ForEach(
        [&](const Query::Match& m) {
          ++count;
          bytes += m.packet->len;
          if (count <= rows) {
            DissectPacket(m.linktype, m.packet->data, m.packet->caplen, &f);
            w.StartObject();
            w.Key("time");
            w.String(FormatRfc3339(m.packet->ts_ns).c_str());
            w.Key("len");
            w.Uint(m.packet->len);
            if (f.flow.ip_version != 0) {
              w.Key("src");
              w.String(AddressText(f.flow, f.flow.src).c_str());
              w.Key("dst");
              w.String(AddressText(f.flow, f.flow.dst).c_str());
              w.Key("proto");
              w.Uint(f.flow.protocol);
              if (f.flow.has_ports) {
                w.Key("sport");
                w.Uint(f.flow.src_port);
                w.Key("dport");
                w.Uint(f.flow.dst_port);
              }
            }
            w.EndObject();
          }
          return true;
        },
        &st);
    w.EndArray();
    w.Key("count");
    w.Uint64(count);
    w.Key("bytes");
    w.Uint64(bytes);
    w.Key("complete");
    w.Bool(s.ok() && count < scan);
    w.Key("warnings");
    w.StartArray();
    for (const auto& x : st.warnings) w.String(x.c_str());
    w.EndArray();
    w.EndObject();
    res.set_content(buf.GetString(), "application/json");
  });

  auto stats = [this, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    auto catalog = Catalog();
    Result<StoreSummary> sum = catalog.ok() ? Result<StoreSummary>(SummarizeCatalog(**catalog)) : catalog.status();
    rapidjson::StringBuffer buf;
    Json w(buf);
    w.StartObject();
    w.Key("store");
    w.StartObject();
    if (sum.ok()) {
      const StoreSummary& s = *sum;
      w.Key("files");
      w.Uint64(s.files);
      w.Key("unindexed_files");
      w.Uint64(s.unindexed_files);
      w.Key("damaged_indexes");
      w.Uint64(s.damaged_indexes);
      w.Key("packets");
      w.Uint64(s.packets);
      w.Key("captured_bytes");
      w.Uint64(s.captured_bytes);
      w.Key("packet_file_bytes");
      w.Uint64(s.packet_file_bytes);
      w.Key("index_bytes");
      w.Uint64(s.index_bytes);
      if (s.packets) {
        w.Key("oldest_packet");
        w.String(FormatRfc3339(s.first_ts_ns).c_str());
        w.Key("newest_packet");
        w.String(FormatRfc3339(s.last_ts_ns).c_str());
        w.Key("index_lag_seconds");  // how far the newest queryable packet is behind now
        w.Double(static_cast<double>(WallClockNs() - s.last_ts_ns) / 1e9);
      }
    } else {
      w.Key("error");
      w.String(sum.status().ToString().c_str());
    }
    w.EndObject();
    struct statvfs vfs;
    if (statvfs(options_.store.c_str(), &vfs) == 0) {
      w.Key("disk");
      w.StartObject();
      w.Key("total_bytes");
      w.Uint64(static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize);
      w.Key("free_bytes");
      w.Uint64(static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize);
      w.EndObject();
    }
    w.Key("server");
    w.StartObject();
    w.Key("queries");
    w.Uint64(counters_.queries);
    w.Key("queries_failed");
    w.Uint64(counters_.queries_failed);
    QueryAdmission::Counters lookups = admission_->counters(QueryClass::kLookup);
    QueryAdmission::Counters scans = admission_->counters(QueryClass::kScan);
    w.Key("queries_rejected");
    w.Uint64(lookups.rejected + scans.rejected);
    w.Key("queries_cut_short");
    w.Uint64(counters_.queries_cancelled);
    w.Key("queries_running");
    w.Int(lookups.running + scans.running);
    w.Key("packets_served");
    w.Uint64(counters_.packets_served);
    w.Key("bytes_served");
    w.Uint64(counters_.bytes_served);
    w.Key("version");
    w.String(REWIND_VERSION);
    w.Key("uptime_seconds");
    w.Double(static_cast<double>(WallClockNs() - started_ns_) / 1e9);
    w.Key("admission");
    w.StartObject();
    for (QueryClass c : {QueryClass::kLookup, QueryClass::kScan}) {
      QueryAdmission::Counters k = admission_->counters(c);
      AdmissionLimits l = admission_->limits(c);
      w.Key(QueryClassName(c));
      w.StartObject();
      w.Key("max_running");
      w.Int(l.running);
      w.Key("max_waiting");
      w.Int(l.queued);
      w.Key("running");
      w.Int(k.running);
      w.Key("waiting");
      w.Int(k.waiting);
      w.Key("admitted");
      w.Uint64(k.admitted);
      w.Key("queued");
      w.Uint64(k.queued);
      w.Key("rejected");
      w.Uint64(k.rejected);
      w.Key("timed_out");
      w.Uint64(k.timed_out);
      w.EndObject();
    }
    w.EndObject();
    w.EndObject();
    w.EndObject();
    // The capture threads' own JSON files, spliced in as they are.
    std::string json = buf.GetString();
    json.pop_back();
    json += ",\"capture\":" + CaptureStatsArray(options_.store) + "}";
    res.set_content(json, "application/json");
  };
  srv.Get("/stats", stats);
  srv.Get("/debug/stats", stats);  // where Stenographer's clients look

  srv.Get("/metrics", [this, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    std::string m;
    auto metric = [&m](const char* name, const char* type, const char* help, double v) {
      char buf[256];
      std::snprintf(buf, sizeof(buf), "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
      m += buf;
    };
    auto catalog = Catalog();
    Result<StoreSummary> sum = catalog.ok() ? Result<StoreSummary>(SummarizeCatalog(**catalog)) : catalog.status();
    if (sum.ok()) {
      metric("rewind_store_files", "gauge", "Indexed packet files.", static_cast<double>(sum->files));
      metric("rewind_store_packets", "gauge", "Packets in the store.", static_cast<double>(sum->packets));
      metric("rewind_store_captured_bytes", "gauge", "Captured bytes in the store.",
             static_cast<double>(sum->captured_bytes));
      metric("rewind_store_packet_file_bytes", "gauge", "Bytes of packet files.",
             static_cast<double>(sum->packet_file_bytes));
      metric("rewind_store_index_bytes", "gauge", "Bytes of index tables.", static_cast<double>(sum->index_bytes));
      metric("rewind_store_damaged_indexes", "gauge", "Index tables that cannot be read.",
             static_cast<double>(sum->damaged_indexes));
      if (sum->packets) {
        metric("rewind_store_oldest_packet_timestamp_seconds", "gauge", "Timestamp of the oldest packet.",
               static_cast<double>(sum->first_ts_ns) / 1e9);
        metric("rewind_store_newest_packet_timestamp_seconds", "gauge", "Timestamp of the newest queryable packet.",
               static_cast<double>(sum->last_ts_ns) / 1e9);
      }
    }
    metric("rewind_queries_total", "counter", "Queries answered.", static_cast<double>(counters_.queries));
    metric("rewind_queries_failed_total", "counter", "Queries refused as malformed or failed.",
           static_cast<double>(counters_.queries_failed));
    QueryAdmission::Counters lookups = admission_->counters(QueryClass::kLookup);
    QueryAdmission::Counters scans = admission_->counters(QueryClass::kScan);
    metric("rewind_queries_rejected_total", "counter", "Queries refused with 429.",
           static_cast<double>(lookups.rejected + scans.rejected));
    metric("rewind_queries_cut_short_total", "counter", "Queries ended early (client gone, limits).",
           static_cast<double>(counters_.queries_cancelled));
    metric("rewind_queries_running", "gauge", "Queries running now.",
           static_cast<double>(lookups.running + scans.running));
    // Per admission class, labelled class="lookup" or class="scan".
    auto per_class = [&m, &lookups, &scans](const char* name, const char* type, const char* help, auto field) {
      char buf[512];
      std::snprintf(buf, sizeof(buf), "# HELP %s %s\n# TYPE %s %s\n%s{class=\"lookup\"} %.17g\n%s{class=\"scan\"} %.17g\n",
                    name, help, name, type, name, static_cast<double>(field(lookups)), name,
                    static_cast<double>(field(scans)));
      m += buf;
    };
    using C = QueryAdmission::Counters;
    per_class("rewind_admission_admitted_total", "counter", "Queries given a slot.", [](const C& c) { return c.admitted; });
    per_class("rewind_admission_queued_total", "counter", "Queries that waited for a slot.",
              [](const C& c) { return c.queued; });
    per_class("rewind_admission_rejected_total", "counter", "Queries refused with 429: the queue was full.",
              [](const C& c) { return c.rejected; });
    per_class("rewind_admission_timed_out_total", "counter", "Queries that gave up waiting (503).",
              [](const C& c) { return c.timed_out; });
    per_class("rewind_admission_running", "gauge", "Queries running now.", [](const C& c) { return c.running; });
    per_class("rewind_admission_waiting", "gauge", "Queries waiting now.", [](const C& c) { return c.waiting; });
    metric("rewind_packets_served_total", "counter", "Packets sent to clients.",
           static_cast<double>(counters_.packets_served));
    metric("rewind_index_cache_tables", "gauge", "Index tables the server keeps open for queries.",
           static_cast<double>(index_cache_->size()));
    // What the process has allocated, against what the allocator holds from the system for it (the
    // difference is free memory it keeps): tells a leak from an allocator that keeps what it was given.
    struct mallinfo2 mi = mallinfo2();
    metric("rewind_heap_in_use_bytes", "gauge", "Memory allocated by the process (malloc), in use.",
           static_cast<double>(mi.uordblks + mi.hblkhd));
    metric("rewind_heap_held_bytes", "gauge", "Memory the allocator holds from the system (in use and free).",
           static_cast<double>(mi.arena + mi.hblkhd));
    // Per capture thread, from the counter files the capture threads write (DIR/capture<n>.json).
    rapidjson::Document caps;
    caps.Parse(CaptureStatsArray(options_.store).c_str());
    if (!caps.HasParseError() && caps.IsArray() && !caps.Empty()) {
      struct Field {
        const char* key;
        const char* name;
        const char* type;
        const char* help;
        double scale;
      };
      static const Field kFields[] = {
          {"packets", "rewind_capture_packets_total", "counter", "Packets captured.", 1},
          {"bytes", "rewind_capture_bytes_total", "counter", "Bytes captured.", 1},
          {"kernel_drops", "rewind_capture_kernel_drops_total", "counter",
           "Packets the kernel dropped because the ring was full.", 1},
          {"write_drops", "rewind_capture_write_drops_total", "counter",
           "Packets lost because their block could not be written.", 1},
          {"write_errors", "rewind_capture_write_errors_total", "counter", "Block writes that failed.", 1},
          {"blocks", "rewind_capture_blocks_total", "counter", "Blocks written.", 1},
          {"files", "rewind_capture_files_total", "counter", "Packet files completed (index table and catalog record written).", 1},
          {"max_write_latency_us", "rewind_capture_max_write_latency_seconds", "gauge",
           "Longest time a block write took.", 1e-6},
      };
      for (const Field& f : kFields) {
        m += std::string("# HELP ") + f.name + " " + f.help + " Per capture thread.\n# TYPE " + f.name + " " + f.type + "\n";
        for (const auto& t : caps.GetArray()) {
          if (!t.IsObject() || !t.HasMember("thread") || !t["thread"].IsUint() || !t.HasMember(f.key) ||
              !t[f.key].IsNumber()) {
            continue;
          }
          char buf[160];
          std::snprintf(buf, sizeof(buf), "%s{thread=\"%u\"} %.17g\n", f.name, t["thread"].GetUint(),
                        t[f.key].GetDouble() * f.scale);
          m += buf;
        }
      }
    }
    m += "# HELP rewind_build_info The running rewind's version.\n# TYPE rewind_build_info gauge\n"
         "rewind_build_info{version=\"" REWIND_VERSION "\"} 1\n";
    res.set_content(m, "text/plain; version=0.0.4");
  });

  srv.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  srv.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content(WebPageHtml(), "text/html; charset=utf-8"); });
}

}  // namespace rwd
