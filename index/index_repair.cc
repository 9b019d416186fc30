#include "index/index_repair.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

#include "index/block_codec.h"
#include "index/block_format.h"
#include "index/index_builder.h"
#include "index/index_reader.h"
#include "index/packet_file_reader.h"
#include "index/store_catalog.h"

namespace rwd {

Status Quarantine(const std::string& store, const std::string& path, std::string* moved_to) {
  std::string dir = store + "/quarantine";
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Status::FromErrno("creating " + dir, errno);
  std::string base = path.substr(path.find_last_of('/') + 1);
  std::string parent = path.substr(0, path.find_last_of('/'));
  parent = parent.substr(parent.find_last_of('/') + 1);
  *moved_to = dir + "/" + parent + "-" + base;
  if (rename(path.c_str(), moved_to->c_str()) != 0) return Status::FromErrno("quarantining " + path, errno);
  return Status::OK();
}

namespace {

// How far past the start of a run of zeros a compressed file is searched page by page for a landed extent:
// more than the writes a writer keeps in flight (at most 128 extents of at most kMaxExtentSize) can span.
constexpr uint64_t kZeroScanBytes = uint64_t{130} << 20;

}  // namespace

Status RepairPacketFile(const StoreFile& file, RepairResult* result) {
  *result = RepairResult();
  result->packet_path = file.packet_path;
  auto reader = PacketFileReader::Open(file.packet_path);
  if (!reader.ok()) return reader.status();
  uint64_t size = (*reader)->size();
  IndexBuilder index;
  uint32_t block = 0;
  uint64_t good_end = 0;
  std::string last_problem;
  bool resyncing = false;  // looking for the next block or extent after damage
  // After raw blocks that verified, the rest of their kBlockSize past what they use: punched (a hole), as
  // sealing does. Salvaged blocks keep theirs (their blk_len is not to be trusted).
  std::vector<std::pair<uint64_t, uint64_t>> unused;
  // Extents follow each other: raw blocks take kBlockSize bytes of the file, compressed ones say their length
  // (ExtentStride). Where no extent starts (damage inside an extent header, or a length that led astray), the
  // walk resynchronises on the next kBlockAlignment boundary where one does, so damage in one extent never
  // costs the ones after it.
  // Where a run of zeros began (UINT64_MAX: not in one), and whether the file holds compressed extents.
  uint64_t zeros_from = UINT64_MAX;
  bool compressed = false, any = false;
  for (uint64_t off = 0; off + kBlockAlignment <= size && block < kMaxBlocksPerFile;) {
    PacketFileReader::Start start = (*reader)->StartAt(off);
    if (start == PacketFileReader::Start::kZeros) {
      // Never written: the preallocated rest of a file its writer did not finish (a crash), up to 4 GiB of
      // zeros, or an extent still in flight when the power went while later ones landed. Raw blocks start on
      // block boundaries: only the first 4 KiB of each block are read to find out, and the walk goes on at the
      // next boundary, since blocks written after a gap are kept. Compressed extents start on any page: the
      // first kZeroScanBytes of a run of zeros (past what the writes in flight can span) are read page by page,
      // so that a landed extent after an unwritten one is found. (SEEK_DATA would skip the gap, but ext4 here
      // answers ENXIO over data written before a fallocate: not trusted.)
      if (zeros_from == UINT64_MAX) {
        zeros_from = off;
        last_problem = "block at offset " + std::to_string(off) + ": never written";
      }
      if ((compressed || !any) && off - zeros_from < kZeroScanBytes) {
        if (off % kBlockSize == 0) ++block;  // as many numbers as the boundary walk below would use
        off += kBlockAlignment;
        continue;
      }
      off = (off / kBlockSize + 1) * kBlockSize;
      ++block;
      continue;
    }
    zeros_from = UINT64_MAX;
    if (start == PacketFileReader::Start::kNothing) {
      if (!resyncing) last_problem = "no block starts at offset " + std::to_string(off);
      resyncing = true;
      off += kBlockAlignment;
      continue;
    }
    resyncing = false;
    BlockReader br;
    uint32_t len = 0, flags = 0;
    any = true;
    std::string unverified;  // a raw block that fails only its checksum is salvaged: indexed as far as its framing holds
    Status s = (*reader)->ReadExtentAt(off, &br, &len, &flags, &unverified);
    if (flags & kBlockFlagZstd) compressed = true;
    PacketView p;
    uint32_t seen = 0;
    while (s.ok() && br.Next(&p)) ++seen;
    bool salvaged = s.ok() && !unverified.empty() && seen > 0;
    if (s.ok() && !salvaged) s = br.status();
    if (!s.ok() || (!salvaged && seen != br.num_packets()) || br.num_packets() == 0) {
      // Left out of the index (its entry stays empty, so queries skip it); if good blocks follow, it was
      // damaged in place, otherwise it is the torn or unwritten tail and is cut off below. The length a
      // damaged extent's header names may be what is damaged: the walk resynchronises from the next boundary.
      last_problem = "block at offset " + std::to_string(off) + (s.ok() ? ": empty" : ": " + s.message());
      off += s.ok() ? ExtentStride(len, flags) : kBlockAlignment;
      ++block;
      continue;
    }
    // The reader holds the raw block while `br` reads it.
    s = index.AddBlock(block++, off, len, (*reader)->raw_block(), flags);
    if (!s.ok()) {
      last_problem = s.message();
      off += ExtentStride(len, flags);
      continue;
    }
    if (!(flags & kBlockFlagZstd) && len < kBlockSize && unverified.empty()) {
      unused.emplace_back(off + len, kBlockSize - len);
    }
    off += ExtentStride(len, flags);
    good_end = off;
    ++result->blocks_kept;
    if (salvaged) {
      ++result->blocks_salvaged;
      result->salvage_notes.push_back(unverified + ": indexed " + std::to_string(seen) + " of " +
                                      std::to_string(br.num_packets()) + " packets (their framing holds)");
    }
  }
  result->blocks_damaged = index.summary().blocks - result->blocks_kept;
  reader->reset();
  if (good_end != size) {
    // Shorter: the torn or unwritten tail goes. Longer: the last raw block was written as far as it was used
    // and the file ends there (its writer stopped before sealing it); it gets the rest of its kBlockSize, a
    // hole, as sealing would have given it.
    if (good_end < size) {
      result->bytes_dropped = size - good_end;
      result->note = last_problem.empty() ? "partial block at the end" : last_problem;
    }
    if (truncate(file.packet_path.c_str(), static_cast<off_t>(good_end)) != 0) {
      return Status::FromErrno("truncating " + file.packet_path, errno);
    }
  }
  if (good_end != size || !unused.empty()) {
    int fd = open(file.packet_path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      PunchHoles(fd, unused);  // where the file system cannot, the space stays allocated (unread)
      fdatasync(fd);
      close(fd);
    }
  }
  result->packets = index.summary().packets;
  if (result->blocks_kept == 0) return Status::OK();  // nothing readable: the caller quarantines it
  return index.Finish(file.index_path, DiskUsage(file.packet_path));
}

Status RepairStore(const std::string& store, int writer, std::vector<RepairResult>* results) {
  auto files = ListStoreFiles(store);
  if (!files.ok()) return files.status();
  Status first;
  for (StoreFile f : *files) {
    if (writer >= 0 && f.writer != static_cast<uint32_t>(writer)) continue;
    RepairResult r;
    if (f.indexed) {
      if (IndexReader::Open(f.index_path).ok()) continue;
      // A damaged index: set it aside and rebuild it from the packet file.
      Status s = Quarantine(store, f.index_path, &r.quarantined);
      if (!s.ok()) {
        if (first.ok()) first = s;
        continue;
      }
      r.note = "damaged index set aside";
    }
    RepairResult built;
    Status s = RepairPacketFile(f, &built);
    if (!r.quarantined.empty()) built.note = r.note + (built.note.empty() ? "" : "; " + built.note);
    if (s.ok() && built.blocks_kept == 0) {
      std::string moved;
      s = Quarantine(store, f.packet_path, &moved);
      built.quarantined = r.quarantined.empty() ? moved : r.quarantined + ", " + moved;
      if (built.note.empty()) built.note = "no readable block";
    } else if (!r.quarantined.empty()) {
      built.quarantined = r.quarantined;
    }
    if (!s.ok() && first.ok()) first = s;
    results->push_back(built);
  }
  return first;
}

Status RepairUnindexedFiles(const std::string& store, int writer, std::vector<RepairResult>* results) {
  // Only the files the catalog lists as being written by this writer: a crash leaves at most the files its
  // writer had open, so start-up work does not grow with the store.
  auto catalog = StoreCatalog::Open(store);
  if (!catalog.ok()) return catalog.status();
  Status first;
  for (const CatalogEntry& e : (*catalog)->Entries()) {
    if (e.complete() || (writer >= 0 && e.writer != static_cast<uint32_t>(writer))) continue;
    StoreFile f;
    f.writer = e.writer;
    f.name = e.name;
    f.packet_path = e.packet_path(store);
    f.index_path = e.index_path(store);
    struct stat st;
    Status s;
    if (stat(f.index_path.c_str(), &st) == 0) {
      s = RecordFileCompleteFromIndex(store, e.writer, e.name);  // the crash came after the index was written
    } else if (stat(f.packet_path.c_str(), &st) != 0) {
      s = RecordFileRemoved(store, e);  // never created, or removed since
    } else {
      RepairResult built;
      s = RepairPacketFile(f, &built);
      if (s.ok() && built.blocks_kept == 0) {
        s = Quarantine(store, f.packet_path, &built.quarantined);
        if (built.note.empty()) built.note = "no readable block";
        if (s.ok()) s = RecordFileRemoved(store, e);
      } else if (s.ok()) {
        s = RecordFileCompleteFromIndex(store, e.writer, e.name);
      }
      results->push_back(built);
    }
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

}  // namespace rwd
