#include "index/store_layout.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "index/test_temp_dir.h"

namespace rwd {
namespace {

namespace fs = std::filesystem;

void Touch(const std::string& path) {
  std::ofstream out(path);
  out << "x";
  ASSERT_TRUE(out.good()) << path;
}

TEST(StoreLayout, Directories) {
  EXPECT_EQ(PacketDirectory("/data/store", 0), "/data/store/PKT0");
  EXPECT_EQ(PacketDirectory("/data/store", 12), "/data/store/PKT12");
  EXPECT_EQ(IndexDirectory("/data/store", 0), "/data/store/IDX0");
  EXPECT_EQ(IndexDirectory("s", 4294967295u), "s/IDX4294967295");
}

TEST(StoreLayout, FileNameForTimeIsFixedWidth) {
  EXPECT_EQ(FileNameForTime(0), "00000000000000000000");
  EXPECT_EQ(FileNameForTime(1), "00000000000000000001");
  EXPECT_EQ(FileNameForTime(1700000000123456789), "01700000000123456789");
  EXPECT_EQ(FileNameForTime(std::numeric_limits<int64_t>::max()), "09223372036854775807");
  EXPECT_EQ(FileNameForTime(-5), "00000000000000000000") << "negative times clamp to 0";
  for (int64_t t : {int64_t{0}, int64_t{9}, int64_t{10}, int64_t{999999999}, int64_t{1000000000},
                    int64_t{1795341600} * 1000000000, std::numeric_limits<int64_t>::max()}) {
    std::string n = FileNameForTime(t);
    EXPECT_EQ(n.size(), 20u) << t;
    EXPECT_TRUE(IsStoreFileName(n)) << n;
    EXPECT_EQ(std::stoll(n), t);
  }
}

TEST(StoreLayout, FileNamesSortAsStringsLikeTheirTimes) {
  std::vector<int64_t> times = {0,
                                5,
                                9,
                                10,
                                99,
                                100,
                                123456789,
                                999999999,
                                1000000000,
                                1000000001,
                                1700000000000000000,
                                1699999999999999999,
                                1795341600000000000,
                                std::numeric_limits<int64_t>::max()};
  std::vector<std::string> names;
  for (int64_t t : times) names.push_back(FileNameForTime(t));
  std::sort(times.begin(), times.end());
  std::sort(names.begin(), names.end());
  for (size_t i = 0; i < times.size(); ++i) EXPECT_EQ(names[i], FileNameForTime(times[i])) << i;
}

TEST(StoreLayout, IsStoreFileName) {
  EXPECT_TRUE(IsStoreFileName("00000000000000000000"));
  EXPECT_TRUE(IsStoreFileName("01700000000123456789"));
  EXPECT_FALSE(IsStoreFileName(""));
  EXPECT_FALSE(IsStoreFileName("0000000000000000000"));    // 19
  EXPECT_FALSE(IsStoreFileName("000000000000000000000"));  // 21
  EXPECT_FALSE(IsStoreFileName("0000000000000000000a"));
  EXPECT_FALSE(IsStoreFileName("01700000000123456789.tmp"));
  EXPECT_FALSE(IsStoreFileName(".lock"));
  EXPECT_FALSE(IsStoreFileName("-1700000000123456789"));
  EXPECT_FALSE(IsStoreFileName(" 1700000000123456789"));
}

TEST(StoreLayout, ListStoreFilesOfMissingStoreIsNotFound) {
  TempDir dir;
  auto r = ListStoreFiles(dir.path() + "/nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::kNotFound) << r.status().ToString();
}

TEST(StoreLayout, ListStoreFilesOfEmptyStore) {
  TempDir dir;
  auto r = ListStoreFiles(dir.path());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->empty());
}

TEST(StoreLayout, ListStoreFiles) {
  TempDir dir;
  const std::string& s = dir.path();
  const std::string a = FileNameForTime(1000), b = FileNameForTime(2000), c = FileNameForTime(3000);
  for (uint32_t w : {0u, 1u, 12u}) {
    fs::create_directories(PacketDirectory(s, w));
    fs::create_directories(IndexDirectory(s, w));
  }
  // Writer 0: a (indexed), c (not yet indexed).
  Touch(PacketDirectory(s, 0) + "/" + a);
  Touch(IndexDirectory(s, 0) + "/" + a);
  Touch(PacketDirectory(s, 0) + "/" + c);
  Touch(IndexDirectory(s, 0) + "/" + c + ".tmp");  // an index being written does not count
  Touch(PacketDirectory(s, 0) + "/.lock");
  Touch(PacketDirectory(s, 0) + "/" + b + ".tmp");
  Touch(PacketDirectory(s, 0) + "/notes.txt");
  // Writer 1: b (indexed) and a (indexed); also an index without its packet file (ignored).
  Touch(PacketDirectory(s, 1) + "/" + b);
  Touch(IndexDirectory(s, 1) + "/" + b);
  Touch(PacketDirectory(s, 1) + "/" + a);
  Touch(IndexDirectory(s, 1) + "/" + a);
  Touch(IndexDirectory(s, 1) + "/" + c);
  // Writer 12: one unindexed file.
  Touch(PacketDirectory(s, 12) + "/" + a);
  // Things that are not writer directories.
  fs::create_directories(s + "/PKTx");
  Touch(s + "/PKTx/" + a);
  fs::create_directories(s + "/PKT");
  Touch(s + "/PKT/" + a);
  fs::create_directories(s + "/pkt3");
  Touch(s + "/pkt3/" + a);
  fs::create_directories(s + "/IDX7");
  Touch(s + "/IDX7/" + a);
  Touch(s + "/README");

  auto r = ListStoreFiles(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  struct Want {
    uint32_t writer;
    std::string name;
    bool indexed;
  } want[] = {{0, a, true}, {1, a, true}, {12, a, false}, {1, b, true}, {0, c, false}};
  ASSERT_EQ(r->size(), std::size(want));
  for (size_t i = 0; i < std::size(want); ++i) {
    const StoreFile& f = (*r)[i];
    EXPECT_EQ(f.writer, want[i].writer) << i;
    EXPECT_EQ(f.name, want[i].name) << i;
    EXPECT_EQ(f.indexed, want[i].indexed) << i;
    EXPECT_EQ(f.packet_path, PacketDirectory(s, want[i].writer) + "/" + want[i].name) << i;
    EXPECT_EQ(f.index_path, IndexDirectory(s, want[i].writer) + "/" + want[i].name) << i;
  }
}

TEST(StoreLayout, IndexedFollowsTheIndexFile) {
  TempDir dir;
  const std::string& s = dir.path();
  const std::string n = FileNameForTime(42);
  fs::create_directories(PacketDirectory(s, 3));
  Touch(PacketDirectory(s, 3) + "/" + n);
  // No IDX3 directory at all: listed, not indexed.
  auto r = ListStoreFiles(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_FALSE((*r)[0].indexed);
  fs::create_directories(IndexDirectory(s, 3));
  Touch(IndexDirectory(s, 3) + "/" + n);
  r = ListStoreFiles(s);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_TRUE((*r)[0].indexed);
  EXPECT_EQ((*r)[0].writer, 3u);
}

TEST(StoreLayout, NonRegularFilesAreSkippedNotOpened) {
  TempDir dir;
  const std::string& s = dir.path();
  fs::create_directories(PacketDirectory(s, 0));
  fs::create_directories(IndexDirectory(s, 0));
  const std::string fifo = FileNameForTime(1), subdir = FileNameForTime(2), good = FileNameForTime(3),
                    linked = FileNameForTime(4);
  ASSERT_EQ(mkfifo((PacketDirectory(s, 0) + "/" + fifo).c_str(), 0600), 0);
  fs::create_directories(PacketDirectory(s, 0) + "/" + subdir);
  Touch(PacketDirectory(s, 0) + "/" + good);
  ASSERT_EQ(mkfifo((IndexDirectory(s, 0) + "/" + good).c_str(), 0600), 0);  // its index is a FIFO
  ASSERT_EQ(symlink((PacketDirectory(s, 0) + "/" + good).c_str(), (PacketDirectory(s, 0) + "/" + linked).c_str()), 0);
  std::vector<std::string> skipped;
  auto r = ListStoreFiles(s, &skipped);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // The regular file (its FIFO index counted as missing) and the link to it; not the FIFO or the directory.
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].name, good);
  EXPECT_FALSE((*r)[0].indexed);
  EXPECT_EQ((*r)[1].name, linked);
  ASSERT_EQ(skipped.size(), 3u);
  std::sort(skipped.begin(), skipped.end());
  EXPECT_EQ(skipped[0], IndexDirectory(s, 0) + "/" + good + " is a FIFO, not a file rewind wrote: skipped");
  EXPECT_EQ(skipped[1], PacketDirectory(s, 0) + "/" + fifo + " is a FIFO, not a file rewind wrote: skipped");
  EXPECT_EQ(skipped[2], PacketDirectory(s, 0) + "/" + subdir + " is a directory, not a file rewind wrote: skipped");
  EXPECT_EQ(NotRegularFile(PacketDirectory(s, 0) + "/" + good), "");
  EXPECT_EQ(NotRegularFile(s + "/missing"), "");
}

TEST(StoreLayout, LooksLikeStore) {
  TempDir dir;
  const std::string& s = dir.path();
  EXPECT_TRUE(LooksLikeStore(s)) << "an empty directory: nothing written yet";
  Touch(s + "/passwd");
  EXPECT_FALSE(LooksLikeStore(s)) << "other files and nothing of a store";
  fs::create_directories(IndexDirectory(s, 2));
  EXPECT_TRUE(LooksLikeStore(s));
  fs::remove_all(IndexDirectory(s, 2));
  Touch(s + "/CATALOG");
  EXPECT_TRUE(LooksLikeStore(s));
  EXPECT_FALSE(LooksLikeStore(s + "/missing"));
}

TEST(WriterLock, AcquireCreatesTheDirectories) {
  TempDir dir;
  const std::string store = dir.path() + "/new/store";
  fs::create_directories(dir.path() + "/new");
  auto lock = WriterLock::Acquire(store, 5);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  EXPECT_EQ(lock->writer(), 5u);
  EXPECT_TRUE(fs::is_directory(PacketDirectory(store, 5)));
  EXPECT_TRUE(fs::is_directory(IndexDirectory(store, 5)));
  EXPECT_TRUE(fs::exists(PacketDirectory(store, 5) + "/.lock"));
  // The lock file is not a store file.
  auto files = ListStoreFiles(store);
  ASSERT_TRUE(files.ok());
  EXPECT_TRUE(files->empty());
}

TEST(WriterLock, SecondAcquireFailsWhileHeld) {
  TempDir dir;
  {
    auto first = WriterLock::Acquire(dir.path(), 0);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    // flock locks belong to the open file description: a second Acquire opens the file again and must
    // fail even from the same process.
    auto second = WriterLock::Acquire(dir.path(), 0);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), Status::kIOError);
    EXPECT_NE(second.status().message().find("in use"), std::string::npos) << second.status().message();
    // Another writer number is independent.
    auto other = WriterLock::Acquire(dir.path(), 1);
    EXPECT_TRUE(other.ok()) << other.status().ToString();
    // A separate open file description sees the lock too.
    int fd = open((PacketDirectory(dir.path(), 0) + "/.lock").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    EXPECT_NE(flock(fd, LOCK_EX | LOCK_NB), 0);
    close(fd);
  }
  // Released when the lock is destroyed.
  auto again = WriterLock::Acquire(dir.path(), 0);
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST(WriterLock, MoveKeepsTheLock) {
  TempDir dir;
  auto r = WriterLock::Acquire(dir.path(), 2);
  ASSERT_TRUE(r.ok());
  WriterLock moved(std::move(*r));
  EXPECT_EQ(moved.writer(), 2u);
  { WriterLock gone = std::move(r.value()); }  // destroying a moved-from lock must not release it
  EXPECT_FALSE(WriterLock::Acquire(dir.path(), 2).ok());
  // Move assignment releases the target's old lock and takes over the source's.
  auto r3 = WriterLock::Acquire(dir.path(), 3);
  ASSERT_TRUE(r3.ok());
  moved = std::move(*r3);
  EXPECT_EQ(moved.writer(), 3u);
  EXPECT_TRUE(WriterLock::Acquire(dir.path(), 2).ok()) << "the old lock of `moved` is released";
  EXPECT_FALSE(WriterLock::Acquire(dir.path(), 3).ok());
}

TEST(WriterLock, AcquireFreePicksTheNextFreeNumber) {
  TempDir dir;
  auto l0 = WriterLock::AcquireFree(dir.path(), 0);
  ASSERT_TRUE(l0.ok()) << l0.status().ToString();
  EXPECT_EQ(l0->writer(), 0u);
  auto l1 = WriterLock::AcquireFree(dir.path(), 0);
  ASSERT_TRUE(l1.ok()) << l1.status().ToString();
  EXPECT_EQ(l1->writer(), 1u);
  auto l5 = WriterLock::Acquire(dir.path(), 2);
  ASSERT_TRUE(l5.ok());
  auto l3 = WriterLock::AcquireFree(dir.path(), 0);
  ASSERT_TRUE(l3.ok());
  EXPECT_EQ(l3->writer(), 3u) << "0, 1 and 2 are held";
  auto l10 = WriterLock::AcquireFree(dir.path(), 10);
  ASSERT_TRUE(l10.ok());
  EXPECT_EQ(l10->writer(), 10u);
  // A released number is reused.
  { WriterLock drop = std::move(l1.value()); }
  auto again = WriterLock::AcquireFree(dir.path(), 0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->writer(), 1u);
}

TEST(WriterLock, AcquireInAnUncreatableStoreFails) {
  TempDir dir;
  Touch(dir.path() + "/file");
  auto r = WriterLock::Acquire(dir.path() + "/file/store", 0);
  EXPECT_FALSE(r.ok());
  auto f = WriterLock::AcquireFree(dir.path() + "/file/store", 0);
  EXPECT_FALSE(f.ok()) << "a non-lock error must be returned, not skipped over";
}

}  // namespace
}  // namespace rwd
