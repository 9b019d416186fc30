// PcapImporter: reads capture files (pcap in µs or ns, either byte order, and pcapng) through libpcap — and
// pcapng whose interfaces differ in link type or snapshot length, which libpcap refuses, through
// PcapngReader — and
// turns them into TPACKET_V3 blocks for a PacketFileWriter — the same blocks live capture writes.
// Several inputs go into one packet file while they follow each other in time; an input that starts
// before the current file's latest packet starts a new packet file, so that queries (which merge files by
// time and keep each file's order) return such inputs merged in timestamp order.
// Not thread-safe: one importer per writer.
#ifndef REWIND_CAPTURE_PCAP_IMPORTER_H_
#define REWIND_CAPTURE_PCAP_IMPORTER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "capture/packet_file_writer.h"
#include "index/block_format.h"
#include "index/status.h"

namespace rwd {

class PcapFileReader;

struct ImportFileStats {
  uint64_t packets = 0;        // packets stored from this file
  uint64_t captured_bytes = 0;
  uint64_t input_bytes = 0;    // bytes of the input file consumed
  uint64_t wrapped_timestamps = 0;  // packets dated past 2106, stored with their seconds modulo 2^32
  uint64_t cut_packets = 0;         // packets longer than kMaxSnapLen (link types libpcap allows more), stored cut
};

// Called now and then with (bytes of the input read so far, input size).
using ImportProgress = std::function<void(uint64_t, uint64_t)>;

class PcapImporter {
 public:
  // `writer` must outlive the importer. `buffers` blocks are kept in flight between building and disk.
  explicit PcapImporter(PacketFileWriter* writer, int buffers = 16);
  ~PcapImporter();
  PcapImporter(const PcapImporter&) = delete;
  PcapImporter& operator=(const PcapImporter&) = delete;

  // Imports every packet of `path`. If the file is damaged, every good packet before the damage is kept
  // and a Corruption status names the packet number, byte offset and reason where reading stopped.
  Status ImportFile(const std::string& path, ImportFileStats* stats, const ImportProgress& progress);
  // Imports every packet of a Stenographer packet file (StenographerReader), as Ethernet. Damage as above.
  Status ImportStenographerFile(const std::string& path, ImportFileStats* stats, const ImportProgress& progress);
  // Writes the partly filled block and completes the current packet file (with its index); the end of
  // the input (a later import starts a new file).
  Status Finish();

 private:
  // Finish(); `last` as in PacketFileWriter::FinishLastFile.
  Status CompleteFile(bool last);
  // Adds one packet (timestamp as seconds and nanoseconds) to the current block.
  // `frac` in nanoseconds as libpcap gives it, from a pcap record's microsecond field (read signed, times
  // 1000), its nanosecond field (read signed), or another source.
  enum class FracSource { kOther, kPcapMicros, kPcapNanos };
  Status AddPacket(uint32_t linktype, uint32_t snaplen, int64_t sec, int64_t frac, uint32_t caplen, uint32_t len,
                   const uint8_t* data, bool first_of_input, ImportFileStats* stats,
                   FracSource source = FracSource::kOther);
  // ImportFile for a file PcapFileReader takes.
  Status ImportPcapFile(const std::string& path, PcapFileReader* reader, ImportFileStats* stats,
                        const ImportProgress& progress);
  Status FlushBlock();
  Status AcquireBuffer();
  PacketFileWriter* writer_;
  std::vector<AlignedBuffer> all_buffers_;  // owns the block buffers; the others point into them
  std::vector<uint8_t*> free_buffers_;
  uint8_t* current_ = nullptr;
  BlockBuilder builder_;
  uint64_t seq_ = 0;
  bool file_has_packets_ = false;
  int64_t file_max_ts_ns_ = 0;  // latest timestamp in the current packet file
};

}  // namespace rwd

#endif  // REWIND_CAPTURE_PCAP_IMPORTER_H_
