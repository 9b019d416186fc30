// `rewind export`: the packets of a time range (and filter) as a series of pcap files of bounded size in a
// directory, named to sort in packet order (see query/pcap_file_splitter.h).
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

#include "query/pcap_file_splitter.h"
#include "query/query_engine.h"
#include "query/query_parser.h"
#include "web/command_line.h"
#include "web/commands.h"
#include "index/store_summary.h"
#include "index/wall_clock.h"

namespace rwd {
namespace {

const char kExportUsage[] =
    "usage: rewind export --dir DIR --out OUTDIR [--after T] [--before T] [--filter EXPR] [flags]\n"
    "  --dir DIR        the store\n"
    "  --out OUTDIR     where the files go (created if missing); files are named\n"
    "                   rewind-<first packet, UTC YYYYMMDDTHHMMSSZ>-<NNNNNN>.pcap and sort in packet order\n"
    "  --after T        packets at or after T   (T: 2026-11-22T10:00:00Z, 2026-11-22, '2h ago', ...)\n"
    "  --before T       packets strictly before T\n"
    "  --filter EXPR    tcpdump filter syntax (as 'rewind query'); default: every packet\n"
    "  --split SIZE     start a new file before one would exceed SIZE bytes (K, M, G, T suffixes;\n"
    "                   default 1G); a packet is never split. Compressed files: SIZE once decompressed\n"
    "  --compress C     none (default), gz (.pcap.gz) or zst (.pcap.zst)\n"
    "  --nanos          nanosecond timestamps (default microseconds)\n"
    "  --pcapng         pcapng files (chosen automatically when link types are mixed: .pcapng)\n"
    "  --exact          tcpdump's exact semantics: host/net/port/proto do not look inside VLAN tags\n"
    "  -q               no summary on stderr\n"
    "Files are written as OUTDIR/.tmp-<name> and renamed when complete; existing files are never\n"
    "overwritten. On an error (disk full) or interrupt the completed files stay and the unfinished one\n"
    "is removed.\n"
    "Exit status: 0 ok, 1 error, 2 usage error or malformed query.\n";

std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true); }

// RFC 3339 UTC with nanoseconds, as the query language reads it. Times before 1970 become 1970: packet
// times are never earlier, so `after`/`before` mean the same.
std::string Rfc3339(int64_t ns) { return FormatRfc3339(ns < 0 ? 0 : ns); }

bool IsBlank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Prints a malformed filter's error, with a caret under the filter text when the message has a position
// inside it (`offset`: where the filter starts in the text the position refers to).
void ReportBadFilter(const std::string& message, const std::string& filter, size_t offset) {
  size_t pos = 0;
  const char* rest = nullptr;
  if (std::sscanf(message.c_str(), "at position %zu", &pos) == 1 && pos >= offset &&
      pos - offset <= filter.size() && (rest = std::strchr(message.c_str(), ':')) != nullptr) {
    pos -= offset;
    std::fprintf(stderr, "rewind export: bad --filter: at position %zu%s\n  %s\n  %s^\n", pos, rest,
                 filter.c_str(), std::string(pos, ' ').c_str());
    return;
  }
  std::fprintf(stderr, "rewind export: bad query: %s\n", message.c_str());
}

int Usage(const std::string& why) {
  std::fprintf(stderr, "rewind export: %s\n%s", why.c_str(), kExportUsage);
  return 2;
}

}  // namespace

int RunExportCommand(int argc, char** argv) {
  auto cl = CommandLine::Parse(argc, argv, {"dir", "out", "after", "before", "filter", "split", "compress"},
                               {"help", "nanos", "pcapng", "exact", "q"});
  if (!cl.ok()) return Usage(cl.status().message());
  if (cl->Has("help")) {
    std::fputs(kExportUsage, stdout);
    return 0;
  }
  if (!cl->Has("dir") || !cl->Has("out")) return Usage("needs --dir and --out");
  if (!cl->positional().empty()) {
    return Usage("unexpected argument '" + cl->positional()[0] + "' (the filter goes in --filter)");
  }
  PcapSplitOptions so;
  so.dir = cl->Get("out");
  if (so.dir.empty()) return Usage("--out is empty");
  if (!ParseSplitSize(cl->Get("split", "1G"), &so.split_bytes)) {
    return Usage("--split wants a positive size like 500M or 1G, got '" + cl->Get("split") + "'");
  }
  if (!ParseSplitCompression(cl->Get("compress", "none"), &so.compression)) {
    return Usage("--compress wants none, gz or zst, got '" + cl->Get("compress") + "'");
  }
  so.nanos = cl->Has("nanos");

  // The time bounds, fixed once (relative times count back from now) and spelled out absolutely.
  int64_t now = WallClockNs();
  int64_t after = 0, before = 0;
  if (cl->Has("after") && !ParseTimeValue(cl->Get("after"), now, &after)) {
    return Usage("--after: invalid time '" + cl->Get("after") + "'");
  }
  if (cl->Has("before") && !ParseTimeValue(cl->Get("before"), now, &before)) {
    return Usage("--before: invalid time '" + cl->Get("before") + "'");
  }
  if (cl->Has("after") && cl->Has("before") && after >= before) {
    return Usage("--after " + Rfc3339(after) + " is not earlier than --before " + Rfc3339(before));
  }
  // The filter must parse on its own, so that wrapping it in parentheses keeps it one group.
  std::string filter = cl->Get("filter");
  if (IsBlank(filter)) filter.clear();
  if (!filter.empty()) {
    ParsedQuery parsed;
    QuerySyntaxError err;
    if (!ParseQuery(filter, now, &parsed, &err)) {
      ReportBadFilter(err.ToString(), filter, 0);
      return 2;
    }
  }
  std::string text = filter.empty() ? "" : "(" + filter + ")";
  if (cl->Has("after")) text += (text.empty() ? "" : " and ") + std::string("after ") + Rfc3339(after);
  if (cl->Has("before")) text += (text.empty() ? "" : " and ") + std::string("before ") + Rfc3339(before);

  QueryOptions qo;
  qo.now_ns = now;
  qo.nanos = so.nanos;
  qo.pcapng = cl->Has("pcapng");
  qo.vlan_fold = !cl->Has("exact");
  qo.cancel = &g_interrupted;
  auto q = Query::Prepare(cl->Get("dir"), text, qo);
  if (!q.ok()) {
    if (q.status().code() == Status::kInvalidArgument) {
      ReportBadFilter(q.status().message(), filter, 1);  // the filter starts after "("
      return 2;
    }
    std::fprintf(stderr, "rewind export: %s\n", q.status().ToString().c_str());
    return 1;
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  PcapSplitStats stats;
  QueryStats qstats;
  Status s = ExportQueryToFiles(q->get(), so, &stats, &qstats);
  for (const auto& w : qstats.warnings) std::fprintf(stderr, "rewind export: warning: %s\n", w.c_str());
  bool quiet = cl->Has("q");
  if (!quiet || !s.ok()) {
    std::string span;
    if (!stats.files.empty()) {
      span = ": " + BaseName(stats.files.front());
      if (stats.files.size() > 1) span += " .. " + BaseName(stats.files.back());
    }
    std::string compressed;
    if (so.compression != SplitCompression::kNone) {
      compressed = " (" + std::to_string(stats.capture_bytes) + " uncompressed)";
    }
    std::fprintf(stderr, "rewind export: %s%zu files, %llu packets, %llu bytes%s in %s%s\n", s.ok() ? "" : "kept ",
                 stats.files.size(), (unsigned long long)stats.packets, (unsigned long long)stats.file_bytes,
                 compressed.c_str(), so.dir.c_str(), span.c_str());
  }
  if (!s.ok()) {
    if (g_interrupted.load()) {
      std::fputs("rewind export: interrupted; the unfinished file was removed\n", stderr);
    } else {
      std::fprintf(stderr, "rewind export: %s; the unfinished file was removed\n", s.ToString().c_str());
    }
    return 1;
  }
  if (stats.files.empty() && !quiet) std::fputs("rewind export: no packets matched; no files written\n", stderr);
  return 0;
}

}  // namespace rwd
