#include "capture/pcapng_reader.h"

#include <pcap/pcap.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rwd {
namespace {

using Bytes = std::vector<uint8_t>;

// ---------------------------------------------------------------------------------------------------------
// Building pcapng files byte by byte, in either byte order.

class PcapngBuilder {
 public:
  const Bytes& bytes() const { return out_; }
  size_t size() const { return out_.size(); }

  // A Section Header Block; switches the byte order of everything after it.
  void Shb(bool big_endian, uint16_t major = 1, uint16_t minor = 0) {
    big_ = big_endian;
    Bytes body;
    P32(&body, 0x1A2B3C4D);
    P16(&body, major);
    P16(&body, minor);
    P64(&body, ~uint64_t{0});  // section length unknown
    Option(&body, 4, Bytes{'t', 'e', 's', 't'});  // shb_userappl
    End(&body);
    Block(0x0A0D0D0A, body);
  }

  void Idb(uint16_t linktype, uint32_t snaplen, std::optional<uint8_t> tsresol = std::nullopt,
           std::optional<int64_t> tsoffset = std::nullopt) {
    Bytes body;
    P16(&body, linktype);
    P16(&body, 0);
    P32(&body, snaplen);
    Option(&body, 2, Bytes{'e', 't', 'h', '0', '1'});  // if_name, 5 bytes: padded
    if (tsresol) Option(&body, 9, Bytes{*tsresol});
    if (tsoffset) {
      Bytes v;
      P64(&v, static_cast<uint64_t>(*tsoffset));
      Option(&body, 14, v);
    }
    End(&body);
    Block(1, body);
  }

  // An Enhanced Packet Block; `len` 0 means data.size().
  void Epb(uint32_t interface_id, uint64_t ts, const Bytes& data, uint32_t len = 0,
           bool with_options = true) {
    Bytes body;
    P32(&body, interface_id);
    P32(&body, static_cast<uint32_t>(ts >> 32));
    P32(&body, static_cast<uint32_t>(ts));
    P32(&body, static_cast<uint32_t>(data.size()));
    P32(&body, len != 0 ? len : static_cast<uint32_t>(data.size()));
    Data(&body, data);
    if (with_options) {
      Bytes flags;
      P32(&flags, 1);  // epb_flags: inbound
      Option(&body, 2, flags);
      End(&body);
    }
    Block(6, body);
  }

  // An obsolete Packet Block (type 2).
  void Pb(uint16_t interface_id, uint64_t ts, const Bytes& data, uint32_t len = 0) {
    Bytes body;
    P16(&body, interface_id);
    P16(&body, 0);  // drops
    P32(&body, static_cast<uint32_t>(ts >> 32));
    P32(&body, static_cast<uint32_t>(ts));
    P32(&body, static_cast<uint32_t>(data.size()));
    P32(&body, len != 0 ? len : static_cast<uint32_t>(data.size()));
    Data(&body, data);
    Block(2, body);
  }

  void Spb(uint32_t len, const Bytes& data) {
    Bytes body;
    P32(&body, len);
    Data(&body, data);
    Block(3, body);
  }

  // Any block: body is padded to 4.
  void Block(uint32_t type, Bytes body) {
    while (body.size() % 4 != 0) body.push_back(0);
    uint32_t total = static_cast<uint32_t>(body.size() + 12);
    P32(&out_, type);
    P32(&out_, total);
    out_.insert(out_.end(), body.begin(), body.end());
    P32(&out_, total);
  }

  void Append(const Bytes& raw) { out_.insert(out_.end(), raw.begin(), raw.end()); }
  // Overwrites a 32-bit field at `offset` in the current byte order.
  void Patch32(size_t offset, uint32_t v) {
    Bytes b;
    P32(&b, v);
    std::copy(b.begin(), b.end(), out_.begin() + offset);
  }

  void P16(Bytes* b, uint16_t v) const {
    if (big_) {
      b->push_back(v >> 8);
      b->push_back(v & 0xff);
    } else {
      b->push_back(v & 0xff);
      b->push_back(v >> 8);
    }
  }
  void P32(Bytes* b, uint32_t v) const {
    if (big_) {
      P16(b, v >> 16);
      P16(b, v & 0xffff);
    } else {
      P16(b, v & 0xffff);
      P16(b, v >> 16);
    }
  }
  void P64(Bytes* b, uint64_t v) const {
    if (big_) {
      P32(b, v >> 32);
      P32(b, static_cast<uint32_t>(v));
    } else {
      P32(b, static_cast<uint32_t>(v));
      P32(b, v >> 32);
    }
  }
  void Option(Bytes* b, uint16_t code, const Bytes& v) const {
    P16(b, code);
    P16(b, static_cast<uint16_t>(v.size()));
    Data(b, v);
  }
  static void End(Bytes* b) { b->insert(b->end(), 4, 0); }
  static void Data(Bytes* b, const Bytes& v) {
    b->insert(b->end(), v.begin(), v.end());
    while (b->size() % 4 != 0) b->push_back(0);
  }

 private:
  bool big_ = false;
  Bytes out_;
};

Bytes Payload(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

Bytes Prefix(const Bytes& b, size_t n) { return Bytes(b.begin(), b.begin() + static_cast<ptrdiff_t>(n)); }

struct Got {
  uint32_t linktype, snaplen, interface_id;
  int64_t ts_sec;
  uint32_t ts_nsec, caplen, len;
  Bytes data;
};

struct ReadResult {
  Status open;  // Open()'s status
  std::vector<Got> packets;
  Status end;  // status() after the last Next()
  uint64_t offset = 0;
};

class PcapngReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pcapng_reader_test." + std::to_string(getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const Bytes& b, size_t n = SIZE_MAX) {
    std::string path = (dir_ / "f.pcapng").string();
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(std::min(n, b.size())));
    return path;
  }

  ReadResult Read(const Bytes& b, size_t n = SIZE_MAX) { return ReadPath(Write(b, n)); }

  static ReadResult ReadPath(const std::string& path) {
    ReadResult r;
    auto reader = PcapngReader::Open(path);
    r.open = reader.status();
    if (!reader.ok()) return r;
    PcapngReader::Packet p;
    while ((*reader)->Next(&p)) {
      EXPECT_LE(p.caplen, p.len);
      r.packets.push_back(Got{p.linktype, p.snaplen, p.interface_id, p.ts_sec, p.ts_nsec, p.caplen, p.len,
                              Bytes(p.data, p.data + p.caplen)});
    }
    r.end = (*reader)->status();
    r.offset = (*reader)->offset();
    // Once finished, it stays finished.
    EXPECT_FALSE((*reader)->Next(&p));
    EXPECT_EQ(r.end.code(), (*reader)->status().code());
    return r;
  }

  std::filesystem::path dir_;
};

// ---------------------------------------------------------------------------------------------------------
// Hand-built files.

TEST_F(PcapngReaderTest, LittleEndianMicroseconds) {
  PcapngBuilder b;
  b.Shb(false);
  b.Idb(1, 65535);  // no if_tsresol: microseconds
  b.Epb(0, 1700000000123456ull, Payload(5, 1), 60);
  b.Epb(0, 1700000001000001ull, Payload(64, 2));
  b.Epb(0, 1700000002000000ull, Payload(6, 3), 2);  // len below caplen: raised to caplen
  ReadResult r = Read(b.bytes());
  ASSERT_TRUE(r.open.ok()) << r.open.ToString();
  ASSERT_TRUE(r.end.ok()) << r.end.ToString();
  ASSERT_EQ(3u, r.packets.size());
  EXPECT_EQ(1u, r.packets[0].linktype);
  EXPECT_EQ(65535u, r.packets[0].snaplen);
  EXPECT_EQ(0u, r.packets[0].interface_id);
  EXPECT_EQ(1700000000, r.packets[0].ts_sec);
  EXPECT_EQ(123456000u, r.packets[0].ts_nsec);
  EXPECT_EQ(5u, r.packets[0].caplen);
  EXPECT_EQ(60u, r.packets[0].len);
  EXPECT_EQ(Payload(5, 1), r.packets[0].data);
  EXPECT_EQ(1700000001, r.packets[1].ts_sec);
  EXPECT_EQ(1000u, r.packets[1].ts_nsec);
  EXPECT_EQ(64u, r.packets[1].caplen);
  EXPECT_EQ(64u, r.packets[1].len);
  EXPECT_EQ(Payload(64, 2), r.packets[1].data);
  EXPECT_EQ(6u, r.packets[2].caplen);
  EXPECT_EQ(6u, r.packets[2].len);
  EXPECT_EQ(b.size(), r.offset);
}

TEST_F(PcapngReaderTest, BigEndianNanoseconds) {
  PcapngBuilder b;
  b.Shb(true);
  b.Idb(113, 262144, 9);
  b.Epb(0, 1725966551231155123ull, Payload(90, 3), 0, false);
  b.Epb(0, 999999999ull, Payload(3, 4), 1500);
  ReadResult r = Read(b.bytes());
  ASSERT_TRUE(r.open.ok()) << r.open.ToString();
  ASSERT_TRUE(r.end.ok()) << r.end.ToString();
  ASSERT_EQ(2u, r.packets.size());
  EXPECT_EQ(113u, r.packets[0].linktype);
  EXPECT_EQ(262144u, r.packets[0].snaplen);
  EXPECT_EQ(1725966551, r.packets[0].ts_sec);
  EXPECT_EQ(231155123u, r.packets[0].ts_nsec);
  EXPECT_EQ(90u, r.packets[0].caplen);
  EXPECT_EQ(Payload(90, 3), r.packets[0].data);
  EXPECT_EQ(0, r.packets[1].ts_sec);
  EXPECT_EQ(999999999u, r.packets[1].ts_nsec);
  EXPECT_EQ(3u, r.packets[1].caplen);
  EXPECT_EQ(1500u, r.packets[1].len);
  EXPECT_EQ(Payload(3, 4), r.packets[1].data);
}

TEST_F(PcapngReaderTest, OtherResolutionsAndOffsets) {
  for (bool big : {false, true}) {
    PcapngBuilder b;
    b.Shb(big);
    b.Idb(1, 0, 0x80 | 20);                     // 0: 2^-20 s
    b.Idb(1, 0, 0x80 | 0);                      // 1: whole seconds (binary)
    b.Idb(1, 0, 0);                             // 2: whole seconds (decimal)
    b.Idb(1, 0, 12);                            // 3: picoseconds
    b.Idb(1, 0, 3, -3600);                      // 4: milliseconds, an hour earlier
    b.Idb(1, 0, std::nullopt, 1000000000);      // 5: microseconds, 10^9 s later
    b.Idb(1, 0, 0x80 | 63);                     // 6: 2^-63 s
    b.Idb(1, 0, 19);                            // 7: 10^-19 s
    b.Idb(1, 0, 0x80 | 0, 1);                   // 8: whole seconds, 1 s later
    b.Epb(0, (uint64_t{1700000000} << 20) | 0x80000, Payload(1, 0));  // + 0.5 s
    b.Epb(0, (uint64_t{1700000000} << 20) | 1, Payload(1, 0));        // + 2^-20 s = 953.67 ns
    b.Epb(1, 1700000000, Payload(1, 0));
    b.Epb(2, 1700000000, Payload(1, 0));
    b.Epb(3, 1700000000123456789ull, Payload(1, 0));  // 1700000 s + 123456789 ps
    b.Epb(4, 1700000000999ull, Payload(1, 0));
    b.Epb(5, 5, Payload(1, 0));
    b.Epb(6, (uint64_t{3} << 62) + 3, Payload(1, 0));  // 1.5 s + 3 units
    b.Epb(7, 12345678901234567890ull, Payload(1, 0));      // 1.2345678901234567890 s
    b.Epb(4, 1000, Payload(1, 0));                           // 1 s, an hour earlier: negative
    b.Epb(8, ~uint64_t{0}, Payload(1, 0));                   // beyond int64: saturates
    ReadResult r = Read(b.bytes());
    ASSERT_TRUE(r.end.ok()) << r.end.ToString();
    ASSERT_EQ(11u, r.packets.size());
    EXPECT_EQ(1700000000, r.packets[0].ts_sec);
    EXPECT_EQ(500000000u, r.packets[0].ts_nsec);
    EXPECT_EQ(1700000000, r.packets[1].ts_sec);
    EXPECT_EQ(953u, r.packets[1].ts_nsec);  // rounded down
    EXPECT_EQ(1700000000, r.packets[2].ts_sec);
    EXPECT_EQ(0u, r.packets[2].ts_nsec);
    EXPECT_EQ(1700000000, r.packets[3].ts_sec);
    EXPECT_EQ(0u, r.packets[3].ts_nsec);
    EXPECT_EQ(1700000, r.packets[4].ts_sec);
    EXPECT_EQ(123456u, r.packets[4].ts_nsec);
    EXPECT_EQ(1700000000 - 3600, r.packets[5].ts_sec);
    EXPECT_EQ(999000000u, r.packets[5].ts_nsec);
    EXPECT_EQ(1000000000, r.packets[6].ts_sec);
    EXPECT_EQ(5000u, r.packets[6].ts_nsec);
    EXPECT_EQ(1, r.packets[7].ts_sec);
    EXPECT_EQ(500000000u, r.packets[7].ts_nsec);
    EXPECT_EQ(1, r.packets[8].ts_sec);
    EXPECT_EQ(234567890u, r.packets[8].ts_nsec);
    EXPECT_EQ(1 - 3600, r.packets[9].ts_sec);
    EXPECT_EQ(0u, r.packets[9].ts_nsec);
    EXPECT_EQ(std::numeric_limits<int64_t>::max(), r.packets[10].ts_sec);
    EXPECT_EQ(0u, r.packets[10].ts_nsec);
  }
}

TEST_F(PcapngReaderTest, MixedInterfacesInOneSection) {
  PcapngBuilder b;
  b.Shb(false);
  b.Idb(1, 262144, 9);
  b.Idb(113, 8192, 6);
  b.Idb(274, 0);
  b.Epb(2, 7, Payload(20, 5));
  b.Epb(0, 8, Payload(14, 6));
  b.Epb(1, 9, Payload(16, 7));
  ReadResult r = Read(b.bytes());
  ASSERT_TRUE(r.end.ok()) << r.end.ToString();
  ASSERT_EQ(3u, r.packets.size());
  EXPECT_EQ(274u, r.packets[0].linktype);
  EXPECT_EQ(0u, r.packets[0].snaplen);
  EXPECT_EQ(2u, r.packets[0].interface_id);
  EXPECT_EQ(7000u, r.packets[0].ts_nsec);
  EXPECT_EQ(1u, r.packets[1].linktype);
  EXPECT_EQ(262144u, r.packets[1].snaplen);
  EXPECT_EQ(8u, r.packets[1].ts_nsec);
  EXPECT_EQ(113u, r.packets[2].linktype);
  EXPECT_EQ(8192u, r.packets[2].snaplen);
  EXPECT_EQ(9000u, r.packets[2].ts_nsec);
  EXPECT_EQ(Payload(16, 7), r.packets[2].data);
}

TEST_F(PcapngReaderTest, SimplePacketBlocks) {
  PcapngBuilder b;
  b.Shb(false);
  b.Idb(1, 4);                    // snaplen 4 clips
  b.Spb(10, Payload(10, 1));      // caplen min(10, 4, 12) = 4
  b.Shb(true);
  b.Idb(101, 0);                  // unlimited
  b.Spb(100, Payload(8, 2));      // block holds 8 bytes: caplen 8, len 100
  b.Spb(3, Payload(3, 3));        // padded to 4: caplen 3
  b.Spb(0, Bytes{});
  ReadResult r = Read(b.bytes());
  ASSERT_TRUE(r.end.ok()) << r.end.ToString();
  ASSERT_EQ(4u, r.packets.size());
  EXPECT_EQ(1u, r.packets[0].linktype);
  EXPECT_EQ(4u, r.packets[0].caplen);
  EXPECT_EQ(10u, r.packets[0].len);
  EXPECT_EQ(Prefix(Payload(10, 1), 4), r.packets[0].data);
  EXPECT_EQ(0, r.packets[0].ts_sec);
  EXPECT_EQ(0u, r.packets[0].ts_nsec);
  EXPECT_EQ(101u, r.packets[1].linktype);
  EXPECT_EQ(8u, r.packets[1].caplen);
  EXPECT_EQ(100u, r.packets[1].len);
  EXPECT_EQ(Payload(8, 2), r.packets[1].data);
  EXPECT_EQ(3u, r.packets[2].caplen);
  EXPECT_EQ(3u, r.packets[2].len);
  EXPECT_EQ(Payload(3, 3), r.packets[2].data);
  EXPECT_EQ(0u, r.packets[3].caplen);
  EXPECT_EQ(0u, r.packets[3].len);
}

TEST_F(PcapngReaderTest, ObsoletePacketBlocks) {
  for (bool big : {false, true}) {
    PcapngBuilder b;
    b.Shb(big);
    b.Idb(0, 0);
    b.Idb(1, 0, 9);
    b.Pb(1, 1700000000000000042ull, Payload(33, 9), 1000);
    ReadResult r = Read(b.bytes());
    ASSERT_TRUE(r.end.ok()) << r.end.ToString();
    ASSERT_EQ(1u, r.packets.size());
    EXPECT_EQ(1u, r.packets[0].linktype);
    EXPECT_EQ(1u, r.packets[0].interface_id);
    EXPECT_EQ(1700000000, r.packets[0].ts_sec);
    EXPECT_EQ(42u, r.packets[0].ts_nsec);
    EXPECT_EQ(33u, r.packets[0].caplen);
    EXPECT_EQ(1000u, r.packets[0].len);
    EXPECT_EQ(Payload(33, 9), r.packets[0].data);
  }
}

TEST_F(PcapngReaderTest, SectionsResetInterfacesAndSwitchByteOrder) {
  PcapngBuilder b;
  b.Shb(false);
  b.Idb(1, 1000);
  b.Idb(113, 2000, 9);
  b.Epb(1, 5, Payload(7, 1));
  b.Shb(true);
  b.Idb(101, 3000, 3);
  b.Epb(0, 5, Payload(9, 2));
  b.Shb(false);
  b.Idb(228, 4000);
  b.Epb(0, 5, Payload(11, 3));
  ReadResult r = Read(b.bytes());
  ASSERT_TRUE(r.end.ok()) << r.end.ToString();
  ASSERT_EQ(3u, r.packets.size());
  EXPECT_EQ(113u, r.packets[0].linktype);
  EXPECT_EQ(2000u, r.packets[0].snaplen);
  EXPECT_EQ(5u, r.packets[0].ts_nsec);
  EXPECT_EQ(101u, r.packets[1].linktype);
  EXPECT_EQ(3000u, r.packets[1].snaplen);
  EXPECT_EQ(5000000u, r.packets[1].ts_nsec);
  EXPECT_EQ(Payload(9, 2), r.packets[1].data);
  EXPECT_EQ(228u, r.packets[2].linktype);
  EXPECT_EQ(5000u, r.packets[2].ts_nsec);

  // Interface 1 of the first section does not exist in the second.
  PcapngBuilder c;
  c.Shb(false);
  c.Idb(1, 0);
  c.Idb(1, 0);
  c.Epb(1, 5, Payload(7, 1));
  size_t second = c.size();
  c.Shb(true);
  c.Idb(1, 0);
  size_t bad = c.size();
  c.Epb(1, 5, Payload(7, 1));
  r = Read(c.bytes());
  EXPECT_EQ(1u, r.packets.size());
  EXPECT_EQ(Status::kCorruption, r.end.code());
  EXPECT_NE(std::string::npos, r.end.message().find("offset " + std::to_string(bad))) << r.end.message();
  EXPECT_NE(std::string::npos, r.end.message().find("interface 1")) << r.end.message();
  EXPECT_EQ(bad, r.offset);
  EXPECT_LT(second, bad);
}

TEST_F(PcapngReaderTest, SkipsOtherBlocksAndHandlesBigOnes) {
  PcapngBuilder b;
  b.Shb(false);
  b.Block(4, Payload(30, 1));           // name resolution
  b.Idb(1, 0, 9);
  b.Block(5, Payload(24, 2));           // interface statistics
  b.Epb(0, 1, Payload(200000, 3));      // bigger than the initial buffer alone
  b.Block(0xBAD, Payload(3 << 20, 4));  // 3 MiB custom block: streamed past
  b.Block(0x40000BAD, Bytes{});
  b.Block(0x12345678, Payload(1, 5));
  b.Block(0x0000000A, Payload(100, 6));  // decryption secrets
  b.Epb(0, 2, Payload(300000, 7));       // caplen above 262144: clipped
  b.Epb(0, 3, Payload(262144, 8));
  b.Block(0x80000001, Payload(4, 9));
  b.Spb(300000, Payload(300000, 10));    // clipped too
  ReadResult r = Read(b.bytes());
  ASSERT_TRUE(r.end.ok()) << r.end.ToString();
  ASSERT_EQ(4u, r.packets.size());
  EXPECT_EQ(Payload(200000, 3), r.packets[0].data);
  EXPECT_EQ(2u, r.packets[1].ts_nsec);
  EXPECT_EQ(262144u, r.packets[1].caplen);
  EXPECT_EQ(300000u, r.packets[1].len);
  EXPECT_EQ(Prefix(Payload(300000, 7), 262144), r.packets[1].data);
  EXPECT_EQ(262144u, r.packets[2].caplen);
  EXPECT_EQ(262144u, r.packets[2].len);
  EXPECT_EQ(Payload(262144, 8), r.packets[2].data);
  EXPECT_EQ(262144u, r.packets[3].caplen);
  EXPECT_EQ(300000u, r.packets[3].len);
  EXPECT_EQ(Prefix(Payload(300000, 10), 262144), r.packets[3].data);
  EXPECT_EQ(b.size(), r.offset);
}

TEST_F(PcapngReaderTest, EmptySectionsAreFine) {
  PcapngBuilder b;
  b.Shb(true);
  b.Shb(false);
  b.Idb(1, 0);
  ReadResult r = Read(b.bytes());
  EXPECT_TRUE(r.open.ok());
  EXPECT_TRUE(r.end.ok()) << r.end.ToString();
  EXPECT_EQ(0u, r.packets.size());
  EXPECT_EQ(b.size(), r.offset);
}

TEST_F(PcapngReaderTest, TruncationAtEveryLength) {
  for (bool big : {false, true}) {
    PcapngBuilder b;
    std::vector<size_t> ends;          // end offset of every block
    std::vector<size_t> packet_ends;   // end offset of every packet block
    b.Shb(big);
    ends.push_back(b.size());
    b.Idb(1, 0, 9);
    ends.push_back(b.size());
    b.Epb(0, 100, Payload(13, 1));
    ends.push_back(b.size());
    packet_ends.push_back(b.size());
    b.Block(4, Payload(9, 2));
    ends.push_back(b.size());
    b.Spb(6, Payload(6, 3));
    ends.push_back(b.size());
    packet_ends.push_back(b.size());
    b.Shb(!big);
    ends.push_back(b.size());
    b.Idb(113, 0, 6);
    ends.push_back(b.size());
    b.Pb(0, 200, Payload(2, 4));
    ends.push_back(b.size());
    packet_ends.push_back(b.size());
    b.Epb(0, 300, Payload(21, 5));
    ends.push_back(b.size());
    packet_ends.push_back(b.size());

    ReadResult whole = Read(b.bytes());
    ASSERT_TRUE(whole.end.ok()) << whole.end.ToString();
    ASSERT_EQ(4u, whole.packets.size());

    for (size_t n = 0; n < b.size(); ++n) {
      SCOPED_TRACE("big " + std::to_string(big) + " length " + std::to_string(n));
      ReadResult r = Read(b.bytes(), n);
      if (n < 12) {
        EXPECT_EQ(Status::kInvalidArgument, r.open.code()) << r.open.ToString();
        continue;
      }
      ASSERT_TRUE(r.open.ok()) << r.open.ToString();
      size_t complete = 0;  // whole packets in the first n bytes
      while (complete < packet_ends.size() && packet_ends[complete] <= n) ++complete;
      ASSERT_EQ(complete, r.packets.size());
      for (size_t i = 0; i < complete; ++i) {
        EXPECT_EQ(whole.packets[i].data, r.packets[i].data);
        EXPECT_EQ(whole.packets[i].ts_nsec, r.packets[i].ts_nsec);
        EXPECT_EQ(whole.packets[i].linktype, r.packets[i].linktype);
      }
      size_t boundary = 0;  // end of the last whole block
      for (size_t e : ends) {
        if (e <= n) boundary = e;
      }
      EXPECT_EQ(boundary, r.offset);
      if (boundary == n) {
        EXPECT_TRUE(r.end.ok()) << r.end.ToString();
      } else {
        EXPECT_EQ(Status::kCorruption, r.end.code()) << r.end.ToString();
        EXPECT_NE(std::string::npos, r.end.message().find("offset " + std::to_string(boundary) + ":"))
            << r.end.message();
        EXPECT_NE(std::string::npos, r.end.message().find("file ends inside")) << r.end.message();
      }
    }
  }
}

class PcapngReaderCorruption : public PcapngReaderTest {
 protected:
  // Builds SHB + IDB + a good EPB, lets `damage` append something bad, and expects that one packet and then
  // a Corruption at the damaged block's offset whose message contains `what`.
  void Expect(bool big, const std::function<void(PcapngBuilder*)>& damage, const std::string& what) {
    SCOPED_TRACE(what + (big ? " (big-endian)" : " (little-endian)"));
    PcapngBuilder b;
    b.Shb(big);
    b.Idb(1, 0);
    b.Epb(0, 1, Payload(10, 1));
    size_t at = b.size();
    bad_at_.reset();
    damage(&b);
    if (bad_at_) at = *bad_at_;
    b.Epb(0, 2, Payload(10, 2));  // never reached
    ReadResult r = Read(b.bytes());
    ASSERT_TRUE(r.open.ok()) << r.open.ToString();
    EXPECT_EQ(1u, r.packets.size());
    EXPECT_EQ(Status::kCorruption, r.end.code()) << r.end.ToString();
    EXPECT_NE(std::string::npos, r.end.message().find("offset " + std::to_string(at) + ":"))
        << r.end.message();
    EXPECT_NE(std::string::npos, r.end.message().find(what)) << r.end.message();
    EXPECT_EQ(at, r.offset);
  }
  std::optional<size_t> bad_at_;  // set by a `damage` whose bad block is not the first it appends
};

TEST_F(PcapngReaderCorruption, BadBlocks) {
  for (bool big : {false, true}) {
    Expect(big, [](PcapngBuilder* b) {
      size_t at = b->size();
      b->Block(0x99, Payload(8, 0));
      b->Patch32(at + 4, 18);  // not a multiple of 4
    }, "bad total length 18");
    Expect(big, [](PcapngBuilder* b) {
      size_t at = b->size();
      b->Block(0x99, Bytes{});
      b->Patch32(at + 4, 8);  // below the 12-byte minimum
    }, "bad total length 8");
    Expect(big, [](PcapngBuilder* b) {
      size_t at = b->size();
      b->Epb(0, 1, Payload(10, 1));
      b->Patch32(at + 4, 24);  // below the EPB minimum
    }, "bad total length 24");
    Expect(big, [](PcapngBuilder* b) {
      b->Epb(0, 1, Payload(10, 1));
      b->Patch32(b->size() - 4, 1000);
    }, "trailing length 1000 differs from leading length");
    Expect(big, [](PcapngBuilder* b) {
      b->Block(0x77, Payload(16, 1));
      b->Patch32(b->size() - 4, 20);  // a skipped block's trailer is checked too
    }, "trailing length 20 differs");
    Expect(big, [](PcapngBuilder* b) {
      size_t at = b->size();
      b->Epb(0, 1, Payload(10, 1), 0, false);
      b->Patch32(at + 20, 13);  // caplen 13 in a block with room for 12
    }, "captured length 13 runs past the block");
    Expect(big, [](PcapngBuilder* b) {
      size_t at = b->size();
      b->Epb(0, 1, Payload(10, 1), 0, false);
      b->Patch32(at + 20, 0xfffffffc);  // no overflow in the check
    }, "captured length 4294967292 runs past");
    Expect(big, [](PcapngBuilder* b) { b->Epb(1, 1, Payload(10, 1)); }, "interface 1 not described");
    Expect(big, [](PcapngBuilder* b) { b->Pb(7, 1, Payload(10, 1)); }, "interface 7 not described");
    Expect(big, [](PcapngBuilder* b) { b->Idb(1, 0, 20); }, "if_tsresol 10^-20");
    Expect(big, [](PcapngBuilder* b) { b->Idb(1, 0, 0x80 | 64); }, "if_tsresol 2^-64");
    Expect(big, [](PcapngBuilder* b) {
      Bytes body;
      b->P16(&body, 1);
      b->P16(&body, 0);
      b->P32(&body, 0);
      b->Option(&body, 9, Bytes{6, 6});
      b->Block(1, body);
    }, "if_tsresol of length 2");
    Expect(big, [](PcapngBuilder* b) {
      Bytes body;
      b->P16(&body, 1);
      b->P16(&body, 0);
      b->P32(&body, 0);
      b->Option(&body, 14, Bytes{1, 2, 3, 4});
      b->Block(1, body);
    }, "if_tsoffset of length 4");
    Expect(big, [](PcapngBuilder* b) {
      Bytes body;
      b->P16(&body, 1);
      b->P16(&body, 0);
      b->P32(&body, 0);
      b->P16(&body, 2);
      b->P16(&body, 9);  // if_name of 9 bytes, but only 4 follow
      b->P32(&body, 0);
      b->Block(1, body);
    }, "option 2 of length 9 runs past the block");
    Expect(big, [](PcapngBuilder* b) {
      size_t at = b->size();
      b->Shb(false);
      b->Patch32(at + 8, 0x1A2B3C4E);  // the byte-order magic
    }, "bad byte-order magic");
    Expect(big, [](PcapngBuilder* b) { b->Shb(true, 2, 0); }, "unsupported pcapng version 2.0");
    Expect(big, [this](PcapngBuilder* b) {
      b->Shb(false);
      bad_at_ = b->size();
      b->Spb(4, Payload(4, 1));  // the new section has no interface yet
    }, "simple packet block but the section describes no interface");
    Expect(big, [](PcapngBuilder* b) {
      size_t at = b->size();
      b->Epb(0, 1, Payload(10, 1));
      b->Patch32(at + 4, PcapngReader::kMaxBlockBytes + 4);
    }, "exceeds the limit");
  }
}

TEST_F(PcapngReaderTest, NotPcapng) {
  // A classic pcap header.
  Bytes pcap = {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0};
  ReadResult r = Read(pcap);
  EXPECT_EQ(Status::kInvalidArgument, r.open.code()) << r.open.ToString();
  // The SHB type with a bad byte-order magic.
  Bytes bad = {0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4, 1, 0, 0, 0};
  r = Read(bad);
  EXPECT_EQ(Status::kInvalidArgument, r.open.code()) << r.open.ToString();
  r = ReadPath((dir_ / "missing.pcapng").string());
  EXPECT_EQ(Status::kNotFound, r.open.code()) << r.open.ToString();
  r = ReadPath(dir_.string());  // a directory opens but cannot be read
  EXPECT_EQ(Status::kIOError, r.open.code()) << r.open.ToString();
}

// ---------------------------------------------------------------------------------------------------------
// Real captures, checked against tshark and libpcap.

std::filesystem::path SharedPcaps() {
  // capture/pcapng_reader_test.cc -> the repository root -> ../shared/pcaps
  std::filesystem::path root =
      std::filesystem::absolute(std::filesystem::path(__FILE__)).parent_path().parent_path();
  return root / ".." / "shared" / "pcaps";
}

bool RunCommand(const std::string& cmd, std::string* out) {
  out->clear();
  std::FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return false;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  return pclose(p) == 0;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) parts.push_back(cur);
  return parts;
}

// tshark's `-x` hex dump: one blank-line-separated paragraph per frame, "0000  3c fa 30 ...  <.0" lines. When
// dissectors add data sources (reassembled buffers) the paragraph starts with "Frame (N bytes):" and later
// sources follow under their own titles; only the frame's own bytes are kept.
std::vector<Bytes> ParseHexDump(const std::string& text) {
  std::vector<Bytes> frames;
  bool in_frame = false, collecting = false;
  for (const std::string& line : Split(text, '\n')) {
    if (line.empty()) {
      in_frame = false;
      continue;
    }
    if (!in_frame) {
      frames.emplace_back();
      in_frame = collecting = true;
    }
    size_t sp = line.find("  ");
    bool hex_line = sp != std::string::npos && sp >= 4 &&
                    line.find_first_not_of("0123456789abcdef") == sp;
    if (!hex_line) {
      if (line.rfind("Frame (", 0) != 0) collecting = false;  // another data source begins
      continue;
    }
    if (!collecting) continue;
    for (size_t i = sp + 2; i + 1 < line.size() && i < sp + 2 + 16 * 3; i += 3) {
      if (line[i] == ' ') break;
      frames.back().push_back(static_cast<uint8_t>(std::stoul(line.substr(i, 2), nullptr, 16)));
    }
  }
  return frames;
}

TEST_F(PcapngReaderTest, LdapModifyRequestMatchesTshark) {
  const std::filesystem::path file = SharedPcaps() / "zeek" / "ldap__modify-request.pcapng";
  if (!std::filesystem::exists(file)) GTEST_SKIP() << file << " not found";
  std::string fields, hex;
  if (!RunCommand("tshark -v >/dev/null 2>&1", &fields)) GTEST_SKIP() << "tshark not installed";
  ASSERT_TRUE(RunCommand("tshark -n -r '" + file.string() +
                      "' -T fields -e frame.interface_id -e frame.time_epoch -e frame.cap_len -e frame.len"
                      " -e frame.protocols 2>/dev/null",
                  &fields));
  ASSERT_TRUE(RunCommand("tshark -n -r '" + file.string() + "' -x 2>/dev/null", &hex));
  std::vector<std::string> lines = Split(fields, '\n');
  std::vector<Bytes> frames = ParseHexDump(hex);
  ASSERT_EQ(17u, lines.size());
  ASSERT_EQ(17u, frames.size());

  // libpcap refuses this file; we must not.
  char errbuf[PCAP_ERRBUF_SIZE];
  if (pcap_t* p = pcap_open_offline(file.c_str(), errbuf)) {
    pcap_pkthdr* h;
    const u_char* d;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &d)) == 1) {
    }
    EXPECT_EQ(PCAP_ERROR, rc) << "libpcap now reads this file; the test premise changed";
    pcap_close(p);
  }

  ReadResult r = ReadPath(file.string());
  ASSERT_TRUE(r.open.ok()) << r.open.ToString();
  ASSERT_TRUE(r.end.ok()) << r.end.ToString();
  ASSERT_EQ(17u, r.packets.size());
  EXPECT_EQ(std::filesystem::file_size(file), r.offset);
  const std::map<std::string, uint32_t> linktype_of = {{"eth", 1}, {"sll", 113}, {"sll2", 276}, {"raw", 101}};
  for (size_t i = 0; i < 17; ++i) {
    SCOPED_TRACE("packet " + std::to_string(i + 1) + ": " + lines[i]);
    std::vector<std::string> f = Split(lines[i], '\t');
    ASSERT_EQ(5u, f.size());
    const Got& g = r.packets[i];
    EXPECT_EQ(std::stoul(f[0]), g.interface_id);
    size_t dot = f[1].find('.');
    ASSERT_NE(std::string::npos, dot);
    std::string frac = f[1].substr(dot + 1);
    frac.resize(9, '0');
    EXPECT_EQ(std::stoll(f[1].substr(0, dot)), g.ts_sec);
    EXPECT_EQ(std::stoul(frac), g.ts_nsec);
    EXPECT_EQ(std::stoul(f[2]), g.caplen);
    EXPECT_EQ(std::stoul(f[3]), g.len);
    std::string first_proto = f[4].substr(0, f[4].find(':'));
    ASSERT_TRUE(linktype_of.count(first_proto)) << first_proto;
    EXPECT_EQ(linktype_of.at(first_proto), g.linktype);
    EXPECT_EQ(frames[i], g.data);
  }
}

TEST_F(PcapngReaderTest, UnsupportedVersionIsCorruption) {
  const std::filesystem::path file = SharedPcaps() / "libpcap" / "pcapng-invalid-vers-1.pcapng";
  if (!std::filesystem::exists(file)) GTEST_SKIP() << file << " not found";
  ReadResult r = ReadPath(file.string());
  ASSERT_TRUE(r.open.ok()) << r.open.ToString();
  EXPECT_EQ(0u, r.packets.size());
  EXPECT_EQ(Status::kCorruption, r.end.code());
  EXPECT_NE(std::string::npos, r.end.message().find("offset 0: unsupported pcapng version 0.1"))
      << r.end.message();
}

// Every pcapng capture of the shared set that libpcap reads must come out the same from both readers.
TEST_F(PcapngReaderTest, SharedCapturesMatchLibpcap) {
  const std::filesystem::path manifest = SharedPcaps() / "MANIFEST.tsv";
  if (!std::filesystem::exists(manifest)) GTEST_SKIP() << manifest << " not found";
  std::ifstream in(manifest);
  std::string line;
  int compared = 0, multi_interface = 0, libpcap_errors = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> cols = Split(line, '\t');
    if (cols.size() < 7 || cols[6] != "pcapng") continue;
    const std::filesystem::path file = SharedPcaps() / cols[0];
    SCOPED_TRACE(file.string());
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t* p = pcap_open_offline_with_tstamp_precision(file.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
    ReadResult r = ReadPath(file.string());
    if (p == nullptr) {
      // libpcap refuses it outright (a broken header, or mixed interfaces); we must not crash.
      continue;
    }
    ASSERT_TRUE(r.open.ok()) << r.open.ToString();
    int dlt = pcap_datalink(p);
    pcap_pkthdr* h;
    const u_char* d;
    size_t i = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &d)) == 1) {
      ASSERT_LT(i, r.packets.size()) << "libpcap has more packets";
      const Got& g = r.packets[i];
      SCOPED_TRACE("packet " + std::to_string(i + 1));
      EXPECT_EQ(dlt, g.linktype == 101 ? DLT_RAW : static_cast<int>(g.linktype));
      EXPECT_EQ(static_cast<int64_t>(h->ts.tv_sec), g.ts_sec);
      EXPECT_EQ(static_cast<uint32_t>(h->ts.tv_usec), g.ts_nsec);
      EXPECT_EQ(h->caplen, g.caplen);
      EXPECT_EQ(h->len, g.len);
      EXPECT_EQ(Bytes(d, d + h->caplen), g.data);
      ++i;
    }
    if (rc == PCAP_ERROR_BREAK) {  // end of file: both complete
      EXPECT_EQ(i, r.packets.size());
      EXPECT_TRUE(r.end.ok()) << r.end.ToString();
    } else {
      // libpcap gave up (damage, or an interface unlike the first): the packets before agree; what we
      // make of the rest is checked elsewhere.
      ++libpcap_errors;
    }
    pcap_close(p);
    ++compared;
    std::map<uint32_t, int> ids;
    for (const Got& g : r.packets) ids[g.interface_id]++;
    if (ids.size() > 1) ++multi_interface;
  }
  if (compared == 0) GTEST_SKIP() << "no pcapng captures found";
  EXPECT_GT(compared, 50);
  EXPECT_GT(multi_interface, 3);
  EXPECT_LT(libpcap_errors, 3);
}

}  // namespace
}  // namespace rwd
