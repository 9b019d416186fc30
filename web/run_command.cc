// `rewind run`: the appliance — capture threads, the query server and housekeeping in one daemon, from one
// JSON config (or embedded defaults). A capture thread that fails is restarted; SIGTERM/SIGINT stop it all.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "capture/capture_worker.h"
#include "capture/retention_thread.h"
#include "web/command_line.h"
#include "web/commands.h"
#include "web/exit_deadline.h"
#include "web/http_server.h"
#include "index/log_line.h"

namespace rwd {
namespace {

const char kRunUsage[] =
    "usage: rewind run [--config FILE]\n"
    "Runs capture, the query server and housekeeping together. FILE is JSON, every key optional:\n"
    "  {\"dir\": \"./store\",\n"
    "   \"capture\": {\"iface\": \"<default route's interface>\", \"threads\": 1, \"blocks\": 256,\n"
    "               \"fileage_sec\": 60, \"filesize_mb\": 1024, \"filter\": \"\", \"snaplen\": 262144,\n"
    "               \"blockage_ms\": 500, \"compress\": \"none|zstd|zstd:N\", \"enabled\": true},\n"
    "   \"server\":  {\"listen\": \"127.0.0.1:9123\", \"tls_cert\": \"\", \"tls_key\": \"\", \"tls_client_ca\": \"\",\n"
    "               \"token_file\": \"\", \"max_lookups\": 32, \"lookup_queue\": 64, \"max_scans\": 2,\n"
    "               \"scan_queue\": 64, \"queue_wait_sec\": 60, \"request_timeout_sec\": 10,\n"
    "               \"idle_timeout_sec\": 5, \"query_time_limit_sec\": 0, \"query_byte_limit\": 0},\n"
    "   \"retention\": {\"max_store_mb\": 0, \"min_free_percent\": 10, \"max_files\": 0, \"max_age_sec\": 0,\n"
    "               \"interval_sec\": 10}}\n"
    "Retention removes the oldest complete packet files (each with its index) while the store uses more than\n"
    "max_store_mb MiB, the file system has less than min_free_percent free, a capture thread has more than\n"
    "max_files complete files, or a file's newest packet is older than max_age_sec; 0 turns a limit off.\n";

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

// The interface of the default IPv4 route, else the first non-loopback interface that is up, else "lo".
std::string DefaultInterface() {
  std::ifstream route("/proc/net/route");
  std::string line;
  std::getline(route, line);
  while (std::getline(route, line)) {
    std::istringstream in(line);
    std::string iface, dest;
    if (in >> iface >> dest && dest == "00000000") return iface;
  }
  std::ifstream dev("/proc/net/dev");
  std::getline(dev, line);
  std::getline(dev, line);
  while (std::getline(dev, line)) {
    std::string name = line.substr(0, line.find(':'));
    name.erase(0, name.find_first_not_of(' '));
    if (name != "lo" && !name.empty()) return name;
  }
  return "lo";
}

struct RunConfig {
  CaptureConfig capture;
  uint32_t threads = 1;
  bool capture_enabled = true;
  ServerOptions server;
  std::string token_file;
  RetentionPolicy retention;
  uint64_t retention_interval_sec = 10;
};

// Edit distance between two short keys (for "did you mean").
size_t KeyDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Empty if every member of `o` is a known key; else names the first unknown one (and the nearest known key).
std::string UnknownKey(const rapidjson::Value& o, const std::vector<std::string>& known, const std::string& where) {
  for (auto m = o.MemberBegin(); m != o.MemberEnd(); ++m) {
    std::string key = m->name.GetString();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string nearest;
    size_t best = 4;  // suggest only close ones
    for (const std::string& k : known) {
      size_t d = KeyDistance(key, k);
      if (d < best) best = d, nearest = k;
    }
    return "unknown key \"" + key + "\"" + (where.empty() ? "" : " in \"" + where + "\"") +
           (nearest.empty() ? "" : " (did you mean \"" + nearest + "\"?)");
  }
  return "";
}

Status LoadConfig(const std::string& path, RunConfig* c) {
  c->capture.store = "./store";
  c->capture.ring.iface = DefaultInterface();
  c->capture.ring.blocks = 256;
  c->capture.max_file_bytes = 1024ull << 20;
  // A partly filled block is handed over (and written, and queryable) after half a second, so that a packet
  // is in query answers within a second of arriving.
  c->capture.ring.block_timeout_ms = 500;
  c->server.host = "127.0.0.1";
  c->server.port = 9123;
  c->retention.min_free_percent = 10;  // like Stenographer's default DiskFreePercentage
  if (path.empty()) {
    c->server.store = c->capture.store;
    return Status::OK();
  }
  std::ifstream f(path);
  if (!f) return Status::NotFound("cannot read config " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  rapidjson::Document d;
  d.Parse(ss.str().c_str());
  if (d.HasParseError()) {
    return Status::InvalidArgument(path + ": JSON error at offset " + std::to_string(d.GetErrorOffset()) + ": " +
                                   rapidjson::GetParseError_En(d.GetParseError()));
  }
  if (!d.IsObject()) return Status::InvalidArgument(path + ": the config must be a JSON object");
  if (d.HasMember("Threads") || d.HasMember("StenotypePath") || d.HasMember("Interface")) {
    return Status::InvalidArgument(
        path + " is a Stenographer config. rewind.json says the same thing as {\"dir\": STORE, \"capture\": "
               "{\"iface\": Interface, \"threads\": the number of Threads}, \"server\": {\"listen\": "
               "\"Host:Port\"}, \"retention\": {\"min_free_percent\": DiskFreePercentage}} (see "
               "scripts/rewind.json.example); `rewind config --from-stenographer " + path + "` prints it");
  }
  std::string problem = UnknownKey(d, {"dir", "capture", "server", "retention"}, "");
  auto check_keys = [&problem](const rapidjson::Value& o, const std::vector<std::string>& known, const char* where) {
    if (problem.empty()) problem = UnknownKey(o, known, where);
  };
  auto str = [&](const rapidjson::Value& o, const char* k, std::string* out) {
    if (!o.HasMember(k)) return;
    if (!o[k].IsString()) problem = std::string("\"") + k + "\" must be a string";
    else *out = o[k].GetString();
  };
  auto num = [&](const rapidjson::Value& o, const char* k, uint64_t* out) {
    if (!o.HasMember(k)) return;
    if (!o[k].IsUint64()) problem = std::string("\"") + k + "\" must be a non-negative integer";
    else *out = o[k].GetUint64();
  };
  str(d, "dir", &c->capture.store);
  if (d.HasMember("capture")) {
    const auto& cap = d["capture"];
    if (!cap.IsObject()) return Status::InvalidArgument(path + ": \"capture\" must be an object");
    check_keys(cap, {"iface", "filter", "compress", "threads", "blocks", "fileage_sec", "filesize_mb", "snaplen",
                     "blockage_sec", "blockage_ms", "enabled"}, "capture");
    uint64_t threads = 1, blocks = 256, fileage = 60, filesize = 1024, snaplen = 262144, blockage = 0, blockage_ms = 500;
    str(cap, "iface", &c->capture.ring.iface);
    str(cap, "filter", &c->capture.ring.filter);
    std::string compress = "none";
    str(cap, "compress", &compress);
    Status cs = ParseCompression(compress, &c->capture.compress_level);
    if (!cs.ok()) problem = cs.message();
    num(cap, "threads", &threads);
    num(cap, "blocks", &blocks);
    num(cap, "fileage_sec", &fileage);
    num(cap, "filesize_mb", &filesize);
    num(cap, "snaplen", &snaplen);
    num(cap, "blockage_sec", &blockage);
    num(cap, "blockage_ms", &blockage_ms);
    if (cap.HasMember("blockage_sec")) blockage_ms = blockage * 1000;
    if (cap.HasMember("enabled")) {
      if (!cap["enabled"].IsBool()) problem = "\"enabled\" must be true or false";
      else c->capture_enabled = cap["enabled"].GetBool();
    }
    // At most 5 s: stopping waits for the kernel to hand over the last part-filled block, within the exit deadline.
    if (threads == 0 || threads > 64 || filesize == 0 || filesize > 4096 || blockage_ms < 10 || blockage_ms > 5000 ||
        blocks < 2) {
      problem = "capture: need 1 <= threads <= 64, 1 <= filesize_mb <= 4096, 1 <= blockage_sec <= 5 (or 10 <= "
                "blockage_ms <= 5000), blocks >= 2";
    }
    c->threads = static_cast<uint32_t>(threads);
    c->capture.ring.blocks = static_cast<uint32_t>(blocks);
    c->capture.max_file_age_ns = static_cast<int64_t>(fileage) * 1000000000;
    c->capture.max_file_bytes = filesize << 20;
    c->capture.ring.snaplen = static_cast<uint32_t>(snaplen);
    c->capture.ring.block_timeout_ms = static_cast<uint32_t>(blockage_ms);
  }
  if (d.HasMember("server")) {
    const auto& srv = d["server"];
    if (!srv.IsObject()) return Status::InvalidArgument(path + ": \"server\" must be an object");
    check_keys(srv, {"listen", "tls_cert", "tls_key", "tls_client_ca", "token_file", "max_lookups", "lookup_queue",
                     "max_queries", "max_scans", "scan_queue", "queue_wait_sec", "request_timeout_sec",
                     "idle_timeout_sec", "query_time_limit_sec", "query_byte_limit"}, "server");
    std::string listen = "127.0.0.1:9123";
    ServerOptions def;
    uint64_t lookups = static_cast<uint64_t>(def.lookups.running);
    uint64_t lookup_queue = static_cast<uint64_t>(def.lookups.queued);
    uint64_t scans = static_cast<uint64_t>(def.scans.running), scan_queue = static_cast<uint64_t>(def.scans.queued);
    uint64_t wait = static_cast<uint64_t>(def.queue_wait_sec), request = static_cast<uint64_t>(def.request_timeout_sec);
    uint64_t idle = static_cast<uint64_t>(def.idle_timeout_sec), tl = 0, bl = 0;
    str(srv, "listen", &listen);
    str(srv, "tls_cert", &c->server.tls_cert);
    str(srv, "tls_key", &c->server.tls_key);
    str(srv, "tls_client_ca", &c->server.tls_client_ca);
    str(srv, "token_file", &c->token_file);
    num(srv, "max_lookups", &lookups);
    num(srv, "lookup_queue", &lookup_queue);
    num(srv, "max_queries", &scans);  // the old name of max_scans
    num(srv, "max_scans", &scans);
    num(srv, "scan_queue", &scan_queue);
    num(srv, "queue_wait_sec", &wait);
    num(srv, "request_timeout_sec", &request);
    num(srv, "idle_timeout_sec", &idle);
    num(srv, "query_time_limit_sec", &tl);
    num(srv, "query_byte_limit", &bl);
    Status s = ParseListen(listen, &c->server.host, &c->server.port);
    if (!s.ok()) problem = s.message();
    Status limits = CheckServerLimits(lookups, lookup_queue, scans, scan_queue, request, idle, wait, tl);
    if (!limits.ok()) problem = "server: " + limits.message();
    c->server.lookups = {static_cast<int>(lookups), static_cast<int>(lookup_queue)};
    c->server.scans = {static_cast<int>(scans), static_cast<int>(scan_queue)};
    c->server.queue_wait_sec = static_cast<int64_t>(wait);
    c->server.request_timeout_sec = static_cast<int64_t>(request);
    c->server.idle_timeout_sec = static_cast<int64_t>(idle);
    c->server.query_time_limit_sec = static_cast<int64_t>(tl);
    c->server.query_byte_limit = bl;
  }
  if (d.HasMember("retention")) {
    const auto& ret = d["retention"];
    if (!ret.IsObject()) return Status::InvalidArgument(path + ": \"retention\" must be an object");
    check_keys(ret, {"max_store_mb", "max_files", "max_age_sec", "interval_sec", "min_free_percent"}, "retention");
    uint64_t mb = 0, files = 0, age = 0;
    num(ret, "max_store_mb", &mb);
    num(ret, "max_files", &files);
    num(ret, "max_age_sec", &age);
    num(ret, "interval_sec", &c->retention_interval_sec);
    if (ret.HasMember("min_free_percent")) {
      if (!ret["min_free_percent"].IsNumber()) problem = "\"min_free_percent\" must be a number";
      else c->retention.min_free_percent = ret["min_free_percent"].GetDouble();
    }
    if (mb > (uint64_t{1} << 43) || files > 0xffffffffu || age > (uint64_t{1} << 33) ||
        !(c->retention.min_free_percent >= 0 && c->retention.min_free_percent < 100) ||
        c->retention_interval_sec == 0 || c->retention_interval_sec > 86400) {
      problem = "retention: need 0 <= min_free_percent < 100, 1 <= interval_sec <= 86400, and sane limits";
    }
    c->retention.max_bytes = mb << 20;
    c->retention.max_files_per_writer = static_cast<uint32_t>(files);
    c->retention.max_age_ns = static_cast<int64_t>(age) * 1000000000;
  }
  if (problem.empty() && c->capture_enabled) {
    Status room = CheckRetentionLeavesRoom(c->retention, c->threads, c->capture.max_file_bytes);
    if (!room.ok()) problem = "retention: " + room.message();
  }
  if (!problem.empty()) return Status::InvalidArgument(path + ": " + problem);
  c->server.store = c->capture.store;
  if (!c->token_file.empty()) return ReadTokenFile(c->token_file, &c->server.bearer_token);
  return Status::OK();
}

// Runs one capture thread until stop, reopening it after a failure (with a growing pause).
// Runs capture thread `thread` from `worker` (opened at start) until the stop signal, reopening it after a
// failure with growing pauses.
void SuperviseCapture(const CaptureConfig& config, uint32_t thread, std::unique_ptr<CaptureWorker> worker) {
  int backoff_s = 1;
  CaptureWorker::Totals carried;  // of the thread's earlier workers: its counters count on
  while (!g_stop.load()) {
    if (worker == nullptr) {
      auto w = OpenCaptureWorker(config, thread, nullptr, false);
      if (w.ok()) {
        worker = std::move(*w);
        worker->ContinueTotals(carried);
      } else {
        LogLine(LogLevel::kError, "rewind run: capture thread %u cannot start: %s; retrying in %d s\n", thread,
                w.status().ToString().c_str(), backoff_s);
      }
    }
    if (worker != nullptr) {
      auto started = std::chrono::steady_clock::now();
      Status s = worker->Run(g_stop);
      carried = worker->totals();
      worker.reset();
      if (g_stop.load()) return;
      // A thread that captured for a while before it stopped (a link that flapped) restarts at once-ish:
      // the backoff grows only while restarts keep failing.
      if (std::chrono::steady_clock::now() - started > std::chrono::seconds(30)) backoff_s = 1;
      LogLine(LogLevel::kWarning, "rewind run: capture thread %u stopped: %s; restarting in %d s\n", thread,
              s.ToString().c_str(), backoff_s);
    }
    for (int i = 0; i < backoff_s * 10 && !g_stop.load(); ++i) usleep(100000);
    backoff_s = std::min(backoff_s * 2, 60);
  }
}

}  // namespace

int RunRunCommand(int argc, char** argv) {
  auto cl = CommandLine::Parse(argc, argv, {"config"}, {"help"}, false);
  if (!cl.ok()) {
    std::fprintf(stderr, "rewind run: %s\n%s", cl.status().message().c_str(), kRunUsage);
    return 2;
  }
  if (cl->Has("help")) {
    std::fputs(kRunUsage, stdout);
    return 0;
  }
  RunConfig config;
  Status s = LoadConfig(cl->Get("config"), &config);
  if (!s.ok()) {
    LogLine(LogLevel::kError, "rewind run: %s\n", s.ToString().c_str());
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // SIGHUP would end the process without draining or indexing its last file (and systemd would not restart a
  // service that ended on it). There is no configuration to reload: ignored.
  signal(SIGHUP, SIG_IGN);
  // The server's TLS files are checked before capture starts: a configuration error must not capture first.
  s = HttpServer::CheckTls(config.server);
  if (!s.ok()) {
    LogLine(LogLevel::kError, "rewind run: server: %s\n", s.message().c_str());
    return 2;
  }
  if (config.threads > 1) config.capture.ring.fanout_id = getpid() & 0xffff;
  // Every capture thread is open (its ring bound) before serving and before "capturing" is said, so that a
  // wrong interface or missing privileges are reported at once; later failures are retried by the
  // supervisors.
  std::vector<std::thread> captures;
  if (config.capture_enabled) {
    auto opened = OpenCaptureWorkers(config.capture, config.threads, nullptr, false);
    if (!opened.ok()) {
      LogLine(LogLevel::kError, "rewind run: cannot capture on %s: %s\n", config.capture.ring.iface.c_str(),
              opened.status().ToString().c_str());
      return opened.status().code() == Status::kInvalidArgument ? 2 : 1;
    }
    for (uint32_t t = 0; t < config.threads; ++t) {
      captures.emplace_back([&config, t, w = std::move((*opened)[t])]() mutable {
        SuperviseCapture(config.capture, t, std::move(w));
      });
    }
  }
  // Retention keeps the store within its limits while capture writes (and even when capture is disabled).
  std::unique_ptr<RetentionThread> retention;
  if (config.retention.enabled()) {
    retention = std::make_unique<RetentionThread>(config.capture.store, config.retention,
                                                  std::chrono::seconds(config.retention_interval_sec),
                                                  "rewind run", false);
    retention->Start();
  }
  HttpServer server(config.server);
  s = server.Start();
  if (!s.ok()) {
    LogLine(LogLevel::kError, "rewind run: %s\n", s.ToString().c_str());
    g_stop.store(true);
    for (auto& t : captures) t.join();
    return 1;
  }
  std::string url = std::string(server.tls() ? "https" : "http") + "://" + config.server.host + ":" +
                    std::to_string(server.port());
  LogLine(LogLevel::kInfo, "rewind run: capturing on %s into %s (%u thread(s)); retention: %s",
          config.capture_enabled ? config.capture.ring.iface.c_str() : "(capture disabled)",
          config.capture.store.c_str(), config.threads, config.retention.Describe().c_str());
  std::fprintf(stderr,
               "  browser:   %s/\n"
               "  curl:      curl -s --data-binary 'tcp and after 5m ago' %s/query | tcpdump -nr -\n"
               "  wireshark: curl -s --data-binary 'port 53' %s/query | wireshark -k -i -\n",
               url.c_str(), url.c_str(), url.c_str());
  std::fflush(stderr);
  while (!g_stop.load()) usleep(50000);
  // Capture threads drain their ring for about a second and complete their files meanwhile (an index table
  // and a catalog record, each synced); the server stops at once. The forced exit is for a thread stuck in
  // I/O: it leaves the file being written without its index, which the next start re-indexes.
  ExitAfterDeadline(10000, "rewind run", 1);
  server.Stop();
  for (auto& t : captures) t.join();
  if (retention) retention->Stop();
  LogLine(LogLevel::kInfo, "rewind run: stopped\n");
  return 0;
}

}  // namespace rwd
