#include "capture/pcap_importer.h"

#include <pcap/pcap.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "capture/pcap_file_reader.h"
#include "capture/pcapng_reader.h"
#include "capture/stenographer_reader.h"
#include "index/link_type.h"
#include "index/wall_clock.h"

namespace rwd {
namespace {

struct PcapCloser {
  void operator()(pcap_t* p) const { pcap_close(p); }
};

}  // namespace

PcapImporter::PcapImporter(PacketFileWriter* writer, int buffers) : writer_(writer) {
  if (buffers < 2) buffers = 2;
  for (int i = 0; i < buffers; ++i) {
    all_buffers_.push_back(NewAlignedBuffer(kBlockSize));
    free_buffers_.push_back(all_buffers_.back().get());
  }
}

PcapImporter::~PcapImporter() {
  Finish();
}

Status PcapImporter::AcquireBuffer() {
  while (free_buffers_.empty()) {
    std::vector<void*> done;
    Status s = writer_->Reap(1, &done);
    for (void* d : done) free_buffers_.push_back(static_cast<uint8_t*>(d));
    if (!s.ok()) return s;
    if (done.empty()) return Status::IOError("no block buffer came back from the writer");
  }
  current_ = free_buffers_.back();
  free_buffers_.pop_back();
  return Status::OK();
}

Status PcapImporter::FlushBlock() {
  if (current_ == nullptr || builder_.num_packets() == 0) return Status::OK();
  builder_.Finish();
  uint8_t* buf = current_;
  current_ = nullptr;
  Status s = writer_->WriteBlock(buf, buf, MonotonicNs());
  if (!s.ok()) {
    free_buffers_.push_back(buf);
    return s;
  }
  return Status::OK();
}

Status PcapImporter::Finish() { return CompleteFile(true); }

Status PcapImporter::CompleteFile(bool last) {
  Status s = FlushBlock();
  if (current_ != nullptr) {
    free_buffers_.push_back(current_);
    current_ = nullptr;
  }
  std::vector<void*> done;
  Status f = last ? writer_->FinishLastFile(&done) : writer_->FinishFile(&done);
  file_has_packets_ = false;
  for (void* d : done) free_buffers_.push_back(static_cast<uint8_t*>(d));
  return s.ok() ? f : s;
}

Status PcapImporter::AddPacket(uint32_t linktype, uint32_t snaplen, int64_t sec, int64_t frac, uint32_t caplen,
                               uint32_t len, const uint8_t* data, bool first_of_input, ImportFileStats* stats,
                               FracSource source) {
  // Keep the capture's own seconds and fraction (in ns): pcap's 32-bit seconds field is stored as the same
  // 32 bits (libpcap reads it signed; rewind, like the kernel, reads it unsigned: 1970..2106). A fraction
  // that does not fit 32 bits of nanoseconds is kept as the file's own field when it is a pcap field that
  // libpcap read as signed (kStatusMicrosField, kStatusSignedNanosField: answers reproduce it, the time is
  // libpcap's), else normalized.
  const int64_t libpcap_frac = frac;  // signed nanoseconds: the packet's time when the field is kept
  const bool frac_out_of_range = frac < 0 || frac > UINT32_MAX;
  FractionField fraction = FractionField::kNanos;
  if (frac_out_of_range && source == FracSource::kPcapMicros && frac % 1000 == 0 && frac / 1000 >= INT32_MIN &&
      frac / 1000 <= INT32_MAX) {
    fraction = FractionField::kSignedMicros;
    frac = static_cast<uint32_t>(static_cast<int32_t>(frac / 1000));
  } else if (frac_out_of_range && source == FracSource::kPcapNanos && frac >= INT32_MIN && frac < 0) {
    fraction = FractionField::kSignedNanos;
    frac = static_cast<uint32_t>(static_cast<int32_t>(frac));
  } else if (frac_out_of_range) {
    sec += frac / 1000000000;
    frac %= 1000000000;
    if (frac < 0) frac += 1000000000, --sec;
  }
  if (sec < INT32_MIN || sec > UINT32_MAX) {
    // A pcap record holds 32 bits of seconds: a pcapng time past 2106 keeps its seconds modulo 2^32, which
    // is also what libpcap's 32-bit readers and tcpdump's printing make of it (the import says how many).
    ++stats->wrapped_timestamps;
    sec = static_cast<uint32_t>(sec);
  }
  if (caplen > kMaxSnapLen) {  // a block record holds at most this much (USB, D-Bus captures may hold more)
    caplen = kMaxSnapLen;
    ++stats->cut_packets;
  }
  if (snaplen == 0 || snaplen > kMaxSnapLen) snaplen = kMaxSnapLen;
  int64_t ts_ns = static_cast<int64_t>(static_cast<uint32_t>(sec)) * 1000000000 + (fraction == FractionField::kNanos ? frac : libpcap_frac);
  if (first_of_input && file_has_packets_ && ts_ns < file_max_ts_ns_) {
    Status s = CompleteFile(false);
    if (!s.ok()) return s;
  }
  if (!file_has_packets_ || ts_ns > file_max_ts_ns_) file_max_ts_ns_ = ts_ns;
  file_has_packets_ = true;
  if (current_ != nullptr && builder_.linktype() != linktype) {
    Status s = FlushBlock();
    if (!s.ok()) return s;
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (current_ == nullptr) {
      Status s = AcquireBuffer();
      if (!s.ok()) return s;
      builder_.Reset(current_, linktype, snaplen, seq_++);
    }
    if (builder_.Add(static_cast<uint32_t>(sec), static_cast<uint32_t>(frac), caplen, len, data, fraction)) break;
    Status s = FlushBlock();
    if (!s.ok()) return s;
  }
  ++stats->packets;
  stats->captured_bytes += caplen;
  return Status::OK();
}

Status PcapImporter::ImportFile(const std::string& path, ImportFileStats* stats, const ImportProgress& progress) {
  *stats = ImportFileStats();
  // The common case, a pcap file as tcpdump writes it, is read in large chunks and in place (PcapFileReader,
  // libpcap's semantics); the rest through libpcap.
  if (path != "-") {
    auto fast = PcapFileReader::Open(path);
    if (!fast.ok()) return Status::InvalidArgument(path + ": " + fast.status().message());
    if (*fast) return ImportPcapFile(path, fast->get(), stats, progress);
  }
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  // libpcap reads through stdio: 4 KiB per read(2) into a malloc'd buffer by default, and the kernel copies
  // several times slower into a buffer that is not page-aligned (see AlignedBuffer). Given its own stream with
  // an aligned kReadBufferBytes buffer it reads that much at a time. The buffer outlives the stream, which
  // pcap_close() closes.
  constexpr size_t kReadBufferBytes = 1 << 20;
  AlignedBuffer read_buffer = NewAlignedBuffer(kReadBufferBytes);
  if (!read_buffer) return Status::IOError(path + ": out of memory");
  FILE* in = path == "-" ? stdin : std::fopen(path.c_str(), "rb");  // "-": standard input, as libpcap has it
  if (in == nullptr) return Status::InvalidArgument(path + ": " + std::strerror(errno));
  std::setvbuf(in, reinterpret_cast<char*>(read_buffer.get()), _IOFBF, kReadBufferBytes);
  std::unique_ptr<pcap_t, PcapCloser> p(pcap_fopen_offline_with_tstamp_precision(in, PCAP_TSTAMP_PRECISION_NANO, errbuf));
  if (!p) {
    std::fclose(in);
    return Status::InvalidArgument(path + ": " + errbuf);
  }
  struct stat st;
  uint64_t total = stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  FILE* f = pcap_file(p.get());
  uint32_t linktype = DltToLinktype(pcap_datalink(p.get()));
  uint32_t snaplen = static_cast<uint32_t>(pcap_snapshot(p.get()));
  Status result;
  std::string libpcap_error;
  while (true) {
    pcap_pkthdr* hdr = nullptr;
    const u_char* data = nullptr;
    int rc = pcap_next_ex(p.get(), &hdr, &data);
    if (rc == PCAP_ERROR_BREAK) break;  // end of file
    if (rc != 1) {
      libpcap_error = pcap_geterr(p.get());
      long where = f ? ftell(f) : -1;  // only here: ftell costs a system call
      result = Status::Corruption(path + ": stopped at packet " + std::to_string(stats->packets + 1) +
                                  " (reading stopped near byte offset " + std::to_string(where) + "): " +
                                  libpcap_error);
      break;
    }
    Status s = AddPacket(linktype, snaplen, hdr->ts.tv_sec, hdr->ts.tv_usec, hdr->caplen, hdr->len, data,
                         stats->packets == 0, stats);
    if (!s.ok()) return s;
    if (progress && (stats->packets & 0x3fff) == 0) progress(f ? static_cast<uint64_t>(ftell(f)) : 0, total);
  }
  stats->input_bytes = f ? static_cast<uint64_t>(ftell(f)) : total;
  if (!result.ok() && libpcap_error.find("different from") != std::string::npos) {
    // libpcap refuses pcapng whose interfaces differ in link type or snapshot length; read it ourselves,
    // after the packets libpcap already delivered.
    auto reader = PcapngReader::Open(path);
    if (reader.ok()) {
      result = Status::OK();
      uint64_t skip = stats->packets;
      PcapngReader::Packet pkt;
      while ((*reader)->Next(&pkt)) {
        if (skip > 0) {
          --skip;
          continue;
        }
        Status s = AddPacket(pkt.linktype, pkt.snaplen, pkt.ts_sec, pkt.ts_nsec, pkt.caplen, pkt.len, pkt.data,
                             stats->packets == 0, stats);
        if (!s.ok()) return s;
      }
      stats->input_bytes = (*reader)->offset();
      if (!(*reader)->status().ok()) {
        result = Status::Corruption(path + ": stopped after packet " + std::to_string(stats->packets) + ": " +
                                    (*reader)->status().message());
      }
    }
  }
  if (progress) progress(result.ok() ? total : stats->input_bytes, total);
  return result;
}

Status PcapImporter::ImportPcapFile(const std::string& path, PcapFileReader* reader, ImportFileStats* stats,
                                    const ImportProgress& progress) {
  uint32_t linktype = DltToLinktype(reader->datalink());
  uint32_t snaplen = reader->snapshot();
  PcapFileReader::Record r;
  while (reader->Next(&r)) {
    Status s = AddPacket(linktype, snaplen, r.sec, r.nsec, r.caplen, r.len, r.data, stats->packets == 0, stats,
                         reader->nanosecond_file() ? FracSource::kPcapNanos : FracSource::kPcapMicros);
    if (!s.ok()) return s;
    if (progress && (stats->packets & 0x3fff) == 0) progress(reader->offset(), reader->size());
  }
  stats->input_bytes = reader->offset();
  Status result;
  if (!reader->status().ok()) {
    result = Status::Corruption(path + ": stopped at packet " + std::to_string(stats->packets + 1) +
                                " (reading stopped near byte offset " + std::to_string(reader->offset()) + "): " +
                                reader->status().message());
  }
  if (progress) progress(result.ok() ? reader->size() : stats->input_bytes, reader->size());
  return result;
}

Status PcapImporter::ImportStenographerFile(const std::string& path, ImportFileStats* stats,
                                           const ImportProgress& progress) {
  *stats = ImportFileStats();
  auto reader = StenographerReader::Open(path);
  if (!reader.ok()) return reader.status();
  constexpr uint32_t kLinktypeEthernet = 1;  // stenotype captures Ethernet interfaces only
  PacketView pkt;
  while ((*reader)->Next(&pkt)) {
    Status s = AddPacket(kLinktypeEthernet, kMaxSnapLen, pkt.ts_sec, pkt.ts_nsec, pkt.caplen, pkt.len, pkt.data,
                         stats->packets == 0, stats);
    if (!s.ok()) return s;
    if (progress && (stats->packets & 0x3fff) == 0) progress((*reader)->offset(), (*reader)->size());
  }
  stats->input_bytes = (*reader)->offset();
  if (progress) progress(stats->input_bytes, (*reader)->size());
  if (!(*reader)->status().ok()) {
    return Status::Corruption((*reader)->status().message() + " (stopped after packet " + std::to_string(stats->packets) + ")");
  }
  return Status::OK();
}

}  // namespace rwd
