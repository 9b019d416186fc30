// `rewind stats`: files, packets, bytes, time span and index size of a store.
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <string>

#include "index/index_reader.h"
#include "index/store_layout.h"
#include "web/command_line.h"
#include "web/commands.h"

namespace rwd {
namespace {

const char kStatsUsage[] = "usage: rewind stats --dir DIR [--json]\n";

std::string Rfc3339(int64_t ns) {
  time_t secs = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(ns % 1000000000));
  return buf;
}

}  // namespace

int RunStatsCommand(int argc, char** argv) {
  auto cl = CommandLine::Parse(argc, argv, {"dir"}, {"help", "json"});
  if (!cl.ok() || (!cl->Has("help") && !cl->Has("dir"))) {
    std::fprintf(stderr, "rewind stats: %s\n%s", cl.ok() ? "needs --dir" : cl.status().message().c_str(), kStatsUsage);
    return 2;
  }
  if (cl->Has("help")) {
    std::fputs(kStatsUsage, stdout);
    return 0;
  }
  auto files = ListStoreFiles(cl->Get("dir"));
  if (!files.ok()) {
    std::fprintf(stderr, "rewind stats: %s\n", files.status().ToString().c_str());
    return 1;
  }
  uint64_t indexed = 0, unindexed = 0, damaged = 0, packets = 0, captured = 0, wire = 0, file_bytes = 0,
           index_bytes = 0, blocks = 0;
  int64_t min_ts = 0, max_ts = 0;
  for (const StoreFile& f : *files) {
    if (!f.indexed) {
      ++unindexed;
      continue;
    }
    auto idx = IndexReader::Open(f.index_path);
    if (!idx.ok()) {
      ++damaged;
      std::fprintf(stderr, "rewind stats: %s\n", idx.status().ToString().c_str());
      continue;
    }
    const FileSummary& s = (*idx)->summary();
    ++indexed;
    if (s.packets > 0) {
      if (packets == 0 || s.min_ts_ns < min_ts) min_ts = s.min_ts_ns;
      if (packets == 0 || s.max_ts_ns > max_ts) max_ts = s.max_ts_ns;
    }
    packets += s.packets;
    captured += s.captured_bytes;
    wire += s.wire_bytes;
    file_bytes += s.file_bytes;
    blocks += s.blocks;
    index_bytes += (*idx)->table_bytes();
  }
  double index_pct = captured ? 100.0 * index_bytes / captured : 0.0;
  if (cl->Has("json")) {
    std::printf("{\"files\":%" PRIu64 ",\"unindexed_files\":%" PRIu64 ",\"damaged_indexes\":%" PRIu64
                ",\"packets\":%" PRIu64 ",\"captured_bytes\":%" PRIu64 ",\"wire_bytes\":%" PRIu64
                ",\"packet_file_bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 ",\"index_bytes\":%" PRIu64
                ",\"index_percent_of_captured\":%.3f,\"first_packet\":\"%s\",\"last_packet\":\"%s\"}\n",
                indexed, unindexed, damaged, packets, captured, wire, file_bytes, blocks, index_bytes, index_pct,
                packets ? Rfc3339(min_ts).c_str() : "", packets ? Rfc3339(max_ts).c_str() : "");
    return 0;
  }
  std::printf("files:         %" PRIu64 " indexed, %" PRIu64 " without index, %" PRIu64 " with a damaged index\n",
              indexed, unindexed, damaged);
  std::printf("packets:       %" PRIu64 "\n", packets);
  std::printf("bytes:         %" PRIu64 " captured (%" PRIu64 " on the wire), %" PRIu64 " in %" PRIu64
              " blocks of packet files\n", captured, wire, file_bytes, blocks);
  if (packets) std::printf("time span:     %s .. %s\n", Rfc3339(min_ts).c_str(), Rfc3339(max_ts).c_str());
  std::printf("index size:    %" PRIu64 " bytes (%.2f%% of captured bytes)\n", index_bytes, index_pct);
  return 0;
}

}  // namespace rwd
