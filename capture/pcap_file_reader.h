// PcapFileReader: reads the records of a classic pcap file in the format tcpdump writes (version 2.4,
// microsecond or nanosecond magic, either byte order) with large sequential reads, handing each record out
// in place: no stdio, no copy into a packet buffer. It reads them as libpcap 1.10 does, field for field: the
// file header is parsed by libpcap itself; timestamps, captured lengths past the snapshot length (cut to it)
// and every error (with libpcap's message) follow its sf-pcap.c. Files in any other format (pcapng, older or
// patched pcap variants) and standard input are libpcap's to read. Not thread-safe.
#ifndef REWIND_CAPTURE_PCAP_FILE_READER_H_
#define REWIND_CAPTURE_PCAP_FILE_READER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "index/block_format.h"
#include "index/status.h"

namespace rwd {

class PcapFileReader {
 public:
  // A reader, or null (not an error) when `path` is not a regular file in the format this reader takes.
  static Result<std::unique_ptr<PcapFileReader>> Open(const std::string& path);
  ~PcapFileReader();
  PcapFileReader(const PcapFileReader&) = delete;
  PcapFileReader& operator=(const PcapFileReader&) = delete;

  // As libpcap reports them for the file: pcap_datalink() and pcap_snapshot().
  int datalink() const { return datalink_; }
  uint32_t snapshot() const { return snapshot_; }
  // True for the nanosecond magic (fractions count nanoseconds), false for microseconds.
  bool nanosecond_file() const { return nanos_; }

  // A record as pcap_next_ex() returns it with nanosecond precision asked for: seconds as libpcap's signed
  // field, the fraction in nanoseconds (not normalised), the lengths, and the captured bytes, valid until
  // the next call.
  struct Record {
    int64_t sec;
    int64_t nsec;
    uint32_t caplen;
    uint32_t len;
    const uint8_t* data;
  };
  // False at the end of the file or on an error: status() is OK at a clean end, else Corruption or IOError
  // with libpcap's message.
  bool Next(Record* out);
  const Status& status() const { return status_; }
  // Bytes of the file consumed so far.
  uint64_t offset() const { return offset_; }
  uint64_t size() const { return size_; }

 private:
  PcapFileReader() = default;
  // Makes at least `n` unconsumed bytes available at buf_ + pos_ (fewer at the end of the file, or on a
  // read error, which sets status_); returns how many there are.
  size_t Fill(size_t n);

  int fd_ = -1;
  int datalink_ = 0;
  uint32_t snapshot_ = 0;
  uint32_t max_caplen_ = 0;  // libpcap's max_snaplen_for_dlt()
  bool swapped_ = false;
  bool nanos_ = false;
  uint64_t size_ = 0;
  uint64_t offset_ = 0;
  AlignedBuffer buf_;
  size_t cap_ = 0;  // bytes buf_ holds
  size_t pos_ = 0;  // first unconsumed byte in buf_
  size_t end_ = 0;  // end of the bytes read into buf_
  bool eof_ = false;
  Status status_;
};

}  // namespace rwd

#endif  // REWIND_CAPTURE_PCAP_FILE_READER_H_
