#include "capture/stenographer_reader.h"

#include <linux/if_packet.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "index/block_format.h"

namespace rwd {
namespace {

namespace fs = std::filesystem;

// TPACKET_V3 blocks as a ring hands them over (BlockBuilder's layout is the kernel's; the reader does not
// look at rewind's private header). Block b holds `per_block[b]` frames of 60 + i bytes, byte i of frame k
// being k + i.
std::string Blocks(const std::vector<int>& per_block, std::vector<std::string>* frames) {
  std::string out;
  std::vector<uint8_t> buf(kBlockSize);
  int k = 0;
  for (size_t b = 0; b < per_block.size(); ++b) {
    BlockBuilder builder;
    builder.Reset(buf.data(), 1, 65535, b);
    for (int i = 0; i < per_block[b]; ++i, ++k) {
      std::string f(60 + k, '\0');
      for (size_t j = 0; j < f.size(); ++j) f[j] = static_cast<char>(k + j);
      EXPECT_TRUE(builder.Add(1700000000 + k, 1000 * k, static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()) + 4,
                              reinterpret_cast<const uint8_t*>(f.data())));
      frames->push_back(f);
    }
    builder.Finish();
    out.append(reinterpret_cast<const char*>(buf.data()), kBlockSize);
  }
  return out;
}

class StenographerReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char buf[] = "/tmp/rwd_steno_reader_XXXXXX";
    dir_ = mkdtemp(buf);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  // Reads `path` to the end; returns the frames.
  std::vector<std::string> ReadAll(const std::string& path, Status* status) {
    auto r = StenographerReader::Open(path);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::string> out;
    PacketView p;
    while ((*r)->Next(&p)) {
      EXPECT_EQ(p.ts_sec, 1700000000u + out.size());
      EXPECT_EQ(p.len, p.caplen + 4);
      out.emplace_back(reinterpret_cast<const char*>(p.data), p.caplen);
    }
    *status = (*r)->status();
    return out;
  }
  std::string dir_;
};

TEST_F(StenographerReaderTest, ReadsEveryPacketOfEveryBlockInOrder) {
  std::vector<std::string> want;
  std::string file = Blocks({3, 0, 5}, &want);
  Status s;
  EXPECT_EQ(ReadAll(Write("1", file), &s), want);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(StenographerReaderTest, ATruncatedFileKeepsTheWholeBlocksAndNamesTheCut) {
  std::vector<std::string> want;
  std::string file = Blocks({4, 4}, &want);
  Status s;
  std::vector<std::string> got = ReadAll(Write("2", file.substr(0, kBlockSize + 200)), &s);
  EXPECT_EQ(got, std::vector<std::string>(want.begin(), want.begin() + 4));
  EXPECT_EQ(s.code(), Status::kCorruption);
  EXPECT_NE(s.message().find("block 1 (byte offset 1048576): the file ends inside the block"), std::string::npos) << s.ToString();
}

TEST_F(StenographerReaderTest, ABrokenPacketChainIsDamageNotAnOverrun) {
  std::vector<std::string> want;
  std::string file = Blocks({4}, &want);
  tpacket_block_desc desc;
  std::memcpy(&desc, file.data(), sizeof(desc));
  uint32_t second = desc.hdr.bh1.offset_to_first_pkt;
  uint32_t delta;
  std::memcpy(&delta, file.data() + second, 4);
  second += delta;
  uint32_t huge = kBlockSize;  // the second packet's tp_next_offset points past the block
  std::memcpy(file.data() + second, &huge, 4);
  Status s;
  std::vector<std::string> got = ReadAll(Write("3", file), &s);
  EXPECT_EQ(got, std::vector<std::string>(want.begin(), want.begin() + 2));
  EXPECT_EQ(s.code(), Status::kCorruption) << s.ToString();
  uint32_t zero = 0;  // ... or ends before the block's packet count
  std::memcpy(file.data() + second, &zero, 4);
  got = ReadAll(Write("4", file), &s);
  EXPECT_EQ(got.size(), 2u);
  EXPECT_NE(s.message().find("ends before the block's packet count"), std::string::npos) << s.ToString();
  // ... or points back at the first packet (a 32-bit offset that wraps): damage, not the two packets again
  // and again up to the block's packet count.
  uint32_t back = 0u - delta;
  std::memcpy(file.data() + second, &back, 4);
  got = ReadAll(Write("5", file), &s);
  EXPECT_EQ(got, std::vector<std::string>(want.begin(), want.begin() + 2));
  EXPECT_NE(s.message().find("packet chain goes backwards"), std::string::npos) << s.ToString();
}

TEST_F(StenographerReaderTest, ListsThreadsInOrderAndSkipsFilesBeingWritten) {
  for (const char* d : {"PKT0", "PKT1", "PKT10", "IDX0"}) fs::create_directories(dir_ + "/steno/" + d);
  // Packet files: empty (just created) or starting with a block; the rest holds other bytes, as stenotype's
  // index tables (which share the packet files' names) do.
  std::vector<std::string> ignored;
  std::string block = Blocks({1}, &ignored).substr(0, 4096);
  for (const char* f : {"PKT0/1700000000000002", "PKT0/.1700000000000003", "PKT10/999"}) std::ofstream(dir_ + "/steno/" + f);
  for (const char* f : {"PKT0/1700000000000001", "PKT1/1700000000000000"}) std::ofstream(dir_ + "/steno/" + f) << block;
  for (const char* f : {"PKT1/README", "PKT1/1700000000000009", "IDX0/1700000000000001"}) {
    std::ofstream(dir_ + "/steno/" + f) << "an index table";
  }
  std::vector<std::string> being_written, other;
  auto files = ListStenographerPacketFiles(dir_ + "/steno", &being_written, &other);
  ASSERT_TRUE(files.ok());
  std::string s = dir_ + "/steno/";
  EXPECT_EQ(*files, (std::vector<std::string>{s + "PKT0/1700000000000001", s + "PKT0/1700000000000002",
                                              s + "PKT1/1700000000000000", s + "PKT10/999"}));
  EXPECT_EQ(being_written, std::vector<std::string>{s + "PKT0/.1700000000000003"});
  std::sort(other.begin(), other.end());  // in directory order
  EXPECT_EQ(other, (std::vector<std::string>{s + "PKT1/1700000000000009", s + "PKT1/README"}));
  // The config names each thread's packet directory.
  std::string conf = Write("steno.conf", "{\"Threads\": [{\"PacketsDirectory\": \"" + s + "PKT1\"}, {\"PacketsDirectory\": \"" +
                                             s + "PKT0\"}]}");
  being_written.clear(), other.clear();
  files = ListStenographerPacketFiles(conf, &being_written, &other);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->front(), s + "PKT1/1700000000000000");
  EXPECT_EQ(files->size(), 3u);
  EXPECT_EQ(ListStenographerPacketFiles(Write("x.conf", "{\"Interface\": \"eth0\"}"), &being_written, &other).status().code(),
            Status::kInvalidArgument);
}

}  // namespace
}  // namespace rwd
