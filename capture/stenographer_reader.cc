#include "capture/stenographer_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "rapidjson/document.h"

namespace rwd {

Result<std::unique_ptr<StenographerReader>> StenographerReader::Open(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Status::FromErrno("opening " + path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return Status::InvalidArgument(path + " is not a regular file");
  }
  std::unique_ptr<StenographerReader> r(new StenographerReader());
  r->path_ = path;
  r->fd_ = fd;
  r->size_ = static_cast<uint64_t>(st.st_size);
  r->block_.reset(new uint8_t[kBlockSize]);
  r->scratch_.reset(new uint8_t[kMaxSnapLen + 8]);
  return r;
}

StenographerReader::~StenographerReader() {
  if (fd_ >= 0) close(fd_);
}

bool StenographerReader::ReadBlock() {
  const uint64_t at = block_offset_;
  const std::string where = path_ + ": block " + std::to_string(at / kBlockSize) + " (byte offset " + std::to_string(at) + ")";
  size_t got = 0;
  while (got < kBlockSize) {
    ssize_t n = pread(fd_, block_.get() + got, kBlockSize - got, static_cast<off_t>(at + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status_ = Status::FromErrno("reading " + where, errno);
      return false;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got == 0) return false;  // the end
  if (got < sizeof(tpacket_block_desc)) {
    status_ = Status::Corruption(where + ": the file ends inside the block");
    return false;
  }
  tpacket_block_desc desc;
  std::memcpy(&desc, block_.get(), sizeof(desc));
  const tpacket_hdr_v1& h = desc.hdr.bh1;
  if (h.num_pkts > 0 && (h.blk_len > got || h.offset_to_first_pkt < sizeof(tpacket_block_desc) ||
                         h.offset_to_first_pkt >= h.blk_len)) {
    status_ = Status::Corruption(where + (h.blk_len > got && h.blk_len <= kBlockSize ? ": the file ends inside the block"
                                                                                      : ": block descriptor out of bounds"));
    return false;
  }
  block_at_ = at;
  block_offset_ = at + got;
  block_len_ = h.blk_len;
  packets_left_ = h.num_pkts;
  next_ = h.offset_to_first_pkt;
  return true;
}

bool StenographerReader::Next(PacketView* out) {
  if (!status_.ok()) return false;
  while (packets_left_ == 0) {
    if (!ReadBlock()) return false;
  }
  const uint64_t block_at = block_at_;
  if (next_ == 0) {  // the previous record had no successor, yet the block counts more packets
    status_ = Status::Corruption(path_ + ": block " + std::to_string(block_at / kBlockSize) +
                                 ": the packet chain ends before the block's packet count");
    return false;
  }
  if (next_ == kChainGoesBack) {
    status_ = Status::Corruption(path_ + ": block " + std::to_string(block_at / kBlockSize) +
                                 ": the packet chain goes backwards");
    return false;
  }
  if (next_ % 4 != 0 || uint64_t{next_} + kPacketHeaderSize > block_len_) {
    status_ = Status::Corruption(path_ + ": block " + std::to_string(block_at / kBlockSize) + ": packet record at offset " +
                                 std::to_string(next_) + " out of bounds");
    return false;
  }
  uint32_t delta = 0;
  Status s = DecodePacketRecord(block_.get() + next_, block_len_ - next_, scratch_.get(), out, &delta);
  if (!s.ok()) {
    status_ = Status::Corruption(path_ + ": block " + std::to_string(block_at / kBlockSize) + ": packet record at offset " +
                                 std::to_string(next_) + ": " + s.message());
    return false;
  }
  uint64_t next = delta == 0 ? 0 : uint64_t{next_} + delta;
  // A successor at or before this record (an offset that wraps) would read records again: damage, reported
  // at the next call (this record is whole).
  if (delta != 0 && (delta < kPacketHeaderSize || next > UINT32_MAX)) next = kChainGoesBack;
  out->offset = next_;
  --packets_left_;
  next_ = static_cast<uint32_t>(next);
  return true;
}

namespace {

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// True if `path` is a regular file that is empty or starts with a TPACKET_V3 block descriptor (version 2, its
// private area at 48 bytes), as every file stenotype writes does; false for its index tables, which share the
// packet files' names.
bool LooksLikePacketFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st;
  uint32_t head[2] = {0, 0};
  bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  bool ok = regular && (st.st_size == 0 || (pread(fd, head, sizeof(head), 0) == static_cast<ssize_t>(sizeof(head)) &&
                                            head[0] == TPACKET_V3 && head[1] == sizeof(tpacket_block_desc)));
  close(fd);
  return ok;
}

// Thread directories PKT<n> of `dir`, by n.
std::vector<std::string> ThreadDirectories(const std::string& dir) {
  std::vector<std::pair<unsigned long, std::string>> found;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.size() > 3 && name.compare(0, 3, "PKT") == 0 &&
          name.find_first_not_of("0123456789", 3) == std::string::npos && IsDirectory(dir + "/" + name)) {
        found.emplace_back(std::stoul(name.substr(3)), dir + "/" + name);
      }
    }
    closedir(d);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [n, path] : found) out.push_back(path);
  return out;
}

}  // namespace

Result<std::vector<std::string>> ListStenographerPacketFiles(const std::string& path,
                                                             std::vector<std::string>* being_written,
                                                             std::vector<std::string>* other) {
  std::vector<std::string> dirs;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Status::FromErrno("opening " + path, errno);
  if (S_ISREG(st.st_mode)) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    rapidjson::Document doc;
    doc.Parse(text.str().c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("Threads") || !doc["Threads"].IsArray()) {
      return Status::InvalidArgument(path + " is not a Stenographer config (JSON with \"Threads\")");
    }
    for (const auto& t : doc["Threads"].GetArray()) {
      if (!t.IsObject() || !t.HasMember("PacketsDirectory") || !t["PacketsDirectory"].IsString()) {
        return Status::InvalidArgument(path + ": a thread without \"PacketsDirectory\"");
      }
      dirs.push_back(t["PacketsDirectory"].GetString());
    }
  } else if (S_ISDIR(st.st_mode)) {
    dirs = ThreadDirectories(path);
    if (dirs.empty()) dirs.push_back(path);
  } else {
    return Status::InvalidArgument(path + " is neither a Stenographer config nor a directory");
  }
  std::vector<std::string> files;
  for (const std::string& dir : dirs) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return Status::FromErrno("listing " + dir, errno);
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string full = dir + "/" + name;
      if (name[0] == '.') being_written->push_back(full);
      else if (name.find_first_not_of("0123456789") != std::string::npos || !LooksLikePacketFile(full)) other->push_back(full);
      else names.push_back(name);
    }
    closedir(d);
    // Microsecond timestamps of equal length sort as numbers; shorter ones first.
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    for (const std::string& n : names) files.push_back(dir + "/" + n);
  }
  return files;
}

}  // namespace rwd
