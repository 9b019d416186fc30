#include "capture/block_writer.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "index/block_format.h"
#include "index/store_layout.h"

namespace rwd {

BlockWriter::~BlockWriter() {
  WaitForOwn(max_in_flight_);  // the kernel must be done with the caller's buffers and with writes_
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<BlockWriter>> BlockWriter::Create(AioContext* aio, const std::string& path,
                                                         int max_in_flight, uint64_t preallocate_bytes) {
  std::unique_ptr<BlockWriter> w(new BlockWriter());
  w->aio_ = aio;
  w->path_ = path;
  w->max_in_flight_ = max_in_flight < 1 ? 1 : max_in_flight;
  int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
  w->fd_ = open(path.c_str(), flags | O_DIRECT, 0644);
  if (w->fd_ < 0 && errno == EINVAL) {
    w->direct_ = false;  // the file system does not support O_DIRECT
    unlink(path.c_str());
    w->fd_ = open(path.c_str(), flags, 0644);
  }
  if (w->fd_ < 0) return Status::FromErrno("creating " + path, errno);
  // A file that cannot be set up is removed again: left behind, it would be an empty file without an index
  // that retention never removes, one more for every block a full disk refuses.
  auto fail = [&](const Status& s) {
    close(w->fd_);
    w->fd_ = -1;
    unlink(path.c_str());
    return s;
  };
  if (preallocate_bytes > 0) {
    // On a file system with less room than asked for, reserve half of what is free in whole blocks (the
    // other half is for index tables and the other writers), at least one block; with not even one block
    // free the file is not started (ENOSPC, as a failed preallocation would say).
    struct statvfs vfs;
    if (fstatvfs(w->fd_, &vfs) == 0) {
      uint64_t room = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize / kBlockSize * kBlockSize;
      if (room < kBlockSize) return fail(Status::FromErrno("preallocating " + path, ENOSPC));
      preallocate_bytes = std::min(preallocate_bytes, std::max<uint64_t>(kBlockSize, room / 2 / kBlockSize * kBlockSize));
    }
  }
  if (preallocate_bytes > 0) {
    // fallocate(2), not posix_fallocate: where the file system cannot preallocate (ext2, some network file
    // systems), glibc's fallback writes a byte into every 4 KiB, which an O_DIRECT descriptor refuses (EINVAL),
    // and which would cost a million writes per 4 GiB file otherwise. Such a file is written without.
    int err = fallocate(w->fd_, 0, 0, static_cast<off_t>(preallocate_bytes)) == 0 ? 0 : errno;
    if (err == ENOSPC) {
      (void)ftruncate(w->fd_, 0);  // free what a failed attempt may have reserved; go on without
      err = EOPNOTSUPP;
    }
    if (err == ENOSYS) err = EOPNOTSUPP;
    if (err != 0 && err != EOPNOTSUPP) return fail(Status::FromErrno("preallocating " + path, err));
    if (err == 0) w->preallocated_ = preallocate_bytes;
  }
  w->writes_.resize(w->max_in_flight_);
  for (auto& x : w->writes_) {
    x.owner = w.get();
    w->free_writes_.push_back(&x);
  }
  return w;
}

void BlockWriter::Completed(Write* w, long res) {
  if (res < 0) {
    if (error_.ok()) error_ = Status::FromErrno("writing " + path_, static_cast<int>(-res));
  } else if (static_cast<unsigned long>(res) != w->cb.u.c.nbytes) {
    if (error_.ok()) error_ = Status::NoSpace("short write to " + path_ + " (disk full?)");
  } else {
    ++good_writes_;
  }
  completed_.push_back(w->tag);
  free_writes_.push_back(w);
  --in_kernel_;
}

Status BlockWriter::WaitForOwn(int min) {
  // Other files' completions met on the way go to their own writers.
  while (static_cast<int>(completed_.size()) < min && in_kernel_ > 0) {
    Status s = aio_->Wait(1);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status BlockWriter::Submit(const uint8_t* buf, uint32_t len, void* tag, uint32_t stride) {
  if (!error_.ok()) return error_;
  if (stride == 0) stride = len;
  if (stride < len || stride % kBlockAlignment != 0) return Status::InvalidArgument("BlockWriter: bad stride");
  if (free_writes_.empty()) return Status::InvalidArgument("BlockWriter: too many writes in flight; Reap first");
  Write* w = free_writes_.back();
  io_prep_pwrite(&w->cb, fd_, const_cast<uint8_t*>(buf), len, static_cast<long long>(end_offset_));
  w->tag = tag;
  Status s = aio_->Submit(w);
  if (!s.ok()) return error_ = Status::IOError(path_ + ": " + s.message());
  free_writes_.pop_back();
  ++in_kernel_;
  written_end_ = end_offset_ + len;
  if (stride > len && end_offset_ + len < preallocated_) {
    uint64_t gap_end = std::min<uint64_t>(end_offset_ + stride, preallocated_);
    gaps_.emplace_back(written_end_, gap_end - written_end_);
  }
  end_offset_ += stride;
  return Status::OK();
}

Status BlockWriter::Reap(int min, std::vector<void*>* done) {
  Status s = WaitForOwn(min);
  if (s.ok() && min <= 0 && in_kernel_ > 0) s = aio_->Wait(0);  // collect what is already done
  if (!s.ok() && error_.ok()) error_ = Status::IOError(path_ + ": " + s.message());
  done->insert(done->end(), completed_.begin(), completed_.end());
  completed_.clear();
  return error_;
}

Status BlockWriter::Drain(std::vector<void*>* done) { return Reap(max_in_flight_, done); }

Status BlockWriter::Seal() {
  Status s;
  if (fd_ >= 0) {
    PunchHoles(fd_, gaps_);  // where the file system cannot, the gaps stay allocated (zeros)
    gaps_.clear();
    if ((preallocated_ > end_offset_ || written_end_ < end_offset_) &&
        ftruncate(fd_, static_cast<off_t>(end_offset_)) != 0) {
      s = Status::FromErrno("truncating " + path_, errno);
    }
    if (fdatasync(fd_) != 0 && s.ok()) s = Status::FromErrno("syncing " + path_, errno);
    if (close(fd_) != 0 && s.ok()) s = Status::FromErrno("closing " + path_, errno);
    fd_ = -1;
  }
  return s;
}

}  // namespace rwd
