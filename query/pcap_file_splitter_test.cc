// PcapFileSplitter: exported files sort in packet order, each is a valid capture file no larger than the
// split size (unless it holds one packet that alone is), and together they hold exactly the Query's answer,
// plain, gzip and zstd; pcapng for mixed link types; no overwriting; disk full keeps completed files.
// The store is built with capture/'s importer (a test-only dependency; query/ itself never includes
// capture/).
#include "index/test_temp_dir.h"
#include "query/pcap_file_splitter.h"

#include <dirent.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "capture/packet_file_writer.h"
#include "capture/pcap_importer.h"
#include "gtest/gtest.h"
#include "index/store_layout.h"
#include "query/query_engine.h"

namespace rwd {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kEthernet = 1;
constexpr uint32_t kRaw = 101;                  // LINKTYPE_RAW: bare IPv4
constexpr uint32_t kStart = 1767225600;         // 2026-01-01T00:00:00Z

struct Record {
  uint32_t linktype;
  int64_t ts_ns;
  uint32_t caplen;
  uint32_t len;
  std::string bytes;
  bool operator==(const Record& o) const {
    return linktype == o.linktype && ts_ns == o.ts_ns && caplen == o.caplen && len == o.len && bytes == o.bytes;
  }
};

std::ostream& operator<<(std::ostream& os, const Record& r) {
  return os << "{lt " << r.linktype << " ts " << r.ts_ns << " caplen " << r.caplen << " len " << r.len << "}";
}

// An IPv4/UDP packet of `size` bytes (Ethernet framed unless raw) with payload bytes from `seed`.
std::string MakePacket(bool raw, uint32_t size, uint32_t seed) {
  std::string ip(20, '\0');
  ip[0] = 0x45;
  ip[8] = 64;
  ip[9] = 17;  // UDP
  uint32_t src = 0x0a000001 + seed % 7, dst = 0x0a000100 + seed % 5;
  for (int i = 0; i < 4; ++i) {
    ip[12 + i] = static_cast<char>(src >> (24 - 8 * i));
    ip[16 + i] = static_cast<char>(dst >> (24 - 8 * i));
  }
  std::string udp(8, '\0');
  uint16_t sport = 1024 + seed % 100, dport = seed % 3 == 0 ? 53 : 443;
  udp[0] = static_cast<char>(sport >> 8);
  udp[1] = static_cast<char>(sport);
  udp[2] = static_cast<char>(dport >> 8);
  udp[3] = static_cast<char>(dport);
  std::string l2 = raw ? "" : std::string("\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00", 14);
  uint32_t header = static_cast<uint32_t>(l2.size() + ip.size() + udp.size());
  uint32_t payload = size > header ? size - header : 0;
  uint16_t ip_len = static_cast<uint16_t>(20 + 8 + payload), udp_len = static_cast<uint16_t>(8 + payload);
  ip[2] = static_cast<char>(ip_len >> 8);
  ip[3] = static_cast<char>(ip_len);
  udp[4] = static_cast<char>(udp_len >> 8);
  udp[5] = static_cast<char>(udp_len);
  std::string p = l2 + ip + udp;
  for (uint32_t i = 0; i < payload; ++i) p.push_back(static_cast<char>((seed * 31 + i * 7) & 0xff));
  return p;
}

// Writes a nanosecond pcap of `n` packets: times from kStart + `offset_ns` in steps of `step_ns`, sizes
// varied, every 97th a 9000-byte jumbo frame.
void WriteCapture(const std::string& path, bool raw, int n, int64_t offset_ns, int64_t step_ns) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  {
    FdSink sink(fd);
    PcapWriter w(&sink, CaptureFormat::kPcap, true);
    ASSERT_TRUE(w.Begin({raw ? kRaw : kEthernet}, 65535).ok());
    for (int i = 0; i < n; ++i) {
      uint32_t size = i % 97 == 5 ? 9000 : 60 + (i * 37) % 1400;
      std::string p = MakePacket(raw, size, i);
      int64_t ts = int64_t{kStart} * 1000000000 + offset_ns + i * step_ns;
      ASSERT_TRUE(w.WritePacket(raw ? kRaw : kEthernet, static_cast<uint32_t>(ts / 1000000000),
                                static_cast<uint32_t>(ts % 1000000000), static_cast<uint32_t>(p.size()),
                                static_cast<uint32_t>(p.size()), reinterpret_cast<const uint8_t*>(p.data()))
                      .ok());
    }
    ASSERT_TRUE(w.Flush().ok());
  }
  close(fd);
}

void Import(const std::string& store, const std::vector<std::string>& inputs) {
  auto lock = WriterLock::Acquire(store, 0);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  PacketFileWriterOptions o;
  o.store = store;
  PacketFileWriter w(o, std::move(*lock));
  PcapImporter imp(&w, 4);
  for (const auto& in : inputs) {
    ImportFileStats st;
    Status s = imp.ImportFile(in, &st, nullptr);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  ASSERT_TRUE(imp.Finish().ok());
}

// A store of 400 Ethernet packets over two minutes (and, if `mixed`, 150 raw IPv4 packets interleaved).
class StoreFixture {
 public:
  explicit StoreFixture(bool mixed = false) {
    store_ = tmp_.path() + "/store";
    WriteCapture(tmp_.path() + "/eth.pcap", false, 400, 0, 300'000'123);
    std::vector<std::string> inputs = {tmp_.path() + "/eth.pcap"};
    if (mixed) {
      WriteCapture(tmp_.path() + "/raw.pcap", true, 150, 150'000'000, 700'000'000);
      inputs.push_back(tmp_.path() + "/raw.pcap");
    }
    Import(store_, inputs);
  }
  const std::string& store() const { return store_; }
  std::string out(const std::string& name) const { return tmp_.path() + "/" + name; }

 private:
  TempDir tmp_;
  std::string store_;
};

// The Query's answer, with times truncated to µs unless `nanos` (as the writer stores them).
std::vector<Record> Answer(const std::string& store, const std::string& text, bool nanos) {
  std::vector<Record> out;
  QueryOptions o;
  auto q = Query::Prepare(store, text, o);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  if (!q.ok()) return out;
  QueryStats stats;
  Status s = (*q)->ForEach(
      [&](const Query::Match& m) {
        int64_t ts = int64_t{m.packet->ts_sec} * 1000000000 + (nanos ? m.packet->ts_nsec : m.packet->ts_nsec / 1000 * 1000);
        out.push_back({m.linktype, ts, m.packet->caplen, m.packet->len,
                       std::string(reinterpret_cast<const char*>(m.packet->data), m.packet->caplen)});
        return true;
      },
      &stats);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

struct Exported {
  Status status;
  PcapSplitStats stats;
};

Exported Export(const std::string& store, const std::string& text, const PcapSplitOptions& so, bool pcapng = false) {
  Exported e;
  QueryOptions o;
  o.pcapng = pcapng;
  auto q = Query::Prepare(store, text, o);
  if (!q.ok()) {
    e.status = q.status();
    return e;
  }
  e.status = ExportQueryToFiles(q->get(), so, &e.stats, nullptr);
  return e;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The file's capture-format bytes: decompressed by its extension.
std::string Decompressed(const std::string& path) {
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) {
    std::string out;
    gzFile g = gzopen(path.c_str(), "rb");
    EXPECT_NE(g, nullptr) << path;
    if (g == nullptr) return out;
    char buf[65536];
    int n;
    while ((n = gzread(g, buf, sizeof(buf))) > 0) out.append(buf, n);
    EXPECT_EQ(n, 0) << path << ": gzip error";
    EXPECT_EQ(gzclose(g), Z_OK) << path;
    return out;
  }
  std::string in = ReadFile(path);
  if (path.size() > 4 && path.compare(path.size() - 4, 4, ".zst") == 0) {
    std::string out;
    ZSTD_DCtx* d = ZSTD_createDCtx();
    ZSTD_inBuffer ib{in.data(), in.size(), 0};
    std::vector<char> buf(ZSTD_DStreamOutSize());
    size_t r = 1;
    while (ib.pos < ib.size) {
      ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
      r = ZSTD_decompressStream(d, &ob, &ib);
      if (ZSTD_isError(r)) {
        ADD_FAILURE() << path << ": " << ZSTD_getErrorName(r);
        break;
      }
      out.append(buf.data(), ob.pos);
    }
    EXPECT_EQ(r, 0u) << path << ": zstd frame not complete";
    ZSTD_freeDCtx(d);
    return out;
  }
  return in;
}

// Reads classic pcap (or single-link-type pcapng) bytes with libpcap, as tcpdump would.
bool ReadWithLibpcap(std::string bytes, std::vector<Record>* out, bool* nanos) {
  FILE* f = fmemopen(bytes.data(), bytes.size(), "rb");
  if (f == nullptr) return false;
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err);
  if (p == nullptr) {
    fclose(f);
    ADD_FAILURE() << "libpcap: " << err;
    return false;
  }
  if (nanos != nullptr) {
    // The file's own resolution shows in its magic (pcap) — read it from the bytes.
    uint32_t magic;
    std::memcpy(&magic, bytes.data(), 4);
    *nanos = magic == 0xa1b23c4d;
  }
  int dlt = pcap_datalink(p);
  uint32_t lt = dlt == DLT_RAW ? kRaw : static_cast<uint32_t>(dlt);
  pcap_pkthdr* h;
  const u_char* data;
  int r;
  while ((r = pcap_next_ex(p, &h, &data)) == 1) {
    out->push_back({lt, int64_t{static_cast<uint32_t>(h->ts.tv_sec)} * 1000000000 + h->ts.tv_usec, h->caplen, h->len,
                    std::string(reinterpret_cast<const char*>(data), h->caplen)});
  }
  pcap_close(p);
  return r == PCAP_ERROR_BREAK;  // -2: end of file, no error
}

// A minimal pcapng reader for files with several link types (which libpcap refuses).
bool ReadPcapng(const std::string& b, std::vector<Record>* out, std::vector<uint32_t>* linktypes) {
  auto u32 = [&](size_t o) { uint32_t v; std::memcpy(&v, b.data() + o, 4); return v; };
  auto u16 = [&](size_t o) { uint16_t v; std::memcpy(&v, b.data() + o, 2); return v; };
  if (b.size() < 28 || u32(0) != 0x0a0d0d0a || u32(8) != 0x1a2b3c4d) return false;
  std::vector<uint64_t> ticks_per_sec;
  size_t off = 0;
  while (off < b.size()) {
    if (off + 12 > b.size()) return false;
    uint32_t type = u32(off), total = u32(off + 4);
    if (total < 12 || total % 4 != 0 || off + total > b.size() || u32(off + total - 4) != total) return false;
    if (type == 1) {
      linktypes->push_back(u16(off + 8));
      uint64_t tps = 1000000;
      for (size_t o = off + 16; o + 4 <= off + total - 4;) {
        uint16_t code = u16(o), len = u16(o + 2);
        if (code == 0) break;
        if (code == 9 && len == 1) tps = b[o + 4] == 9 ? 1000000000 : 1000000;
        o += 4 + ((len + 3) & ~3u);
      }
      ticks_per_sec.push_back(tps);
    } else if (type == 6) {
      uint32_t iface = u32(off + 8);
      if (iface >= linktypes->size()) return false;
      uint64_t ticks = (uint64_t{u32(off + 12)} << 32) | u32(off + 16);
      uint32_t caplen = u32(off + 20), len = u32(off + 24);
      uint64_t tps = ticks_per_sec[iface];
      int64_t ts = static_cast<int64_t>(ticks / tps * 1000000000 + ticks % tps * (1000000000 / tps));
      out->push_back({(*linktypes)[iface], ts, caplen, len, b.substr(off + 28, caplen)});
    } else if (type != 0x0a0d0d0a) {
      return false;
    }
    off += total;
  }
  return true;
}

// The names in `dir` (dotfiles too), sorted as plain strings.
std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string Base(const std::string& path) { return fs::path(path).filename().string(); }

// Checks an export's files against the answer: names sort in packet order and match the scheme, no
// temporary file is left, every file is valid and within the split size (or holds one packet), and the
// concatenation equals the answer.
void CheckExport(const std::string& out, const PcapSplitStats& stats, const std::vector<Record>& want,
                 uint64_t split, const std::string& ext, bool pcapng, bool nanos) {
  std::vector<std::string> names = ListDir(out);
  ASSERT_EQ(names.size(), stats.files.size()) << "stray files (a .tmp- left behind?)";
  std::regex scheme("rewind-[0-9]{8}T[0-9]{6}Z-([0-9]{6})" + std::regex_replace(ext, std::regex("\\."), "\\."));
  std::vector<Record> got;
  uint64_t capture_bytes = 0, file_bytes = 0;
  std::string prev_t;
  for (size_t i = 0; i < names.size(); ++i) {
    SCOPED_TRACE(names[i]);
    ASSERT_EQ(names[i], Base(stats.files[i])) << "names do not sort in export order";
    std::smatch m;
    ASSERT_TRUE(std::regex_match(names[i], m, scheme));
    EXPECT_EQ(std::stoul(m[1]), i + 1);
    std::string path = out + "/" + names[i];
    file_bytes += fs::file_size(path);
    std::string bytes = Decompressed(path);
    capture_bytes += bytes.size();
    std::vector<Record> recs;
    if (pcapng) {
      std::vector<uint32_t> lts;
      ASSERT_TRUE(ReadPcapng(bytes, &recs, &lts)) << "not a valid pcapng";
    } else {
      bool file_nanos = false;
      ASSERT_TRUE(ReadWithLibpcap(bytes, &recs, &file_nanos));
      EXPECT_EQ(file_nanos, nanos);
    }
    ASSERT_FALSE(recs.empty()) << "a file without packets";
    if (bytes.size() > split) {
      EXPECT_EQ(recs.size(), 1u) << bytes.size() << " bytes > split " << split;
    }
    // The name's time is that of the file's first packet (the answer is in time order here).
    time_t t = static_cast<time_t>(recs[0].ts_ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
    EXPECT_EQ(names[i].substr(7, 16), buf);
    got.insert(got.end(), recs.begin(), recs.end());
  }
  EXPECT_EQ(stats.packets, want.size());
  EXPECT_EQ(stats.capture_bytes, capture_bytes);
  EXPECT_EQ(stats.file_bytes, file_bytes);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "packet " << i;
}

TEST(PcapFileSplitterTest, SplitsAnswerIntoSortedValidPcaps) {
  StoreFixture fx;
  std::vector<Record> want = Answer(fx.store(), "", false);
  ASSERT_EQ(want.size(), 400u);
  PcapSplitOptions so;
  so.dir = fx.out("out");
  so.split_bytes = 8192;
  Exported e = Export(fx.store(), "", so);
  ASSERT_TRUE(e.status.ok()) << e.status.ToString();
  EXPECT_GT(e.stats.files.size(), 20u);
  CheckExport(so.dir, e.stats, want, so.split_bytes, ".pcap", false, false);
}

TEST(PcapFileSplitterTest, FilterTimeRangeAndNanos) {
  StoreFixture fx;
  std::string text = "udp port 53 and after 2026-01-01T00:00:30Z and before 2026-01-01T00:01:30Z";
  std::vector<Record> want = Answer(fx.store(), text, true);
  ASSERT_GT(want.size(), 20u);
  ASSERT_LT(want.size(), 200u);
  PcapSplitOptions so;
  so.dir = fx.out("a/b/c");  // created
  so.split_bytes = 4096;
  so.nanos = true;
  so.sync = false;
  Exported e = Export(fx.store(), text, so);
  ASSERT_TRUE(e.status.ok()) << e.status.ToString();
  CheckExport(so.dir, e.stats, want, so.split_bytes, ".pcap", false, true);
  EXPECT_EQ(Base(e.stats.files[0]).substr(0, 24), "rewind-20260101T000030Z-");
}

TEST(PcapFileSplitterTest, PacketLargerThanSplitGetsAFileOfItsOwn) {
  StoreFixture fx;
  std::vector<Record> want = Answer(fx.store(), "before 2026-01-01T00:00:15Z", false);
  PcapSplitOptions so;
  so.dir = fx.out("out");
  so.split_bytes = 1;
  so.sync = false;
  Exported e = Export(fx.store(), "before 2026-01-01T00:00:15Z", so);
  ASSERT_TRUE(e.status.ok()) << e.status.ToString();
  EXPECT_EQ(e.stats.files.size(), want.size());
  CheckExport(so.dir, e.stats, want, so.split_bytes, ".pcap", false, false);
}

TEST(PcapFileSplitterTest, GzipAndZstdDecompressToTheSamePackets) {
  StoreFixture fx;
  std::vector<Record> want = Answer(fx.store(), "", false);
  for (auto [c, ext, magic] : {std::tuple{SplitCompression::kGzip, ".pcap.gz", std::string("\x1f\x8b", 2)},
                               std::tuple{SplitCompression::kZstd, ".pcap.zst", std::string("\x28\xb5\x2f\xfd", 4)}}) {
    SCOPED_TRACE(ext);
    PcapSplitOptions so;
    so.dir = fx.out(std::string("out") + ext);
    so.split_bytes = 32 * 1024;
    so.compression = c;
    Exported e = Export(fx.store(), "", so);
    ASSERT_TRUE(e.status.ok()) << e.status.ToString();
    EXPECT_GT(e.stats.files.size(), 5u);
    for (const auto& f : e.stats.files) EXPECT_EQ(ReadFile(f).substr(0, magic.size()), magic) << f;
    EXPECT_LT(e.stats.file_bytes, e.stats.capture_bytes);
    CheckExport(so.dir, e.stats, want, so.split_bytes, ext, false, false);
  }
}

TEST(PcapFileSplitterTest, MixedLinkTypesWritePcapng) {
  StoreFixture fx(/*mixed=*/true);
  std::vector<Record> want = Answer(fx.store(), "", true);
  ASSERT_EQ(want.size(), 550u);
  PcapSplitOptions so;
  so.dir = fx.out("out");
  so.split_bytes = 16 * 1024;
  so.nanos = true;
  so.compression = SplitCompression::kZstd;
  Exported e = Export(fx.store(), "", so);
  ASSERT_TRUE(e.status.ok()) << e.status.ToString();
  CheckExport(so.dir, e.stats, want, so.split_bytes, ".pcapng.zst", true, true);
  // Every file declares both link types, so any packet of the answer fits in any file.
  std::vector<Record> recs;
  std::vector<uint32_t> lts;
  ASSERT_TRUE(ReadPcapng(Decompressed(e.stats.files.back()), &recs, &lts));
  EXPECT_EQ(lts, (std::vector<uint32_t>{kEthernet, kRaw}));
}

TEST(PcapFileSplitterTest, ForcedPcapngWithOneLinkTypeIsReadByLibpcap) {
  StoreFixture fx;
  std::vector<Record> want = Answer(fx.store(), "", false);
  PcapSplitOptions so;
  so.dir = fx.out("out");
  so.split_bytes = 64 * 1024;
  so.sync = false;
  Exported e = Export(fx.store(), "", so, /*pcapng=*/true);
  ASSERT_TRUE(e.status.ok()) << e.status.ToString();
  CheckExport(so.dir, e.stats, want, so.split_bytes, ".pcapng", true, false);
  std::vector<Record> got;
  for (const auto& f : e.stats.files) ASSERT_TRUE(ReadWithLibpcap(ReadFile(f), &got, nullptr)) << f;
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "packet " << i;
}

TEST(PcapFileSplitterTest, EmptyAnswerWritesNoFile) {
  StoreFixture fx;
  PcapSplitOptions so;
  so.dir = fx.out("out");
  Exported e = Export(fx.store(), "port 9", so);
  ASSERT_TRUE(e.status.ok()) << e.status.ToString();
  EXPECT_TRUE(e.stats.files.empty());
  EXPECT_TRUE(ListDir(so.dir).empty());
}

TEST(PcapFileSplitterTest, NeverOverwritesAndLeavesNoTemporaryFile) {
  StoreFixture fx;
  PcapSplitOptions so;
  so.dir = fx.out("out");
  so.split_bytes = 64 * 1024;
  so.sync = false;
  Exported first = Export(fx.store(), "", so);
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  std::string before = ReadFile(first.stats.files[0]);
  Exported again = Export(fx.store(), "", so);
  EXPECT_EQ(again.status.code(), Status::kIOError);
  EXPECT_NE(again.status.message().find("already exists"), std::string::npos) << again.status.ToString();
  EXPECT_TRUE(again.stats.files.empty());
  EXPECT_EQ(ListDir(so.dir).size(), first.stats.files.size());  // no .tmp- file either
  EXPECT_EQ(ReadFile(first.stats.files[0]), before);
}

TEST(PcapFileSplitterTest, NamesNeverGoBackInTime) {
  // An answer that steps back in time across a file boundary: the later file keeps its predecessor's T.
  TempDir tmp;
  PcapSplitOptions so;
  so.dir = tmp.path() + "/out";
  so.split_bytes = 1;
  so.sync = false;
  PcapFileSplitter sp(so);
  ASSERT_TRUE(sp.Begin(CaptureFormat::kPcap, {kEthernet}, 65535).ok());
  std::string pkt = MakePacket(false, 100, 1);
  for (uint32_t sec : {kStart + 10, kStart + 9, kStart + 11}) {
    PacketView v;
    v.ts_sec = sec;
    v.ts_ns = int64_t{sec} * 1000000000;
    v.caplen = v.len = static_cast<uint32_t>(pkt.size());
    v.data = reinterpret_cast<const uint8_t*>(pkt.data());
    ASSERT_TRUE(sp.WritePacket(kEthernet, v).ok());
  }
  ASSERT_TRUE(sp.Finish().ok());
  EXPECT_EQ(ListDir(so.dir), (std::vector<std::string>{"rewind-20260101T000010Z-000001.pcap",
                                                        "rewind-20260101T000010Z-000002.pcap",
                                                        "rewind-20260101T000011Z-000003.pcap"}));
  EXPECT_EQ(sp.FileName(0, 7), "rewind-19700101T000000Z-000007.pcap");
  EXPECT_EQ(sp.FileName(4294967295u, 999999), "rewind-21060207T062815Z-999999.pcap");
}

TEST(PcapFileSplitterTest, AbandonedSplitterRemovesItsTemporaryFile) {
  TempDir tmp;
  PcapSplitOptions so;
  so.dir = tmp.path() + "/out";
  {
    PcapFileSplitter sp(so);
    ASSERT_TRUE(sp.Begin(CaptureFormat::kPcap, {kEthernet}, 65535).ok());
    std::string pkt = MakePacket(false, 100, 1);
    PacketView v;
    v.ts_sec = kStart;
    v.caplen = v.len = static_cast<uint32_t>(pkt.size());
    v.data = reinterpret_cast<const uint8_t*>(pkt.data());
    ASSERT_TRUE(sp.WritePacket(kEthernet, v).ok());
    std::vector<std::string> names = ListDir(so.dir);
    ASSERT_EQ(names.size(), 1u);
    EXPECT_EQ(names[0], ".tmp-rewind-20260101T000000Z-000001.pcap");
  }
  EXPECT_TRUE(ListDir(so.dir).empty());
}

TEST(PcapFileSplitterTest, ParsesSizesAndCompression) {
  uint64_t n = 0;
  EXPECT_TRUE(ParseSplitSize("1G", &n));
  EXPECT_EQ(n, 1ull << 30);
  EXPECT_TRUE(ParseSplitSize("512k", &n));
  EXPECT_EQ(n, 512ull << 10);
  EXPECT_TRUE(ParseSplitSize("100MiB", &n));
  EXPECT_EQ(n, 100ull << 20);
  EXPECT_TRUE(ParseSplitSize("2TB", &n));
  EXPECT_EQ(n, 2ull << 40);
  EXPECT_TRUE(ParseSplitSize("12345", &n));
  EXPECT_EQ(n, 12345u);
  EXPECT_TRUE(ParseSplitSize("10b", &n));
  EXPECT_EQ(n, 10u);
  for (const char* bad : {"", "0", "0G", "G", "1X", "1GG", "-1", "1.5G", " 1G", "99999999999999999999",
                          "20000000000G"}) {
    EXPECT_FALSE(ParseSplitSize(bad, &n)) << bad;
  }
  SplitCompression c;
  EXPECT_TRUE(ParseSplitCompression("gz", &c));
  EXPECT_EQ(c, SplitCompression::kGzip);
  EXPECT_TRUE(ParseSplitCompression("zstd", &c));
  EXPECT_EQ(c, SplitCompression::kZstd);
  EXPECT_TRUE(ParseSplitCompression("none", &c));
  EXPECT_EQ(c, SplitCompression::kNone);
  EXPECT_FALSE(ParseSplitCompression("bz2", &c));
}

// Runs in a child process with a private mount namespace and a 64 KiB tmpfs as the output directory.
// Returns 0 if the export failed as it should, 77 if no tmpfs can be mounted, 1 otherwise (why on stderr).
int DiskFullChild(const std::string& store, const std::string& out) {
  if (unshare(CLONE_NEWNS) != 0) {
    // Not root: become root of a new user namespace, which may mount a tmpfs in its own mount namespace.
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return 77;
    std::ofstream("/proc/self/setgroups") << "deny";
    std::ofstream("/proc/self/uid_map") << "0 " << uid << " 1";
    std::ofstream("/proc/self/gid_map") << "0 " << gid << " 1";
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 77;
  fs::create_directories(out);
  if (mount("tmpfs", out.c_str(), "tmpfs", 0, "size=64k") != 0) return 77;
  auto fail = [](const std::string& why) {
    std::fprintf(stderr, "disk full child: %s\n", why.c_str());
    return 1;
  };
  std::vector<Record> want = Answer(store, "", false);
  PcapSplitOptions so;
  so.dir = out;
  so.split_bytes = 16 * 1024;
  Exported e = Export(store, "", so);
  if (e.status.code() != Status::kNoSpace) return fail("status " + e.status.ToString());
  if (e.status.message().find(out + "/rewind-2026") == std::string::npos) {
    return fail("no file name in " + e.status.ToString());
  }
  if (e.stats.files.empty()) return fail("no file completed before the disk filled");
  std::vector<std::string> names = ListDir(out);
  if (names.size() != e.stats.files.size()) return fail("a partial or temporary file was left");
  std::vector<Record> got;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != Base(e.stats.files[i])) return fail("unexpected file " + names[i]);
    if (!ReadWithLibpcap(ReadFile(out + "/" + names[i]), &got, nullptr)) return fail("invalid " + names[i]);
  }
  if (got.size() != e.stats.packets || got.size() >= want.size()) return fail("packet count");
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(got[i] == want[i])) return fail("packet " + std::to_string(i) + " differs");
  }
  return ::testing::Test::HasFailure() ? fail("an expectation failed") : 0;
}

TEST(PcapFileSplitterTest, DiskFullKeepsCompletedFilesAndRemovesThePartialOne) {
  StoreFixture fx;
  std::string out = fx.out("full");
  std::fflush(nullptr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(DiskFullChild(fx.store(), out));
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "cannot mount a small tmpfs here";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the child's message above";
}

}  // namespace
}  // namespace rwd
