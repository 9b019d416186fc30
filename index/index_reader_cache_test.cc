#include "index/index_reader_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "index/index_builder.h"
#include "index/test_temp_dir.h"

namespace rwd {
namespace {

// An index table of an empty packet file whose summary says `file_bytes`, so that tables can be told apart.
void WriteEmptyTable(const std::string& path, uint64_t file_bytes) {
  IndexBuilder b;
  ASSERT_TRUE(b.Finish(path, file_bytes).ok()) << path;
}

// How many times this process holds the file once at `path` (now removed): open descriptors and mappings.
int Holds(const std::string& path) {
  int holds = 0;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (!ec && target.rfind(path, 0) == 0) ++holds;
  }
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.find(path) != std::string::npos) ++holds;
  }
  return holds;
}

TEST(IndexReaderCache, KeepsTheMostRecentlyUsedTablesUpToItsCapacity) {
  TempDir dir;
  for (int i = 0; i < 3; ++i) WriteEmptyTable(dir.path() + "/t" + std::to_string(i), 100 + i);
  IndexReaderCache cache(2);
  auto t0 = cache.Get(dir.path() + "/t0");
  ASSERT_TRUE(t0.ok());
  EXPECT_EQ((*t0)->summary().file_bytes, 100u);
  ASSERT_TRUE(cache.Get(dir.path() + "/t1").ok());
  auto again = cache.Get(dir.path() + "/t0");  // t0 is now the most recent
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), t0->get());
  ASSERT_TRUE(cache.Get(dir.path() + "/t2").ok());  // evicts t1
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 3u);
  ASSERT_TRUE(cache.Get(dir.path() + "/t0").ok());
  EXPECT_EQ(cache.hits(), 2u);
  ASSERT_TRUE(cache.Get(dir.path() + "/t1").ok());
  EXPECT_EQ(cache.misses(), 4u);
  EXPECT_FALSE(cache.Get(dir.path() + "/missing").ok());
  EXPECT_EQ(cache.size(), 2u);
}

TEST(IndexReaderCache, DropsTheReadersOfRemovedAndReplacedTables) {
  TempDir dir;
  const std::string kept = dir.path() + "/kept", removed = dir.path() + "/removed",
                    replaced = dir.path() + "/replaced";
  WriteEmptyTable(kept, 1);
  WriteEmptyTable(removed, 2);
  WriteEmptyTable(replaced, 3);
  IndexReaderCache cache(8);
  for (const std::string& p : {kept, removed, replaced}) ASSERT_TRUE(cache.Get(p).ok()) << p;
  EXPECT_EQ(cache.DropRemoved(), 0u);  // nothing changed
  EXPECT_EQ(cache.size(), 3u);

  ASSERT_EQ(unlink(removed.c_str()), 0);
  WriteEmptyTable(replaced + ".new", 4);  // written beside it and renamed over it, as repair does
  ASSERT_EQ(rename((replaced + ".new").c_str(), replaced.c_str()), 0);
  EXPECT_EQ(cache.DropRemoved(), 2u);
  EXPECT_EQ(cache.size(), 1u);
  uint64_t misses = cache.misses();
  auto r = cache.Get(replaced);  // the file now at the path, not the cached one
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->summary().file_bytes, 4u);
  EXPECT_EQ(cache.misses(), misses + 1);
  ASSERT_TRUE(cache.Get(kept).ok());
  EXPECT_EQ(cache.misses(), misses + 1);  // still cached
  EXPECT_EQ(cache.DropRemoved(), 0u);
}

TEST(IndexReaderCache, ARemovedTableIsLetGoOnceDroppedAndNoQueryHoldsIt) {
  // Until then its descriptor or mapping keeps the table's disk space in use.
  TempDir dir;
  const std::string path = dir.path() + "/t";
  WriteEmptyTable(path, 1);
  IndexReaderCache cache(4);
  ASSERT_TRUE(cache.Get(path).ok());
  ASSERT_EQ(unlink(path.c_str()), 0);
  EXPECT_GT(Holds(path), 0);
  {
    auto held = cache.Get(path);  // a query that still reads it
    ASSERT_TRUE(held.ok());
    EXPECT_EQ(cache.DropRemoved(), 1u);
    EXPECT_GT(Holds(path), 0);
  }
  EXPECT_EQ(Holds(path), 0);
}

}  // namespace
}  // namespace rwd
