#include "index/live_index.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "capture/packet_file_writer.h"
#include "capture/pcap_importer.h"
#include "gtest/gtest.h"
#include "index/store_catalog.h"
#include "index/store_layout.h"
#include "index/test_frames.h"
#include "query/query_engine.h"

namespace rwd {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSec = 1000000000;
constexpr int64_t kBase = 1700000000 * kSec;

// The packets' timestamps of a query's answer, in answer order.
std::vector<int64_t> Answer(const std::string& store, const std::string& text) {
  QueryOptions o;
  o.now_ns = kBase;
  auto q = Query::Prepare(store, text, o);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  std::vector<int64_t> out;
  if (!q.ok()) return out;
  QueryStats st;
  EXPECT_TRUE((*q)->ForEach([&](const Query::Match& m) { return out.push_back(m.packet->ts_ns), true; }, &st).ok());
  return out;
}

TEST(LiveIndex, PacketsOfAFileBeingWrittenAreQueryableOnceTheirBlockIsOnDisk) {
  char tmpl[] = "/tmp/rwd_live_test_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl, store = dir + "/store", pcap = dir + "/in.pcap";
  constexpr int kPackets = 20000;  // about 4 full blocks of 200-byte frames, and a partial one
  test_frames::WriteUdpPcap(pcap, kPackets, kBase);
  auto lock = WriterLock::Acquire(store, 0);
  ASSERT_TRUE(lock.ok());
  PacketFileWriterOptions o;
  o.store = store;
  PacketFileWriter w(o, std::move(*lock));
  std::string packet_path;
  {
    PcapImporter importer(&w);
    ImportFileStats st;
    ASSERT_TRUE(importer.ImportFile(pcap, &st, nullptr).ok());
    packet_path = w.current_path();
    ASSERT_FALSE(packet_path.empty());
    // The full blocks are handed to the writer; wait until all of them are written and indexed (a smaller
    // wait lets the indexing thread add blocks between the two queries below, and their answers differ).
    std::vector<void*> done;
    ASSERT_TRUE(w.Reap(1 << 30, &done).ok());
    std::vector<int64_t> live = Answer(store, "udp");
    ASSERT_FALSE(live.empty()) << "no packet of the file being written became queryable";
    ASSERT_LT(live.size(), static_cast<size_t>(kPackets)) << "the partial block is not written yet";
    // Exactly the first packets, in order.
    for (size_t i = 0; i < live.size(); ++i) ASSERT_EQ(live[i], kBase + static_cast<int64_t>(i) * (kSec / 1000));
    // Index lookups work on the live index too: port 1003 is every 7th packet.
    std::vector<int64_t> port = Answer(store, "udp port 1003");
    size_t want = 0;
    for (size_t i = 0; i < live.size(); ++i) want += i % 7 == 3;
    EXPECT_EQ(port.size(), want);
    // Another process has no live index: it indexes the blocks on disk, and sees the same.
    UnregisterLiveIndex(packet_path);
    std::vector<int64_t> from_disk = Answer(store, "udp");
    EXPECT_GE(from_disk.size(), live.size());
    EXPECT_LT(from_disk.size(), static_cast<size_t>(kPackets));
    for (size_t i = 0; i < from_disk.size(); ++i) ASSERT_EQ(from_disk[i], kBase + static_cast<int64_t>(i) * (kSec / 1000));
    EXPECT_EQ(Answer(store, "udp port 1003").size(), (from_disk.size() + 3) / 7);
    ASSERT_TRUE(importer.Finish().ok());
  }
  // Complete: everything, once (the catalog lists it as complete, no live index is left).
  EXPECT_EQ(Answer(store, "udp").size(), static_cast<size_t>(kPackets));
  EXPECT_EQ(FindLiveIndex(packet_path), nullptr);
  auto c = StoreCatalog::Open(store);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->Totals().files, 1u);
  EXPECT_EQ((*c)->Totals().writing, 0u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rwd
