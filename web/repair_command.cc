// `rewind repair`: rebuilds the index of every packet file that has none (after a crash or kill -9) or a
// damaged one, leaving damaged blocks out and cutting a torn tail; quarantines what cannot be read.
// Writers that are running are left alone.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "index/index_repair.h"
#include "web/command_line.h"
#include "index/store_catalog.h"
#include "web/commands.h"

namespace rwd {

void ReportRepairs(const char* who, const std::vector<RepairResult>& results) {
  for (const RepairResult& r : results) {
    std::fprintf(stderr, "%s: re-indexed %s: %u block(s), %llu packet(s)", who, r.packet_path.c_str(), r.blocks_kept,
                 static_cast<unsigned long long>(r.packets));
    if (r.blocks_damaged) std::fprintf(stderr, "; %u damaged block(s) left out", r.blocks_damaged);
    if (r.blocks_salvaged) std::fprintf(stderr, "; %u block(s) failing their checksum salvaged", r.blocks_salvaged);
    if (r.bytes_dropped) std::fprintf(stderr, "; cut a %llu-byte tail", static_cast<unsigned long long>(r.bytes_dropped));
    if (!r.note.empty()) std::fprintf(stderr, " (%s)", r.note.c_str());
    if (!r.quarantined.empty()) std::fprintf(stderr, "; quarantined: %s", r.quarantined.c_str());
    std::fputc('\n', stderr);
    for (const std::string& n : r.salvage_notes) std::fprintf(stderr, "%s: salvaged %s\n", who, n.c_str());
  }
}

int RunRepairCommand(int argc, char** argv) {
  auto cl = CommandLine::Parse(argc, argv, {"dir"}, {"help"}, false);
  if (!cl.ok() || (!cl->Has("help") && !cl->Has("dir"))) {
    std::fprintf(stderr, "rewind repair: %s\nusage: rewind repair --dir DIR\n",
                 cl.ok() ? "needs --dir" : cl.status().message().c_str());
    return 2;
  }
  if (cl->Has("help")) {
    std::fputs("usage: rewind repair --dir DIR\n", stdout);
    return 0;
  }
  std::string dir = cl->Get("dir");
  std::vector<std::string> skipped;
  auto files = ListStoreFiles(dir, &skipped);
  if (!files.ok()) {
    std::fprintf(stderr, "rewind repair: %s\n", files.status().ToString().c_str());
    return 1;
  }
  for (const std::string& why : skipped) std::fprintf(stderr, "rewind repair: warning: %s\n", why.c_str());
  std::vector<uint32_t> writers;
  for (const StoreFile& f : *files) {
    if (std::find(writers.begin(), writers.end(), f.writer) == writers.end()) writers.push_back(f.writer);
  }
  int rc = 0;
  size_t repaired = 0;
  for (uint32_t w : writers) {
    auto lock = WriterLock::Acquire(dir, w);
    if (!lock.ok()) {
      std::fprintf(stderr, "rewind repair: skipping PKT%u: %s\n", w, lock.status().message().c_str());
      continue;
    }
    std::vector<RepairResult> results;
    Status s = RepairStore(dir, static_cast<int>(w), &results);
    ReportRepairs("rewind repair", results);
    repaired += results.size();
    if (!s.ok()) {
      std::fprintf(stderr, "rewind repair: %s\n", s.ToString().c_str());
      rc = 1;
    }
  }
  std::fprintf(stderr, "rewind repair: %zu file(s) re-indexed\n", repaired);
  // The catalog is rebuilt from what the store holds now.
  CatalogRebuildStats cat;
  Status cs = StoreCatalog::Rebuild(dir, &cat);
  if (!cs.ok()) {
    std::fprintf(stderr, "rewind repair: rebuilding the catalog: %s\n", cs.ToString().c_str());
    rc = 1;
  } else {
    std::fprintf(stderr, "rewind repair: catalog rebuilt: %llu complete file(s), %llu without an index\n",
                 static_cast<unsigned long long>(cat.complete), static_cast<unsigned long long>(cat.writing));
  }
  for (const std::string& p : cat.problems) std::fprintf(stderr, "rewind repair: catalog: %s\n", p.c_str());
  return rc;
}

}  // namespace rwd
