#include "index/index_repair.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

#include "index/block_format.h"
#include "index/index_builder.h"

namespace rwd {

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
  for (uint64_t off = 0; off + kBlockSize <= size && block < kMaxBlocksPerFile; off += kBlockSize, ++block) {
    ssize_t n = pread(fd, buf.get(), kBlockSize, static_cast<off_t>(off));
    if (n != static_cast<ssize_t>(kBlockSize)) {
      result->note = "short read at offset " + std::to_string(off);
      break;
    }
    // A block is kept only if every one of its packets reads back.
    BlockReader reader;
    Status s = reader.Open(buf.get(), kBlockSize);
    PacketView p;
    uint32_t seen = 0;
    while (s.ok() && reader.Next(&p)) ++seen;
    if (s.ok()) s = reader.status();
    if (!s.ok() || seen != reader.num_packets() || reader.num_packets() == 0) {
      result->note = "block at offset " + std::to_string(off) + (s.ok() ? ": empty" : ": " + s.message());
      break;
    }
    s = index.AddBlock(block, off, kBlockSize, buf.get());
    if (!s.ok()) {
      result->note = s.message();
      break;
    }
    good_end = off + kBlockSize;
    ++result->blocks_kept;
  }
  if (good_end < size) {
    result->bytes_dropped = size - good_end;
    if (result->note.empty()) result->note = "partial block at the end";
    if (ftruncate(fd, static_cast<off_t>(good_end)) != 0 || fdatasync(fd) != 0) {
      int err = errno;
      close(fd);
      return Status::FromErrno("truncating " + file.packet_path, err);
    }
  }
  close(fd);
  result->packets = index.summary().packets;
  if (result->blocks_kept == 0) {
    // Nothing readable: remove the empty file rather than index nothing.
    if (unlink(file.packet_path.c_str()) != 0) return Status::FromErrno("removing " + file.packet_path, errno);
    return Status::OK();
  }
  return index.Finish(file.index_path, good_end);
}

Status RepairUnindexedFiles(const std::string& store, int writer, std::vector<RepairResult>* results) {
  auto files = ListStoreFiles(store);
  if (!files.ok()) return files.status();
  Status first;
  for (const StoreFile& f : *files) {
    if (f.indexed || (writer >= 0 && f.writer != static_cast<uint32_t>(writer))) continue;
    RepairResult r;
    Status s = RepairPacketFile(f, &r);
    if (!s.ok() && first.ok()) first = s;
    results->push_back(r);
  }
  return first;
}

}  // namespace rwd
