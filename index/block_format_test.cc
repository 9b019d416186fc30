#include "index/block_format.h"

#include <linux/if_packet.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rwd {
namespace {

using Bytes = std::vector<uint8_t>;

uint32_t Align(uint32_t v, uint32_t a) { return (v + a - 1) / a * a; }

AlignedBuffer NewBlockBuffer() {
  AlignedBuffer p = NewAlignedBuffer(kBlockSize);
  std::memset(p.get(), 0xee, kBlockSize);  // garbage: the builder must not depend on a zeroed buffer
  return p;
}

// `size` readable bytes that end exactly at a PROT_NONE page and start right after one (when `size` is a
// multiple of the page size): any read out of [data(), data() + size) faults.
class GuardedRegion {
 public:
  explicit GuardedRegion(size_t size) : size_(size) {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    body_ = (size + page_ - 1) / page_ * page_;
    total_ = body_ + 2 * page_;
    void* m = mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(m, MAP_FAILED);
    base_ = static_cast<uint8_t*>(m);
    EXPECT_EQ(0, mprotect(base_, page_, PROT_NONE));
    EXPECT_EQ(0, mprotect(base_ + page_ + body_, page_, PROT_NONE));
  }
  ~GuardedRegion() { munmap(base_, total_); }
  uint8_t* data() { return base_ + page_ + body_ - size_; }
  size_t size() const { return size_; }

 private:
  size_t size_, page_, body_, total_;
  uint8_t* base_;
};

Bytes Pattern(uint32_t n, uint32_t seed) {
  Bytes b;
  b.reserve(n + 1);  // data() is never null, even for an empty frame
  b.resize(n);
  for (uint32_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed * 131 + i * 7 + (i >> 8));
  return b;
}

struct Pkt {
  uint32_t sec, nsec, caplen, len;
  Bytes data;
};

tpacket_block_desc Desc(const uint8_t* block) {
  tpacket_block_desc d;
  std::memcpy(&d, block, sizeof(d));
  return d;
}

tpacket3_hdr Hdr(const uint8_t* block, uint32_t offset) {
  tpacket3_hdr h;
  std::memcpy(&h, block + offset, sizeof(h));
  return h;
}

void PutHdr(uint8_t* block, uint32_t offset, const tpacket3_hdr& h) { std::memcpy(block + offset, &h, sizeof(h)); }

void PutDesc(uint8_t* block, const tpacket_block_desc& d) { std::memcpy(block, &d, sizeof(d)); }

// A small valid block of `n` packets (60-byte frames) built by BlockBuilder; returns its used size.
uint32_t BuildSmallBlock(uint8_t* buf, int n) {
  BlockBuilder b;
  b.Reset(buf, 1, 65535, 7);
  for (int i = 0; i < n; ++i) {
    Bytes f = Pattern(60, i);
    EXPECT_TRUE(b.Add(1000 + i, 500 * i, 60, 60 + i, f.data()));
  }
  b.Finish();
  return b.bytes_used();
}

// Reads every packet; returns the number read and leaves the reader's final status in `*status`.
int ReadAll(BlockReader* r, const uint8_t* block, uint32_t size, Status* status) {
  Status s = r->Open(block, size);
  if (!s.ok()) {
    *status = s;
    return -1;
  }
  PacketView v;
  int n = 0;
  volatile uint8_t sink = 0;
  while (r->Next(&v)) {
    for (uint32_t i = 0; i < v.caplen; ++i) sink = sink + v.data[i];  // touch every byte
    ++n;
  }
  *status = r->status();
  return n;
}

// ---------------------------------------------------------------------------------------------------------

TEST(BlockBuilder, RoundTripEveryFieldAndOffset) {
  AlignedBuffer buf = NewBlockBuffer();
  BlockBuilder b;
  b.Reset(buf.get(), 1, 65535, 42);
  EXPECT_EQ(b.num_packets(), 0u);
  EXPECT_EQ(b.linktype(), 1u);
  EXPECT_EQ(b.bytes_used(), kFirstPacketOffset);

  std::vector<Pkt> pkts;
  std::vector<uint32_t> offsets;
  uint32_t off = kFirstPacketOffset;
  for (uint32_t i = 0; i < 200; ++i) {
    uint32_t caplen = (i * 37) % 1600 + (i % 5 == 0 ? 0 : 1);
    Pkt p{1700000000 + i, (i * 123457) % 1000000000, caplen, caplen + (i % 3) * 100, Pattern(caplen, i)};
    ASSERT_TRUE(b.Add(p.sec, p.nsec, p.caplen, p.len, p.data.data())) << i;
    offsets.push_back(off);
    off = Align(off + kPacketHeaderSize + caplen, 8);
    pkts.push_back(std::move(p));
  }
  EXPECT_EQ(b.num_packets(), 200u);
  EXPECT_EQ(b.bytes_used(), off);
  b.Finish();

  // The descriptor as the kernel would have written it.
  tpacket_block_desc d = Desc(buf.get());
  EXPECT_EQ(d.version, static_cast<uint32_t>(TPACKET_V3));
  EXPECT_EQ(d.offset_to_priv, kBlockDescSize);
  EXPECT_EQ(d.hdr.bh1.block_status, static_cast<uint32_t>(TP_STATUS_USER));
  EXPECT_EQ(d.hdr.bh1.num_pkts, 200u);
  EXPECT_EQ(d.hdr.bh1.offset_to_first_pkt, kFirstPacketOffset);
  EXPECT_EQ(d.hdr.bh1.blk_len, off);
  EXPECT_EQ(d.hdr.bh1.seq_num, 42u);
  EXPECT_EQ(d.hdr.bh1.ts_first_pkt.ts_sec, pkts.front().sec);
  EXPECT_EQ(d.hdr.bh1.ts_first_pkt.ts_nsec, pkts.front().nsec);
  EXPECT_EQ(d.hdr.bh1.ts_last_pkt.ts_sec, pkts.back().sec);
  EXPECT_EQ(d.hdr.bh1.ts_last_pkt.ts_nsec, pkts.back().nsec);
  BlockPriv priv;
  std::memcpy(&priv, buf.get() + kBlockDescSize, sizeof(priv));
  EXPECT_EQ(0, std::memcmp(priv.magic, "RWNDBLK1", 8));
  EXPECT_EQ(priv.linktype, 1u);
  EXPECT_EQ(priv.snaplen, 65535u);
  EXPECT_EQ(priv.flags, 0u);
  // The chain of tp_next_offset, ending with 0.
  for (size_t i = 0; i < offsets.size(); ++i) {
    tpacket3_hdr h = Hdr(buf.get(), offsets[i]);
    EXPECT_EQ(h.tp_next_offset, i + 1 < offsets.size() ? offsets[i + 1] - offsets[i] : 0u) << i;
    EXPECT_EQ(h.tp_status & TP_STATUS_VLAN_VALID, 0u);
  }
  // Unused tail zeroed (the buffer started as 0xee garbage).
  for (uint32_t i = off; i < kBlockSize; i += 997) ASSERT_EQ(buf.get()[i], 0) << i;
  EXPECT_EQ(buf.get()[kBlockSize - 1], 0);

  auto r = std::make_unique<BlockReader>();
  ASSERT_TRUE(r->Open(buf.get(), kBlockSize).ok());
  EXPECT_EQ(r->linktype(), 1u);
  EXPECT_EQ(r->snaplen(), 65535u);
  EXPECT_EQ(r->num_packets(), 200u);
  PacketView v;
  for (size_t i = 0; i < pkts.size(); ++i) {
    ASSERT_TRUE(r->Next(&v)) << i << ": " << r->status().ToString();
    const Pkt& p = pkts[i];
    EXPECT_EQ(v.offset, offsets[i]) << i;
    EXPECT_EQ(v.ts_sec, p.sec) << i;
    EXPECT_EQ(v.ts_nsec, p.nsec) << i;
    EXPECT_EQ(v.ts_ns, int64_t{p.sec} * 1000000000 + p.nsec) << i;
    EXPECT_EQ(v.caplen, p.caplen) << i;
    EXPECT_EQ(v.len, p.len) << i;
    ASSERT_EQ(Bytes(v.data, v.data + v.caplen), p.data) << i;
  }
  EXPECT_FALSE(r->Next(&v));
  EXPECT_TRUE(r->status().ok()) << r->status().ToString();

  // Random access by offset gives the same packets.
  for (size_t i = 0; i < pkts.size(); i += 17) {
    ASSERT_TRUE(r->ReadAt(offsets[i], &v).ok()) << i;
    EXPECT_EQ(v.offset, offsets[i]);
    EXPECT_EQ(v.ts_sec, pkts[i].sec);
    EXPECT_EQ(v.caplen, pkts[i].caplen);
    EXPECT_EQ(Bytes(v.data, v.data + v.caplen), pkts[i].data);
  }
}

TEST(BlockBuilder, ResetStartsAFreshBlock) {
  AlignedBuffer buf = NewBlockBuffer();
  BlockBuilder b;
  b.Reset(buf.get(), 1, 100, 1);
  Bytes f = Pattern(100, 1);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(b.Add(i, 0, 100, 100, f.data()));
  b.Finish();
  b.Reset(buf.get(), 101, 200, 2);
  EXPECT_EQ(b.num_packets(), 0u);
  EXPECT_EQ(b.linktype(), 101u);
  ASSERT_TRUE(b.Add(77, 88, 100, 100, f.data()));
  b.Finish();
  BlockReader r;
  ASSERT_TRUE(r.Open(buf.get(), kBlockSize).ok());
  EXPECT_EQ(r.linktype(), 101u);
  EXPECT_EQ(r.snaplen(), 200u);
  EXPECT_EQ(r.num_packets(), 1u);
  EXPECT_EQ(Desc(buf.get()).hdr.bh1.seq_num, 2u);
  PacketView v;
  ASSERT_TRUE(r.Next(&v));
  EXPECT_EQ(v.ts_sec, 77u);
  EXPECT_EQ(v.ts_nsec, 88u);
  EXPECT_FALSE(r.Next(&v));
  EXPECT_TRUE(r.status().ok());
}

TEST(BlockBuilder, EmptyBlockReadsAsNoPackets) {
  AlignedBuffer buf = NewBlockBuffer();
  BlockBuilder b;
  b.Reset(buf.get(), 1, 65535, 0);
  b.Finish();
  EXPECT_EQ(Desc(buf.get()).hdr.bh1.blk_len, kFirstPacketOffset);
  BlockReader r;
  ASSERT_TRUE(r.Open(buf.get(), kBlockSize).ok());
  EXPECT_EQ(r.num_packets(), 0u);
  PacketView v;
  EXPECT_FALSE(r.Next(&v));
  EXPECT_TRUE(r.status().ok());
}

TEST(BlockBuilder, AddReturnsFalseWhenFullAndKeepsTheBlockIntact) {
  AlignedBuffer buf = NewBlockBuffer();
  BlockBuilder b;
  b.Reset(buf.get(), 1, 1500, 0);
  Bytes f = Pattern(1500, 3);
  const uint32_t per_packet = Align(kPacketHeaderSize + 1500, 8);  // 1552
  const uint32_t fit = (kBlockSize - kFirstPacketOffset) / per_packet;
  uint32_t n = 0;
  while (b.Add(n, n, 1500, 1500, f.data())) ++n;
  EXPECT_EQ(n, fit);
  EXPECT_EQ(b.num_packets(), fit);
  const uint32_t used = kFirstPacketOffset + fit * per_packet;
  EXPECT_EQ(b.bytes_used(), used);
  // The rest still takes a packet that fits exactly, and nothing larger.
  const uint32_t left = kBlockSize - used;
  ASSERT_GE(left, kPacketHeaderSize);
  Bytes small = Pattern(left - kPacketHeaderSize + 1, 9);
  EXPECT_FALSE(b.Add(1, 1, left - kPacketHeaderSize + 1, 2000, small.data()));
  EXPECT_EQ(b.num_packets(), fit);
  EXPECT_TRUE(b.Add(5, 6, left - kPacketHeaderSize, 2000, small.data()));
  EXPECT_EQ(b.bytes_used(), kBlockSize);
  EXPECT_FALSE(b.Add(5, 6, 0, 0, small.data())) << "not even a zero-length packet fits a full block";
  b.Finish();

  BlockReader r;
  Status s;
  EXPECT_EQ(ReadAll(&r, buf.get(), kBlockSize, &s), static_cast<int>(fit + 1));
  EXPECT_TRUE(s.ok()) << s.ToString();
  PacketView v;
  ASSERT_TRUE(r.ReadAt(used, &v).ok());
  EXPECT_EQ(v.caplen, left - kPacketHeaderSize);
  EXPECT_EQ(v.len, 2000u);
  EXPECT_EQ(Bytes(v.data, v.data + v.caplen), Bytes(small.begin(), small.end() - 1));
}

TEST(BlockBuilder, RejectsCaplenAboveMaxSnapLen) {
  AlignedBuffer buf = NewBlockBuffer();
  BlockBuilder b;
  b.Reset(buf.get(), 1, kMaxSnapLen, 0);
  Bytes big(kMaxSnapLen + 1, 0x5a);
  EXPECT_FALSE(b.Add(1, 2, kMaxSnapLen + 1, kMaxSnapLen + 1, big.data()));
  EXPECT_EQ(b.num_packets(), 0u);
  EXPECT_EQ(b.bytes_used(), kFirstPacketOffset);
}

TEST(BlockBuilder, ZeroLengthPackets) {
  AlignedBuffer buf = NewBlockBuffer();
  BlockBuilder b;
  b.Reset(buf.get(), 1, 65535, 0);
  uint8_t dummy = 0;
  for (uint32_t i = 0; i < 5; ++i) ASSERT_TRUE(b.Add(10 + i, i, 0, 60 + i, &dummy));
  EXPECT_EQ(b.bytes_used(), kFirstPacketOffset + 5 * kPacketHeaderSize);
  b.Finish();
  BlockReader r;
  ASSERT_TRUE(r.Open(buf.get(), kBlockSize).ok());
  PacketView v;
  for (uint32_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(r.Next(&v)) << r.status().ToString();
    EXPECT_EQ(v.offset, kFirstPacketOffset + i * kPacketHeaderSize);
    EXPECT_EQ(v.caplen, 0u);
    EXPECT_EQ(v.len, 60 + i);
    EXPECT_EQ(v.ts_sec, 10 + i);
    EXPECT_EQ(v.ts_nsec, i);
  }
  EXPECT_FALSE(r.Next(&v));
  EXPECT_TRUE(r.status().ok());
}

TEST(BlockBuilder, MaxSnapLenPackets) {
  AlignedBuffer buf = NewBlockBuffer();
  BlockBuilder b;
  b.Reset(buf.get(), 1, kMaxSnapLen, 0);
  std::vector<Bytes> frames;
  for (int i = 0; i < 3; ++i) {
    frames.push_back(Pattern(kMaxSnapLen, 50 + i));
    ASSERT_TRUE(b.Add(i, 999999999, kMaxSnapLen, kMaxSnapLen + 10, frames.back().data())) << i;
  }
  // 3 * (48 + 262144) + 112 = 786688; a fourth does not fit in 1 MiB.
  EXPECT_FALSE(b.Add(3, 0, kMaxSnapLen, kMaxSnapLen, frames[0].data()));
  b.Finish();
  auto r = std::make_unique<BlockReader>();
  ASSERT_TRUE(r->Open(buf.get(), kBlockSize).ok());
  PacketView v;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(r->Next(&v)) << r->status().ToString();
    EXPECT_EQ(v.offset, kFirstPacketOffset + i * (kPacketHeaderSize + kMaxSnapLen));
    EXPECT_EQ(v.caplen, kMaxSnapLen);
    EXPECT_EQ(v.len, kMaxSnapLen + 10);
    EXPECT_EQ(v.ts_nsec, 999999999u);
    ASSERT_EQ(0, std::memcmp(v.data, frames[i].data(), kMaxSnapLen)) << i;
  }
  EXPECT_FALSE(r->Next(&v));
  EXPECT_TRUE(r->status().ok());
}

TEST(BlockBuilder, OutOfRangeFractionIsKeptAsGiven) {
  AlignedBuffer buf = NewBlockBuffer();
  BlockBuilder b;
  b.Reset(buf.get(), 1, 65535, 0);
  Bytes f = Pattern(20, 1);
  ASSERT_TRUE(b.Add(100, 1999999999u, 20, 20, f.data()));
  ASSERT_TRUE(b.Add(0xffffffffu, 5, 20, 20, f.data()));
  b.Finish();
  BlockReader r;
  ASSERT_TRUE(r.Open(buf.get(), kBlockSize).ok());
  PacketView v;
  ASSERT_TRUE(r.Next(&v));
  EXPECT_EQ(v.ts_sec, 100u);
  EXPECT_EQ(v.ts_nsec, 1999999999u);
  EXPECT_EQ(v.ts_ns, 100 * int64_t{1000000000} + 1999999999);
  ASSERT_TRUE(r.Next(&v));
  EXPECT_EQ(v.ts_ns, int64_t{0xffffffff} * 1000000000 + 5) << "seconds are unsigned 32-bit";
}

// A pcap microsecond or nanosecond field kept as stored (kStatusMicrosField, kStatusSignedNanosField): read
// back unchanged, its time libpcap's (the field signed, in its unit); the kernel's status bits beside it are
// untouched.
TEST(BlockBuilder, MicrosecondFieldKeptAsStored) {
  AlignedBuffer buf = NewBlockBuffer();
  BlockBuilder b;
  b.Reset(buf.get(), 1, 65535, 0);
  Bytes f = Pattern(20, 1);
  const uint32_t fields[] = {0xfffffff0u, 0x80000000u, 4294968u, 5u};
  for (uint32_t field : fields) ASSERT_TRUE(b.Add(1700000000, field, 20, 20, f.data(), FractionField::kSignedMicros));
  ASSERT_TRUE(b.Add(1700000000, 5, 20, 20, f.data()));
  for (uint32_t field : fields) ASSERT_TRUE(b.Add(1700000000, field, 20, 20, f.data(), FractionField::kSignedNanos));
  b.Finish();
  BlockReader r;
  ASSERT_TRUE(r.Open(buf.get(), kBlockSize).ok());
  PacketView v;
  for (uint32_t field : fields) {
    ASSERT_TRUE(r.Next(&v));
    EXPECT_EQ(v.fraction, FractionField::kSignedMicros);
    EXPECT_EQ(v.ts_nsec, field);
    EXPECT_EQ(v.ts_ns, int64_t{1700000000} * 1000000000 + int64_t{static_cast<int32_t>(field)} * 1000) << field;
    EXPECT_EQ(Bytes(v.data, v.data + v.caplen), f);
  }
  ASSERT_TRUE(r.Next(&v));
  EXPECT_EQ(v.fraction, FractionField::kNanos);
  EXPECT_EQ(v.ts_ns, int64_t{1700000000} * 1000000000 + 5);
  // A pcap nanosecond field libpcap reads as signed: the same, in nanoseconds.
  for (uint32_t field : fields) {
    ASSERT_TRUE(r.Next(&v));
    EXPECT_EQ(v.fraction, FractionField::kSignedNanos);
    EXPECT_EQ(v.ts_nsec, field);
    EXPECT_EQ(v.ts_ns, int64_t{1700000000} * 1000000000 + static_cast<int32_t>(field)) << field;
  }
  EXPECT_FALSE(r.Next(&v));
}

// ---------------------------------------------------------------------------------------------------------
// Records laid out as the kernel writes them: tpacket3_hdr, sockaddr_ll, gap, frame at tp_mac = 82 (the
// network header 16-aligned at 96), records 16-aligned; a VLAN tag moved into hv1 is not in the frame.

struct KernelRecord {
  Bytes frame;  // as the kernel stores it (tag stripped)
  uint32_t status = TP_STATUS_USER;
  uint32_t tci = 0;
  uint16_t tpid = 0;
  uint32_t len = 0;  // 0: frame.size()
};

// Writes a block of kernel-style records into `block` (zeroed first); returns the offsets.
std::vector<uint32_t> WriteKernelBlock(uint8_t* block, uint32_t size, const std::vector<KernelRecord>& recs) {
  std::memset(block, 0, size);
  BlockPriv priv{};
  std::memcpy(priv.magic, kBlockMagic, 8);
  priv.linktype = 1;
  priv.snaplen = 65535;
  std::memcpy(block + kBlockDescSize, &priv, sizeof(priv));
  std::vector<uint32_t> offsets;
  uint32_t off = kFirstPacketOffset;
  off = Align(off, 16);
  for (size_t i = 0; i < recs.size(); ++i) {
    const KernelRecord& k = recs[i];
    tpacket3_hdr h{};
    h.tp_sec = 1700000000 + static_cast<uint32_t>(i);
    h.tp_nsec = 1000 * static_cast<uint32_t>(i);
    h.tp_snaplen = static_cast<uint32_t>(k.frame.size());
    h.tp_len = k.len ? k.len : static_cast<uint32_t>(k.frame.size());
    h.tp_status = k.status;
    h.tp_mac = 82;
    h.tp_net = 96;
    h.hv1.tp_vlan_tci = k.tci;
    h.hv1.tp_vlan_tpid = k.tpid;
    uint32_t next = Align(82 + h.tp_snaplen, 16);
    h.tp_next_offset = next;  // the kernel's last record points at blk_len: "unused" (docs/format.md)
    PutHdr(block, off, h);
    std::memset(block + off + kPacketHeaderSize, 0xab, 82 - kPacketHeaderSize);  // sockaddr_ll + gap
    std::memcpy(block + off + 82, k.frame.data(), k.frame.size());
    offsets.push_back(off);
    off += next;
  }
  tpacket_block_desc d{};
  d.version = TPACKET_V3;
  d.offset_to_priv = kBlockDescSize;
  d.hdr.bh1.block_status = TP_STATUS_USER;
  d.hdr.bh1.num_pkts = static_cast<uint32_t>(recs.size());
  d.hdr.bh1.offset_to_first_pkt = offsets.empty() ? kFirstPacketOffset : offsets[0];
  d.hdr.bh1.blk_len = off;
  PutDesc(block, d);
  return offsets;
}

Bytes Ipv4Frame(uint16_t ethertype, uint32_t payload_bytes) {
  Bytes f = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb};
  f.push_back(ethertype >> 8);
  f.push_back(ethertype & 0xff);
  Bytes ip = {0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2};
  f.insert(f.end(), ip.begin(), ip.end());
  for (uint32_t i = 0; i < payload_bytes; ++i) f.push_back(static_cast<uint8_t>(i));
  return f;
}

Bytes InsertTag(const Bytes& frame, uint16_t tpid, uint16_t tci) {
  Bytes t(frame.begin(), frame.begin() + 12);
  t.push_back(tpid >> 8);
  t.push_back(tpid & 0xff);
  t.push_back(tci >> 8);
  t.push_back(tci & 0xff);
  t.insert(t.end(), frame.begin() + 12, frame.end());
  return t;
}

TEST(BlockReader, KernelLayoutAndVlanTagReinsertion) {
  Bytes plain = Ipv4Frame(0x0800, 26);
  Bytes inner = Ipv4Frame(0x0800, 7);
  std::vector<KernelRecord> recs(5);
  recs[0].frame = plain;  // no tag
  recs[1].frame = inner;  // 802.1Q, VID 100, PCP 5: tpid not reported -> 0x8100
  recs[1].status = TP_STATUS_USER | TP_STATUS_VLAN_VALID;
  recs[1].tci = 5 << 13 | 100;
  recs[1].tpid = 0x1234;  // garbage: TP_STATUS_VLAN_TPID_VALID is not set
  recs[1].len = 1000;
  recs[2].frame = inner;  // 802.1ad S-tag with TPID reported
  recs[2].status = TP_STATUS_USER | TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID;
  recs[2].tci = 0x0fff;
  recs[2].tpid = 0x88a8;
  recs[3].frame = plain;  // a tci without TP_STATUS_VLAN_VALID is ignored
  recs[3].tci = 77;
  recs[3].tpid = 0x8100;
  recs[4].frame = inner;  // 802.1Q with TPID reported explicitly
  recs[4].status = TP_STATUS_USER | TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID;
  recs[4].tci = 1;
  recs[4].tpid = 0x8100;

  AlignedBuffer buf = NewBlockBuffer();
  std::vector<uint32_t> offsets = WriteKernelBlock(buf.get(), kBlockSize, recs);
  Bytes before(buf.get(), buf.get() + kBlockSize);

  auto r = std::make_unique<BlockReader>();
  ASSERT_TRUE(r->Open(buf.get(), kBlockSize).ok());
  ASSERT_EQ(r->num_packets(), 5u);
  struct Want {
    Bytes frame;
    uint32_t len;
  } want[] = {
      {plain, static_cast<uint32_t>(plain.size())},
      {InsertTag(inner, 0x8100, 5 << 13 | 100), 1004},
      {InsertTag(inner, 0x88a8, 0x0fff), static_cast<uint32_t>(inner.size() + 4)},
      {plain, static_cast<uint32_t>(plain.size())},
      {InsertTag(inner, 0x8100, 1), static_cast<uint32_t>(inner.size() + 4)},
  };
  PacketView v;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(r->Next(&v)) << i << ": " << r->status().ToString();
    EXPECT_EQ(v.offset, offsets[i]);
    EXPECT_EQ(v.ts_sec, 1700000000u + i);
    EXPECT_EQ(v.ts_nsec, 1000u * i);
    EXPECT_EQ(v.caplen, want[i].frame.size()) << i;
    EXPECT_EQ(v.len, want[i].len) << i;
    EXPECT_EQ(Bytes(v.data, v.data + v.caplen), want[i].frame) << i;
  }
  EXPECT_FALSE(r->Next(&v));
  EXPECT_TRUE(r->status().ok()) << r->status().ToString();
  // ReadAt of a tagged packet gives the same frame.
  ASSERT_TRUE(r->ReadAt(offsets[2], &v).ok());
  EXPECT_EQ(Bytes(v.data, v.data + v.caplen), want[2].frame);
  // Reading never modifies the block.
  EXPECT_TRUE(std::memcmp(before.data(), buf.get(), kBlockSize) == 0);
}

TEST(BlockReader, VlanReinsertionOfAMaxSnapLenFrame) {
  // A tagged frame of the maximum length: the rebuilt frame (kMaxSnapLen + 4) must fit the scratch space.
  Bytes frame = Pattern(kMaxSnapLen, 4);
  frame[12] = 0x08;
  frame[13] = 0x00;
  std::vector<KernelRecord> recs(1);
  recs[0].frame = frame;
  recs[0].status = TP_STATUS_USER | TP_STATUS_VLAN_VALID;
  recs[0].tci = 42;
  AlignedBuffer buf = NewBlockBuffer();
  WriteKernelBlock(buf.get(), kBlockSize, recs);
  auto r = std::make_unique<BlockReader>();
  ASSERT_TRUE(r->Open(buf.get(), kBlockSize).ok());
  PacketView v;
  ASSERT_TRUE(r->Next(&v)) << r->status().ToString();
  EXPECT_EQ(v.caplen, kMaxSnapLen + 4);
  EXPECT_EQ(v.len, kMaxSnapLen + 4);
  EXPECT_EQ(Bytes(v.data, v.data + v.caplen), InsertTag(frame, 0x8100, 42));
}

// ---------------------------------------------------------------------------------------------------------
// DecodePacketRecord on its own.

tpacket3_hdr RecordHeader(uint32_t mac, uint32_t snaplen) {
  tpacket3_hdr h{};
  h.tp_sec = 5;
  h.tp_nsec = 6;
  h.tp_snaplen = snaplen;
  h.tp_len = snaplen + 1;
  h.tp_mac = static_cast<uint16_t>(mac);
  h.tp_next_offset = 1234;
  return h;
}

TEST(DecodePacketRecord, Bounds) {
  auto scratch = std::make_unique<uint8_t[]>(kMaxSnapLen + 8);
  PacketView v;
  uint32_t next = 0;
  // The record ends exactly at a guard page: the frame's last byte is the region's last byte.
  GuardedRegion region(4096);
  uint8_t* rec = region.data();
  std::memset(rec, 0x11, 4096);
  tpacket3_hdr h = RecordHeader(64, 4096 - 64);
  PutHdr(rec, 0, h);
  ASSERT_TRUE(DecodePacketRecord(rec, 4096, scratch.get(), &v, &next).ok());
  EXPECT_EQ(next, 1234u);
  EXPECT_EQ(v.data, rec + 64);
  EXPECT_EQ(v.caplen, 4096u - 64);
  EXPECT_EQ(v.len, 4096u - 63);
  EXPECT_EQ(v.ts_ns, 5 * int64_t{1000000000} + 6);

  // One byte more than available.
  h.tp_snaplen = 4096 - 64 + 1;
  PutHdr(rec, 0, h);
  EXPECT_EQ(DecodePacketRecord(rec, 4096, scratch.get(), &v, &next).code(), Status::kCorruption);
  // tp_mac beyond the end, with a zero snaplen.
  h = RecordHeader(4097, 0);
  PutHdr(rec, 0, h);
  EXPECT_EQ(DecodePacketRecord(rec, 4096, scratch.get(), &v, &next).code(), Status::kCorruption);
  // tp_mac inside the header.
  h = RecordHeader(40, 10);
  PutHdr(rec, 0, h);
  EXPECT_EQ(DecodePacketRecord(rec, 4096, scratch.get(), &v, &next).code(), Status::kCorruption);
  // Huge snaplen (would wrap a 32-bit sum).
  h = RecordHeader(48, 0xffffffff);
  PutHdr(rec, 0, h);
  EXPECT_EQ(DecodePacketRecord(rec, 4096, scratch.get(), &v, &next).code(), Status::kCorruption);
  // snaplen above kMaxSnapLen even though it would fit `avail`.
  {
    GuardedRegion big(kMaxSnapLen + 4096);
    h = RecordHeader(48, kMaxSnapLen + 1);
    PutHdr(big.data(), 0, h);
    EXPECT_EQ(DecodePacketRecord(big.data(), kMaxSnapLen + 4096, scratch.get(), &v, &next).code(), Status::kCorruption);
    h = RecordHeader(48, kMaxSnapLen);
    PutHdr(big.data(), 0, h);
    EXPECT_TRUE(DecodePacketRecord(big.data(), kMaxSnapLen + 4096, scratch.get(), &v, &next).ok());
  }
  // Fewer than a header's worth of bytes available: at the very end of the region.
  for (uint32_t avail = 0; avail < kPacketHeaderSize; ++avail) {
    EXPECT_EQ(DecodePacketRecord(region.data() + 4096 - avail, avail, scratch.get(), &v, &next).code(),
              Status::kCorruption)
        << avail;
  }
  // A header and an empty frame exactly at the end.
  h = RecordHeader(48, 0);
  PutHdr(region.data() + 4096 - 48, 0, h);
  EXPECT_TRUE(DecodePacketRecord(region.data() + 4096 - 48, 48, scratch.get(), &v, &next).ok());
  EXPECT_EQ(v.caplen, 0u);
}

TEST(DecodePacketRecord, VlanTaggedFrameAtTheEndOfTheRegion) {
  auto scratch = std::make_unique<uint8_t[]>(kMaxSnapLen + 8);
  GuardedRegion region(48 + 30);
  Bytes frame = Pattern(30, 8);
  tpacket3_hdr h = RecordHeader(48, 30);
  h.tp_status = TP_STATUS_USER | TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID;
  h.hv1.tp_vlan_tci = 0xabc;
  h.hv1.tp_vlan_tpid = 0x9100;
  PutHdr(region.data(), 0, h);
  std::memcpy(region.data() + 48, frame.data(), 30);
  PacketView v;
  uint32_t next = 0;
  ASSERT_TRUE(DecodePacketRecord(region.data(), 78, scratch.get(), &v, &next).ok());
  EXPECT_EQ(v.data, scratch.get());
  EXPECT_EQ(v.caplen, 34u);
  EXPECT_EQ(v.len, 35u);
  EXPECT_EQ(Bytes(v.data, v.data + v.caplen), InsertTag(frame, 0x9100, 0xabc));
}

// ---------------------------------------------------------------------------------------------------------
// Damaged blocks: always a Corruption status, never a read outside [block, block + size).

class DamagedBlock : public ::testing::Test {
 protected:
  // A valid 3-packet block placed so that its last byte (blk_len - 1) is followed by the guard page.
  void SetUp() override {
    AlignedBuffer tmp = NewBlockBuffer();
    used_ = BuildSmallBlock(tmp.get(), 3);
    region_ = std::make_unique<GuardedRegion>(used_);
    std::memcpy(region_->data(), tmp.get(), used_);
    block_ = region_->data();
    r_ = std::make_unique<BlockReader>();
  }
  uint32_t Offset(int i) const { return kFirstPacketOffset + i * Align(kPacketHeaderSize + 60, 8); }
  void ExpectCorruption(const char* what) {
    Status s;
    int n = ReadAll(r_.get(), block_, used_, &s);
    EXPECT_EQ(s.code(), Status::kCorruption) << what << ": " << s.ToString() << " after " << n << " packets";
  }
  uint32_t used_ = 0;
  std::unique_ptr<GuardedRegion> region_;
  uint8_t* block_ = nullptr;
  std::unique_ptr<BlockReader> r_;
};

TEST_F(DamagedBlock, IntactBlockReads) {
  Status s;
  EXPECT_EQ(ReadAll(r_.get(), block_, used_, &s), 3);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(DamagedBlock, BadMagic) {
  block_[kBlockDescSize + 3] ^= 0x20;
  Status s = r_->Open(block_, used_);
  EXPECT_EQ(s.code(), Status::kCorruption);
  EXPECT_EQ(r_->status().code(), Status::kCorruption);
  PacketView v;
  EXPECT_FALSE(r_->Next(&v));
  // A zeroed block (a hole in a file) is not a block either.
  std::memset(block_, 0, used_);
  EXPECT_EQ(r_->Open(block_, used_).code(), Status::kCorruption);
}

TEST_F(DamagedBlock, ShorterThanHeader) {
  for (uint32_t size : {0u, 1u, kBlockDescSize, kFirstPacketOffset - 1}) {
    EXPECT_EQ(r_->Open(block_ + used_ - size, size).code(), Status::kCorruption) << size;
  }
}

TEST_F(DamagedBlock, BlkLenBeyondSize) {
  tpacket_block_desc d = Desc(block_);
  d.hdr.bh1.blk_len = used_ + 1;
  PutDesc(block_, d);
  EXPECT_EQ(r_->Open(block_, used_).code(), Status::kCorruption);
  d.hdr.bh1.blk_len = 0xffffffff;
  PutDesc(block_, d);
  EXPECT_EQ(r_->Open(block_, used_).code(), Status::kCorruption);
}

TEST_F(DamagedBlock, TruncatedBlock) {
  // The block's descriptor claims more than the bytes we have (e.g. a file cut off by a crash).
  uint32_t keep = used_ - 10;
  GuardedRegion short_region(keep);
  std::memcpy(short_region.data(), block_, keep);
  EXPECT_EQ(r_->Open(short_region.data(), keep).code(), Status::kCorruption);
}

TEST_F(DamagedBlock, FirstPacketOffsetOutOfBounds) {
  tpacket_block_desc d = Desc(block_);
  d.hdr.bh1.offset_to_first_pkt = used_;
  PutDesc(block_, d);
  EXPECT_EQ(r_->Open(block_, used_).code(), Status::kCorruption);
  d.hdr.bh1.offset_to_first_pkt = 16;  // inside the descriptor
  PutDesc(block_, d);
  EXPECT_EQ(r_->Open(block_, used_).code(), Status::kCorruption);
}

TEST_F(DamagedBlock, NextOffsetPointsOutOfTheBlock) {
  for (uint32_t delta : {used_, used_ - Offset(0) - 8, used_ - Offset(0), kBlockSize, 0x80000000u}) {
    SetUp();
    tpacket3_hdr h = Hdr(block_, Offset(0));
    h.tp_next_offset = delta;
    PutHdr(block_, Offset(0), h);
    ExpectCorruption(("tp_next_offset " + std::to_string(delta)).c_str());
  }
}

TEST_F(DamagedBlock, NextOffsetGoesBackwardsOrMisaligned) {
  tpacket3_hdr h = Hdr(block_, Offset(1));
  h.tp_next_offset = 0xffffffff - 10;  // wraps to before the packet
  PutHdr(block_, Offset(1), h);
  ExpectCorruption("wrapping tp_next_offset");
  SetUp();
  h = Hdr(block_, Offset(0));
  h.tp_next_offset = 2;  // misaligned, inside the first packet
  PutHdr(block_, Offset(0), h);
  ExpectCorruption("misaligned tp_next_offset");
}

TEST_F(DamagedBlock, ChainEndsBeforeNumPkts) {
  tpacket_block_desc d = Desc(block_);
  d.hdr.bh1.num_pkts = 4;
  PutDesc(block_, d);
  Status s;
  EXPECT_EQ(ReadAll(r_.get(), block_, used_, &s), 3);
  EXPECT_EQ(s.code(), Status::kCorruption) << s.ToString();
}

TEST_F(DamagedBlock, SnaplenOverrunsTheBlock) {
  // The last packet's frame runs one byte past blk_len, which is the end of the readable region.
  tpacket3_hdr h = Hdr(block_, Offset(2));
  h.tp_snaplen = used_ - Offset(2) - kPacketHeaderSize + 1;
  PutHdr(block_, Offset(2), h);
  Status s;
  EXPECT_EQ(ReadAll(r_.get(), block_, used_, &s), 2);
  EXPECT_EQ(s.code(), Status::kCorruption) << s.ToString();
  // Exactly to the end is fine.
  h.tp_snaplen -= 1;
  PutHdr(block_, Offset(2), h);
  EXPECT_EQ(ReadAll(r_.get(), block_, used_, &s), 3);
  EXPECT_TRUE(s.ok()) << s.ToString();
  // tp_mac pointing past the end.
  h = Hdr(block_, Offset(2));
  h.tp_mac = 0xfff0;
  PutHdr(block_, Offset(2), h);
  ExpectCorruption("tp_mac");
}

TEST_F(DamagedBlock, ReadAtBadOffsets) {
  ASSERT_TRUE(r_->Open(block_, used_).ok());
  PacketView v;
  for (uint32_t off : {0u, 4u, kFirstPacketOffset - 4, Offset(0) + 2, used_ - kPacketHeaderSize + 4, used_,
                       kBlockSize - 4, kBlockSize, kBlockSize + 4}) {
    EXPECT_EQ(r_->ReadAt(off, &v).code(), Status::kCorruption) << off;
  }
  EXPECT_TRUE(r_->ReadAt(Offset(2), &v).ok());
}

TEST_F(DamagedBlock, ReadAtOffsetNearUint32MaxIsCorruption) {
  ASSERT_TRUE(r_->Open(block_, used_).ok());
  PacketView v;
  for (uint32_t off : {0xfffffffcu, 0xffffffd0u, 0xffffffe0u}) {
    EXPECT_EQ(r_->ReadAt(off, &v).code(), Status::kCorruption) << off;
  }
}

TEST_F(DamagedBlock, RandomDamageNeverReadsOutOfBounds) {
  // Flip random bytes of the descriptor and packet headers; whatever the outcome, no read may leave the
  // region (the guard page turns that into a crash). Packets that are reported must lie inside the block.
  const Bytes pristine(block_, block_ + used_);
  std::mt19937 rng(12345);
  int corrupt = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::memcpy(block_, pristine.data(), used_);
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      // Mostly header bytes: the descriptor and the three packet headers.
      uint32_t pos;
      switch (rng() % 4) {
        case 0:
          pos = rng() % kBlockDescSize;
          break;
        default:
          pos = Offset(static_cast<int>(rng() % 3)) + rng() % kPacketHeaderSize;
          break;
      }
      block_[pos] = static_cast<uint8_t>(rng());
    }
    Status s;
    ReadAll(r_.get(), block_, used_, &s);
    if (!s.ok()) {
      EXPECT_EQ(s.code(), Status::kCorruption) << s.ToString();
      ++corrupt;
    }
    if (r_->Open(block_, used_).ok()) {
      // Salvage: once bridged, the chain walks to its end without error, over at most the 3 records.
      std::vector<RawRange> skipped;
      uint32_t kept = BridgeBrokenRecords(block_, used_, &skipped);
      Status after;
      int n = ReadAll(r_.get(), block_, used_, &after);
      EXPECT_TRUE(after.ok()) << after.ToString();
      EXPECT_EQ(n, static_cast<int>(kept));
      EXPECT_LE(kept, 3u);
    }
    PacketView v;
    for (int k = 0; k < 4; ++k) {
      uint32_t off = rng() % (used_ + 64);
      if (r_->ReadAt(off, &v).ok()) {
        ASSERT_GE(off, kFirstPacketOffset);
        ASSERT_LE(off + kPacketHeaderSize, used_);
      }
    }
  }
  EXPECT_GT(corrupt, 100) << "the damage should often be detected";
}

// ---------------------------------------------------------------------------------------------------------
// Salvage of a block whose record framing breaks: every other record is found again.

class BrokenRecords : public ::testing::Test {
 protected:
  void SetUp() override {
    block_ = NewBlockBuffer();
    BlockBuilder b;
    b.Reset(block_.get(), 1, 65535, 7);
    for (int i = 0; i < 3000; ++i) {
      Bytes f = Pattern(60 + (i * 37) % 900, i);
      uint32_t at = b.bytes_used();
      if (!b.Add(1000 + i, i, static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()), f.data())) break;
      offsets_.push_back(at);
      frames_.push_back(std::move(f));
    }
    b.Finish();
    used_ = b.bytes_used();
    SealBlock(block_.get());
    pristine_.assign(block_.get(), block_.get() + kBlockSize);
  }
  void Put32(uint32_t at, uint32_t v) { std::memcpy(block_.get() + at, &v, 4); }
  // Bridges the block, walks it, and checks the walk yields exactly the records but `lost` (indexes), each
  // byte for byte.
  void ExpectAllBut(std::vector<size_t> lost, const char* what) {
    std::vector<RawRange> skipped;
    uint32_t kept = BridgeBrokenRecords(block_.get(), kBlockSize, &skipped);
    EXPECT_EQ(kept, offsets_.size() - lost.size()) << what;
    BlockReader r;
    ASSERT_TRUE(r.Open(block_.get(), kBlockSize).ok()) << what;
    PacketView p;
    size_t i = 0;
    while (r.Next(&p)) {
      while (std::find(lost.begin(), lost.end(), i) != lost.end()) ++i;
      ASSERT_LT(i, offsets_.size()) << what;
      EXPECT_EQ(p.offset, offsets_[i]) << what << ": record " << i;
      EXPECT_EQ(Bytes(p.data, p.data + p.caplen), frames_[i]) << what << ": record " << i;
      ++i;
    }
    EXPECT_TRUE(r.status().ok()) << what << ": " << r.status().ToString();
    while (std::find(lost.begin(), lost.end(), i) != lost.end()) ++i;
    EXPECT_EQ(i, offsets_.size()) << what;
    for (const RawRange& g : skipped) {  // what was skipped holds no record that was kept
      for (size_t k = 0; k < offsets_.size(); ++k) {
        if (std::find(lost.begin(), lost.end(), k) == lost.end()) {
          EXPECT_FALSE(offsets_[k] >= g.begin && offsets_[k] < g.end) << what << ": record " << k;
        }
      }
    }
    std::memcpy(block_.get(), pristine_.data(), kBlockSize);
  }
  AlignedBuffer block_;
  Bytes pristine_;
  std::vector<uint32_t> offsets_;
  std::vector<Bytes> frames_;
  uint32_t used_ = 0;
};

TEST_F(BrokenRecords, EveryRecordWhoseFramingHoldsIsKept) {
  ASSERT_GT(offsets_.size(), 1500u);
  size_t n = offsets_.size();
  uint32_t snaplen_at = offsetof(tpacket3_hdr, tp_snaplen), mac_at = offsetof(tpacket3_hdr, tp_mac);
  ExpectAllBut({}, "intact");
  Put32(offsets_[700] + snaplen_at, 0x00ffffff);
  ExpectAllBut({700}, "a snaplen that overruns the block");
  Put32(offsets_[700], 3);
  ExpectAllBut({}, "a next pointer that leads nowhere (the record itself holds)");
  Put32(offsets_[700], 0);
  ExpectAllBut({}, "a next pointer zeroed mid-block");
  Put32(offsets_[700], kBlockSize);
  ExpectAllBut({}, "a next pointer out of the block");
  std::memset(block_.get() + offsets_[40], 0x41, 300);
  std::memset(block_.get() + offsets_[900] + mac_at, 0, 2);
  ExpectAllBut({40, 900}, "two records far apart");
  std::memset(block_.get() + offsets_[40], 0, offsets_[44] - offsets_[40]);
  ExpectAllBut({40, 41, 42, 43}, "four records in a row zeroed");
  Put32(offsets_[0] + snaplen_at, 0x00ffffff);
  ExpectAllBut({0}, "the first record");
  Put32(offsets_[n - 1] + snaplen_at, 0x00ffffff);
  ExpectAllBut({n - 1}, "the last record");
  Put32(offsets_[n - 2], 0);
  ExpectAllBut({}, "the pointer of the one before the last");
  for (uint32_t bit : {3u, 4u, 5u, 8u}) {  // a flipped bit in a next pointer: it leads into the next record
    uint32_t next;
    std::memcpy(&next, block_.get() + offsets_[300], 4);
    Put32(offsets_[300], next ^ (1u << bit));
    ExpectAllBut({}, "a flipped bit in a next pointer");
  }
}

// A snaplen damaged to a smaller value that still decodes: the next pointer (which leads to a chain that
// holds) wins over the frame length; every record is kept, the damaged one cut short (it carries the damage).
TEST_F(BrokenRecords, ANextPointerThatHoldsWinsOverADamagedLength) {
  Put32(offsets_[500] + offsetof(tpacket3_hdr, tp_snaplen), static_cast<uint32_t>(frames_[500].size()) - 40);
  std::vector<RawRange> skipped;
  EXPECT_EQ(BridgeBrokenRecords(block_.get(), kBlockSize, &skipped), offsets_.size());
  EXPECT_TRUE(skipped.empty());
  BlockReader r;
  ASSERT_TRUE(r.Open(block_.get(), kBlockSize).ok());
  PacketView p;
  size_t i = 0;
  for (; r.Next(&p); ++i) {
    ASSERT_LT(i, offsets_.size());
    EXPECT_EQ(p.offset, offsets_[i]);
    EXPECT_EQ(p.caplen, frames_[i].size() - (i == 500 ? 40 : 0));
  }
  EXPECT_EQ(i, offsets_.size());
}

// Found by block_format_fuzz: a 120-byte block whose descriptor opens (no packets listed, the first packet
// offset far past its 23-byte blk_len). Bridging found no record and set the first packet offset to blk_len,
// below the descriptor's own size, so the block no longer opened. It must open and walk as empty.
TEST(BridgeBrokenRecords, ABlockWithNoRecordInReachStillOpens) {
  const uint32_t words[30] = {2, 48, 65546, 0, 119865456, 23, 256, 3, 1368908320, 837063000, 1368908507, 885359000,
                              1145984850, 827018306, 1358954806, 0, 25, 0, 195990, 0, 0, 837032448, 1368908507,
                              885359000, 1145984850, 827018306, 20736, 9830400, 0, 13836800};
  uint8_t block[sizeof(words)];
  std::memcpy(block, words, sizeof(words));
  BlockReader r;
  ASSERT_TRUE(r.Open(block, sizeof(block)).ok());
  EXPECT_EQ(BridgeBrokenRecords(block, sizeof(block), nullptr), 0u);
  Status s;
  EXPECT_EQ(ReadAll(&r, block, sizeof(block), &s), 0);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

}  // namespace
}  // namespace rwd
