// `rewind stats`: files, packets, bytes, time span and index size of a store.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "index/store_summary.h"
#include "web/command_line.h"
#include "web/commands.h"

namespace rwd {
namespace {

const char kStatsUsage[] = "usage: rewind stats --dir DIR [--json]\n";

}  // namespace

int RunStatsCommand(int argc, char** argv) {
  auto cl = CommandLine::Parse(argc, argv, {"dir"}, {"help", "json"}, false);
  if (!cl.ok() || (!cl->Has("help") && !cl->Has("dir"))) {
    std::fprintf(stderr, "rewind stats: %s\n%s", cl.ok() ? "needs --dir" : cl.status().message().c_str(), kStatsUsage);
    return 2;
  }
  if (cl->Has("help")) {
    std::fputs(kStatsUsage, stdout);
    return 0;
  }
  auto sum = SummarizeStore(cl->Get("dir"));
  if (!sum.ok()) {
    std::fprintf(stderr, "rewind stats: %s\n", sum.status().ToString().c_str());
    return 1;
  }
  const StoreSummary& s = *sum;
  for (const auto& p : s.problems) std::fprintf(stderr, "rewind stats: %s\n", p.c_str());
  double index_pct = s.captured_bytes ? 100.0 * s.index_bytes / s.captured_bytes : 0.0;
  std::string first = s.packets ? FormatRfc3339(s.first_ts_ns) : "";
  std::string last = s.packets ? FormatRfc3339(s.last_ts_ns) : "";
  if (cl->Has("json")) {
    std::printf("{\"files\":%" PRIu64 ",\"unindexed_files\":%" PRIu64 ",\"damaged_indexes\":%" PRIu64
                ",\"packets\":%" PRIu64 ",\"captured_bytes\":%" PRIu64 ",\"wire_bytes\":%" PRIu64
                ",\"packet_file_bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 ",\"index_bytes\":%" PRIu64
                ",\"index_percent_of_captured\":%.3f,\"first_packet\":\"%s\",\"last_packet\":\"%s\"}\n",
                s.files, s.unindexed_files, s.damaged_indexes, s.packets, s.captured_bytes, s.wire_bytes,
                s.packet_file_bytes, s.blocks, s.index_bytes, index_pct, first.c_str(), last.c_str());
    return 0;
  }
  std::printf("files:         %" PRIu64 " indexed, %" PRIu64 " without index, %" PRIu64 " with a damaged index\n",
              s.files, s.unindexed_files, s.damaged_indexes);
  std::printf("packets:       %" PRIu64 "\n", s.packets);
  std::printf("bytes:         %" PRIu64 " captured (%" PRIu64 " on the wire), %" PRIu64 " in %" PRIu64
              " blocks of packet files\n", s.captured_bytes, s.wire_bytes, s.packet_file_bytes, s.blocks);
  if (s.packets) std::printf("time span:     %s .. %s\n", first.c_str(), last.c_str());
  std::printf("index size:    %" PRIu64 " bytes (%.2f%% of captured bytes)\n", s.index_bytes, index_pct);
  return 0;
}

}  // namespace rwd
