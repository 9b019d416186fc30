#include "index/store_layout.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace rwd {
namespace {

Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return Status::OK();
  return Status::FromErrno("creating " + path, errno);
}

// True if `entry` is `prefix` ("PKT" or "IDX") and a writer number; sets *writer.
bool ParseWriterDir(const std::string& entry, const char* prefix, uint32_t* writer) {
  if (entry.size() < 4 || entry.compare(0, 3, prefix) != 0) return false;
  uint32_t n = 0;
  for (size_t i = 3; i < entry.size(); ++i) {
    if (entry[i] < '0' || entry[i] > '9' || i > 9) return false;
    n = n * 10 + (entry[i] - '0');
  }
  *writer = n;
  return true;
}

}  // namespace

std::string PacketDirectory(const std::string& store, uint32_t writer) {
  return store + "/PKT" + std::to_string(writer);
}

std::string IndexDirectory(const std::string& store, uint32_t writer) {
  return store + "/IDX" + std::to_string(writer);
}

std::string FileNameForTime(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020lld", static_cast<long long>(ns < 0 ? 0 : ns));
  return buf;
}

bool IsStoreFileName(const std::string& name) {
  return name.size() == 20 && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool LooksLikeStore(const std::string& store) {
  struct stat st;
  if (stat((store + "/CATALOG").c_str(), &st) == 0) return true;
  DIR* d = opendir(store.c_str());
  if (d == nullptr) return false;
  bool empty = true, found = false;
  while (dirent* e = readdir(d)) {
    uint32_t w;
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    empty = false;
    if (ParseWriterDir(e->d_name, "PKT", &w) || ParseWriterDir(e->d_name, "IDX", &w)) {
      found = true;
      break;
    }
  }
  closedir(d);
  return empty || found;
}

std::string NotRegularFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return "";  // a link to a regular file is one
  const char* what = S_ISFIFO(st.st_mode)  ? "a FIFO"
                     : S_ISDIR(st.st_mode) ? "a directory"
                     : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                                            : "not a regular file";
  return path + " is " + what + ", not a file rewind wrote: skipped";
}

Result<std::vector<StoreFile>> ListStoreFiles(const std::string& store, std::vector<std::string>* skipped) {
  auto skip = [skipped](std::string why) {
    if (skipped != nullptr) skipped->push_back(std::move(why));
  };
  DIR* d = opendir(store.c_str());
  if (d == nullptr) return Status::FromErrno("opening store " + store, errno);
  std::vector<uint32_t> writers;
  while (dirent* e = readdir(d)) {
    uint32_t w;
    if (ParseWriterDir(e->d_name, "PKT", &w)) writers.push_back(w);
  }
  closedir(d);
  std::vector<StoreFile> files;
  for (uint32_t w : writers) {
    std::string pdir = PacketDirectory(store, w);
    std::string idir = IndexDirectory(store, w);
    DIR* pd = opendir(pdir.c_str());
    if (pd == nullptr) return Status::FromErrno("opening " + pdir, errno);
    while (dirent* e = readdir(pd)) {
      std::string name = e->d_name;
      if (!IsStoreFileName(name)) continue;
      StoreFile f;
      f.writer = w;
      f.name = name;
      f.packet_path = pdir + "/" + name;
      f.index_path = idir + "/" + name;
      // d_type says whether it is a regular file on most file systems without a stat; stat when it does not.
      if (e->d_type != DT_REG) {
        std::string why = NotRegularFile(f.packet_path);
        if (!why.empty()) {
          skip(why);
          continue;
        }
      }
      struct stat st;
      f.indexed = stat(f.index_path.c_str(), &st) == 0;
      if (f.indexed && !S_ISREG(st.st_mode)) {
        skip(NotRegularFile(f.index_path));
        f.indexed = false;
      }
      files.push_back(std::move(f));
    }
    closedir(pd);
  }
  std::sort(files.begin(), files.end(), [](const StoreFile& a, const StoreFile& b) {
    return a.name != b.name ? a.name < b.name : a.writer < b.writer;
  });
  return files;
}

std::string WriterLockPath(const std::string& store, uint32_t writer) {
  return PacketDirectory(store, writer) + "/.lock";
}

Result<WriterLock> WriterLock::Acquire(const std::string& store, uint32_t writer) {
  Status s = MakeDir(store);
  if (s.ok()) s = MakeDir(PacketDirectory(store, writer));
  if (s.ok()) s = MakeDir(IndexDirectory(store, writer));
  if (!s.ok()) return s;
  std::string lock_path = WriterLockPath(store, writer);
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("opening " + lock_path, errno);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) return Status::IOError(PacketDirectory(store, writer) + " is in use by another writer");
    return Status::FromErrno("locking " + lock_path, err);
  }
  return WriterLock(fd, writer);
}

Result<WriterLock> WriterLock::AcquireFree(const std::string& store, uint32_t first) {
  for (uint32_t w = first; w < first + 1024; ++w) {
    Result<WriterLock> lock = Acquire(store, w);
    if (lock.ok() || lock.status().message().find("in use") == std::string::npos) return lock;
  }
  return Status::IOError("no free writer directory in " + store);
}

WriterLock::WriterLock(WriterLock&& other) noexcept : fd_(other.fd_), writer_(other.writer_) { other.fd_ = -1; }

WriterLock& WriterLock::operator=(WriterLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    writer_ = other.writer_;
    other.fd_ = -1;
  }
  return *this;
}

WriterLock::~WriterLock() {
  if (fd_ >= 0) close(fd_);
}

void PunchHoles(int fd, const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  for (const auto& [offset, length] : ranges) {
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) != 0) {
      return;
    }
  }
}

uint64_t DiskUsage(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

Status SyncParentDirectory(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("opening " + dir, errno);
  Status s;
  if (fsync(fd) != 0 && errno != EINVAL) s = Status::FromErrno("syncing " + dir, errno);  // EINVAL: cannot (tmpfs)
  close(fd);
  return s;
}

}  // namespace rwd
