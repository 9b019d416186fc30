#include "index/store_catalog.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "capture/packet_file_writer.h"
#include "capture/pcap_importer.h"
#include "gtest/gtest.h"
#include "index/index_reader.h"
#include "index/index_repair.h"
#include "index/key_filter.h"
#include "index/retention.h"
#include "index/store_layout.h"
#include "index/test_temp_dir.h"
#include "query/query_engine.h"

namespace rwd {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSec = 1000000000;
constexpr int64_t kBase = 1700000000 * kSec;

// A nanosecond pcap of `n` UDP frames 10.0.0.1:port -> 10.0.0.2:53, one per second from `first_ns`.
void WritePcap(const std::string& path, int64_t first_ns, int n, uint16_t port) {
  std::string f(120, '\0');
  auto* p = reinterpret_cast<uint8_t*>(f.data());
  p[12] = 0x08, p[14] = 0x45, p[17] = 106, p[22] = 64, p[23] = 17;
  p[26] = 10, p[29] = 1, p[30] = 10, p[33] = 2;
  p[34] = port >> 8, p[35] = port & 0xff, p[37] = 53, p[39] = 86;
  std::ofstream out(path, std::ios::binary);
  auto u32 = [&](uint32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { out.write(reinterpret_cast<const char*>(&v), 2); };
  u32(0xa1b23c4d), u16(2), u16(4), u32(0), u32(0), u32(65535), u32(1);
  for (int i = 0; i < n; ++i) {
    int64_t t = first_ns + i * kSec;
    u32(static_cast<uint32_t>(t / kSec)), u32(static_cast<uint32_t>(t % kSec));
    u32(static_cast<uint32_t>(f.size())), u32(static_cast<uint32_t>(f.size()));
    out.write(f.data(), static_cast<std::streamsize>(f.size()));
  }
}

// Imports `files` small captures into writer 0, one packet file each; file i holds 10 packets from port
// 1000 + i starting at kBase + i * 100 s.
void MakeStore(const std::string& dir, const std::string& store, int files) {
  for (int i = 0; i < files; ++i) {
    std::string pcap = dir + "/in" + std::to_string(i) + ".pcap";
    WritePcap(pcap, kBase + i * 100 * kSec, 10, static_cast<uint16_t>(1000 + i));
    auto lock = WriterLock::Acquire(store, 0);
    ASSERT_TRUE(lock.ok()) << lock.status().ToString();
    PacketFileWriterOptions o;
    o.store = store;
    o.max_file_bytes = 1 << 20;
    PacketFileWriter w(o, std::move(*lock));
    PcapImporter importer(&w);
    ImportFileStats st;
    ASSERT_TRUE(importer.ImportFile(pcap, &st, nullptr).ok());
    ASSERT_TRUE(importer.Finish().ok());
  }
}

uint64_t Count(const std::string& store, const std::string& text, QueryStats* stats,
               std::shared_ptr<StoreCatalog> catalog = nullptr) {
  QueryOptions o;
  o.now_ns = kBase;
  o.catalog = std::move(catalog);
  auto q = Query::Prepare(store, text, o);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  if (!q.ok()) return 0;
  uint64_t n = 0;
  EXPECT_TRUE((*q)->ForEach([&](const Query::Match&) { return ++n, true; }, stats).ok());
  return n;
}

TEST(KeyFilter, NoFalseNegativesAndFewFalsePositives) {
  std::vector<uint64_t> in;
  for (uint32_t a = 0; a < 5000; ++a) in.push_back(KeyFilterHash(Ipv4Key(a)));
  std::string f = BuildKeyFilter(in);
  uint32_t blocks = static_cast<uint32_t>(f.size() / kKeyFilterBlockBytes);
  auto may = [&](uint64_t h) {
    uint32_t b = KeyFilterBlockFor(h, blocks);
    return KeyFilterBlockMayContain(reinterpret_cast<const uint8_t*>(f.data()) + b * kKeyFilterBlockBytes, b, h);
  };
  for (uint64_t h : in) ASSERT_TRUE(may(h));
  int fp = 0;
  for (uint32_t a = 100000; a < 110000; ++a) fp += may(KeyFilterHash(Ipv4Key(a)));
  EXPECT_LT(fp, 300);  // ~1% expected at 12 bits per key
  // A damaged block answers "may contain" for everything and says so.
  f[3] ^= 0x10;
  bool damaged = false;
  uint32_t b0 = 0;
  EXPECT_TRUE(KeyFilterBlockMayContain(reinterpret_cast<const uint8_t*>(f.data()), b0, 12345, &damaged));
  EXPECT_TRUE(damaged);
}

TEST(StoreCatalog, WritersRecordEveryFileWithItsIndexSummary) {
  TempDir dir;
  std::string store = dir.path() + "/store";
  MakeStore(dir.path(), store, 4);
  auto c = StoreCatalog::Open(store);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::vector<CatalogEntry> all = (*c)->Entries();
  ASSERT_EQ(all.size(), 4u);
  for (size_t i = 0; i < all.size(); ++i) {
    const CatalogEntry& e = all[i];
    EXPECT_TRUE(e.complete());
    auto index = IndexReader::Open(e.index_path(store));
    ASSERT_TRUE(index.ok());
    EXPECT_EQ(e.summary.Encode(), (*index)->summary().Encode());
    EXPECT_EQ(e.index_bytes, (*index)->table_bytes());
    EXPECT_EQ(e.summary.min_ts_ns, kBase + static_cast<int64_t>(i) * 100 * kSec);
    EXPECT_GT(e.filter_blocks, 0u);
    // The filter proves which file holds which port, read 64 bytes at a time or through windows.
    for (size_t j = 0; j < all.size(); ++j) {
      EXPECT_EQ((*c)->MayContain(e, KeyFilterHash(PortKey(static_cast<uint16_t>(1000 + j)))), i == j) << i << " " << j;
    }
  }
  StoreCatalog::FilterWindows windows;
  for (size_t j = 0; j < all.size(); ++j) {
    for (size_t i = 0; i < all.size(); ++i) {  // every file per key: the window moves on and back
      uint64_t h = KeyFilterHash(PortKey(static_cast<uint16_t>(1000 + j)));
      EXPECT_EQ((*c)->MayContain(all[i], h, &windows), i == j) << i << " " << j;
    }
  }
  CatalogTotals t = (*c)->Totals();
  EXPECT_EQ(t.files, 4u);
  EXPECT_EQ(t.packets, 40u);
  EXPECT_EQ(t.writing, 0u);
  // A time range selects only the files that overlap it.
  std::vector<CatalogEntry> sel = (*c)->Select(kBase + 150 * kSec, kBase + 250 * kSec, nullptr);
  ASSERT_EQ(sel.size(), 1u);
  EXPECT_EQ(sel[0].name, all[2].name);
}

TEST(StoreCatalog, QueriesOpenOnlyFilesTheFilterAllows) {
  TempDir dir;
  std::string store = dir.path() + "/store";
  MakeStore(dir.path(), store, 5);
  QueryStats st;
  EXPECT_EQ(Count(store, "port 1003", &st), 10u);
  EXPECT_EQ(st.files, 5u);
  EXPECT_EQ(st.files_in_range, 5u);
  EXPECT_EQ(st.files_searched, 1u);
  EXPECT_EQ(Count(store, "port 1003 or port 1001", &st), 20u);
  EXPECT_EQ(st.files_searched, 2u);
  EXPECT_EQ(Count(store, "portrange 1001-1002 and host 10.0.0.1", &st), 20u);
  EXPECT_EQ(st.files_searched, 2u);
  EXPECT_EQ(Count(store, "port 999", &st), 0u);
  EXPECT_EQ(st.files_searched, 0u);
  // Not indexable: every file in range is read, and the answer is the same as without any filter.
  EXPECT_EQ(Count(store, "not port 1003", &st), 40u);
  EXPECT_EQ(st.files_searched, 5u);
  // A one-second window reads one file.
  EXPECT_EQ(Count(store, "after 2023-11-14T22:16:40Z and before 2023-11-14T22:16:41Z", &st), 1u);
  EXPECT_EQ(st.files_searched, 1u);
}

TEST(StoreCatalog, RebuiltFromIndexTablesWhenMissing) {
  TempDir dir;
  std::string store = dir.path() + "/store";
  MakeStore(dir.path(), store, 3);
  auto before = StoreCatalog::Open(store);
  ASSERT_TRUE(before.ok());
  std::vector<CatalogEntry> a = (*before)->Entries();
  ASSERT_EQ(unlink((store + "/CATALOG").c_str()), 0);
  auto after = StoreCatalog::Open(store);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  std::vector<CatalogEntry> b = (*after)->Entries();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].summary.Encode(), b[i].summary.Encode());
    EXPECT_TRUE(b[i].complete());
    EXPECT_TRUE((*after)->MayContain(b[i], KeyFilterHash(PortKey(static_cast<uint16_t>(1000 + i)))));
  }
  // A packet file without an index is listed as not complete.
  std::string orphan = PacketDirectory(store, 0) + "/" + FileNameForTime(kBase);
  std::ofstream(orphan) << "x";
  CatalogRebuildStats rs;
  ASSERT_TRUE(StoreCatalog::Rebuild(store, &rs).ok());
  EXPECT_EQ(rs.complete, 3u);
  EXPECT_EQ(rs.writing, 1u);
}

// A rebuild (rewind repair) after retention removed a file: the filters are packed anew, at other offsets.
// Neither a rebuild that fails before its journal is in place (a full disk, kill -9), nor a catalog a server
// opened before the rebuild, may then read another file's filter for a file: that hides the file's packets.
TEST(StoreCatalog, RebuildNeverLetsAnOldJournalReadAnotherFilesFilter) {
  TempDir dir;
  std::string store = dir.path() + "/store";
  MakeStore(dir.path(), store, 6);
  RetentionPolicy p;
  p.max_files_per_writer = 5;
  PruneResult pr;
  ASSERT_TRUE(PruneStore(store, p, kBase, &pr).ok());
  ASSERT_EQ(pr.files, 1u);
  QueryStats st;
  for (int i = 1; i < 6; ++i) ASSERT_EQ(Count(store, "port " + std::to_string(1000 + i), &st), 10u) << i;
  auto before = StoreCatalog::Open(store);  // a server's catalog, opened before the rebuilds
  ASSERT_TRUE(before.ok());
  std::vector<CatalogEntry> entries = (*before)->Entries();
  ASSERT_EQ(entries.size(), 5u);
  auto all_found = [&](const char* when) {
    for (int i = 1; i < 6; ++i) {
      EXPECT_EQ(Count(store, "port " + std::to_string(1000 + i), &st), 10u) << "port " << 1000 + i << " " << when;
    }
    for (const CatalogEntry& e : entries) {
      int i = static_cast<int>((e.summary.min_ts_ns - kBase) / (100 * kSec));
      EXPECT_TRUE((*before)->MayContain(e, KeyFilterHash(PortKey(static_cast<uint16_t>(1000 + i)))))
          << "file " << i << " hidden from a catalog opened before the rebuild, " << when;
    }
  };
  // The new journal cannot be put in place (a directory in the way of its temporary file).
  ASSERT_EQ(mkdir((store + "/CATALOG.tmp").c_str(), 0755), 0);
  CatalogRebuildStats rs;
  EXPECT_FALSE(StoreCatalog::Rebuild(store, &rs).ok());
  ASSERT_EQ(rmdir((store + "/CATALOG.tmp").c_str()), 0);
  all_found("after a failed rebuild");
  ASSERT_TRUE(StoreCatalog::Rebuild(store, &rs).ok());
  EXPECT_EQ(rs.complete, 5u);
  all_found("after a rebuild");
}

// A name a writer recorded ahead ("writing", no file yet) survives a rebuild, so the file it then writes is
// listed: seen by queries, and re-indexed by start-up repair after a crash.
TEST(StoreCatalog, RebuildKeepsANameRecordedAhead) {
  TempDir dir;
  std::string store = dir.path() + "/store";
  MakeStore(dir.path(), store, 2);
  std::string ahead = FileNameForTime(kBase + 5000 * kSec);
  ASSERT_TRUE(RecordFileWriting(store, 0, ahead).ok());
  CatalogRebuildStats rs;
  ASSERT_TRUE(StoreCatalog::Rebuild(store, &rs).ok());
  auto c = StoreCatalog::Open(store);
  ASSERT_TRUE(c.ok());
  std::vector<CatalogEntry> all = (*c)->Entries();
  ASSERT_EQ(all.size(), 3u) << "the name recorded ahead is listed";
  // The writer writes that file (a copy of file 1 here) and is killed before indexing it.
  auto file1 = std::find_if(all.begin(), all.end(), [](const CatalogEntry& e) { return e.summary.min_ts_ns == kBase + 100 * kSec; });
  ASSERT_NE(file1, all.end());
  fs::copy_file(file1->packet_path(store), PacketDirectory(store, 0) + "/" + ahead);
  std::vector<RepairResult> results;
  ASSERT_TRUE(RepairUnindexedFiles(store, 0, &results).ok());
  EXPECT_EQ(results.size(), 1u) << "start-up repair indexes the file the crash left";
  QueryStats st;
  EXPECT_EQ(Count(store, "port 1001", &st), 20u) << "both copies of port 1001's packets";
}

// An index table that cannot be opened does not drop its file from a rebuilt catalog (its packets would
// vanish from answers without a warning): the file is listed as being written, and the problem is said.
TEST(StoreCatalog, RebuildListsAFileWhoseIndexCannotBeOpened) {
  TempDir dir;
  std::string store = dir.path() + "/store";
  MakeStore(dir.path(), store, 2);
  auto c0 = StoreCatalog::Open(store);
  ASSERT_TRUE(c0.ok());
  std::string index_path = (*c0)->Entries()[0].index_path(store);
  std::ofstream(index_path, std::ios::trunc) << "not a table";
  CatalogRebuildStats rs;
  ASSERT_TRUE(StoreCatalog::Rebuild(store, &rs).ok());
  EXPECT_EQ(rs.complete, 1u);
  EXPECT_EQ(rs.writing, 1u);
  EXPECT_EQ(rs.problems.size(), 1u);
  auto c = StoreCatalog::Open(store);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->Entries().size(), 2u);
  QueryStats st;
  EXPECT_EQ(Count(store, "port 1000", &st), 10u) << "read from the packet file";
}

TEST(StoreCatalog, ReadersSkipTornRecordsAndSeeLaterAppends) {
  TempDir dir;
  std::string store = dir.path() + "/store";
  MakeStore(dir.path(), store, 2);
  auto reader = StoreCatalog::Open(store);
  ASSERT_TRUE(reader.ok());
  ASSERT_EQ((*reader)->Entries().size(), 2u);
  {
    // A writer killed in the middle of a record leaves part of it.
    int fd = open((store + "/CATALOG").c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    const char torn[] = "RCT1\x40\x00\x00\x00garbage";
    ASSERT_EQ(write(fd, torn, sizeof(torn) - 1), static_cast<ssize_t>(sizeof(torn) - 1));
    close(fd);
  }
  ASSERT_TRUE((*reader)->Refresh().ok());
  EXPECT_EQ((*reader)->Entries().size(), 2u);
  // Appends after the torn record are found (by this reader, tailing, and by a new one).
  ASSERT_TRUE(RecordFileWriting(store, 0, FileNameForTime(kBase + 5)).ok());
  std::ofstream(PacketDirectory(store, 0) + "/" + FileNameForTime(kBase + 5)) << "x";  // counted once it exists
  ASSERT_TRUE((*reader)->Refresh().ok());
  EXPECT_EQ((*reader)->Entries().size(), 3u);
  auto fresh = StoreCatalog::Open(store);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ((*fresh)->Entries().size(), 3u);
  EXPECT_EQ((*fresh)->Totals().writing, 1u);
}

TEST(StoreCatalog, DamagedFiltersNeverHideAFile) {
  TempDir dir;
  std::string store = dir.path() + "/store";
  MakeStore(dir.path(), store, 2);
  {
    std::fstream f(IndexDirectory(store, 0) + "/FILTERS", std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    f.seekp(5);
    f.put('\x7f');
  }
  QueryStats st;
  EXPECT_EQ(Count(store, "port 1000", &st), 10u);
  EXPECT_EQ(Count(store, "port 1001", &st), 10u);
}

// Select() against a brute-force pass over Entries(), for a catalog that followed the records one by one
// (the time index updated in place) and one opened afterwards (the time index sorted once): files out of time
// order, spanning long and short times, without packets, being written, completed, replaced and removed.
TEST(StoreCatalog, SelectAgreesWithAFullPassAsEntriesComeAndGo) {
  // Only the journal is written here, and it is synced per record: tmpfs keeps that fast.
  char buf[] = "/dev/shm/rwd_catalog_select_XXXXXX";
  std::string store = mkdtemp(buf) ? buf : "";
  if (store.empty()) GTEST_SKIP() << "no /dev/shm";
  std::srand(7);
  auto rnd = [](int64_t n) { return static_cast<int64_t>(std::rand()) % n; };
  auto followed = StoreCatalog::Open(store);
  ASSERT_TRUE(followed.ok());
  std::vector<std::string> names;
  auto check = [&](StoreCatalog& c) {
    std::vector<CatalogEntry> all = c.Entries();
    for (int q = 0; q < 40; ++q) {
      int64_t lo = kBase + rnd(20000) * kSec, hi = lo + rnd(q % 4 == 0 ? 20000 : 300) * kSec;
      if (q == 0) lo = INT64_MIN, hi = INT64_MAX;
      std::vector<std::string> want, got;
      for (const CatalogEntry& e : all) {  // Entries() is in (name, writer) order, as Select() must answer
        const FileSummary& s = e.summary;
        if (!e.complete() || (s.packets > 0 && s.max_ts_ns >= lo && s.min_ts_ns < hi)) want.push_back(e.name);
      }
      for (const CatalogEntry& e : c.Select(lo, hi, nullptr)) got.push_back(e.name);
      ASSERT_EQ(got, want) << "[" << lo << ", " << hi << ")";
    }
  };
  for (int step = 0; step < 600; ++step) {
    int op = static_cast<int>(rnd(10));
    if (op < 6 || names.empty()) {  // a new file, complete or being written
      std::string name = FileNameForTime(kBase + step * kSec);
      names.push_back(name);
      if (op == 0) {
        ASSERT_TRUE(RecordFileWriting(store, 0, name).ok());
        continue;
      }
      FileSummary s;
      s.packets = op == 1 ? 0 : 5;
      s.min_ts_ns = kBase + rnd(20000) * kSec;  // not in name order
      s.max_ts_ns = s.min_ts_ns + (op == 2 ? rnd(8000) : rnd(120)) * kSec;  // op 2: often beyond an hour
      s.linktypes = {1};
      ASSERT_TRUE(RecordFileComplete(store, 0, name, s, 100, "", false).ok());
    } else if (op < 8) {  // an existing file completes again with another span
      FileSummary s;
      s.packets = 3;
      s.min_ts_ns = kBase + rnd(20000) * kSec;
      s.max_ts_ns = s.min_ts_ns + rnd(60) * kSec;
      ASSERT_TRUE(RecordFileComplete(store, 0, names[static_cast<size_t>(rnd(static_cast<int64_t>(names.size())))],
                                     s, 100, "", false).ok());
    } else {  // removed
      size_t i = static_cast<size_t>(rnd(static_cast<int64_t>(names.size())));
      CatalogEntry e;
      e.name = names[i];
      ASSERT_TRUE(RecordFileRemoved(store, e).ok());
      names.erase(names.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (step % 25 == 0) {
      ASSERT_TRUE((*followed)->Refresh().ok());
      check(**followed);
    }
  }
  ASSERT_TRUE((*followed)->Refresh().ok());
  check(**followed);
  auto opened = StoreCatalog::Open(store);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ((*opened)->Entries().size(), (*followed)->Entries().size());
  check(**opened);
  fs::remove_all(store);
}

TEST(StoreCatalog, RangeReadFromCheckpointAgreesWithAFullRead) {
  char buf[] = "/dev/shm/rwd_catalog_ckpt_XXXXXX";
  std::string store = mkdtemp(buf) ? buf : "";
  if (store.empty()) GTEST_SKIP() << "no /dev/shm";
  std::srand(11);
  auto rnd = [](int64_t n) { return static_cast<int64_t>(std::rand()) % n; };
  std::vector<std::string> names;
  std::map<std::string, CatalogEntry> live;  // what a remover would hold
  bool recompleted = false;                  // since the last checkpoint (CompleteFiles may then differ)
  auto check = [&] {
    auto full = StoreCatalog::Open(store);
    ASSERT_TRUE(full.ok());
    for (int q = 0; q < 30; ++q) {
      int64_t lo = kBase + rnd(20000) * kSec, hi = lo + rnd(q % 4 == 0 ? 20000 : 300) * kSec;
      if (q == 0) lo = INT64_MIN, hi = INT64_MAX;
      auto ranged = StoreCatalog::OpenRange(store, lo, hi);
      ASSERT_TRUE(ranged.ok()) << ranged.status().ToString();
      std::vector<std::string> want, got;
      for (const CatalogEntry& e : (*full)->Select(lo, hi, nullptr)) want.push_back(e.name + (e.complete() ? "+" : "-"));
      for (const CatalogEntry& e : (*ranged)->Select(lo, hi, nullptr)) got.push_back(e.name + (e.complete() ? "+" : "-"));
      ASSERT_EQ(got, want) << "[" << lo << ", " << hi << ")";
      EXPECT_EQ((*ranged)->Linktypes(), (*full)->Linktypes());
      if (!recompleted) EXPECT_EQ((*ranged)->CompleteFiles(), (*full)->CompleteFiles());
      // Loading only what a query keeps (by time here, so that a file completed again may pass where its
      // checkpointed version did not) selects what a full read's Select() with the same predicate does.
      auto keep = [](const CatalogEntry& e) { return (e.summary.min_ts_ns / kSec) % 3 != 0; };
      auto kept = StoreCatalog::OpenRange(store, lo, hi, [&](const StoreCatalog&, const CatalogEntry& e) { return keep(e); });
      ASSERT_TRUE(kept.ok()) << kept.status().ToString();
      want.clear(), got.clear();
      for (const CatalogEntry& e : (*full)->Select(lo, hi, keep)) want.push_back(e.name + (e.complete() ? "+" : "-"));
      for (const CatalogEntry& e : (*kept)->Select(lo, hi, keep)) got.push_back(e.name + (e.complete() ? "+" : "-"));
      ASSERT_EQ(got, want) << "kept, [" << lo << ", " << hi << ")";
      if (!recompleted) EXPECT_EQ((*kept)->CompleteFiles(), (*full)->CompleteFiles());
    }
  };
  for (int step = 0; step < 900; ++step) {
    int op = static_cast<int>(rnd(10));
    if (op < 6 || names.empty()) {
      std::string name = FileNameForTime(kBase + step * kSec);
      names.push_back(name);
      CatalogEntry e;
      e.name = name;
      if (op == 0) {
        ASSERT_TRUE(RecordFileWriting(store, 0, name).ok());
      } else {
        e.state = CatalogEntry::State::kComplete;
        e.summary.packets = op == 1 ? 0 : 5;
        e.summary.min_ts_ns = kBase + rnd(20000) * kSec;
        e.summary.max_ts_ns = e.summary.min_ts_ns + (op == 2 ? rnd(8000) : rnd(120)) * kSec;
        e.summary.linktypes = {static_cast<uint32_t>(1 + rnd(3) * 100)};
        ASSERT_TRUE(RecordFileComplete(store, 0, name, e.summary, 100, "", false).ok());
      }
      live[name] = e;
    } else if (op < 7) {  // completes again with another span
      CatalogEntry& e = live[names[static_cast<size_t>(rnd(static_cast<int64_t>(names.size())))]];
      recompleted = recompleted || e.complete();
      e.state = CatalogEntry::State::kComplete;
      e.summary.packets = 3;
      e.summary.min_ts_ns = kBase + rnd(20000) * kSec;
      e.summary.max_ts_ns = e.summary.min_ts_ns + rnd(60) * kSec;
      e.summary.linktypes = {1};
      ASSERT_TRUE(RecordFileComplete(store, 0, e.name, e.summary, 100, "", false).ok());
    } else {  // removed, as retention does it: with the entry it read
      size_t i = static_cast<size_t>(rnd(static_cast<int64_t>(names.size())));
      ASSERT_TRUE(RecordFileRemoved(store, live[names[i]]).ok());
      live.erase(names[i]);
      names.erase(names.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (step % 150 == 0) {  // a checkpoint now and then, as the server writes them
      auto full = StoreCatalog::Open(store);
      ASSERT_TRUE(full.ok());
      ASSERT_TRUE((*full)->WriteCheckpoint().ok());
      recompleted = false;
    }
    if (step % 50 == 25) check();
  }
  check();

  // A damaged checkpoint is never trusted: the read falls back to the journal.
  auto full = StoreCatalog::Open(store);
  ASSERT_TRUE(full.ok());
  ASSERT_TRUE((*full)->WriteCheckpoint().ok());
  std::string path = store + "/CATALOG.checkpoint";
  uintmax_t size = fs::file_size(path);
  for (uintmax_t at : {uintmax_t{20}, size / 3, size / 2, size - 8}) {
    ASSERT_TRUE((*full)->WriteCheckpoint().ok());
    int fd = open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    char c = 0;
    ASSERT_EQ(pread(fd, &c, 1, static_cast<off_t>(at)), 1);
    c ^= 0x20;
    ASSERT_EQ(pwrite(fd, &c, 1, static_cast<off_t>(at)), 1);
    close(fd);
    recompleted = false;
    check();
  }
  // Compaction replaces the journal and removes the checkpoint with it.
  ASSERT_TRUE((*full)->WriteCheckpoint().ok());
  for (size_t i = 0; i + 1 < names.size(); i += 2) ASSERT_TRUE(RecordFileRemoved(store, live[names[i]]).ok());
  for (int i = 0; i < 2100; ++i) {  // history enough for compaction to be worth it
    CatalogEntry gone;
    gone.name = FileNameForTime(kBase - (i + 1) * kSec);
    ASSERT_TRUE(RecordFileWriting(store, 0, gone.name).ok());
    ASSERT_TRUE(RecordFileRemoved(store, gone).ok());
  }
  ASSERT_TRUE(StoreCatalog::CompactIfWorthIt(store).ok());
  EXPECT_FALSE(fs::exists(path));
  check();
  fs::remove_all(store);
}

// A whole-store lookup loads only the entries its `keep` passes, yet removals and re-completions after the
// checkpoint of entries it would not keep still count: the file totals stay those of a full read.
TEST(StoreCatalog, KeptLoadStillAppliesTheJournalAfterTheCheckpoint) {
  char buf[] = "/dev/shm/rwd_catalog_kept_XXXXXX";
  std::string store = mkdtemp(buf) ? buf : "";
  if (store.empty()) GTEST_SKIP() << "no /dev/shm";
  std::vector<CatalogEntry> files;
  for (int i = 0; i < 600; ++i) {
    CatalogEntry e;
    e.name = FileNameForTime(kBase + i * 60 * kSec);
    e.state = CatalogEntry::State::kComplete;
    e.summary.packets = 1;
    e.summary.min_ts_ns = kBase + i * 60 * kSec;
    e.summary.max_ts_ns = e.summary.min_ts_ns + 59 * kSec;
    e.summary.linktypes = {1};
    ASSERT_TRUE(RecordFileComplete(store, 0, e.name, e.summary, 100, "", false).ok());
    files.push_back(e);
  }
  auto full = StoreCatalog::Open(store);
  ASSERT_TRUE(full.ok());
  ASSERT_TRUE((*full)->WriteCheckpoint().ok());
  // Keeps one file in ten (by position in time); the journal then removes files 3 and 5 (not kept) and
  // 10 (kept), and completes file 7 again with file 20's span (now kept).
  auto keep = [](const CatalogEntry& e) { return (e.summary.min_ts_ns - kBase) / (60 * kSec) % 10 == 0; };
  for (int i : {3, 5, 10}) ASSERT_TRUE(RecordFileRemoved(store, files[i]).ok());
  FileSummary moved = files[20].summary;
  ASSERT_TRUE(RecordFileComplete(store, 0, files[7].name, moved, 100, "", false).ok());
  ASSERT_TRUE((*full)->Refresh().ok());
  auto kept = StoreCatalog::OpenRange(store, INT64_MIN, INT64_MAX,
                                      [&](const StoreCatalog&, const CatalogEntry& e) { return keep(e); });
  ASSERT_TRUE(kept.ok());
  std::vector<std::string> want, got;
  for (const CatalogEntry& e : (*full)->Select(INT64_MIN, INT64_MAX, keep)) want.push_back(e.name);
  for (const CatalogEntry& e : (*kept)->Select(INT64_MIN, INT64_MAX, keep)) got.push_back(e.name);
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.size(), 60u);  // 60 kept, file 10 removed, file 7 now kept
  EXPECT_EQ((*full)->CompleteFiles(), 597u);
  EXPECT_EQ((*kept)->CompleteFiles(), 597u);
  EXPECT_LT((*kept)->Entries().size(), 100u) << "the rest were never loaded";
  fs::remove_all(store);
}

TEST(StoreCatalog, RangeReadLoadsOnlyTheChunksOfItsRange) {
  char buf[] = "/dev/shm/rwd_catalog_chunks_XXXXXX";
  std::string store = mkdtemp(buf) ? buf : "";
  if (store.empty()) GTEST_SKIP() << "no /dev/shm";
  // 3,000 one-minute files in time order, as a capture writes them, then a checkpoint, then 10 more files.
  auto add = [&](int i) {
    FileSummary s;
    s.packets = 1;
    s.min_ts_ns = kBase + i * 60 * kSec;
    s.max_ts_ns = s.min_ts_ns + 59 * kSec;
    s.linktypes = {1};
    ASSERT_TRUE(RecordFileComplete(store, 0, FileNameForTime(s.min_ts_ns), s, 100, "", false).ok());
  };
  for (int i = 0; i < 3000; ++i) add(i);
  auto full = StoreCatalog::Open(store);
  ASSERT_TRUE(full.ok());
  ASSERT_TRUE((*full)->WriteCheckpoint().ok());
  for (int i = 3000; i < 3010; ++i) add(i);
  ASSERT_TRUE((*full)->Refresh().ok());
  for (int i : {0, 1234, 2999, 3005}) {
    int64_t lo = kBase + i * 60 * kSec + 30 * kSec, hi = lo + 60 * kSec;
    auto ranged = StoreCatalog::OpenRange(store, lo, hi);
    ASSERT_TRUE(ranged.ok());
    std::vector<std::string> want, got;
    for (const CatalogEntry& e : (*full)->Select(lo, hi, nullptr)) want.push_back(e.name);
    for (const CatalogEntry& e : (*ranged)->Select(lo, hi, nullptr)) got.push_back(e.name);
    EXPECT_EQ(got.size(), 2u);
    EXPECT_EQ(got, want);
    EXPECT_EQ((*ranged)->CompleteFiles(), 3010u);
    // At most the chunks around the range (256 entries each) and the 10 files after the checkpoint.
    EXPECT_LE((*ranged)->Entries().size(), 2 * 256 + 10u) << i;
  }
  fs::remove_all(store);
}

TEST(StoreCatalog, RetentionRemovesEntriesAndAServerSideCatalogFollows) {
  TempDir dir;
  std::string store = dir.path() + "/store";
  MakeStore(dir.path(), store, 4);
  auto shared = StoreCatalog::Open(store);
  ASSERT_TRUE(shared.ok());
  QueryStats st;
  EXPECT_EQ(Count(store, "udp", &st, *shared), 40u);
  RetentionPolicy p;
  p.max_files_per_writer = 1;
  PruneResult r;
  ASSERT_TRUE(PruneStore(store, p, kBase, &r).ok());
  EXPECT_EQ(r.files, 3u);
  EXPECT_EQ(Count(store, "udp", &st, *shared), 10u);
  EXPECT_FALSE(st.cut_short);
  EXPECT_EQ(st.files, 1u);
  EXPECT_EQ((*shared)->Entries().size(), 1u);
  // The running counts follow removals as a full pass does.
  EXPECT_EQ((*shared)->CompleteFiles(), 1u);
  EXPECT_EQ((*shared)->CompleteFiles(), (*shared)->Totals().files);
  EXPECT_EQ((*shared)->Linktypes(), std::vector<uint32_t>{1});
  EXPECT_EQ((*shared)->Linktypes(), (*shared)->Totals().linktypes);
  // New files appear in the shared catalog without reopening it.
  ASSERT_TRUE(RecordFileWriting(store, 0, FileNameForTime(kBase)).ok());
  ASSERT_TRUE((*shared)->Refresh().ok());
  EXPECT_EQ((*shared)->Totals().writing, 0u);  // listed, but its packet file was never created
  std::ofstream(PacketDirectory(store, 0) + "/" + FileNameForTime(kBase)) << "x";
  EXPECT_EQ((*shared)->Totals().writing, 1u);
  EXPECT_EQ((*shared)->CompleteFiles(), 1u);  // a file being written is not counted
  // Once retention has removed every file, no link type is left.
  p.max_files_per_writer = 0;
  p.max_age_ns = kSec;
  ASSERT_TRUE(PruneStore(store, p, kBase + 10000 * kSec, &r).ok());
  ASSERT_TRUE((*shared)->Refresh().ok());
  EXPECT_EQ((*shared)->CompleteFiles(), 0u);
  EXPECT_TRUE((*shared)->Linktypes().empty());
}

// Retention running while a writer completes a file (its index table is in place, its catalog record not
// yet: an import of old packets under an age limit) leaves that file alone: removed, the record that follows
// would list it complete again, gone (every query over its time would then be "cut short").
TEST(StoreCatalog, RetentionLeavesAFileBeingCompleted) {
  TempDir dir;
  std::string store = dir.path() + "/store";
  MakeStore(dir.path(), store, 2);
  auto c0 = StoreCatalog::Open(store);
  ASSERT_TRUE(c0.ok());
  std::vector<CatalogEntry> all = (*c0)->Entries();
  std::string name = FileNameForTime(kBase + 999 * kSec);
  ASSERT_TRUE(RecordFileWriting(store, 0, name).ok());
  fs::copy_file(all[1].packet_path(store), PacketDirectory(store, 0) + "/" + name);
  fs::copy_file(all[1].index_path(store), IndexDirectory(store, 0) + "/" + name);  // its table is in place
  auto idx = IndexReader::Open(all[1].index_path(store));
  ASSERT_TRUE(idx.ok());
  RetentionPolicy p;
  p.max_age_ns = 10 * kSec;
  PruneResult pr;
  ASSERT_TRUE(PruneStore(store, p, kBase + 100000 * kSec, &pr).ok());
  EXPECT_EQ(pr.files, 2u) << "the two complete files";
  ASSERT_TRUE(RecordFileComplete(store, 0, name, (*idx)->summary(), (*idx)->table_bytes(), "", false).ok());
  auto c = StoreCatalog::Open(store);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ((*c)->Entries().size(), 1u);
  EXPECT_TRUE(fs::exists((*c)->Entries()[0].packet_path(store))) << "the catalog lists a file that is gone";
  QueryStats st;
  EXPECT_EQ(Count(store, "udp", &st), 10u);
  EXPECT_FALSE(st.cut_short);
}

// Retention that cannot remove a file (here its index table is immutable, as a directory the process may not
// write or a read-only file system refuse it) leaves it listed: its packets stay in the answers.
TEST(StoreCatalog, RetentionThatCannotRemoveAFileKeepsItListed) {
  TempDir dir;
  std::string store = dir.path() + "/store";
  MakeStore(dir.path(), store, 2);
  auto c0 = StoreCatalog::Open(store);
  ASSERT_TRUE(c0.ok());
  std::string index_path = (*c0)->Entries()[0].index_path(store);
  int fd = open(index_path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  int flags = 0;
  bool immutable = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags |= FS_IMMUTABLE_FL, ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0);
  if (!immutable) {
    close(fd);
    GTEST_SKIP() << "cannot make a file immutable here (not root, or the file system cannot)";
  }
  RetentionPolicy p;
  p.max_files_per_writer = 1;
  PruneResult pr;
  Status s = PruneStore(store, p, kBase, &pr);
  flags &= ~FS_IMMUTABLE_FL;
  ioctl(fd, FS_IOC_SETFLAGS, &flags);
  close(fd);
  EXPECT_FALSE(s.ok() && pr.problems.empty()) << "the failed removal is reported";
  QueryStats st;
  EXPECT_EQ(Count(store, "udp", &st), 20u) << "both files still answer";
  EXPECT_FALSE(st.cut_short);
  auto c = StoreCatalog::Open(store);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->CompleteFiles(), 2u);
}

// Retention removes files oldest first, a few out of turn, for a year: the FILTERS file must give back the
// pages of removed filters, including those each shares with its neighbours, and keep the live ones intact.
TEST(StoreCatalog, RemovedFilesGiveTheirFilterPagesBack) {
  char buf[] = "/dev/shm/rwd_catalog_filters_XXXXXX";  // the journal is synced per record: tmpfs keeps it fast
  std::string store = mkdtemp(buf) ? buf : "";
  if (store.empty()) GTEST_SKIP() << "no /dev/shm";
  fs::create_directories(IndexDirectory(store, 0));
  std::string path = IndexDirectory(store, 0) + "/FILTERS";
  constexpr int kFiles = 300;
  std::map<std::string, std::string> filters;  // name -> the filter recorded for it
  for (int i = 0; i < kFiles; ++i) {
    std::vector<uint64_t> hashes;
    for (int k = 0; k < 1 + (i * 7) % 200; ++k) hashes.push_back(KeyFilterHash(std::to_string(i * 1000 + k)));
    std::string name = FileNameForTime(kBase + i * kSec);
    filters[name] = BuildKeyFilter(hashes);  // a few 64-byte blocks: most filters share their pages
    FileSummary summary;
    summary.packets = 1;
    summary.min_ts_ns = summary.max_ts_ns = kBase + i * kSec;
    ASSERT_TRUE(RecordFileComplete(store, 0, name, summary, 100, filters[name], false).ok());
  }
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  const uint64_t written = static_cast<uint64_t>(st.st_size);
  ASSERT_GT(written, 4u * 4096);
  {
    int fd = open((path + ".probe").c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    bool can_punch = fallocate(fd, 0, 0, 8192) == 0 && fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0;
    close(fd);
    unlink((path + ".probe").c_str());
    if (!can_punch) {
      fs::remove_all(store);
      GTEST_SKIP() << "no hole punching on /dev/shm";
    }
  }
  auto catalog = StoreCatalog::Open(store);
  ASSERT_TRUE(catalog.ok());
  std::vector<CatalogEntry> entries = (*catalog)->Entries();
  ASSERT_EQ(entries.size(), static_cast<size_t>(kFiles));
  // The oldest three quarters in turn, then every third of the rest out of turn.
  std::vector<CatalogEntry> live;
  for (int i = 0; i < kFiles; ++i) {
    if (i < kFiles * 3 / 4 || i % 3 == 0) {
      ASSERT_TRUE(RecordFileRemoved(store, entries[i]).ok());
    } else {
      live.push_back(entries[i]);
    }
  }
  // Allocated: at most the pages the live filters touch.
  std::set<uint64_t> live_pages;
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  for (const CatalogEntry& e : live) {
    uint64_t end = e.filter_offset + uint64_t{e.filter_blocks} * kKeyFilterBlockBytes;
    for (uint64_t p = e.filter_offset / 4096; p <= (end - 1) / 4096; ++p) live_pages.insert(p);
    std::string bytes(end - e.filter_offset, '\0');
    ASSERT_EQ(pread(fd, bytes.data(), bytes.size(), static_cast<off_t>(e.filter_offset)),
              static_cast<ssize_t>(bytes.size()));
    EXPECT_EQ(bytes, filters[e.name]) << e.name << ": a live filter was changed";
  }
  ASSERT_EQ(fstat(fd, &st), 0);
  close(fd);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), written);  // offsets stay
  EXPECT_LE(static_cast<uint64_t>(st.st_blocks) * 512, live_pages.size() * 4096)
      << live.size() << " live filters on " << live_pages.size() << " pages of " << (written + 4095) / 4096;
  // Every file removed: nothing stays allocated.
  for (const CatalogEntry& e : live) ASSERT_TRUE(RecordFileRemoved(store, e).ok());
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_blocks, 0);
  fs::remove_all(store);
}

}  // namespace
}  // namespace rwd
