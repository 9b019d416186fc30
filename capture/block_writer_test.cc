#include "capture/block_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "index/block_format.h"
#include "index/test_temp_dir.h"

namespace rwd {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kMiB = 1u << 20;

// A 4096-aligned buffer of `len` bytes whose content identifies (seed, offset).
AlignedBuffer MakeBuffer(uint32_t len, uint32_t seed) {
  AlignedBuffer b = NewAlignedBuffer(len);
  auto* w = reinterpret_cast<uint32_t*>(b.get());
  for (uint32_t i = 0; i < len / 4; ++i) w[i] = seed * 0x9e3779b9u ^ i;
  return b;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// One context for the whole test binary, as a PacketFileWriter keeps one for all its files.
AioContext* TestContext() {
  static AioContext* ctx = [] {
    auto c = AioContext::Create(64);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? c->release() : nullptr;
  }();
  return ctx;
}

// Whether `dir`'s file system accepts O_DIRECT opens.
bool AcceptsODirect(const std::string& dir) {
  std::string probe = dir + "/probe";
  int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_DIRECT, 0644);
  bool ok = fd >= 0;
  if (ok) close(fd);
  unlink(probe.c_str());
  return ok;
}

// Writes `n` buffers of `len` bytes with at most `max_in_flight` pending, reaping as needed, and checks
// that every tag comes back exactly once and that the file holds the buffers in order.
void WriteAndCheck(const std::string& path, int n, uint32_t len, int max_in_flight, uint64_t preallocate,
                   bool* direct) {
  auto w = BlockWriter::Create(TestContext(), path, max_in_flight, preallocate);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  BlockWriter& bw = **w;
  *direct = bw.direct();
  std::vector<AlignedBuffer> bufs;
  for (int i = 0; i < n; ++i) bufs.push_back(MakeBuffer(len, i + 1));
  std::map<void*, int> returned;
  std::vector<void*> done;
  int max_seen_in_flight = 0;
  for (int i = 0; i < n; ++i) {
    if (bw.in_flight() >= max_in_flight) {
      Status s = bw.Reap(1, &done);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    Status s = bw.Submit(bufs[i].get(), len, bufs[i].get());
    ASSERT_TRUE(s.ok()) << i << ": " << s.ToString();
    max_seen_in_flight = std::max(max_seen_in_flight, bw.in_flight());
    EXPECT_EQ(bw.bytes_written(), uint64_t{len} * (i + 1));
  }
  Status s = bw.Drain(&done);
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = bw.Seal();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(bw.in_flight(), 0);
  for (void* t : done) ++returned[t];
  ASSERT_EQ(returned.size(), static_cast<size_t>(n)) << "every tag once";
  for (int i = 0; i < n; ++i) EXPECT_EQ(returned[bufs[i].get()], 1) << i;
  EXPECT_EQ(done.size(), static_cast<size_t>(n));
  if (max_in_flight > 1 && n > 1) {
    EXPECT_GT(max_seen_in_flight, 1) << "writes were not overlapped";
  }

  std::string content = ReadAll(path);
  ASSERT_EQ(content.size(), uint64_t{len} * n);
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(0, std::memcmp(content.data() + uint64_t{len} * i, bufs[i].get(), len)) << "block " << i;
  }
}

TEST(BlockWriter, WritesBlocksInOrderWithSeveralInFlight) {
  TempDir dir;
  bool direct = false;
  WriteAndCheck(dir.path() + "/f", 12, kMiB, 4, 0, &direct);
  EXPECT_EQ(direct, AcceptsODirect(dir.path()));
}

TEST(BlockWriter, OneInFlight) {
  TempDir dir;
  bool direct = false;
  WriteAndCheck(dir.path() + "/f", 3, kMiB, 1, 0, &direct);
}

TEST(BlockWriter, SmallAlignedWrites) {
  TempDir dir;
  bool direct = false;
  WriteAndCheck(dir.path() + "/f", 20, 4096, 8, 0, &direct);
}

TEST(BlockWriter, ReapReturnsAtLeastMinAndAtMostPending) {
  TempDir dir;
  auto w = BlockWriter::Create(TestContext(), dir.path() + "/f", 4, 0);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::vector<AlignedBuffer> bufs;
  for (int i = 0; i < 4; ++i) {
    bufs.push_back(MakeBuffer(kMiB, 100 + i));
    ASSERT_TRUE((*w)->Submit(bufs[i].get(), kMiB, reinterpret_cast<void*>(uintptr_t{1000} + i)).ok());
  }
  EXPECT_EQ((*w)->in_flight(), 4);
  std::vector<void*> done;
  ASSERT_TRUE((*w)->Reap(2, &done).ok());
  EXPECT_GE(done.size(), 2u);
  EXPECT_EQ((*w)->in_flight(), 4 - static_cast<int>(done.size()));
  // Asking for more than is pending returns what is pending.
  ASSERT_TRUE((*w)->Reap(100, &done).ok());
  EXPECT_EQ(done.size(), 4u);
  EXPECT_EQ((*w)->in_flight(), 0);
  // Nothing pending: returns at once.
  ASSERT_TRUE((*w)->Reap(1, &done).ok());
  EXPECT_EQ(done.size(), 4u);
  std::vector<uintptr_t> tags;
  for (void* t : done) tags.push_back(reinterpret_cast<uintptr_t>(t));
  std::sort(tags.begin(), tags.end());
  EXPECT_EQ(tags, (std::vector<uintptr_t>{1000, 1001, 1002, 1003}));
  std::vector<void*> closed;
  ASSERT_TRUE((*w)->Drain(&closed).ok());
  ASSERT_TRUE((*w)->Seal().ok());
  EXPECT_TRUE(closed.empty());
  EXPECT_EQ(fs::file_size(dir.path() + "/f"), 4u * kMiB);
}

TEST(BlockWriter, SubmitBeyondMaxInFlightIsRefusedWithoutLosingState) {
  // The header says Submit "blocks in Reap() first"; it cannot hand the reaped tags back, so it refuses
  // instead and the caller reaps (as PacketFileWriter does). Either way nothing may be lost.
  TempDir dir;
  auto w = BlockWriter::Create(TestContext(), dir.path() + "/f", 2, 0);
  ASSERT_TRUE(w.ok());
  AlignedBuffer a = MakeBuffer(4096, 1), b = MakeBuffer(4096, 2), c = MakeBuffer(4096, 3);
  ASSERT_TRUE((*w)->Submit(a.get(), 4096, a.get()).ok());
  ASSERT_TRUE((*w)->Submit(b.get(), 4096, b.get()).ok());
  Status s = (*w)->Submit(c.get(), 4096, c.get());
  if (!s.ok()) {
    EXPECT_EQ((*w)->in_flight(), 2);
    EXPECT_EQ((*w)->bytes_written(), 8192u);
    std::vector<void*> done;
    ASSERT_TRUE((*w)->Reap(1, &done).ok());
    ASSERT_TRUE((*w)->Submit(c.get(), 4096, c.get()).ok()) << "usable again after a reap";
  }
  std::vector<void*> done;
  ASSERT_TRUE((*w)->Drain(&done).ok());
  ASSERT_TRUE((*w)->Seal().ok());
  std::string content = ReadAll(dir.path() + "/f");
  ASSERT_EQ(content.size(), 3 * 4096u);
  EXPECT_EQ(0, std::memcmp(content.data(), a.get(), 4096));
  EXPECT_EQ(0, std::memcmp(content.data() + 4096, b.get(), 4096));
  EXPECT_EQ(0, std::memcmp(content.data() + 8192, c.get(), 4096));
}

TEST(BlockWriter, CreateOnAnExistingPathFails) {
  TempDir dir;
  const std::string path = dir.path() + "/exists";
  {
    std::ofstream out(path);
    out << "keep me";
  }
  auto w = BlockWriter::Create(TestContext(), path, 4, 0);
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(ReadAll(path), "keep me") << "an existing file must not be touched";
  // Also when a BlockWriter made it.
  const std::string path2 = dir.path() + "/made";
  auto w1 = BlockWriter::Create(TestContext(), path2, 1, 0);
  ASSERT_TRUE(w1.ok());
  auto w2 = BlockWriter::Create(TestContext(), path2, 1, 0);
  EXPECT_FALSE(w2.ok());
  // And in a missing directory.
  EXPECT_FALSE(BlockWriter::Create(TestContext(), dir.path() + "/no/such/file", 1, 0).ok());
}

TEST(BlockWriter, SealTrimsPreallocatedSpace) {
  TempDir dir;
  const std::string path = dir.path() + "/f";
  auto w = BlockWriter::Create(TestContext(), path, 2, 8 * uint64_t{kMiB});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  struct stat st;
  ASSERT_EQ(0, stat(path.c_str(), &st));
  EXPECT_EQ(st.st_size, 8 * kMiB) << "posix_fallocate extends the file";
  std::vector<AlignedBuffer> bufs;
  std::vector<void*> done;
  for (int i = 0; i < 3; ++i) {
    bufs.push_back(MakeBuffer(kMiB, 7 + i));
    if ((*w)->in_flight() >= 2) {
      ASSERT_TRUE((*w)->Reap(1, &done).ok());
    }
    ASSERT_TRUE((*w)->Submit(bufs[i].get(), kMiB, bufs[i].get()).ok());
  }
  ASSERT_TRUE((*w)->Drain(&done).ok());
  ASSERT_TRUE((*w)->Seal().ok());
  EXPECT_EQ(done.size(), 3u);
  ASSERT_EQ(0, stat(path.c_str(), &st));
  EXPECT_EQ(st.st_size, 3 * kMiB);
  EXPECT_LE(st.st_blocks * 512, 3 * kMiB + 64 * 1024) << "preallocated blocks are released";
  std::string content = ReadAll(path);
  ASSERT_EQ(content.size(), 3u * kMiB);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(0, std::memcmp(content.data() + uint64_t{kMiB} * i, bufs[i].get(), kMiB));
}

// A drained file is sealed on another thread after its aio context is gone (as the writer's finishing thread
// does): the seal touches only the file, and the data and the trimmed size come out as on the writing thread.
TEST(BlockWriter, DrainedFileSealsOnAnotherThreadAfterTheContextIsGone) {
  TempDir dir;
  const std::string path = dir.path() + "/f";
  auto aio = AioContext::Create(4);
  ASSERT_TRUE(aio.ok()) << aio.status().ToString();
  auto w = BlockWriter::Create(aio->get(), path, 4, 8 * uint64_t{kMiB});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::vector<AlignedBuffer> bufs;
  for (int i = 0; i < 3; ++i) {
    bufs.push_back(MakeBuffer(kMiB, 11 + i));
    ASSERT_TRUE((*w)->Submit(bufs[i].get(), kMiB, bufs[i].get()).ok());
  }
  std::vector<void*> done;
  ASSERT_TRUE((*w)->Drain(&done).ok());
  EXPECT_EQ(done.size(), 3u);
  EXPECT_EQ((*w)->in_flight(), 0);
  aio->reset();
  std::unique_ptr<BlockWriter> drained = std::move(*w);
  Status sealed;
  std::thread([&] {
    sealed = drained->Seal();
    drained.reset();
  }).join();
  ASSERT_TRUE(sealed.ok()) << sealed.ToString();
  std::string content = ReadAll(path);
  ASSERT_EQ(content.size(), 3u * kMiB) << "preallocation trimmed";
  for (int i = 0; i < 3; ++i) EXPECT_EQ(0, std::memcmp(content.data() + uint64_t{kMiB} * i, bufs[i].get(), kMiB));
}

// Writes of one page each, a block's stride apart (a partly filled block): the file holds them at their
// offsets and zeros between, takes the disk space of the pages alone once sealed, and ends at the last
// stride, also where nothing was preallocated.
void CheckStridedWrites(const std::string& dir, uint64_t preallocate) {
  const std::string path = dir + "/f";
  auto w = BlockWriter::Create(TestContext(), path, 2, preallocate);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::vector<AlignedBuffer> bufs;
  std::vector<void*> done;
  for (int i = 0; i < 3; ++i) {
    bufs.push_back(MakeBuffer(kBlockAlignment, 21 + i));
    if ((*w)->in_flight() >= 2) ASSERT_TRUE((*w)->Reap(1, &done).ok());
    ASSERT_TRUE((*w)->Submit(bufs[i].get(), kBlockAlignment, bufs[i].get(), kMiB).ok());
    EXPECT_EQ((*w)->bytes_written(), uint64_t{kMiB} * (i + 1));
  }
  EXPECT_FALSE((*w)->Submit(bufs[0].get(), 2 * kBlockAlignment, bufs[0].get(), kBlockAlignment).ok())
      << "a stride shorter than the write";
  ASSERT_TRUE((*w)->Drain(&done).ok());
  ASSERT_TRUE((*w)->Seal().ok());
  EXPECT_EQ(done.size(), 3u);
  std::string content = ReadAll(path);
  ASSERT_EQ(content.size(), 3u * kMiB) << "preallocate " << preallocate;
  std::string zeros(kMiB - kBlockAlignment, '\0');
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(0, std::memcmp(content.data() + uint64_t{kMiB} * i, bufs[i].get(), kBlockAlignment)) << i;
    EXPECT_EQ(content.compare(uint64_t{kMiB} * i + kBlockAlignment, zeros.size(), zeros), 0) << i;
  }
  struct stat st;
  ASSERT_EQ(0, stat(path.c_str(), &st));
  EXPECT_LE(st.st_blocks * 512, 3 * kBlockAlignment + 64 * 1024) << "the gaps hold no disk space";
}

TEST(BlockWriter, StridedWritesLeaveHolesBetween) {
  TempDir dir;
  CheckStridedWrites(dir.path(), 8 * uint64_t{kMiB});
  TempDir dir2;
  CheckStridedWrites(dir2.path(), 0);
  if (fs::is_directory("/dev/shm")) {
    TempDir shm("/dev/shm");
    CheckStridedWrites(shm.path(), 8 * uint64_t{kMiB});
  }
}

TEST(BlockWriter, SealWithoutWritesLeavesAnEmptyFile) {
  TempDir dir;
  const std::string path = dir.path() + "/f";
  auto w = BlockWriter::Create(TestContext(), path, 2, 4 * uint64_t{kMiB});
  ASSERT_TRUE(w.ok());
  std::vector<void*> done;
  ASSERT_TRUE((*w)->Drain(&done).ok());
  ASSERT_TRUE((*w)->Seal().ok());
  EXPECT_TRUE(done.empty());
  EXPECT_EQ(fs::file_size(path), 0u);
}

TEST(BlockWriter, DestructorWaitsForPendingWrites) {
  TempDir dir;
  const std::string path = dir.path() + "/f";
  std::vector<AlignedBuffer> bufs;
  {
    auto w = BlockWriter::Create(TestContext(), path, 4, 0);
    ASSERT_TRUE(w.ok());
    for (int i = 0; i < 4; ++i) {
      bufs.push_back(MakeBuffer(kMiB, 40 + i));
      ASSERT_TRUE((*w)->Submit(bufs[i].get(), kMiB, nullptr).ok());
    }
  }  // no Drain: the destructor must reap before the buffers may be freed
  std::string content = ReadAll(path);
  ASSERT_EQ(content.size(), 4u * kMiB);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(0, std::memcmp(content.data() + uint64_t{kMiB} * i, bufs[i].get(), kMiB));
}

TEST(BlockWriter, FilesSharingAContextGetOnlyTheirOwnTags) {
  TempDir dir;
  auto ctx = AioContext::Create(6);
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  auto a = BlockWriter::Create(ctx->get(), dir.path() + "/a", 3, 0);
  auto b = BlockWriter::Create(ctx->get(), dir.path() + "/b", 3, 0);
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<AlignedBuffer> bufs;
  for (int i = 0; i < 6; ++i) bufs.push_back(MakeBuffer(kMiB, 100 + i));
  for (int i = 0; i < 6; ++i) {  // interleaved: a gets the even buffers, b the odd ones
    BlockWriter& w = i % 2 == 0 ? **a : **b;
    ASSERT_TRUE(w.Submit(bufs[i].get(), kMiB, bufs[i].get()).ok());
  }
  // Waiting on a may collect b's completions too; they must stay b's.
  std::vector<void*> done_a, done_b;
  ASSERT_TRUE((*a)->Drain(&done_a).ok());
  ASSERT_TRUE((*a)->Seal().ok());
  EXPECT_EQ((*a)->in_flight(), 0);
  ASSERT_TRUE((*b)->Reap(3, &done_b).ok());
  ASSERT_TRUE((*b)->Drain(&done_b).ok());
  ASSERT_TRUE((*b)->Seal().ok());
  std::sort(done_a.begin(), done_a.end());
  std::sort(done_b.begin(), done_b.end());
  std::vector<void*> want_a = {bufs[0].get(), bufs[2].get(), bufs[4].get()};
  std::vector<void*> want_b = {bufs[1].get(), bufs[3].get(), bufs[5].get()};
  std::sort(want_a.begin(), want_a.end());
  std::sort(want_b.begin(), want_b.end());
  EXPECT_EQ(done_a, want_a);
  EXPECT_EQ(done_b, want_b);
  EXPECT_EQ((*ctx)->in_flight(), 0);
  std::string ca = ReadAll(dir.path() + "/a"), cb = ReadAll(dir.path() + "/b");
  ASSERT_EQ(ca.size(), 3u * kMiB);
  ASSERT_EQ(cb.size(), 3u * kMiB);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(0, std::memcmp(ca.data() + uint64_t{kMiB} * i, bufs[2 * i].get(), kMiB)) << i;
    EXPECT_EQ(0, std::memcmp(cb.data() + uint64_t{kMiB} * i, bufs[2 * i + 1].get(), kMiB)) << i;
  }
}

TEST(BlockWriter, ManyFilesThroughOneContext) {
  TempDir dir;
  auto ctx = AioContext::Create(2);
  ASSERT_TRUE(ctx.ok());
  AlignedBuffer buf = MakeBuffer(4096, 7);
  for (int f = 0; f < 300; ++f) {
    auto w = BlockWriter::Create(ctx->get(), dir.path() + "/" + std::to_string(f), 2, 8192);
    ASSERT_TRUE(w.ok()) << f << ": " << w.status().ToString();
    std::vector<void*> done;
    ASSERT_TRUE((*w)->Submit(buf.get(), 4096, buf.get()).ok());
    ASSERT_TRUE((*w)->Drain(&done).ok());
    ASSERT_TRUE((*w)->Seal().ok());
    ASSERT_EQ(done.size(), 1u);
    ASSERT_EQ(fs::file_size(dir.path() + "/" + std::to_string(f)), 4096u);
  }
}

TEST(BlockWriter, WorksOnTmpfs) {
  if (!fs::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  TempDir dir("/dev/shm");
  // tmpfs refuses O_DIRECT before Linux 6.6 (the writer then falls back to buffered I/O); later kernels
  // accept it. direct() must report what was actually used.
  const bool expect_direct = AcceptsODirect(dir.path());
  bool direct = !expect_direct;
  WriteAndCheck(dir.path() + "/f", 6, kMiB, 3, 8 * uint64_t{kMiB}, &direct);
  EXPECT_EQ(direct, expect_direct);
  EXPECT_EQ(fs::file_size(dir.path() + "/f"), 6u * kMiB);
  // Nothing else (such as a half-created file from the O_DIRECT attempt) is left behind.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

}  // namespace
}  // namespace rwd
