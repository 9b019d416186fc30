#include "capture/pcap_file_reader.h"

#include <pcap/pcap.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "index/test_temp_dir.h"

namespace rwd {
namespace {

std::filesystem::path SharedPcaps() {
  // capture/pcap_file_reader_test.cc -> the repository root -> ../shared/pcaps
  std::filesystem::path root =
      std::filesystem::absolute(std::filesystem::path(__FILE__)).parent_path().parent_path();
  return root / ".." / "shared" / "pcaps";
}

// Reads `path` with PcapFileReader and with libpcap (nanosecond precision) and expects the same records, the
// same end (a clean one, or the same error message). Returns false if PcapFileReader does not take the file.
bool ExpectSameAsLibpcap(const std::string& path, size_t* records = nullptr) {
  SCOPED_TRACE(path);
  auto mine = PcapFileReader::Open(path);
  EXPECT_TRUE(mine.ok()) << mine.status().ToString();
  if (!mine.ok() || !*mine) return false;
  PcapFileReader& r = **mine;
  char errbuf[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  EXPECT_NE(p, nullptr) << errbuf;
  if (p == nullptr) return true;
  EXPECT_EQ(r.datalink(), pcap_datalink(p));
  EXPECT_EQ(r.snapshot(), static_cast<uint32_t>(pcap_snapshot(p)));
  pcap_pkthdr* h;
  const u_char* d;
  size_t n = 0;
  int rc;
  PcapFileReader::Record rec;
  while ((rc = pcap_next_ex(p, &h, &d)) == 1) {
    SCOPED_TRACE("record " + std::to_string(n + 1));
    bool got = r.Next(&rec);
    EXPECT_TRUE(got) << r.status().ToString();
    if (!got) break;
    EXPECT_EQ(rec.sec, static_cast<int64_t>(h->ts.tv_sec));
    EXPECT_EQ(rec.nsec, static_cast<int64_t>(h->ts.tv_usec));
    EXPECT_EQ(rec.caplen, h->caplen);
    EXPECT_EQ(rec.len, h->len);
    EXPECT_EQ(std::memcmp(rec.data, d, h->caplen), 0);
    ++n;
  }
  if (rc == PCAP_ERROR_BREAK) {
    EXPECT_FALSE(r.Next(&rec)) << "a record past libpcap's end";
    EXPECT_TRUE(r.status().ok()) << r.status().ToString();
  } else if (rc == PCAP_ERROR) {
    EXPECT_FALSE(r.Next(&rec)) << "a record where libpcap failed: " << pcap_geterr(p);
    EXPECT_EQ(r.status().message(), std::string(pcap_geterr(p)));
  }
  pcap_close(p);
  if (records != nullptr) *records = n;
  return true;
}

TEST(PcapFileReader, SharedCapturesMatchLibpcap) {
  const std::filesystem::path manifest = SharedPcaps() / "MANIFEST.tsv";
  if (!std::filesystem::exists(manifest)) GTEST_SKIP() << manifest << " not found";
  std::ifstream in(manifest);
  std::string line;
  int taken = 0, left = 0;
  size_t records = 0;
  while (std::getline(in, line)) {
    size_t tab = line.find('\t');
    if (tab == std::string::npos || line.compare(0, tab, "file") == 0) continue;
    std::string file = (SharedPcaps() / line.substr(0, tab)).string();
    size_t n = 0;
    if (ExpectSameAsLibpcap(file, &n)) {
      ++taken;
      records += n;
    } else {
      ++left;
    }
  }
  // Most of the set is little-endian 2.4 pcap; pcapng and byte-swapped files are libpcap's.
  EXPECT_GT(taken, 600) << left << " left to libpcap";
  EXPECT_GT(records, 50000u);
}

// A pcap file built by hand: a header, then records given as (header fields, captured bytes).
struct Rec {
  int32_t sec, frac;
  uint32_t caplen, len;
  std::string data;  // may be shorter than caplen (a truncated file)
};

std::string PcapHeader(uint32_t magic, uint32_t snaplen, uint32_t linktype) {
  std::string h(24, '\0');
  uint16_t major = 2, minor = 4;
  std::memcpy(&h[0], &magic, 4);
  std::memcpy(&h[4], &major, 2);
  std::memcpy(&h[6], &minor, 2);
  std::memcpy(&h[16], &snaplen, 4);
  std::memcpy(&h[20], &linktype, 4);
  return h;
}

std::string Record(const Rec& r) {
  std::string h(16, '\0');
  std::memcpy(&h[0], &r.sec, 4);
  std::memcpy(&h[4], &r.frac, 4);
  std::memcpy(&h[8], &r.caplen, 4);
  std::memcpy(&h[12], &r.len, 4);
  return h + r.data;
}

std::string Bytes(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7);
  return s;
}

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(PcapFileReader, OddRecordsAsLibpcapReadsThem) {
  TempDir dir;
  for (uint32_t magic : {0xa1b2c3d4u, 0xa1b23c4du}) {
    std::string base = PcapHeader(magic, 100, 1);
    // Fractions out of range either way, a second count past 2^31, zero-length and snaplen-long records, a
    // record longer than the snapshot length (cut to it), caplen above len.
    std::string good = base + Record({1700000000, 999999, 60, 60, Bytes(60, 'a')}) +
                       Record({1700000001, 1000000, 0, 0, ""}) + Record({-5, -1, 100, 1500, Bytes(100, 'b')}) +
                       Record({1700000002, 2000000000, 150, 150, Bytes(150, 'c')}) +
                       Record({7, 8, 80, 40, Bytes(80, 'd')});
    Write(dir.path() + "/good", good);
    size_t n = 0;
    EXPECT_TRUE(ExpectSameAsLibpcap(dir.path() + "/good", &n));
    EXPECT_EQ(n, 5u);
    // Cut inside a record header, inside the data, inside the part past the snapshot length, and inside the
    // snapshot part of such a record.
    for (size_t cut : {good.size() - 85, good.size() - 30, good.size() - 80 - 16 - 20, good.size() - 80 - 16 - 100}) {
      Write(dir.path() + "/cut", good.substr(0, cut));
      EXPECT_TRUE(ExpectSameAsLibpcap(dir.path() + "/cut"));
    }
    // A captured length beyond what libpcap accepts for the link type.
    Write(dir.path() + "/huge", base + Record({1, 2, 300000, 300000, Bytes(64, 'e')}));
    EXPECT_TRUE(ExpectSameAsLibpcap(dir.path() + "/huge"));
    Write(dir.path() + "/huge2", PcapHeader(magic, 400000, 1) + Record({1, 2, 300000, 300000, Bytes(64, 'e')}));
    EXPECT_TRUE(ExpectSameAsLibpcap(dir.path() + "/huge2"));
  }
}

TEST(PcapFileReader, RecordsAcrossReadsAndLargerThanTheBuffer) {
  TempDir dir;
  // 20 MB of records of many sizes (they straddle every 4 MiB read), then D-Bus records (link type 231,
  // which allows 128 MiB) of 5 and 9 MiB: larger than the reader's buffer.
  std::string file = PcapHeader(0xa1b23c4du, 262144, 1);
  for (int i = 0; file.size() < 20000000; ++i) {
    uint32_t n = static_cast<uint32_t>((i * 7919) % 9000);
    file += Record({1700000000 + i, i, n, n, Bytes(n, static_cast<char>(i))});
  }
  Write(dir.path() + "/many", file);
  size_t n = 0;
  EXPECT_TRUE(ExpectSameAsLibpcap(dir.path() + "/many", &n));
  EXPECT_GT(n, 4000u);
  std::string dbus = PcapHeader(0xa1b2c3d4u, 128 << 20, 231);
  for (uint32_t size : {100u, 5u << 20, 9u << 20, 3u}) dbus += Record({1, 2, size, size, Bytes(size, 'x')});
  Write(dir.path() + "/dbus", dbus);
  EXPECT_TRUE(ExpectSameAsLibpcap(dir.path() + "/dbus", &n));
  EXPECT_EQ(n, 4u);
}

TEST(PcapFileReader, LeavesOtherFormatsToLibpcap) {
  TempDir dir;
  std::string swapped(24, '\0');
  const uint8_t be[] = {0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4};
  std::memcpy(&swapped[0], be, sizeof(be));
  Write(dir.path() + "/swapped", swapped);
  std::string old = PcapHeader(0xa1b2c3d4u, 100, 1);
  old[6] = 3;  // version 2.3: caplen and len may be swapped
  Write(dir.path() + "/v23", old);
  Write(dir.path() + "/usbmm", PcapHeader(0xa1b2c3d4u, 100, 220));  // DLT_USB_LINUX_MMAPPED
  Write(dir.path() + "/short", "\xd4\xc3\xb2\xa1");
  for (const char* name : {"swapped", "v23", "usbmm", "short"}) {
    auto r = PcapFileReader::Open(dir.path() + "/" + name);
    ASSERT_TRUE(r.ok()) << name;
    EXPECT_EQ(*r, nullptr) << name;
  }
  auto fifo = PcapFileReader::Open("/dev/null");
  ASSERT_TRUE(fifo.ok());
  EXPECT_EQ(*fifo, nullptr);
}

}  // namespace
}  // namespace rwd
