#include "query/query_engine.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "capture/packet_file_writer.h"
#include "capture/pcap_importer.h"
#include "gtest/gtest.h"
#include "index/store_layout.h"
#include "index/test_frames.h"
#include "index/wall_clock.h"

namespace rwd {
namespace {

constexpr int64_t kBase = int64_t{1700000000} * 1000000000;

// `copies` complete packet files, each of the same `packets` UDP frames (test_frames::WriteUdpPcap), so
// they overlap in time, in a fresh store; blocks zstd-compressed at `compress_level` (0: raw).
class ImportedStore {
 public:
  ImportedStore(int packets, int copies = 1, int compress_level = 0) {
    char tmpl[] = "/tmp/rwd_engine_test_XXXXXX";
    EXPECT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    test_frames::WriteUdpPcap(dir_ + "/in.pcap", packets, kBase);
    for (int i = 0; i < copies; ++i) {
      auto lock = WriterLock::Acquire(store(), 0);
      EXPECT_TRUE(lock.ok());
      PacketFileWriterOptions o;
      o.store = store();
      o.compress_level = compress_level;
      PacketFileWriter w(o, std::move(*lock));
      PcapImporter importer(&w);
      ImportFileStats st;
      EXPECT_TRUE(importer.ImportFile(dir_ + "/in.pcap", &st, nullptr).ok());
      EXPECT_TRUE(importer.Finish().ok());
    }
  }
  ~ImportedStore() { std::filesystem::remove_all(dir_); }
  std::string store() const { return dir_ + "/store"; }

 private:
  std::string dir_;
};

bool Narrowed(const std::string& store, const std::string& text, size_t max_files, uint64_t max_bytes) {
  QueryOptions o;
  o.now_ns = kBase;
  auto q = Query::Prepare(store, text, o);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return q.ok() && (*q)->NarrowedByIndex(max_files, max_bytes);
}

// 20,000 frames: `udp` has 20,000 candidates, each `port 100x` about 2,860.
TEST(QueryEngine, NarrowedByIndexFollowsTheCandidatesNotTheQueryForm) {
  ImportedStore s(20000);
  constexpr uint64_t kCandidates = 16384;
  EXPECT_TRUE(Narrowed(s.store(), "udp port 1003", 64, kCandidates));
  EXPECT_TRUE(Narrowed(s.store(), "host 10.9.9.9", 64, kCandidates)) << "no file to search";
  EXPECT_FALSE(Narrowed(s.store(), "udp", 64, kCandidates)) << "every packet is a candidate";
  EXPECT_FALSE(Narrowed(s.store(), "port 1000 or port 1001 or port 1002 or port 1003 or port 1004 or port 1005",
                        64, kCandidates)) << "six small lists add up";
  EXPECT_FALSE(Narrowed(s.store(), "udp port 1003", 0, kCandidates)) << "more files than allowed";
  EXPECT_FALSE(Narrowed(s.store(), "", 64, kCandidates)) << "no index use";
  EXPECT_FALSE(Narrowed(s.store(), "not port 1003", 64, kCandidates)) << "no index use";
}

// Each packet's timestamp, port and bytes, in answer order; `stats` (optional) gets the query's counters.
std::vector<std::string> Answer(const std::string& store, const std::string& text, size_t max_block_buffers,
                                QueryStats* stats = nullptr) {
  QueryOptions o;
  o.now_ns = kBase;
  o.max_block_buffers = max_block_buffers;
  auto q = Query::Prepare(store, text, o);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  std::vector<std::string> out;
  if (!q.ok()) return out;
  QueryStats st;
  EXPECT_TRUE((*q)->ForEach([&](const Query::Match& m) {
    out.push_back(std::to_string(m.packet->ts_ns) + " " +
                  std::string(reinterpret_cast<const char*>(m.packet->data), m.packet->caplen));
    return true;
  }, &st).ok());
  if (stats != nullptr) *stats = st;
  return out;
}

// Three files over the same second: with room for one block buffer the merge gives buffers back and reads
// blocks again, and the answer is the same, packet for packet, as with room for all three.
TEST(QueryEngine, AnswersStayExactWhenFewerBlockBuffersThanOverlappingFiles) {
  for (int level : {0, 3}) {
    ImportedStore s(2000, 3, level);
    for (const char* text : {"", "udp port 1003", "udp and port 1003 or port 1005"}) {
      QueryStats all, one;
      std::vector<std::string> want = Answer(s.store(), text, 8, &all);
      std::vector<std::string> got = Answer(s.store(), text, 1, &one);
      EXPECT_EQ(all.blocks_reread, 0u) << text;
      EXPECT_FALSE(want.empty()) << text;
      EXPECT_TRUE(got == want) << "level " << level << " '" << text << "': " << got.size() << " vs " << want.size();
      if (std::string(text).empty()) EXPECT_GT(one.blocks_reread, 0u) << "level " << level;
    }
  }
}

// Whole blocks are read ahead on a helper thread when there is room for two buffers per file. One file of
// eight blocks: every budget gives the answer of reading each block on the query's own thread (budget 1).
TEST(QueryEngine, ReadAheadGivesTheSameAnswerAsReadingInline) {
  for (int level : {0, 3}) {
    ImportedStore s(30000, 1, level);
    for (const char* text : {"", "udp", "udp port 1003 or port 1005"}) {
      QueryStats inline_stats;
      std::vector<std::string> want = Answer(s.store(), text, 1, &inline_stats);
      EXPECT_EQ(want.size(), std::string(text) == "udp port 1003 or port 1005" ? 8571u : 30000u) << text;
      EXPECT_GE(inline_stats.blocks_read, 8u);
      for (size_t budget : {2, 64}) {
        QueryStats st;
        std::vector<std::string> got = Answer(s.store(), text, budget, &st);
        EXPECT_TRUE(got == want) << "level " << level << " budget " << budget << " '" << text << "'";
        EXPECT_EQ(st.blocks_read, inline_stats.blocks_read);
        EXPECT_EQ(st.bytes_read, inline_stats.bytes_read);
        EXPECT_EQ(inline_stats.blocks_read_ahead, 0u);
        EXPECT_EQ(st.blocks_read_ahead, st.blocks_read - 1) << "every block but the first is read ahead";
      }
    }
  }
}

// A time limit that passes while no file has a match pending (a filter the index cannot narrow, matching
// nothing, over many files) ends the answer as cut short, not complete: a cursor stopped by the deadline looks
// exhausted, and the files after it must not be taken for empty.
TEST(QueryEngine, ATimeLimitReachedBetweenMatchesIsNeverAComplete) {
  ImportedStore s(20, 200);
  QueryOptions o;
  o.now_ns = kBase;
  auto q = Query::Prepare(s.store(), "udp[8:2] = 12345", o);  // payload bytes: no index can narrow it
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  // Each file costs its index and a block read: 200 of them take far longer than 300 us.
  (*q)->set_deadline_ns(WallClockNs() + 300000);
  QueryStats st;
  uint64_t n = 0;
  Status r = (*q)->ForEach([&](const Query::Match&) { return ++n, true; }, &st);
  EXPECT_EQ(n, 0u);
  EXPECT_FALSE(r.ok()) << "files examined: " << st.files;
  EXPECT_NE(r.message().find("time limit"), std::string::npos) << r.ToString();
}

// Three files of two blocks over the same second, with room for fewer buffers than three cursors reading
// ahead: cursors give buffers back (waiting for their read-ahead first), and the answer stays exact.
TEST(QueryEngine, ReadAheadGivesBuffersBackUnderATightBudget) {
  for (int level : {0, 3}) {
    ImportedStore s(6000, 3, level);
    std::vector<std::string> want = Answer(s.store(), "udp port 1003", 64);
    EXPECT_EQ(want.size(), 3u * 857);
    for (size_t budget : {1, 3, 5}) {
      QueryStats st;
      std::vector<std::string> got = Answer(s.store(), "udp port 1003", budget, &st);
      EXPECT_TRUE(got == want) << "level " << level << " budget " << budget << ": " << got.size();
      EXPECT_GT(st.blocks_reread, 0u) << "budget " << budget;
    }
  }
}

}  // namespace
}  // namespace rwd
