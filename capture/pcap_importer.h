// PcapImporter: reads capture files (pcap in µs or ns, either byte order, and pcapng) through libpcap and
// turns them into TPACKET_V3 blocks for a PacketFileWriter — the same blocks live capture writes.
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

struct ImportFileStats {
  uint64_t packets = 0;        // packets stored from this file
  uint64_t captured_bytes = 0;
  uint64_t input_bytes = 0;    // bytes of the input file consumed
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
  // Writes the partly filled block and completes the current packet file (with its index).
  Status Finish();

 private:
  Status FlushBlock();
  Status AcquireBuffer();
  PacketFileWriter* writer_;
  std::vector<uint8_t*> all_buffers_;
  std::vector<uint8_t*> free_buffers_;
  uint8_t* current_ = nullptr;
  BlockBuilder builder_;
  uint64_t seq_ = 0;
};

}  // namespace rwd

#endif  // REWIND_CAPTURE_PCAP_IMPORTER_H_
