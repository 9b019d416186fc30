#include "query/pcap_writer.h"

#include <fcntl.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "index/test_temp_dir.h"

namespace rwd {
namespace {

using Bytes = std::vector<uint8_t>;

class MemorySink : public ByteSink {
 public:
  Status Write(const void* data, size_t n) override {
    if (!fail_.ok()) return fail_;
    out.append(static_cast<const char*>(data), n);
    ++writes;
    return Status::OK();
  }
  Status Flush() override {
    ++flushes;
    return fail_;
  }
  void FailWith(Status s) { fail_ = std::move(s); }
  std::string out;
  int writes = 0;
  int flushes = 0;

 private:
  Status fail_;
};

// Little-endian readers over the output.
uint16_t U16(const std::string& s, size_t off) {
  uint16_t v;
  std::memcpy(&v, s.data() + off, 2);
  return v;
}
uint32_t U32(const std::string& s, size_t off) {
  uint32_t v;
  std::memcpy(&v, s.data() + off, 4);
  return v;
}
int64_t I64(const std::string& s, size_t off) {
  int64_t v;
  std::memcpy(&v, s.data() + off, 8);
  return v;
}

Bytes Frame(uint32_t n, uint32_t seed) {
  Bytes b;
  b.reserve(n + 1);  // data() is never null, even for an empty frame
  b.resize(n);
  for (uint32_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed * 17 + i);
  return b;
}

// ---------------------------------------------------------------------------------------------------------
// Classic pcap.

TEST(PcapWriter, PcapMicrosecondHeader) {
  MemorySink sink;
  PcapWriter w(&sink, CaptureFormat::kPcap, false);
  ASSERT_TRUE(w.Begin({1}, 65535).ok());
  ASSERT_EQ(sink.out.size(), 24u);
  EXPECT_EQ(sink.out.substr(0, 4), std::string("\xd4\xc3\xb2\xa1", 4));
  EXPECT_EQ(U16(sink.out, 4), 2);    // version major
  EXPECT_EQ(U16(sink.out, 6), 4);    // version minor
  EXPECT_EQ(U32(sink.out, 8), 0u);   // thiszone
  EXPECT_EQ(U32(sink.out, 12), 0u);  // sigfigs
  EXPECT_EQ(U32(sink.out, 16), 65535u);
  EXPECT_EQ(U32(sink.out, 20), 1u);
}

TEST(PcapWriter, PcapNanosecondHeader) {
  MemorySink sink;
  PcapWriter w(&sink, CaptureFormat::kPcap, true);
  ASSERT_TRUE(w.Begin({101}, 262144).ok());
  ASSERT_EQ(sink.out.size(), 24u);
  EXPECT_EQ(sink.out.substr(0, 4), std::string("\x4d\x3c\xb2\xa1", 4));
  EXPECT_EQ(U32(sink.out, 16), 262144u);
  EXPECT_EQ(U32(sink.out, 20), 101u);
}

TEST(PcapWriter, PcapNeedsExactlyOneLinkType) {
  for (const std::vector<uint32_t>& lts : {std::vector<uint32_t>{}, std::vector<uint32_t>{1, 101}}) {
    MemorySink sink;
    PcapWriter w(&sink, CaptureFormat::kPcap, false);
    EXPECT_EQ(w.Begin(lts, 65535).code(), Status::kInvalidArgument) << lts.size();
    EXPECT_TRUE(sink.out.empty());
  }
}

TEST(PcapWriter, PcapRecordsMicroseconds) {
  MemorySink sink;
  PcapWriter w(&sink, CaptureFormat::kPcap, false);
  ASSERT_TRUE(w.Begin({1}, 65535).ok());
  struct Rec {
    uint32_t sec, nsec, caplen, len, want_frac;
  } recs[] = {
      {1700000000, 123456789, 60, 60, 123456},
      {1700000001, 999999999, 1, 1514, 999999},  // truncated, not rounded up to the next second
      {1700000002, 999, 0, 42, 0},
      {1700000003, 1999999999, 3, 3, 1999999},  // an out-of-range fraction is kept, as stored
      {0xffffffff, 1000, 5, 5, 1},
  };
  std::vector<Bytes> frames;
  for (const Rec& r : recs) {
    frames.push_back(Frame(r.caplen, r.sec));
    ASSERT_TRUE(w.WritePacket(1, r.sec, r.nsec, r.caplen, r.len, frames.back().data()).ok());
  }
  size_t off = 24;
  for (size_t i = 0; i < std::size(recs); ++i) {
    const Rec& r = recs[i];
    ASSERT_LE(off + 16 + r.caplen, sink.out.size()) << i;
    EXPECT_EQ(U32(sink.out, off), r.sec) << i;
    EXPECT_EQ(U32(sink.out, off + 4), r.want_frac) << i;
    EXPECT_EQ(U32(sink.out, off + 8), r.caplen) << i;
    EXPECT_EQ(U32(sink.out, off + 12), r.len) << i;
    EXPECT_EQ(sink.out.substr(off + 16, r.caplen), std::string(frames[i].begin(), frames[i].end())) << i;
    off += 16 + r.caplen;  // no padding in classic pcap
  }
  EXPECT_EQ(off, sink.out.size());
}

TEST(PcapWriter, PcapRecordsNanoseconds) {
  MemorySink sink;
  PcapWriter w(&sink, CaptureFormat::kPcap, true);
  ASSERT_TRUE(w.Begin({1}, 65535).ok());
  Bytes f = Frame(7, 1);
  ASSERT_TRUE(w.WritePacket(1, 1700000000, 123456789, 7, 100, f.data()).ok());
  ASSERT_TRUE(w.WritePacket(1, 1700000000, 1999999999, 7, 100, f.data()).ok());
  ASSERT_EQ(sink.out.size(), 24u + 2 * (16 + 7));
  EXPECT_EQ(U32(sink.out, 24), 1700000000u);
  EXPECT_EQ(U32(sink.out, 28), 123456789u);
  EXPECT_EQ(U32(sink.out, 32), 7u);
  EXPECT_EQ(U32(sink.out, 36), 100u);
  EXPECT_EQ(U32(sink.out, 24 + 23 + 4), 1999999999u);
}

TEST(PcapWriter, SinkErrorsPropagate) {
  MemorySink sink;
  PcapWriter w(&sink, CaptureFormat::kPcap, false);
  ASSERT_TRUE(w.Begin({1}, 65535).ok());
  sink.FailWith(Status::Cancelled("gone"));
  Bytes f = Frame(10, 0);
  EXPECT_EQ(w.WritePacket(1, 1, 2, 10, 10, f.data()).code(), Status::kCancelled);
  EXPECT_EQ(w.Flush().code(), Status::kCancelled);
  MemorySink sink2;
  PcapWriter w2(&sink2, CaptureFormat::kPcapng, false);
  sink2.FailWith(Status::IOError("disk"));
  EXPECT_EQ(w2.Begin({1}, 65535).code(), Status::kIOError);
}

// ---------------------------------------------------------------------------------------------------------
// pcapng.

void ExpectShb(const std::string& s) {
  ASSERT_GE(s.size(), 28u);
  EXPECT_EQ(U32(s, 0), 0x0a0d0d0au);
  EXPECT_EQ(U32(s, 4), 28u);
  EXPECT_EQ(U32(s, 8), 0x1a2b3c4du);  // byte-order magic
  EXPECT_EQ(U16(s, 12), 1);
  EXPECT_EQ(U16(s, 14), 0);
  EXPECT_EQ(I64(s, 16), -1);  // section length unknown
  EXPECT_EQ(U32(s, 24), 28u);
}

void ExpectIdb(const std::string& s, size_t off, uint16_t linktype, uint32_t snaplen, uint8_t tsresol) {
  ASSERT_GE(s.size(), off + 32);
  EXPECT_EQ(U32(s, off), 1u);
  EXPECT_EQ(U32(s, off + 4), 32u);
  EXPECT_EQ(U16(s, off + 8), linktype);
  EXPECT_EQ(U16(s, off + 10), 0);
  EXPECT_EQ(U32(s, off + 12), snaplen);
  EXPECT_EQ(U16(s, off + 16), 9);  // if_tsresol
  EXPECT_EQ(U16(s, off + 18), 1);
  EXPECT_EQ(static_cast<uint8_t>(s[off + 20]), tsresol);
  EXPECT_EQ(s.substr(off + 21, 3), std::string(3, '\0'));
  EXPECT_EQ(U32(s, off + 24), 0u);  // opt_endofopt
  EXPECT_EQ(U32(s, off + 28), 32u);
}

TEST(PcapWriter, PcapngLayoutWithTwoLinkTypes) {
  MemorySink sink;
  PcapWriter w(&sink, CaptureFormat::kPcapng, false);
  ASSERT_TRUE(w.Begin({1, 101}, 262144).ok());
  ASSERT_EQ(sink.out.size(), 28u + 2 * 32);
  ExpectShb(sink.out);
  ExpectIdb(sink.out, 28, 1, 262144, 6);
  ExpectIdb(sink.out, 60, 101, 262144, 6);

  struct Rec {
    uint32_t lt, sec, nsec, caplen, len;
  } recs[] = {
      {1, 1700000000, 123456789, 60, 60},
      {101, 1700000001, 999999999, 1, 40},
      {1, 1700000002, 0, 2, 2},
      {101, 1700000003, 5000, 3, 3},
      {1, 1700000004, 1, 4, 4},
      {101, 1700000005, 7, 5, 9},
      {1, 0, 0, 0, 0},
  };
  std::vector<Bytes> frames;
  for (const Rec& r : recs) {
    frames.push_back(Frame(r.caplen, r.sec));
    ASSERT_TRUE(w.WritePacket(r.lt, r.sec, r.nsec, r.caplen, r.len, frames.back().data()).ok());
  }
  size_t off = 92;
  for (size_t i = 0; i < std::size(recs); ++i) {
    const Rec& r = recs[i];
    const uint32_t padded = (r.caplen + 3) / 4 * 4;
    const uint32_t total = 32 + padded;
    ASSERT_LE(off + total, sink.out.size()) << i;
    EXPECT_EQ(U32(sink.out, off), 6u) << i;  // enhanced packet block
    EXPECT_EQ(U32(sink.out, off + 4), total) << i;
    EXPECT_EQ(U32(sink.out, off + 8), r.lt == 1 ? 0u : 1u) << i;  // interface id
    uint64_t ticks = uint64_t{U32(sink.out, off + 12)} << 32 | U32(sink.out, off + 16);
    EXPECT_EQ(ticks, uint64_t{r.sec} * 1000000 + r.nsec / 1000) << i;
    EXPECT_EQ(U32(sink.out, off + 20), r.caplen) << i;
    EXPECT_EQ(U32(sink.out, off + 24), r.len) << i;
    EXPECT_EQ(sink.out.substr(off + 28, r.caplen), std::string(frames[i].begin(), frames[i].end())) << i;
    EXPECT_EQ(sink.out.substr(off + 28 + r.caplen, padded - r.caplen), std::string(padded - r.caplen, '\0')) << i;
    EXPECT_EQ(U32(sink.out, off + 28 + padded), total) << i;
    EXPECT_EQ(total % 4, 0u);
    off += total;
  }
  EXPECT_EQ(off, sink.out.size());

  // A link type not declared in Begin is refused and nothing is written.
  size_t before = sink.out.size();
  Bytes f = Frame(8, 0);
  EXPECT_EQ(w.WritePacket(113, 1, 1, 8, 8, f.data()).code(), Status::kInvalidArgument);
  EXPECT_EQ(sink.out.size(), before);
}

TEST(PcapWriter, PcapngNanoseconds) {
  MemorySink sink;
  PcapWriter w(&sink, CaptureFormat::kPcapng, true);
  ASSERT_TRUE(w.Begin({228}, 65535).ok());
  ASSERT_EQ(sink.out.size(), 60u);
  ExpectShb(sink.out);
  ExpectIdb(sink.out, 28, 228, 65535, 9);
  Bytes f = Frame(20, 3);
  ASSERT_TRUE(w.WritePacket(228, 4000000000u, 123456789, 20, 20, f.data()).ok());
  uint64_t ticks = uint64_t{U32(sink.out, 60 + 12)} << 32 | U32(sink.out, 60 + 16);
  EXPECT_EQ(ticks, 4000000000ull * 1000000000 + 123456789) << "needs the high word";
  EXPECT_GT(U32(sink.out, 60 + 12), 0u);
}

// ---------------------------------------------------------------------------------------------------------
// Real files, read back with libpcap.

struct Packet {
  uint32_t sec, nsec;
  Bytes data;
  uint32_t len;
};

std::vector<Packet> TestPackets() {
  std::vector<Packet> p;
  uint32_t sizes[] = {60, 1514, 1, 0, 3, 9000, 64, 65535, 2, 100};
  for (uint32_t i = 0; i < std::size(sizes); ++i) {
    p.push_back({1700000000 + i * 37, (i * 123456789u + 999) % 1000000000u, Frame(sizes[i], i), sizes[i] + i});
  }
  p[2].nsec = 999999999;
  p[3].nsec = 0;
  return p;
}

void WriteFile(const std::string& path, CaptureFormat format, bool nanos, uint32_t linktype,
               const std::vector<Packet>& pkts) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  {
    FdSink sink(fd, 4096);  // smaller than some packets: exercises the direct path
    PcapWriter w(&sink, format, nanos);
    ASSERT_TRUE(w.Begin({linktype}, 262144).ok());
    for (const Packet& p : pkts) {
      ASSERT_TRUE(
          w.WritePacket(linktype, p.sec, p.nsec, static_cast<uint32_t>(p.data.size()), p.len, p.data.data()).ok());
    }
    ASSERT_TRUE(w.Flush().ok());
  }
  close(fd);
}

void ReadBackWithLibpcap(const std::string& path, bool nanos, int dlt, const std::vector<Packet>& pkts) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline_with_tstamp_precision(
      path.c_str(), nanos ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO, err);
  ASSERT_NE(p, nullptr) << err;
  EXPECT_EQ(pcap_datalink(p), dlt);
  EXPECT_EQ(pcap_snapshot(p), 262144);
  EXPECT_EQ(pcap_get_tstamp_precision(p), nanos ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO);
  pcap_pkthdr* h;
  const u_char* data;
  size_t i = 0;
  int rc;
  while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
    ASSERT_LT(i, pkts.size());
    const Packet& want = pkts[i];
    EXPECT_EQ(static_cast<uint32_t>(h->ts.tv_sec), want.sec) << i;
    EXPECT_EQ(static_cast<uint32_t>(h->ts.tv_usec), nanos ? want.nsec : want.nsec / 1000) << i;
    EXPECT_EQ(h->caplen, want.data.size()) << i;
    EXPECT_EQ(h->len, want.len) << i;
    EXPECT_EQ(Bytes(data, data + h->caplen), want.data) << i;
    ++i;
  }
  EXPECT_EQ(rc, PCAP_ERROR_BREAK) << pcap_geterr(p);
  EXPECT_EQ(i, pkts.size());
  pcap_close(p);
}

TEST(PcapWriter, LibpcapReadsWhatWeWrite) {
  TempDir dir;
  const std::vector<Packet> pkts = TestPackets();
  struct Case {
    const char* name;
    CaptureFormat format;
    bool nanos;
    uint32_t linktype;
    int dlt;
  } cases[] = {
      {"us.pcap", CaptureFormat::kPcap, false, 1, DLT_EN10MB},
      {"ns.pcap", CaptureFormat::kPcap, true, 1, DLT_EN10MB},
      {"us.pcapng", CaptureFormat::kPcapng, false, 1, DLT_EN10MB},
      {"ns.pcapng", CaptureFormat::kPcapng, true, 1, DLT_EN10MB},
      {"raw.pcap", CaptureFormat::kPcap, false, 101, DLT_RAW},  // LINKTYPE_RAW is DLT_RAW (12) on Linux
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.path() + "/" + c.name;
    WriteFile(path, c.format, c.nanos, c.linktype, pkts);
    ReadBackWithLibpcap(path, c.nanos, c.dlt, pkts);
  }
}

TEST(PcapWriter, LibpcapScalesMicrosecondFilesToNanoseconds) {
  TempDir dir;
  const std::vector<Packet> pkts = TestPackets();
  const std::string path = dir.path() + "/us.pcapng";
  WriteFile(path, CaptureFormat::kPcapng, false, 1, pkts);
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  ASSERT_NE(p, nullptr) << err;
  pcap_pkthdr* h;
  const u_char* data;
  for (const Packet& want : pkts) {
    ASSERT_EQ(pcap_next_ex(p, &h, &data), 1);
    EXPECT_EQ(static_cast<uint32_t>(h->ts.tv_usec), want.nsec / 1000 * 1000);
  }
  pcap_close(p);
}

// A microsecond field kept as stored is written back unchanged to microsecond pcap, scaled as libpcap scales
// it (signed, times 1000, in 32 bits) to nanosecond pcap, and as libpcap's time to pcapng; libpcap then
// reads the same time from each as from the original field.
TEST(PcapWriter, MicrosecondFieldsKeptAsStored) {
  const uint32_t field = 0xfffffff0u;  // -16 µs to libpcap
  for (int kind = 0; kind < 3; ++kind) {
    MemorySink sink;
    bool nanos = kind == 1;
    PcapWriter w(&sink, kind == 2 ? CaptureFormat::kPcapng : CaptureFormat::kPcap, nanos);
    ASSERT_TRUE(w.Begin({1}, 65535).ok());
    size_t at = sink.out.size();
    Bytes f = Frame(30, 2);
    ASSERT_TRUE(w.WritePacket(1, 1700000010, field, 30, 30, f.data(), FractionField::kSignedMicros).ok());
    if (kind == 0) {
      EXPECT_EQ(U32(sink.out, at), 1700000010u);
      EXPECT_EQ(U32(sink.out, at + 4), field);
    } else if (kind == 1) {
      EXPECT_EQ(U32(sink.out, at + 4), static_cast<uint32_t>(int64_t{-16} * 1000));
    } else {
      uint64_t ticks = uint64_t{U32(sink.out, at + 12)} << 32 | U32(sink.out, at + 16);
      EXPECT_EQ(ticks, uint64_t{1700000010} * 1000000 - 16);
    }
  }
}

// A nanosecond field libpcap reads as negative (2^31 ns and more unsigned) is written back unchanged to
// nanosecond pcap, divided by 1000 toward zero (as libpcap scales it) to microsecond pcap, and as libpcap's
// time to pcapng: what tcpdump -r FILE -w writes at either precision.
TEST(PcapWriter, SignedNanosecondFieldsKeptAsStored) {
  const uint32_t field = 0x80000000u;  // -2147483648 ns to libpcap
  for (int kind = 0; kind < 3; ++kind) {
    MemorySink sink;
    bool nanos = kind != 0;
    PcapWriter w(&sink, kind == 2 ? CaptureFormat::kPcapng : CaptureFormat::kPcap, nanos);
    ASSERT_TRUE(w.Begin({1}, 65535).ok());
    size_t at = sink.out.size();
    Bytes f = Frame(30, 2);
    ASSERT_TRUE(w.WritePacket(1, 1418145370, field, 30, 30, f.data(), FractionField::kSignedNanos).ok());
    if (kind == 0) {
      EXPECT_EQ(U32(sink.out, at + 4), 0xffdf3b65u);  // -2147483 µs, as tcpdump -r timestamp_invalid_nano.pcap -w
    } else if (kind == 1) {
      EXPECT_EQ(U32(sink.out, at + 4), field);
    } else {
      uint64_t ticks = uint64_t{U32(sink.out, at + 12)} << 32 | U32(sink.out, at + 16);
      EXPECT_EQ(ticks, uint64_t{1418145370} * 1000000000 - 2147483648u);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// FdSink.

TEST(FdSink, BuffersUntilFlushAndFlushesOnDestruction) {
  TempDir dir;
  const std::string path = dir.path() + "/out";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  {
    FdSink sink(fd, 100);
    ASSERT_TRUE(sink.Write("hello ", 6).ok());
    EXPECT_EQ(std::filesystem::file_size(path), 0u) << "buffered";
    ASSERT_TRUE(sink.Flush().ok());
    EXPECT_EQ(std::filesystem::file_size(path), 6u);
    std::string big(250, 'x');  // larger than the buffer
    ASSERT_TRUE(sink.Write(big.data(), big.size()).ok());
    ASSERT_TRUE(sink.Write("!", 1).ok());
  }
  close(fd);
  std::ifstream in(path, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "hello " + std::string(250, 'x') + "!");
}

TEST(FdSink, ClosedPipeIsCancelled) {
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ASSERT_EQ(0, sigaction(SIGPIPE, &ignore, &old));
  int fds[2];
  ASSERT_EQ(0, pipe(fds));
  close(fds[0]);  // the reader went away
  Status write_status, flush_status, later;
  {
    FdSink sink(fds[1], 64);
    write_status = sink.Write("abc", 3);
    flush_status = sink.Flush();
    later = sink.Write("def", 3);
  }
  close(fds[1]);
  sigaction(SIGPIPE, &old, nullptr);
  EXPECT_TRUE(write_status.ok()) << "buffered, not written yet";
  EXPECT_EQ(flush_status.code(), Status::kCancelled) << flush_status.ToString();
  EXPECT_EQ(later.code(), Status::kCancelled) << "the error sticks";
}

TEST(FdSink, ClosedPipeCancelsAPcapWriter) {
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ASSERT_EQ(0, sigaction(SIGPIPE, &ignore, &old));
  int fds[2];
  ASSERT_EQ(0, pipe(fds));
  close(fds[0]);
  Status s;
  {
    FdSink sink(fds[1], 1024);
    PcapWriter w(&sink, CaptureFormat::kPcap, false);
    s = w.Begin({1}, 65535);
    Bytes f = Frame(600, 1);
    for (int i = 0; i < 10 && s.ok(); ++i) s = w.WritePacket(1, i, 0, 600, 600, f.data());
  }
  close(fds[1]);
  sigaction(SIGPIPE, &old, nullptr);
  EXPECT_EQ(s.code(), Status::kCancelled) << s.ToString();
}

TEST(FdSink, OtherWriteErrorsAreIOErrors) {
  int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
  if (fd < 0) GTEST_SKIP() << "no /dev/full";
  Status s;
  {
    FdSink sink(fd, 16);
    ASSERT_TRUE(sink.Write("0123456789", 10).ok());
    s = sink.Flush();
  }
  close(fd);
  EXPECT_EQ(s.code(), Status::kNoSpace) << s.ToString();  // ENOSPC
  FdSink bad(-1, 16);
  ASSERT_TRUE(bad.Write("x", 1).ok());
  EXPECT_EQ(bad.Flush().code(), Status::kIOError);
}

}  // namespace
}  // namespace rwd
