#include "index/retention.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "capture/packet_file_writer.h"
#include "capture/pcap_importer.h"
#include "gtest/gtest.h"
#include "index/block_format.h"
#include "index/store_layout.h"
#include "index/test_temp_dir.h"
#include "query/query_engine.h"

namespace rwd {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSec = 1000000000;
constexpr int64_t kBase = 1700000000 * kSec;  // packet times of the test files start here

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

// One Ethernet/IPv4/UDP frame from port `port` to port 53, 200 bytes.
std::string Frame(uint16_t port) {
  std::string f(200, '\0');
  auto* p = reinterpret_cast<uint8_t*>(f.data());
  p[12] = 0x08;  // IPv4
  p[14] = 0x45;
  p[16] = 0;
  p[17] = 186;  // total length
  p[22] = 64;
  p[23] = 17;  // UDP
  p[26] = 10, p[29] = 1;  // 10.0.0.1
  p[30] = 10, p[33] = 2;  // 10.0.0.2
  p[34] = port >> 8, p[35] = port & 0xff;
  p[36] = 0, p[37] = 53;
  p[38] = 0, p[39] = 166;
  return f;
}

// A nanosecond pcap of `n` frames from `port`, one per second from `first_ns`.
void WritePcap(const std::string& path, int64_t first_ns, int n, uint16_t port) {
  std::ofstream out(path, std::ios::binary);
  auto u32 = [&](uint32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { out.write(reinterpret_cast<const char*>(&v), 2); };
  u32(0xa1b23c4d);
  u16(2);
  u16(4);
  u32(0);
  u32(0);
  u32(65535);
  u32(1);
  std::string frame = Frame(port);
  for (int i = 0; i < n; ++i) {
    int64_t t = first_ns + i * kSec;
    u32(static_cast<uint32_t>(t / kSec));
    u32(static_cast<uint32_t>(t % kSec));
    u32(static_cast<uint32_t>(frame.size()));
    u32(static_cast<uint32_t>(frame.size()));
    out.write(frame.data(), static_cast<std::streamsize>(frame.size()));
  }
  ASSERT_TRUE(out.good());
}

struct FileId {
  uint32_t writer;
  std::string name;
  bool operator<(const FileId& o) const { return name != o.name ? name < o.name : writer < o.writer; }
  bool operator==(const FileId& o) const { return writer == o.writer && name == o.name; }
};

std::ostream& operator<<(std::ostream& os, const FileId& f) { return os << "PKT" << f.writer << "/" << f.name; }

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

uint64_t DiskUsage(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

// A store built file by file: each AddFile() imports one small capture as exactly one complete packet file
// (1 MiB, one block) of the given writer, so creation order is the order of the calls.
class RetentionStore {
 public:
  explicit RetentionStore(std::string dir) : dir_(std::move(dir)), store_(dir_ + "/store") {}

  FileId AddFile(uint32_t writer, int64_t first_ns, int packets, uint16_t port) {
    std::string pcap = dir_ + "/in" + std::to_string(inputs_++) + ".pcap";
    WritePcap(pcap, first_ns, packets, port);
    std::set<std::string> before = Names(writer);
    {
      auto lock = WriterLock::Acquire(store_, writer);
      EXPECT_TRUE(lock.ok()) << lock.status().ToString();
      PacketFileWriterOptions o;
      o.store = store_;
      o.max_file_bytes = 1 << 20;
      o.preallocate_bytes = 1 << 20;
      PacketFileWriter w(o, std::move(*lock));
      PcapImporter importer(&w);
      ImportFileStats st;
      Status s = importer.ImportFile(pcap, &st, nullptr);
      EXPECT_TRUE(s.ok()) << s.ToString();
      s = importer.Finish();
      EXPECT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(st.packets, static_cast<uint64_t>(packets));
    }
    std::set<std::string> after = Names(writer);
    std::vector<std::string> added;
    std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(added));
    EXPECT_EQ(added.size(), 1u) << "one packet file per AddFile";
    FileId id{writer, added.empty() ? "" : added[0]};
    EXPECT_TRUE(Exists(IndexPath(id))) << id;
    created_.push_back(id);
    return id;
  }

  std::set<std::string> Names(uint32_t writer) const {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(PacketDirectory(store_, writer), ec)) {
      if (IsStoreFileName(e.path().filename())) names.insert(e.path().filename());
    }
    return names;
  }

  // Every packet file present, and whether its index is, checked for consistency: an index never
  // exists without its packet file.
  std::vector<FileId> Remaining() const {
    auto files = ListStoreFiles(store_);
    EXPECT_TRUE(files.ok());
    std::vector<FileId> out;
    for (const StoreFile& f : *files) out.push_back({f.writer, f.name});
    for (uint32_t w : {0u, 1u, 2u}) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(IndexDirectory(store_, w), ec)) {
        std::string n = e.path().filename();
        if (!IsStoreFileName(n)) continue;
        EXPECT_TRUE(Exists(PacketDirectory(store_, w) + "/" + n)) << "dangling index " << n;
      }
    }
    return out;
  }

  std::string PacketPath(const FileId& f) const { return PacketDirectory(store_, f.writer) + "/" + f.name; }
  std::string IndexPath(const FileId& f) const { return IndexDirectory(store_, f.writer) + "/" + f.name; }
  uint64_t Bytes(const FileId& f) const { return DiskUsage(PacketPath(f)) + DiskUsage(IndexPath(f)); }
  const std::string& store() const { return store_; }
  const std::vector<FileId>& created() const { return created_; }

 private:
  std::string dir_;
  std::string store_;
  int inputs_ = 0;
  std::vector<FileId> created_;
};

std::vector<FileId> Ids(const std::vector<PrunedFile>& removed) {
  std::vector<FileId> out;
  for (const PrunedFile& p : removed) out.push_back({p.file.writer, p.file.name});
  return out;
}

std::vector<FileId> Slice(const std::vector<FileId>& v, size_t from, size_t to) {
  return std::vector<FileId>(v.begin() + from, v.begin() + to);
}

// Six files in creation order, interleaving two writers; packet times ascend with creation.
void AddSix(RetentionStore* s) {
  const uint32_t writers[] = {0, 1, 0, 0, 1, 0};
  for (int i = 0; i < 6; ++i) s->AddFile(writers[i], kBase + i * 1000 * kSec, 20, static_cast<uint16_t>(1000 + i));
}

TEST(Retention, MaxBytesRemovesOldestAcrossWritersIndexWithPacketFile) {
  TempDir dir;
  RetentionStore s(dir.path());
  AddSix(&s);
  const auto& c = s.created();
  // Things that are not packet files or index tables stay whatever happens.
  std::ofstream(s.store() + "/notes.txt") << "keep me";
  std::ofstream(IndexDirectory(s.store(), 0) + "/" + c[0].name + ".tmp") << "an index being written";

  // Room for the three newest files and a half: the three oldest go, from both writers.
  uint64_t limit = s.Bytes(c[3]) + s.Bytes(c[4]) + s.Bytes(c[5]) + s.Bytes(c[2]) / 2;
  uint64_t removed_bytes = s.Bytes(c[0]) + s.Bytes(c[1]) + s.Bytes(c[2]);
  RetentionPolicy p;
  p.max_bytes = limit;
  PruneResult r;
  ASSERT_TRUE(PruneStore(s.store(), p, NowNs(), &r).ok());
  EXPECT_EQ(Ids(r.removed), Slice(c, 0, 3));
  EXPECT_EQ(r.files, 3u);
  EXPECT_EQ(r.bytes, removed_bytes);
  for (const PrunedFile& f : r.removed) EXPECT_EQ(f.reason, "max_bytes");
  EXPECT_EQ(s.Remaining(), Slice(c, 3, 6));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_FALSE(Exists(s.PacketPath(c[i])));
    EXPECT_FALSE(Exists(s.IndexPath(c[i])));
  }
  EXPECT_LE(r.store_bytes, limit);
  EXPECT_EQ(r.complete_files, 3u);
  EXPECT_TRUE(r.unmet.empty());
  EXPECT_TRUE(Exists(s.store() + "/notes.txt"));
  EXPECT_TRUE(Exists(IndexDirectory(s.store(), 0) + "/" + c[0].name + ".tmp"));
  EXPECT_TRUE(Exists(PacketDirectory(s.store(), 0) + "/.lock"));

  // Within the limit now: a second run removes nothing.
  ASSERT_TRUE(PruneStore(s.store(), p, NowNs(), &r).ok());
  EXPECT_EQ(r.files, 0u);
  EXPECT_EQ(s.Remaining(), Slice(c, 3, 6));
}

TEST(Retention, DryRunReportsWithoutRemoving) {
  TempDir dir;
  RetentionStore s(dir.path());
  AddSix(&s);
  RetentionPolicy p;
  p.max_bytes = 1;
  p.dry_run = true;
  PruneResult r;
  ASSERT_TRUE(PruneStore(s.store(), p, NowNs(), &r).ok());
  EXPECT_EQ(Ids(r.removed), s.created());
  EXPECT_EQ(s.Remaining(), s.created());
}

TEST(Retention, MaxFilesPerWriterKeepsEachWritersNewest) {
  TempDir dir;
  RetentionStore s(dir.path());
  AddSix(&s);
  const auto& c = s.created();  // writer 0: c0 c2 c3 c5; writer 1: c1 c4
  RetentionPolicy p;
  p.max_files_per_writer = 2;
  PruneResult r;
  ASSERT_TRUE(PruneStore(s.store(), p, NowNs(), &r).ok());
  EXPECT_EQ(Ids(r.removed), (std::vector<FileId>{c[0], c[2]}));
  for (const PrunedFile& f : r.removed) EXPECT_EQ(f.reason, "max_files");
  EXPECT_EQ(s.Remaining(), (std::vector<FileId>{c[1], c[3], c[4], c[5]}));
  p.max_files_per_writer = 1;
  ASSERT_TRUE(PruneStore(s.store(), p, NowNs(), &r).ok());
  EXPECT_EQ(Ids(r.removed), (std::vector<FileId>{c[1], c[3]}));
  EXPECT_EQ(s.Remaining(), (std::vector<FileId>{c[4], c[5]}));
}

TEST(Retention, MaxAgeLooksAtEachFilesNewestPacket) {
  TempDir dir;
  RetentionStore s(dir.path());
  int64_t now = kBase + 100000 * kSec;
  // Created in this order; newest packets at now-5000 s, now-100 s, now-9000 s (an old capture imported
  // last), and now-10 s.
  FileId a = s.AddFile(0, now - 5019 * kSec, 20, 1);
  FileId b = s.AddFile(0, now - 119 * kSec, 20, 2);
  FileId old_import = s.AddFile(1, now - 9019 * kSec, 20, 3);
  FileId d = s.AddFile(0, now - 29 * kSec, 20, 4);
  RetentionPolicy p;
  p.max_age_ns = 1000 * kSec;
  PruneResult r;
  ASSERT_TRUE(PruneStore(s.store(), p, now, &r).ok());
  EXPECT_EQ(Ids(r.removed), (std::vector<FileId>{a, old_import}));
  for (const PrunedFile& f : r.removed) EXPECT_EQ(f.reason, "max_age");
  EXPECT_EQ(s.Remaining(), (std::vector<FileId>{b, d}));
  // A file whose newest packet is exactly at the cutoff stays; one nanosecond older goes.
  p.max_age_ns = 100 * kSec;
  ASSERT_TRUE(PruneStore(s.store(), p, now, &r).ok());
  EXPECT_TRUE(r.removed.empty());
  p.max_age_ns = 100 * kSec - 1;
  ASSERT_TRUE(PruneStore(s.store(), p, now, &r).ok());
  EXPECT_EQ(Ids(r.removed), (std::vector<FileId>{b}));
}

TEST(Retention, NeverRemovesAFileBeingWrittenOrLeftWithoutIndex) {
  TempDir dir;
  RetentionStore s(dir.path());
  std::string store = s.store();
  // Writer 2 opens a file first (the oldest name) and keeps writing it: it has no index yet.
  auto lock = WriterLock::Acquire(store, 2);
  ASSERT_TRUE(lock.ok());
  PacketFileWriterOptions o;
  o.store = store;
  o.max_file_bytes = 1 << 20;
  auto writer = std::make_unique<PacketFileWriter>(o, std::move(*lock));
  uint8_t* block = static_cast<uint8_t*>(std::aligned_alloc(4096, kBlockSize));
  BlockBuilder bb;
  bb.Reset(block, 1, 65535, 0);
  std::string frame = Frame(9);
  ASSERT_TRUE(bb.Add(1700000000, 0, static_cast<uint32_t>(frame.size()), static_cast<uint32_t>(frame.size()),
                     reinterpret_cast<const uint8_t*>(frame.data())));
  bb.Finish();
  ASSERT_TRUE(writer->WriteBlock(block, block, NowNs()).ok());
  std::string open_path = writer->current_path();
  ASSERT_FALSE(open_path.empty());
  // A file a crash left without an index.
  std::string crash_name = FileNameForTime(NowNs());
  std::ofstream(PacketDirectory(store, 2) + "/" + crash_name) << std::string(8192, 'x');
  AddSix(&s);

  RetentionPolicy p;
  p.max_bytes = 1;  // nothing complete may stay
  PruneResult r;
  ASSERT_TRUE(PruneStore(store, p, NowNs(), &r).ok());
  EXPECT_EQ(Ids(r.removed), s.created());
  EXPECT_TRUE(Exists(open_path)) << "the file being written was removed";
  EXPECT_TRUE(Exists(PacketDirectory(store, 2) + "/" + crash_name));
  EXPECT_EQ(r.complete_files, 0u);
  EXPECT_EQ(r.incomplete_files, 2u);
  ASSERT_EQ(r.unmet.size(), 1u) << "the open file alone is over the limit";
  EXPECT_NE(r.unmet[0].find("being written"), std::string::npos) << r.unmet[0];

  // Once the writer completes the file it is an ordinary candidate.
  std::vector<void*> done;
  ASSERT_TRUE(writer->FinishFile(&done).ok());
  writer.reset();
  std::free(block);
  ASSERT_TRUE(Exists(IndexDirectory(store, 2) + "/" + fs::path(open_path).filename().string()));
  ASSERT_TRUE(PruneStore(store, p, NowNs(), &r).ok());
  ASSERT_EQ(r.removed.size(), 1u);
  EXPECT_EQ(r.removed[0].file.packet_path, open_path);
  EXPECT_FALSE(Exists(open_path));
  EXPECT_TRUE(Exists(PacketDirectory(store, 2) + "/" + crash_name));
}

TEST(Retention, MinFreePercentOnItsOwnFileSystem) {
  TempDir dir;
  std::string mnt = dir.path() + "/mnt";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=16m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << ")";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  RetentionStore s(mnt);
  for (int i = 0; i < 10; ++i) s.AddFile(i % 2, kBase + i * 1000 * kSec, 20, static_cast<uint16_t>(i));
  const auto& c = s.created();
  struct statvfs v;
  ASSERT_EQ(statvfs(mnt.c_str(), &v), 0);
  double total = static_cast<double>(v.f_blocks) * v.f_frsize;
  double avail = static_cast<double>(v.f_bavail) * v.f_frsize;
  // Ask for the free space that removing exactly the four oldest files gives, less half a file.
  double after4 = avail;
  for (int i = 0; i < 4; ++i) after4 += static_cast<double>(s.Bytes(c[i]));
  double pct = 100.0 * (after4 - static_cast<double>(s.Bytes(c[3])) / 2) / total;
  ASSERT_GT(pct, 100.0 * (after4 - static_cast<double>(s.Bytes(c[3]))) / total) << "one file must matter";
  RetentionPolicy p;
  p.min_free_percent = pct;
  p.dry_run = true;
  PruneResult r;
  ASSERT_TRUE(PruneStore(mnt + "/store", p, NowNs(), &r).ok());
  EXPECT_EQ(Ids(r.removed), Slice(c, 0, 4));
  EXPECT_EQ(s.Remaining(), c);
  p.dry_run = false;
  ASSERT_TRUE(PruneStore(mnt + "/store", p, NowNs(), &r).ok());
  EXPECT_EQ(Ids(r.removed), Slice(c, 0, 4));
  for (const PrunedFile& f : r.removed) EXPECT_EQ(f.reason, "min_free");
  EXPECT_EQ(s.Remaining(), Slice(c, 4, 10));
  ASSERT_EQ(statvfs(mnt.c_str(), &v), 0);
  EXPECT_GE(100.0 * static_cast<double>(v.f_bavail) * v.f_frsize / total, pct) << "the space really came back";
  EXPECT_GE(r.free_percent, pct);
  // Satisfied: nothing more goes.
  ASSERT_TRUE(PruneStore(mnt + "/store", p, NowNs(), &r).ok());
  EXPECT_EQ(r.files, 0u);
}

// Collects (time, source port) of every packet a query yields.
std::vector<std::pair<int64_t, int>> Collect(Query* q, QueryStats* stats,
                                             const std::function<void()>& after_first = nullptr) {
  std::vector<std::pair<int64_t, int>> out;
  Status s = q->ForEach(
      [&](const Query::Match& m) {
        out.emplace_back(m.packet->ts_ns, m.packet->data[34] << 8 | m.packet->data[35]);
        if (out.size() == 1 && after_first) after_first();
        return true;
      },
      stats);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

std::vector<std::pair<int64_t, int>> Expected(const std::vector<int>& files, int packets) {
  std::vector<std::pair<int64_t, int>> out;
  for (int i : files) {
    for (int k = 0; k < packets; ++k) out.emplace_back(kBase + i * 1000 * kSec + k * kSec, 1000 + i);
  }
  return out;
}

// Five files of writer 0, one after the other in time (file i: 20 packets from port 1000 + i).
void AddFive(RetentionStore* s) {
  for (int i = 0; i < 5; ++i) s->AddFile(0, kBase + i * 1000 * kSec, 20, static_cast<uint16_t>(1000 + i));
}

TEST(Retention, QueryPreparedBeforePruneIsExactForWhatRemainsAndSaysCutShort) {
  TempDir dir;
  RetentionStore s(dir.path());
  AddFive(&s);
  QueryOptions o;
  o.now_ns = NowNs();
  auto q = Query::Prepare(s.store(), "udp", o);  // opens all five index tables
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  RetentionPolicy p;
  p.max_files_per_writer = 2;
  PruneResult r;
  ASSERT_TRUE(PruneStore(s.store(), p, NowNs(), &r).ok());
  ASSERT_EQ(r.files, 3u);
  QueryStats stats;
  EXPECT_EQ(Collect(q->get(), &stats), Expected({3, 4}, 20));
  EXPECT_TRUE(stats.cut_short);
  ASSERT_EQ(stats.warnings.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(stats.warnings[i].rfind("answer cut short: " + s.PacketPath(s.created()[i]) + " was removed", 0), 0u)
        << stats.warnings[i];
  }
  // A query prepared after the prune sees only what remains, complete.
  auto q2 = Query::Prepare(s.store(), "udp", o);
  ASSERT_TRUE(q2.ok());
  QueryStats stats2;
  EXPECT_EQ(Collect(q2->get(), &stats2), Expected({3, 4}, 20));
  EXPECT_FALSE(stats2.cut_short);
  EXPECT_TRUE(stats2.warnings.empty());
  EXPECT_EQ(stats2.files, 2u);
}

TEST(Retention, QueryKeepsReadingAFileItOpenedBeforeThePrune) {
  TempDir dir;
  RetentionStore s(dir.path());
  AddFive(&s);
  QueryOptions o;
  o.now_ns = NowNs();
  auto q = Query::Prepare(s.store(), "", o);
  ASSERT_TRUE(q.ok());
  // Files join the time-ordered merge one after the other; at the first packet only file 0 is open.
  // Pruning then removes files 0-3: file 0 is read to its end (an open file stays readable), files 1-3
  // are gone before the merge reaches them, file 4 remains.
  RetentionPolicy p;
  p.max_files_per_writer = 1;
  QueryStats stats;
  auto got = Collect(q->get(), &stats, [&] {
    PruneResult r;
    EXPECT_TRUE(PruneStore(s.store(), p, NowNs(), &r).ok());
    EXPECT_EQ(r.files, 4u);
  });
  EXPECT_EQ(got, Expected({0, 4}, 20));
  EXPECT_TRUE(stats.cut_short);
  EXPECT_EQ(stats.warnings.size(), 3u);
  EXPECT_EQ(s.Remaining(), Slice(s.created(), 4, 5));
}

TEST(Retention, NothingRemovedMeansNothingCutShort) {
  TempDir dir;
  RetentionStore s(dir.path());
  AddFive(&s);
  QueryOptions o;
  o.now_ns = NowNs();
  auto q = Query::Prepare(s.store(), "udp port 1002 or udp port 1004", o);
  ASSERT_TRUE(q.ok());
  RetentionPolicy p;
  p.max_files_per_writer = 5;
  PruneResult r;
  ASSERT_TRUE(PruneStore(s.store(), p, NowNs(), &r).ok());
  EXPECT_EQ(r.files, 0u);
  QueryStats stats;
  EXPECT_EQ(Collect(q->get(), &stats), Expected({2, 4}, 20));
  EXPECT_FALSE(stats.cut_short);
}

TEST(Retention, DescribeAndBadStore) {
  RetentionPolicy p;
  EXPECT_FALSE(p.enabled());
  EXPECT_EQ(p.Describe(), "off");
  p.max_bytes = 6ull << 20;
  p.min_free_percent = 12.5;
  p.max_files_per_writer = 100;
  p.max_age_ns = 86400 * kSec;
  EXPECT_TRUE(p.enabled());
  EXPECT_EQ(p.Describe(), "max 6.0 MiB, min 12.5% free, max 100 files per writer, max age 86400 s");
  PruneResult r;
  EXPECT_EQ(PruneStore("/nonexistent/rewind/store", p, NowNs(), &r).code(), Status::kNotFound);
}

}  // namespace
}  // namespace rwd
