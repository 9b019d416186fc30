#include "index/index_repair.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

#include "index/block_format.h"
#include "index/index_builder.h"
#include "index/index_reader.h"

namespace rwd {
namespace {

// Moves `path` into DIR/quarantine/ (kept for inspection, out of the queries' way).
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

}  // namespace

Status RepairPacketFile(const StoreFile& file, RepairResult* result) {
  *result = RepairResult();
  result->packet_path = file.packet_path;
  int fd = open(file.packet_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("opening " + file.packet_path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return Status::FromErrno("stat " + file.packet_path, err);
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  std::unique_ptr<uint8_t, decltype(&std::free)> buf(
      static_cast<uint8_t*>(std::aligned_alloc(kBlockAlignment, kBlockSize)), &std::free);
  IndexBuilder index;
  uint32_t block = 0;
  uint64_t good_end = 0;
  std::string last_problem;
  for (uint64_t off = 0; off + kBlockSize <= size && block < kMaxBlocksPerFile; off += kBlockSize, ++block) {
    ssize_t n = pread(fd, buf.get(), kBlockSize, static_cast<off_t>(off));
    if (n != static_cast<ssize_t>(kBlockSize)) {
      last_problem = "short read at offset " + std::to_string(off);
      break;
    }
    // A block is kept only if its checksum matches and every one of its packets reads back.
    BlockReader reader;
    Status s = VerifyBlockChecksum(buf.get(), kBlockSize);
    if (s.ok()) s = reader.Open(buf.get(), kBlockSize);
    PacketView p;
    uint32_t seen = 0;
    while (s.ok() && reader.Next(&p)) ++seen;
    if (s.ok()) s = reader.status();
    if (!s.ok() || seen != reader.num_packets() || reader.num_packets() == 0) {
      // Left out of the index (its entry stays empty, so queries skip it); if good blocks follow, it was
      // damaged in place, otherwise it is the torn or unwritten tail and is cut off below.
      last_problem = "block at offset " + std::to_string(off) + (s.ok() ? ": empty" : ": " + s.message());
      continue;
    }
    s = index.AddBlock(block, off, kBlockSize, buf.get());
    if (!s.ok()) {
      last_problem = s.message();
      continue;
    }
    good_end = off + kBlockSize;
    ++result->blocks_kept;
  }
  result->blocks_damaged = index.summary().blocks - result->blocks_kept;
  if (good_end < size) {
    result->bytes_dropped = size - good_end;
    result->note = last_problem.empty() ? "partial block at the end" : last_problem;
    if (ftruncate(fd, static_cast<off_t>(good_end)) != 0 || fdatasync(fd) != 0) {
      int err = errno;
      close(fd);
      return Status::FromErrno("truncating " + file.packet_path, err);
    }
  }
  close(fd);
  result->packets = index.summary().packets;
  if (result->blocks_kept == 0) return Status::OK();  // nothing readable: the caller quarantines it
  return index.Finish(file.index_path, good_end);
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
  return RepairStore(store, writer, results);
}

}  // namespace rwd
