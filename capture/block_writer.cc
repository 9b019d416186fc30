#include "capture/block_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rwd {

BlockWriter::~BlockWriter() {
  if (in_flight_ > 0) {
    std::vector<void*> ignored;
    Reap(in_flight_, &ignored);
  }
  if (ctx_ != nullptr) io_destroy(ctx_);
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<BlockWriter>> BlockWriter::Create(const std::string& path, int max_in_flight,
                                                         uint64_t preallocate_bytes) {
  std::unique_ptr<BlockWriter> w(new BlockWriter());
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
    int err = posix_fallocate(w->fd_, 0, static_cast<off_t>(preallocate_bytes));
    if (err != 0 && err != EOPNOTSUPP) return fail(Status::FromErrno("preallocating " + path, err));
    if (err == 0) w->preallocated_ = preallocate_bytes;
  }
  int err = io_setup(w->max_in_flight_, &w->ctx_);
  if (err != 0) return fail(Status::FromErrno("io_setup", -err));
  w->iocbs_.resize(w->max_in_flight_);
  for (auto& cb : w->iocbs_) w->free_iocbs_.push_back(&cb);
  return w;
}

Status BlockWriter::Submit(const uint8_t* buf, uint32_t len, void* tag) {
  if (!error_.ok()) return error_;
  if (free_iocbs_.empty()) return Status::InvalidArgument("BlockWriter: too many writes in flight; Reap first");
  iocb* cb = free_iocbs_.back();
  io_prep_pwrite(cb, fd_, const_cast<uint8_t*>(buf), len, static_cast<long long>(end_offset_));
  cb->data = tag;
  iocb* list[1] = {cb};
  int rc;
  do {
    rc = io_submit(ctx_, 1, list);
  } while (rc == -EAGAIN || rc == -EINTR);
  if (rc != 1) return error_ = Status::FromErrno("io_submit to " + path_, rc < 0 ? -rc : EIO);
  free_iocbs_.pop_back();
  ++in_flight_;
  end_offset_ += len;
  return Status::OK();
}

Status BlockWriter::Reap(int min, std::vector<void*>* done) {
  if (min > in_flight_) min = in_flight_;
  io_event events[64];
  while (in_flight_ > 0) {
    int want = min > 0 ? min : 0;
    int rc = io_getevents(ctx_, want > 64 ? 64 : want, 64, events, nullptr);
    if (rc == -EINTR) continue;
    if (rc < 0) return error_ = Status::FromErrno("io_getevents on " + path_, -rc);
    for (int i = 0; i < rc; ++i) {
      iocb* cb = events[i].obj;
      long res = static_cast<long>(events[i].res);
      if (res < 0) {
        if (error_.ok()) error_ = Status::FromErrno("writing " + path_, static_cast<int>(-res));
      } else if (static_cast<unsigned long>(res) != cb->u.c.nbytes) {
        if (error_.ok()) error_ = Status::NoSpace("short write to " + path_ + " (disk full?)");
      }
      done->push_back(cb->data);
      free_iocbs_.push_back(cb);
      --in_flight_;
    }
    min -= rc;
    if (min <= 0) break;
  }
  return error_;
}

Status BlockWriter::Close(std::vector<void*>* done) {
  Status s = Reap(in_flight_, done);
  if (fd_ >= 0) {
    if (preallocated_ > end_offset_ && ftruncate(fd_, static_cast<off_t>(end_offset_)) != 0 && s.ok()) {
      s = Status::FromErrno("truncating " + path_, errno);
    }
    if (fdatasync(fd_) != 0 && s.ok()) s = Status::FromErrno("syncing " + path_, errno);
    if (close(fd_) != 0 && s.ok()) s = Status::FromErrno("closing " + path_, errno);
    fd_ = -1;
  }
  return s;
}

}  // namespace rwd
