// PcapFileSplitter: writes a stream of packets (the answer of a Query, in answer order) into a series of
// capture files in one directory, each at most `split_bytes` long, each a complete capture file with its
// own header — pcap, or pcapng when the answer mixes link types (Query::WritesPcapng()) — optionally
// compressed as a gzip (.gz, zlib) or zstd (.zst, libzstd) stream. A PcapWriter user: one PcapWriter per
// file. Not thread-safe: one thread drives a splitter.
//
// Names: DIR/<prefix>-<T>-<NNNNNN>.pcap[.gz|.zst] (.pcapng when pcapng), e.g.
// rewind-20260101T000000Z-000001.pcap, where T is the UTC second of the file's first packet (fixed width,
// YYYYMMDDTHHMMSSZ) and NNNNNN the file's sequence number in this export, from 000001, zero-padded to six
// digits. T never goes back from one file to the next (should the answer itself step back in time across a
// file boundary, the file gets its predecessor's T), so the names sort in packet order as plain strings
// (`ls`, `sort`, shell globs) for up to 999999 files a second. An existing file is never overwritten: the
// export fails instead ("already exists").
//
// Size: a new file starts when the next packet would take the current one past `split_bytes`; a packet is
// never split, so a file exceeds `split_bytes` only when it holds a single packet that alone does. The limit
// counts the capture-format bytes (header and records) — for compressed output, the size of the file once
// decompressed, as tcpdump -C with -z does; the compressed files are smaller.
//
// Atomicity: a file is written as DIR/.tmp-<name>, synced, and renamed to <name> when complete, so a
// reader never sees half a file. On any failure (disk full: NoSpace naming the file; a cancelled query)
// the files already completed stay and the unfinished temporary file is removed. An empty answer writes
// no file.
#ifndef REWIND_QUERY_PCAP_FILE_SPLITTER_H_
#define REWIND_QUERY_PCAP_FILE_SPLITTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/block_format.h"
#include "index/status.h"
#include "query/pcap_writer.h"
#include "query/query_engine.h"

namespace rwd {

enum class SplitCompression { kNone, kGzip, kZstd };

// "none", "gz" (also "gzip"), "zst" (also "zstd"); false for anything else.
bool ParseSplitCompression(const std::string& text, SplitCompression* out);
// A size with an optional binary suffix: "1048576", "512K", "100M", "1G", "2T" (case-insensitive, an
// optional trailing "B" or "iB" allowed: "1GiB"). False if malformed, zero or overflowing.
bool ParseSplitSize(const std::string& text, uint64_t* bytes);

struct PcapSplitOptions {
  std::string dir;                       // output directory (created if missing, like mkdir -p)
  std::string prefix = "rewind";         // file names start with "<prefix>-"
  uint64_t split_bytes = 1ull << 30;     // see "Size" above; at least 1
  SplitCompression compression = SplitCompression::kNone;
  int level = 0;                         // compression level (0: the library's default)
  bool nanos = false;                    // nanosecond timestamps (else microseconds), as PcapWriter
  bool sync = true;                      // fsync each file before its rename, and the directory at the end
};

struct PcapSplitStats {
  std::vector<std::string> files;  // completed files, in order (paths under `dir`)
  uint64_t packets = 0;            // packets in completed files
  uint64_t capture_bytes = 0;      // capture-format bytes of completed files (decompressed size)
  uint64_t file_bytes = 0;         // bytes of completed files on disk
};

class PcapFileSplitter {
 public:
  explicit PcapFileSplitter(PcapSplitOptions options);
  // Removes an unfinished temporary file (Finish() not called or failed).
  ~PcapFileSplitter();
  PcapFileSplitter(const PcapFileSplitter&) = delete;
  PcapFileSplitter& operator=(const PcapFileSplitter&) = delete;

  // Sets every file's format and header: for kPcap exactly one link type; for kPcapng one interface per
  // link type, in the order given (as PcapWriter::Begin). Creates the directory. Call once, first.
  Status Begin(CaptureFormat format, const std::vector<uint32_t>& linktypes, uint32_t snaplen);
  // Appends one packet (its link type one of Begin()'s), starting a new file first if it would not fit.
  Status WritePacket(uint32_t linktype, const PacketView& packet);
  // Completes the last file. After an error from WritePacket, returns that error without writing more.
  Status Finish();

  const PcapSplitStats& stats() const { return stats_; }
  // The name (without directory) of file `seq` whose first packet is at `ts_sec` (Unix seconds, UTC).
  std::string FileName(uint32_t ts_sec, uint64_t seq) const;
  // Capture-format bytes PcapWriter writes for the file header and for one packet of `caplen` bytes.
  static uint64_t HeaderBytes(CaptureFormat format, size_t linktypes);
  static uint64_t RecordBytes(CaptureFormat format, uint32_t caplen);

 private:
  class FileSink;
  Status StartFile(uint32_t ts_sec);
  Status CompleteFile();
  void AbandonFile();

  PcapSplitOptions options_;
  CaptureFormat format_ = CaptureFormat::kPcap;
  std::vector<uint32_t> linktypes_;
  uint32_t snaplen_ = 0;
  bool begun_ = false;
  Status error_;                       // the first failure; sticks
  std::unique_ptr<FileSink> sink_;     // the file being written, if any
  std::unique_ptr<PcapWriter> writer_;
  std::string tmp_path_;               // DIR/.tmp-<name> of the file being written
  std::string final_path_;             // DIR/<name>
  uint64_t file_capture_bytes_ = 0;    // capture-format bytes in the current file
  uint64_t file_packets_ = 0;
  uint64_t seq_ = 0;                   // sequence number of the latest file started
  uint32_t last_name_sec_ = 0;         // T of the latest file started (names never go back in time)
  PcapSplitStats stats_;
};

// Runs `query` (prepared with Query::Prepare) and writes its whole answer with a PcapFileSplitter, in the
// format Query::Execute would use (pcapng iff query->WritesPcapng()). `options.nanos` decides the timestamp
// resolution (QueryOptions::nanos is not consulted). `query_stats` may be null. A cancelled query
// (QueryOptions::cancel, deadline) returns Cancelled, keeping the completed files.
Status ExportQueryToFiles(Query* query, const PcapSplitOptions& options, PcapSplitStats* stats,
                          QueryStats* query_stats);

}  // namespace rwd

#endif  // REWIND_QUERY_PCAP_FILE_SPLITTER_H_
