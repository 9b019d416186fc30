#include "capture/pcap_file_reader.h"

#include <fcntl.h>
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace rwd {
namespace {

constexpr uint32_t kMicroMagic = 0xa1b2c3d4;  // TCPDUMP_MAGIC
constexpr uint32_t kNanoMagic = 0xa1b23c4d;   // NSEC_TCPDUMP_MAGIC
constexpr size_t kFileHeaderSize = 24;
constexpr size_t kRecordHeaderSize = 16;
constexpr size_t kPage = 4096;
constexpr size_t kBufferBytes = 4 << 20;

// libpcap's max_snaplen_for_dlt() (pcap-common.c): records longer than this are an error.
uint32_t MaxCaplenForDlt(int dlt) {
  switch (dlt) {
    case DLT_DBUS:
      return 128 * 1024 * 1024;
    case DLT_EBHSCR:
      return 8 * 1024 * 1024;
    case DLT_USBPCAP:
      return 1024 * 1024;
    default:
      return 262144;  // MAXIMUM_SNAPLEN
  }
}

std::string Format(const char* fmt, unsigned long long a, unsigned long long b) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), fmt, a, b);
  return buf;
}

}  // namespace

Result<std::unique_ptr<PcapFileReader>> PcapFileReader::Open(const std::string& path) {
  std::unique_ptr<PcapFileReader> r(new PcapFileReader());
  r->fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (r->fd_ < 0) return std::unique_ptr<PcapFileReader>();  // libpcap's path reports it
  struct stat st;
  if (fstat(r->fd_, &st) != 0 || !S_ISREG(st.st_mode)) return std::unique_ptr<PcapFileReader>();
  r->size_ = static_cast<uint64_t>(st.st_size);
  uint8_t head[kFileHeaderSize];
  if (pread(r->fd_, head, sizeof(head), 0) != static_cast<ssize_t>(sizeof(head))) {
    return std::unique_ptr<PcapFileReader>();
  }
  // Only what tcpdump writes on this host: the 2.4 format in host byte order. A byte-swapped file has
  // link-layer pseudo-headers libpcap rewrites (pcap_post_process), and so do Linux USB memory-mapped
  // captures in any order: both are left to libpcap, as is every other variant.
  uint32_t magic;
  uint16_t major, minor;
  std::memcpy(&magic, head, 4);
  std::memcpy(&major, head + 4, 2);
  std::memcpy(&minor, head + 6, 2);
  if ((magic != kMicroMagic && magic != kNanoMagic) || major != 2 || minor != 4) {
    return std::unique_ptr<PcapFileReader>();
  }
  // The header as libpcap reads it (link type mapping, snapshot length adjustment): parsed by libpcap.
  FILE* mem = fmemopen(head, sizeof(head), "rb");
  if (mem == nullptr) return std::unique_ptr<PcapFileReader>();
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  pcap_t* p = pcap_fopen_offline_with_tstamp_precision(mem, PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (p == nullptr) {
    std::fclose(mem);
    return std::unique_ptr<PcapFileReader>();
  }
  r->datalink_ = pcap_datalink(p);
  r->snapshot_ = static_cast<uint32_t>(pcap_snapshot(p));
  bool swapped = pcap_is_swapped(p) != 0;
  pcap_close(p);  // closes mem
  if (swapped || r->datalink_ == DLT_USB_LINUX_MMAPPED) return std::unique_ptr<PcapFileReader>();
  r->max_caplen_ = MaxCaplenForDlt(r->datalink_);
  r->nanos_ = magic == kNanoMagic;
  r->offset_ = kFileHeaderSize;
  if (lseek(r->fd_, kFileHeaderSize, SEEK_SET) != static_cast<off_t>(kFileHeaderSize)) {
    return Status::IOError(path + ": " + std::strerror(errno));
  }
  posix_fadvise(r->fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  r->cap_ = kBufferBytes;
  r->buf_ = NewAlignedBuffer(r->cap_);
  if (!r->buf_) return Status::IOError(path + ": out of memory");
  return r;
}

PcapFileReader::~PcapFileReader() {
  if (fd_ >= 0) close(fd_);
}

size_t PcapFileReader::Fill(size_t n) {
  size_t have = end_ - pos_;
  if (have >= n || eof_ || !status_.ok()) return have;
  // Room for n bytes after the unconsumed ones, which move so that reads land on a page boundary (the kernel
  // copies several times slower into an unaligned destination).
  size_t lead = (kPage - have % kPage) % kPage;
  size_t need = lead + n + kPage;
  if (need > cap_ || pos_ != 0) {
    if (need > cap_) {
      size_t cap = (need + kBufferBytes - 1) / kBufferBytes * kBufferBytes;
      AlignedBuffer bigger = NewAlignedBuffer(cap);
      if (!bigger) {
        status_ = Status::IOError("out of memory");
        return have;
      }
      std::memcpy(bigger.get() + lead, buf_.get() + pos_, have);
      buf_ = std::move(bigger);
      cap_ = cap;
    } else {
      std::memmove(buf_.get() + lead, buf_.get() + pos_, have);
    }
    pos_ = lead;
    end_ = lead + have;
  }
  while (end_ - pos_ < n) {
    ssize_t got = read(fd_, buf_.get() + end_, cap_ - end_);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      status_ = Status::IOError(std::string("error reading dump file: ") + std::strerror(errno));
      break;
    }
    if (got == 0) {
      eof_ = true;
      break;
    }
    end_ += static_cast<size_t>(got);
  }
  return end_ - pos_;
}

bool PcapFileReader::Next(Record* out) {
  if (!status_.ok()) return false;
  // As libpcap's pcap_next_packet() (sf-pcap.c), for a 2.4 file in host byte order.
  size_t have = Fill(kRecordHeaderSize);
  if (!status_.ok()) return false;
  if (have < kRecordHeaderSize) {
    if (have != 0) {
      status_ = Status::Corruption(Format("truncated dump file; tried to read %llu header bytes, only got %llu",
                                          kRecordHeaderSize, have));
    }
    return false;
  }
  const uint8_t* h = buf_.get() + pos_;
  int32_t sec, frac;
  uint32_t caplen, len;
  std::memcpy(&sec, h, 4);
  std::memcpy(&frac, h + 4, 4);
  std::memcpy(&caplen, h + 8, 4);
  std::memcpy(&len, h + 12, 4);
  pos_ += kRecordHeaderSize;
  offset_ += kRecordHeaderSize;
  if (caplen > max_caplen_) {
    status_ = Status::Corruption(
        caplen > snapshot_ ? Format("invalid packet capture length %llu, bigger than snaplen of %llu", caplen, snapshot_)
                           : Format("invalid packet capture length %llu, bigger than maximum of %llu", caplen, max_caplen_));
    return false;
  }
  have = Fill(caplen);
  if (!status_.ok()) return false;
  uint32_t keep = caplen;
  if (caplen > snapshot_) {
    // A record longer than the file's snapshot length: libpcap hands out its first snapshot bytes.
    if (have < snapshot_) {
      status_ = Status::Corruption(Format("truncated dump file; tried to read %llu captured bytes, only got %llu",
                                          snapshot_, have));
      return false;
    }
    keep = snapshot_;
  }
  if (have < caplen) {
    status_ = Status::Corruption(Format("truncated dump file; tried to read %llu captured bytes, only got %llu",
                                        caplen, have));
    return false;
  }
  out->sec = sec;
  out->nsec = nanos_ ? int64_t{frac} : int64_t{frac} * 1000;
  out->caplen = keep;
  out->len = len;
  out->data = buf_.get() + pos_;
  pos_ += caplen;
  offset_ += caplen;
  return true;
}

}  // namespace rwd
