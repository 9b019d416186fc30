// `rewind capture`: live capture with Stenographer's stenotype flags.
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "capture/capture_worker.h"
#include "capture/rotation_hook.h"
#include "capture/retention_thread.h"
#include "web/command_line.h"
#include "web/commands.h"
#include "index/log_line.h"

namespace rwd {
namespace {

const char kCaptureUsage[] =
    "usage: rewind capture --iface IFACE --dir DIR [flags]\n"
    "Accepts Debian stenotype's flags with their meaning:\n"
    "  --aiops N                 writes in flight per thread (default 128)\n"
    "  --blocks N                ring size per thread in 1 MiB blocks (default 2048 / threads, at least 16)\n"
    "  --count N                 stop after N packets (-1: run until SIGINT/SIGTERM)\n"
    "  --dir DIR                 store directory (PKT<n>/ and IDX<n>/ per thread)\n"
    "  --fanout_id N             PACKET_FANOUT group id (default: derived from the process id)\n"
    "  --fanout_type N           PACKET_FANOUT type (default 0 = hash)\n"
    "  --fileage_sec N           rotate files older than N s (default 60)\n"
    "  --filesize_mb N           rotate files at N MiB (default 4096)\n"
    "  --filter F                tcpdump expression, or stenotype's hex-encoded compiled BPF\n"
    "  --gid N, --uid N          drop to this group / user once the sockets and directories are open\n"
    "  --iface IFACE             interface to capture on\n"
    "  --index_nicelevel N       nice level of the indexing threads (default 0)\n"
    "  --no_index                write no index tables (files are not queryable until indexed)\n"
    "  --no_watchdogs            accepted; rewind has no watchdog processes\n"
    "  --no_promisc              do not put the interface in promiscuous mode\n"
    "  --preallocate_file_mb N   preallocate new files to N MiB (default: filesize_mb)\n"
    "  --seccomp none            only 'none' (see docs/capture.md)\n"
    "  --threads N               capture threads in one fanout group (default 1)\n"
    "  --blockage_sec N          the kernel hands over a partly filled block after N s (default 1, at most 5)\n"
    "  --snaplen N               bytes kept per packet (default 262144)\n"
    "  --compress C              none (default), zstd or zstd:N: compress each block before it is written\n"
    "  --on_rotate CMD           run 'CMD PACKET_FILE INDEX_FILE' (via sh -c) for every completed file, like\n"
    "                            tcpdump -z; never blocks capture, at most 2 at once, failures are logged\n"
    "  -v / -q                   more / less logging\n"
    "Retention (off unless given; the oldest complete files go first, each with its index):\n"
    "  --max_store_mb N          packet files + index tables use at most N MiB\n"
    "  --min_free_percent P      keep P% of the file system free (stenographer's DiskFreePercentage)\n"
    "  --max_files N             at most N complete files per thread (stenographer's MaxDirectoryFiles)\n"
    "  --max_age_sec N           remove files whose newest packet is older than N s\n"
    "  --retention_interval_sec N  apply the limits every N s (default 10)\n";

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

}  // namespace

int RunCaptureCommand(int argc, char** argv) {
  auto cl = CommandLine::Parse(
      argc, argv,
      {"aiops", "blocks", "count", "dir", "fanout_id", "fanout_type", "fileage_sec", "filesize_mb", "filter", "gid",
       "iface", "index_nicelevel", "preallocate_file_mb", "seccomp", "threads", "uid", "snaplen", "blockage_sec",
       "compress", "on_rotate",
       "max_store_mb", "min_free_percent", "max_files", "max_age_sec", "retention_interval_sec"},
      {"help", "no_index", "no_watchdogs", "no_promisc", "v", "q"}, false);
  if (!cl.ok()) {
    std::fprintf(stderr, "rewind capture: %s\n%s", cl.status().message().c_str(), kCaptureUsage);
    return 2;
  }
  if (cl->Has("help")) {
    std::fputs(kCaptureUsage, stdout);
    return 0;
  }
  uint64_t aiops, blocks, fileage, filesize, threads, snaplen, prealloc, blockage, fanout_type;
  Status s = cl->GetUint("aiops", 128, &aiops);
  if (s.ok()) s = cl->GetUint("threads", 1, &threads);
  if (s.ok()) s = cl->GetUint("blocks", 0, &blocks);
  if (s.ok()) s = cl->GetUint("fileage_sec", 60, &fileage);
  if (s.ok()) s = cl->GetUint("filesize_mb", 4096, &filesize);
  if (s.ok()) s = cl->GetUint("snaplen", 262144, &snaplen);
  if (s.ok()) s = cl->GetUint("preallocate_file_mb", 0, &prealloc);
  if (s.ok()) s = cl->GetUint("blockage_sec", 1, &blockage);
  if (s.ok()) s = cl->GetUint("fanout_type", 0, &fanout_type);
  RetentionPolicy retention;
  uint64_t retention_interval = 10;
  if (s.ok()) s = ParseRetentionFlags(*cl, &retention);
  if (s.ok()) s = cl->GetUint("retention_interval_sec", 10, &retention_interval);
  int compress_level = 0;
  if (s.ok()) s = ParseCompression(cl->Get("compress", "none"), &compress_level);
  int64_t count = -1;
  uint64_t count_flag = 0, uid_flag = 0, gid_flag = 0, fanout_id_flag = 0;
  if (s.ok() && cl->Has("count") && cl->Get("count") != "-1") {
    s = cl->GetUint("count", 0, &count_flag);
    count = static_cast<int64_t>(std::min<uint64_t>(count_flag, INT64_MAX));
  }
  long nice = 0;
  if (s.ok() && cl->Has("index_nicelevel")) {
    // -20..19, as nice(1) takes it.
    std::string text = cl->Get("index_nicelevel");
    uint64_t magnitude = 0;
    bool negative = !text.empty() && text[0] == '-';
    if (!ParseDecimalUint(negative ? text.substr(1) : text, &magnitude) || magnitude > (negative ? 20u : 19u)) {
      s = Status::InvalidArgument("--index_nicelevel wants a number from -20 to 19, got '" + text + "'");
    } else {
      nice = negative ? -static_cast<long>(magnitude) : static_cast<long>(magnitude);
    }
  }
  if (s.ok()) s = cl->GetUint("uid", 0, &uid_flag);
  if (s.ok()) s = cl->GetUint("gid", 0, &gid_flag);
  if (s.ok()) s = cl->GetUint("fanout_id", 0, &fanout_id_flag);
  if (s.ok() && (uid_flag > INT32_MAX || gid_flag > INT32_MAX || fanout_id_flag > 0xffff)) {
    s = Status::InvalidArgument("--uid and --gid want a number below 2^31, --fanout_id one below 65536");
  }
  if (s.ok()) s = CheckRetentionLeavesRoom(retention, static_cast<uint32_t>(threads),
                                           (prealloc != 0 ? std::max(prealloc, filesize) : filesize) << 20);
  int uid = cl->Has("uid") ? static_cast<int>(uid_flag) : -1;
  int gid = cl->Has("gid") ? static_cast<int>(gid_flag) : -1;
  if (uid >= 0 && gid < 0) {  // --uid alone: that user's group, not root's (files, and the groups kept)
    if (const struct passwd* pw = getpwuid(static_cast<uid_t>(uid))) gid = static_cast<int>(pw->pw_gid);
  }
  std::string seccomp = cl->Get("seccomp", "none");
  if (!s.ok() || !cl->Has("iface") || !cl->Has("dir") || threads == 0 || threads > 64 || filesize == 0 ||
      filesize > 4096 || blockage == 0 || blockage > 5 || retention_interval == 0 || retention_interval > 86400) {
    std::fprintf(stderr, "rewind capture: %s\n%s",
                 !s.ok() ? s.message().c_str()
                         : "needs --iface and --dir; 1 <= --threads <= 64; 1 <= --filesize_mb <= 4096; "
                           "1 <= --blockage_sec <= 5; 1 <= --retention_interval_sec <= 86400",
                 kCaptureUsage);
    return 2;
  }
  if (seccomp != "none") {
    std::fprintf(stderr, "rewind capture: --seccomp %s is not supported (only 'none'; see docs/capture.md)\n",
                 seccomp.c_str());
    return 2;
  }
  if (blocks == 0) blocks = std::max<uint64_t>(16, 2048 / threads);
  int verbose = cl->Has("v") ? 1 : 0;
  if (cl->Has("q")) verbose = -1;
  std::string dir = cl->Get("dir");

  int fanout_id = cl->Has("fanout_id") ? static_cast<int>(fanout_id_flag) : (threads > 1 ? getpid() & 0xffff : -1);
  CaptureConfig cc;
  cc.store = dir;
  cc.ring.iface = cl->Get("iface");
  cc.ring.blocks = static_cast<uint32_t>(blocks);
  cc.ring.block_timeout_ms = static_cast<uint32_t>(blockage * 1000);
  cc.ring.snaplen = static_cast<uint32_t>(snaplen);
  cc.ring.promiscuous = !cl->Has("no_promisc");
  cc.ring.fanout_id = fanout_id;
  cc.ring.fanout_type = static_cast<int>(fanout_type);
  cc.ring.filter = cl->Get("filter");
  cc.max_file_bytes = filesize << 20;
  cc.max_file_age_ns = static_cast<int64_t>(fileage) * 1000000000;
  cc.max_writes_in_flight = static_cast<int>(std::min<uint64_t>(aiops, 1u << 20));
  cc.preallocate_bytes = prealloc << 20;
  cc.index = !cl->Has("no_index");
  cc.index_nice = static_cast<int>(nice);
  cc.compress_level = compress_level;
  std::unique_ptr<RotationHook> hook;  // outlives the workers (declared before them)
  if (cl->Has("on_rotate")) {
    hook = std::make_unique<RotationHook>(cl->Get("on_rotate"));
    RotationHook* h = hook.get();
    cc.on_file_complete = [h](const std::string& p, const std::string& i) { h->FileCompleted(p, i); };
  }
  cc.uid = uid;
  cc.gid = gid;
  // SIGINT/SIGTERM stop the capture from here on, even while the rings are set up (seconds) and even when
  // the process started with SIGINT ignored (a background job of a script).
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // SIGHUP would end the process without draining or indexing its last file (and systemd would not restart a
  // service that ended on it). There is no configuration to reload: ignored.
  signal(SIGHUP, SIG_IGN);
  // Open everything that needs privileges first: directories, locks, rings.
  std::atomic<int64_t> packets_left{count};
  auto opened = OpenCaptureWorkers(cc, threads, count >= 0 ? &packets_left : nullptr, verbose < 0);
  if (!opened.ok()) {
    LogLine(LogLevel::kError, "rewind capture: %s\n", opened.status().ToString().c_str());
    return opened.status().code() == Status::kInvalidArgument ? 2 : 1;
  }
  std::vector<std::unique_ptr<CaptureWorker>> workers = std::move(*opened);
  // Everything privileged is open: drop privileges if asked.
  if (gid >= 0 && (setgroups(0, nullptr) != 0 || setgid(static_cast<gid_t>(gid)) != 0)) {
    std::perror("rewind capture: dropping to --gid");
    return 1;
  }
  if (uid >= 0 && setuid(static_cast<uid_t>(uid)) != 0) {
    std::perror("rewind capture: dropping to --uid");
    return 1;
  }
  if (verbose >= 0 && !g_stop.load()) {
    LogLine(LogLevel::kInfo, "rewind capture: capturing on %s with %llu thread(s) into %s (uid %d, gid %d)\n",
                 cl->Get("iface").c_str(), (unsigned long long)threads, dir.c_str(), (int)getuid(), (int)getgid());
  }
  // Retention runs beside the writers (as the dropped user) and stops after them.
  std::unique_ptr<RetentionThread> retention_thread;
  if (retention.enabled()) {
    if (verbose >= 0) LogLine(LogLevel::kInfo, "rewind capture: retention: %s\n", retention.Describe().c_str());
    retention_thread = std::make_unique<RetentionThread>(
        dir, retention, std::chrono::seconds(retention_interval), "rewind capture", verbose < 0);
    retention_thread->Start();
  }
  std::vector<Status> results(workers.size());
  std::vector<std::thread> ts;
  std::atomic<int> ended{0};  // workers whose Run() has returned
  for (size_t i = 0; i < workers.size(); ++i) {
    ts.emplace_back([&, i] {
      results[i] = workers[i]->Run(g_stop);
      ended.fetch_add(1);
    });
  }
  // The main thread reports while the workers run; --count stops everything once it is reached, and a
  // thread that ends by itself (the interface went down or away) stops the others: the process exits with
  // an error rather than capture less, or nothing, while it looks alive (rewind run restarts the thread).
  while (!g_stop.load()) {
    if ((count >= 0 && packets_left.load() <= 0) || ended.load() > 0) g_stop.store(true);
    for (int i = 0; i < 10 && !g_stop.load(); ++i) usleep(100000);
    if (verbose > 0) {
      for (const auto& w : workers) std::fputs(w->StatsJson().c_str(), stderr);
    }
  }
  for (auto& t : ts) t.join();
  if (retention_thread) retention_thread->Stop();
  int rc = 0;
  uint64_t packets = 0, kdrops = 0, wdrops = 0;
  for (size_t i = 0; i < workers.size(); ++i) {
    packets += workers[i]->counters().packets;
    kdrops += workers[i]->counters().kernel_drops;
    wdrops += workers[i]->counters().write_drops;
    if (!results[i].ok()) {
      rc = 1;
      LogLine(LogLevel::kError, "rewind capture: thread %zu: %s\n", i, results[i].ToString().c_str());
    }
  }
  if (verbose >= 0) {
    LogLine(LogLevel::kInfo, "rewind capture: stored %llu packets; dropped %llu in the kernel, %llu unwritable\n",
                 (unsigned long long)packets, (unsigned long long)kdrops, (unsigned long long)wdrops);
  }
  return rc;
}

}  // namespace rwd
