#include "capture/packet_file_writer.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <map>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "index/block_format.h"
#include "index/index_reader.h"
#include "index/packet_file_reader.h"
#include "index/store_catalog.h"
#include "index/store_layout.h"
#include "index/test_temp_dir.h"

namespace rwd {
namespace {

namespace fs = std::filesystem;

// An Ethernet/IPv4/UDP frame whose payload names (block, packet).
std::vector<uint8_t> Frame(uint32_t block, uint32_t packet) {
  std::vector<uint8_t> f(14 + 20 + 8 + 16, 0);
  f[12] = 0x08;  // ethertype IPv4
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  ip[3] = static_cast<uint8_t>(f.size() - 14);
  ip[8] = 64;
  ip[9] = 17;  // UDP
  ip[12] = 10, ip[15] = 1;
  ip[16] = 10, ip[19] = 2;
  uint8_t* udp = ip + 20;
  udp[1] = 53, udp[3] = 53, udp[5] = 24;
  std::memcpy(udp + 8, &block, 4);
  std::memcpy(udp + 12, &packet, 4);
  return f;
}

constexpr uint32_t kPacketsPerBlock = 40;

// Block `blk` of the tests: kPacketsPerBlock frames Frame(blk, 0..), at second 1700000000 + blk.
void FillBlock(uint8_t* buf, uint32_t blk) {
  BlockBuilder b;
  b.Reset(buf, 1, 65535, blk);
  for (uint32_t p = 0; p < kPacketsPerBlock; ++p) {
    std::vector<uint8_t> f = Frame(blk, p);
    ASSERT_TRUE(b.Add(1700000000 + blk, p * 1000, static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()),
                      f.data()));
  }
  b.Finish();
}

// Expects the packets `br` walks to be block `blk`'s of the tests (FillBlock), all of them.
void ExpectBlockOfTest(BlockReader* br, uint32_t blk) {
  PacketView pv;
  uint32_t p = 0;
  while (br->Next(&pv)) {
    std::vector<uint8_t> want = Frame(blk, p);
    ASSERT_EQ(pv.caplen, want.size());
    ASSERT_EQ(0, std::memcmp(pv.data, want.data(), want.size())) << "block " << blk << " packet " << p;
    ++p;
  }
  EXPECT_EQ(p, kPacketsPerBlock) << "block " << blk;
}

// Options of the tests' writers: files of `blocks` blocks into `store`, `in_flight` writes at a time.
PacketFileWriterOptions TestOptions(const std::string& store, uint32_t blocks, int in_flight) {
  PacketFileWriterOptions o;
  o.store = store;
  o.max_file_bytes = blocks * uint64_t{kBlockSize};
  o.max_writes_in_flight = in_flight;
  return o;
}

// Many small files through one writer (one aio context for all of them; halfway, FinishLastFile() lets that
// context go and the next block sets up another): every packet comes back, in order, from indexed files of
// the expected size.
TEST(PacketFileWriter, ManyFilesReadBackExactly) {
  TempDir dir;
  auto lock = WriterLock::Acquire(dir.path(), 0);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  PacketFileWriterOptions o = TestOptions(dir.path(), 2, 4);
  o.preallocate_bytes = o.max_file_bytes;
  o.name_ahead = true;  // as capture: each file's successor is named ahead
  PacketFileWriter w(o, std::move(*lock));

  constexpr uint32_t kBlocks = 301;  // 151 files, the last one with a single block
  std::vector<uint8_t*> all, free_bufs;
  for (int i = 0; i < 8; ++i) {
    all.push_back(static_cast<uint8_t*>(std::aligned_alloc(kBlockAlignment, kBlockSize)));
    free_bufs.push_back(all.back());
  }
  std::vector<void*> done;
  for (uint32_t blk = 0; blk < kBlocks; ++blk) {
    if (blk == 150) {  // a file boundary: the file of blocks 148-149 is complete either way
      done.clear();
      Status s = w.FinishLastFile(&done);
      ASSERT_TRUE(s.ok()) << s.ToString();
      for (void* t : done) free_bufs.push_back(static_cast<uint8_t*>(t));
    }
    if (free_bufs.empty()) {
      done.clear();
      Status s = w.Reap(1, &done);
      ASSERT_TRUE(s.ok()) << s.ToString();
      for (void* t : done) free_bufs.push_back(static_cast<uint8_t*>(t));
      ASSERT_FALSE(free_bufs.empty());
    }
    uint8_t* buf = free_bufs.back();
    free_bufs.pop_back();
    FillBlock(buf, blk);
    Status s = w.WriteBlock(buf, buf, 0);
    ASSERT_TRUE(s.ok()) << blk << ": " << s.ToString();
  }
  done.clear();
  ASSERT_TRUE(w.FinishFile(&done).ok());
  for (void* t : done) free_bufs.push_back(static_cast<uint8_t*>(t));
  done.clear();
  ASSERT_TRUE(w.Reap(0, &done).ok());
  for (void* t : done) free_bufs.push_back(static_cast<uint8_t*>(t));
  EXPECT_EQ(free_bufs.size(), all.size()) << "every buffer handed back";
  EXPECT_EQ(w.stats().files, (kBlocks + 1) / 2);
  EXPECT_EQ(w.stats().packets, uint64_t{kBlocks} * kPacketsPerBlock);

  auto files = ListStoreFiles(dir.path());
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), (kBlocks + 1) / 2);
  uint32_t next_block = 0;
  for (const StoreFile& f : *files) {
    ASSERT_TRUE(f.indexed) << f.packet_path;
    auto index = IndexReader::Open(f.index_path);
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    auto reader = PacketFileReader::Open(f.packet_path);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ((*reader)->size(), (*index)->blocks().size() * uint64_t{kBlockSize}) << "preallocation trimmed";
    // Each block uses its first 4,592 bytes: written as two pages, the rest of its 1 MiB a hole.
    struct stat st;
    ASSERT_EQ(stat(f.packet_path.c_str(), &st), 0);
    EXPECT_LE(st.st_blocks * 512, (*index)->blocks().size() * 2 * kBlockAlignment + 64 * 1024)
        << "partly filled blocks take the disk space of their used pages";
    EXPECT_EQ((*index)->summary().file_bytes, static_cast<uint64_t>(st.st_blocks) * 512) << "what the file takes";
    for (const BlockEntry& e : (*index)->blocks()) {
      BlockReader br;
      Status s = (*reader)->ReadBlock(e, &br);
      ASSERT_TRUE(s.ok()) << s.ToString();
      PacketView pv;
      uint32_t p = 0;
      while (br.Next(&pv)) {
        ASSERT_EQ(pv.ts_sec, 1700000000 + next_block);
        std::vector<uint8_t> want = Frame(next_block, p);
        ASSERT_EQ(pv.caplen, want.size());
        ASSERT_EQ(0, std::memcmp(pv.data, want.data(), want.size())) << "block " << next_block << " packet " << p;
        ++p;
      }
      ASSERT_TRUE(br.status().ok()) << br.status().ToString();
      ASSERT_EQ(p, kPacketsPerBlock);
      ++next_block;
    }
  }
  EXPECT_EQ(next_block, kBlocks);
  done.clear();
  ASSERT_TRUE(w.FinishLastFile(&done).ok());  // lets the name recorded for a next file go
  auto catalog = StoreCatalog::Open(dir.path());
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  EXPECT_EQ((*catalog)->Entries().size(), files->size()) << "no name recorded ahead is left over";
  EXPECT_EQ((*catalog)->CompleteFiles(), files->size());
  for (uint8_t* p : all) std::free(p);
}

// A rotation hands the finished file's index build to the finishing thread: when that build fails (here the
// index directory is replaced by a plain file), the next file's blocks are still written, the error comes
// back from Reap(), and once a later file's table is written the failed file is indexed again from disk.
TEST(PacketFileWriter, FailedIndexBuildAfterRotationDropsNoBlock) {
  TempDir dir;
  auto lock = WriterLock::Acquire(dir.path(), 0);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  PacketFileWriterOptions o = TestOptions(dir.path(), 1, 2);
  PacketFileWriter w(o, std::move(*lock));
  uint8_t* bufs[3];
  for (uint8_t*& p : bufs) p = static_cast<uint8_t*>(std::aligned_alloc(kBlockAlignment, kBlockSize));
  std::string idx = IndexDirectory(dir.path(), 0);
  FillBlock(bufs[0], 0);
  ASSERT_TRUE(w.WriteBlock(bufs[0], bufs[0], 0).ok());
  fs::rename(idx, idx + ".away");
  { std::FILE* f = std::fopen(idx.c_str(), "w"); ASSERT_NE(f, nullptr); std::fclose(f); }
  FillBlock(bufs[1], 1);
  Status s = w.WriteBlock(bufs[1], bufs[1], 0);  // rotates: file 0's index build fails in the background
  ASSERT_TRUE(s.ok()) << "the new file's block must not pay for the old file's index: " << s.ToString();
  std::vector<void*> done;
  Status reaped;
  for (int i = 0; i < 1000 && reaped.ok(); ++i) {  // the error arrives once the finishing thread has failed
    reaped = w.Reap(0, &done);
    if (reaped.ok()) usleep(1000);
  }
  EXPECT_FALSE(reaped.ok()) << "the failed index build is reported";
  fs::remove(idx);
  fs::rename(idx + ".away", idx);
  FillBlock(bufs[2], 2);
  ASSERT_TRUE(w.WriteBlock(bufs[2], bufs[2], 0).ok());
  s = w.FinishFile(&done);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(w.Reap(0, &done).ok());
  EXPECT_EQ(done.size(), 3u) << "every buffer handed back";
  EXPECT_EQ(w.stats().files, 2u) << "the two files whose own build succeeded";
  EXPECT_EQ(w.stats().blocks, 3u);

  auto files = ListStoreFiles(dir.path());
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 3u);

  for (uint32_t f = 0; f < 3; ++f) {
    // Every block is on disk whole, indexed or not.
    auto reader = PacketFileReader::Open((*files)[f].packet_path);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    BlockEntry e;
    e.disk_length = kBlockSize;
    BlockReader br;
    ASSERT_TRUE((*reader)->ReadBlock(e, &br).ok());
    ExpectBlockOfTest(&br, f);  // file f holds block f
    EXPECT_TRUE((*files)[f].indexed) << (*files)[f].packet_path;
  }
  auto catalog = StoreCatalog::Open(dir.path());
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  EXPECT_EQ((*catalog)->CompleteFiles(), 3u) << "the catalog lists the re-indexed file as complete too";
  for (uint8_t* p : bufs) std::free(p);
}

// A write that fails on disk (here: past the process's file size limit, as a full disk fails it) closes its
// file, and the next block starts a new one instead of every block failing until the file's age rotation.
// Every buffer comes back exactly once (the failed block's too), the error comes back from Reap(), the closed
// file is indexed from what reads back once the next file is complete, and the catalog lists both, complete.
TEST(PacketFileWriter, FailedWriteClosesTheFileAndTheNextBlockStartsANewOne) {
  TempDir dir;
  auto lock = WriterLock::Acquire(dir.path(), 0);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  PacketFileWriterOptions o = TestOptions(dir.path(), 16, 1);  // one write in flight: each waits for the last
  PacketFileWriter w(o, std::move(*lock));
  constexpr int kBlocks = 7;  // 0-2 in the first file, 3 refused, 4-6 in the second
  std::vector<uint8_t*> bufs;
  for (int i = 0; i < kBlocks; ++i) {
    bufs.push_back(static_cast<uint8_t*>(std::aligned_alloc(kBlockAlignment, kBlockSize)));
  }
  std::map<void*, int> returned;
  int errors = 0;
  auto reap = [&](int min) {
    std::vector<void*> done;
    if (!w.Reap(min, &done).ok()) ++errors;
    for (void* d : done) ++returned[d];
  };
  // Blocks start every 1 MiB of the file: with a limit of 3 MiB, block 3 (at 3 MiB) cannot be written.
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct rlimit limit = old_limit;
  limit.rlim_cur = 3 * kBlockSize;
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  std::vector<Status> wrote;
  for (int i = 0; i < kBlocks; ++i) {
    FillBlock(bufs[i], static_cast<uint32_t>(i));
    wrote.push_back(w.WriteBlock(bufs[i], bufs[i], 0));
    reap(0);
  }
  std::vector<void*> done;
  Status finished = w.FinishLastFile(&done);
  for (void* d : done) ++returned[d];
  reap(0);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  std::signal(SIGXFSZ, old_handler);

  for (int i = 0; i < kBlocks; ++i) EXPECT_TRUE(wrote[i].ok()) << "block " << i << ": " << wrote[i].ToString();
  EXPECT_TRUE(finished.ok()) << finished.ToString();
  EXPECT_EQ(errors, 1) << "the failed write is reported once";
  for (int i = 0; i < kBlocks; ++i) EXPECT_EQ(returned[bufs[i]], 1) << "buffer of block " << i;

  auto files = ListStoreFiles(dir.path());
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 2u) << "the failed file and the one the next block started";
  std::vector<uint32_t> blocks_read;
  for (const StoreFile& f : *files) {
    ASSERT_TRUE(f.indexed) << f.packet_path;
    auto index = IndexReader::Open(f.index_path);
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    auto reader = PacketFileReader::Open(f.packet_path);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    for (const BlockEntry& e : (*index)->blocks()) {
      if (e.packets == 0) continue;
      BlockReader br;
      Status s = (*reader)->ReadBlock(e, &br);
      ASSERT_TRUE(s.ok()) << s.ToString();
      uint32_t blk = static_cast<uint32_t>(e.min_ts_ns / 1000000000 - 1700000000);
      ExpectBlockOfTest(&br, blk);
      blocks_read.push_back(blk);
    }
  }
  EXPECT_EQ(blocks_read, (std::vector<uint32_t>{0, 1, 2, 4, 5, 6})) << "all but the block the disk refused";
  auto catalog = StoreCatalog::Open(dir.path());
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  EXPECT_EQ((*catalog)->Entries().size(), 2u);
  EXPECT_EQ((*catalog)->CompleteFiles(), 2u) << "none left \"writing\"";
  for (uint8_t* p : bufs) std::free(p);
}

// Half way to its rotation, a file has its successor's name recorded in the catalog ("writing", no file yet),
// so the rotation waits for no catalog sync; the next file takes that name, and a name still unused when the
// writer stops is recorded removed: the catalog then lists exactly the files on disk, all complete.
TEST(PacketFileWriter, NextFileNamedAheadAndReleasedAtTheEnd) {
  TempDir dir;
  auto lock = WriterLock::Acquire(dir.path(), 0);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  PacketFileWriterOptions o = TestOptions(dir.path(), 2, 2);  // half way to a rotation after one block
  o.name_ahead = true;
  PacketFileWriter w(o, std::move(*lock));
  uint8_t* bufs[3];
  for (uint8_t*& p : bufs) p = static_cast<uint8_t*>(std::aligned_alloc(kBlockAlignment, kBlockSize));
  // The catalog's "writing" entries whose packet file does not exist.
  auto reserved = [&]() {
    std::vector<std::string> names;
    auto catalog = StoreCatalog::Open(dir.path());
    EXPECT_TRUE(catalog.ok()) << catalog.status().ToString();
    if (!catalog.ok()) return names;
    for (const CatalogEntry& e : (*catalog)->Entries()) {
      struct stat st;
      if (!e.complete() && stat(e.packet_path(dir.path()).c_str(), &st) != 0) names.push_back(e.name);
    }
    return names;
  };
  FillBlock(bufs[0], 0);
  ASSERT_TRUE(w.WriteBlock(bufs[0], bufs[0], 0).ok());
  std::string first = fs::path(w.current_path()).filename();
  std::vector<std::string> ahead;
  for (int i = 0; i < 2000 && ahead.empty(); ++i) {  // recorded by the finishing thread
    ahead = reserved();
    if (ahead.empty()) usleep(1000);
  }
  ASSERT_EQ(ahead.size(), 1u) << "the next file's name is recorded ahead";
  EXPECT_GT(ahead[0], first);
  FillBlock(bufs[1], 1);
  ASSERT_TRUE(w.WriteBlock(bufs[1], bufs[1], 0).ok());
  std::vector<void*> done;
  for (int i = 0; i < 2000 && done.empty(); ++i) {
    ASSERT_TRUE(w.Reap(0, &done).ok());
    if (done.empty()) usleep(1000);
  }
  ASSERT_FALSE(done.empty());
  FillBlock(static_cast<uint8_t*>(done[0]), 2);
  ASSERT_TRUE(w.WriteBlock(static_cast<uint8_t*>(done[0]), done[0], 0).ok());  // rotates
  EXPECT_EQ(std::string(fs::path(w.current_path()).filename()), ahead[0]) << "the rotation took the recorded name";
  done.clear();
  Status s = w.FinishLastFile(&done);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(reserved().empty()) << "no name is left recorded without its file";
  auto catalog = StoreCatalog::Open(dir.path());
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  std::vector<CatalogEntry> entries = (*catalog)->Entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, first);
  EXPECT_EQ(entries[1].name, ahead[0]);
  for (const CatalogEntry& e : entries) EXPECT_TRUE(e.complete()) << e.name;
  for (uint8_t* p : bufs) std::free(p);
}

}  // namespace
}  // namespace rwd
