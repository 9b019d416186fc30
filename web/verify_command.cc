// `rewind verify`: reads the whole store and reports damaged index tables, blocks and files. Reads only;
// `rewind repair` fixes what can be fixed.
#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>

#include "index/index_reader.h"
#include "index/packet_file_reader.h"
#include "index/store_layout.h"
#include "web/command_line.h"
#include "index/store_catalog.h"
#include "web/commands.h"

namespace rwd {

int RunVerifyCommand(int argc, char** argv) {
  auto cl = CommandLine::Parse(argc, argv, {"dir"}, {"help", "q"}, false);
  if (!cl.ok() || (!cl->Has("help") && !cl->Has("dir"))) {
    std::fprintf(stderr, "rewind verify: %s\nusage: rewind verify --dir DIR [-q]\n",
                 cl.ok() ? "needs --dir" : cl.status().message().c_str());
    return 2;
  }
  if (cl->Has("help")) {
    std::fputs("usage: rewind verify --dir DIR [-q]\nExit status: 0 all good, 1 damage found (see stderr).\n", stdout);
    return 0;
  }
  std::vector<std::string> skipped;
  auto files = ListStoreFiles(cl->Get("dir"), &skipped);
  if (!files.ok()) {
    std::fprintf(stderr, "rewind verify: %s\n", files.status().ToString().c_str());
    return 1;
  }
  for (const std::string& why : skipped) std::fprintf(stderr, "rewind verify: warning: %s\n", why.c_str());
  uint64_t checked_files = 0, checked_blocks = 0, bad_blocks = 0, bad_files = 0, unindexed = 0, packets = 0;
  // The catalog must list every packet file, or queries would not see it.
  uint64_t uncatalogued = 0;
  auto catalog = StoreCatalog::Open(cl->Get("dir"));
  if (!catalog.ok()) {
    std::fprintf(stderr, "rewind verify: catalog: %s\n", catalog.status().ToString().c_str());
    ++bad_files;
  } else {
    std::set<std::pair<std::string, uint32_t>> listed;
    std::set<std::pair<std::string, uint32_t>> on_disk;
    for (const StoreFile& f : *files) on_disk.insert({f.name, f.writer});
    for (const CatalogEntry& e : (*catalog)->Entries()) {
      listed.insert({e.name, e.writer});
      // A complete file whose packet file is gone (deleted by hand, a lost PKT directory): its packets are
      // lost, and queries can only say so while they run.
      if (e.complete() && !on_disk.count({e.name, e.writer})) {
        ++bad_files;
        std::fprintf(stderr, "%s: missing: the catalog lists it with %llu packets%s\n", e.packet_path(cl->Get("dir")).c_str(),
                     static_cast<unsigned long long>(e.summary.packets),
                     access(e.index_path(cl->Get("dir")).c_str(), F_OK) == 0 ? " and its index is there" : "");
      }
    }
    for (const StoreFile& f : *files) {
      if (listed.count({f.name, f.writer})) continue;
      ++uncatalogued;
      std::fprintf(stderr, "%s: not in the store catalog (queries do not see it; rewind repair rebuilds the catalog)\n",
                   f.packet_path.c_str());
    }
  }
  for (const StoreFile& f : *files) {
    if (!f.indexed) {
      ++unindexed;
      std::fprintf(stderr, "%s: no index (being written, or left by a crash: rewind repair rebuilds it)\n",
                   f.packet_path.c_str());
      continue;
    }
    ++checked_files;
    auto index = IndexReader::Open(f.index_path);
    Status s = index.ok() ? Status::OK() : index.status();
    std::vector<uint32_t> all;
    if (s.ok()) s = (*index)->LookupRange(std::string(1, '\x03'), std::string(1, '\x7f'), &all);  // reads every list
    if (!s.ok()) {
      ++bad_files;
      std::fprintf(stderr, "%s: damaged index: %s\n", f.index_path.c_str(), s.ToString().c_str());
      continue;
    }
    auto reader = PacketFileReader::Open(f.packet_path);
    if (!reader.ok()) {
      ++bad_files;
      std::fprintf(stderr, "%s: %s\n", f.packet_path.c_str(), reader.status().ToString().c_str());
      continue;
    }
    bool file_bad = false;
    for (size_t b = 0; b < (*index)->blocks().size(); ++b) {
      const BlockEntry& e = (*index)->blocks()[b];
      if (e.packets == 0) continue;
      ++checked_blocks;
      BlockReader br;
      Status bs = (*reader)->ReadBlock(e, &br);
      uint32_t n = 0;
      PacketView p;
      while (bs.ok() && br.Next(&p)) ++n;
      if (bs.ok()) bs = br.status();
      if (bs.ok() && n != e.packets) bs = Status::Corruption("block holds " + std::to_string(n) + " packets, index says " + std::to_string(e.packets));
      if (!bs.ok()) {
        ++bad_blocks;
        file_bad = true;
        std::fprintf(stderr, "%s: block %zu: %s\n", f.packet_path.c_str(), b, bs.message().c_str());
      }
      packets += n;
    }
    bad_files += file_bad;
  }
  if (!cl->Has("q") || bad_blocks || bad_files) {
    std::fprintf(stderr,
                 "rewind verify: %llu file(s), %llu block(s), %llu packet(s) checked; %llu damaged block(s), %llu "
                 "damaged file(s), %llu without index\n",
                 (unsigned long long)checked_files, (unsigned long long)checked_blocks, (unsigned long long)packets,
                 (unsigned long long)bad_blocks, (unsigned long long)bad_files, (unsigned long long)unindexed);
  }
  if (uncatalogued > 0) std::fprintf(stderr, "rewind verify: %llu file(s) missing from the catalog\n", (unsigned long long)uncatalogued);
  return bad_blocks || bad_files || uncatalogued ? 1 : 0;
}

}  // namespace rwd
