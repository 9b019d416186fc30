#include "index/store_catalog.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "index/crc32c.h"
#include "index/index_reader.h"
#include "index/key_filter.h"
#include "index/packet_dissector.h"
#include "index/store_layout.h"

namespace rwd {
namespace {

// Record framing: magic, payload length, CRC-32C of the payload, payload. All little-endian.
constexpr uint32_t kRecordMagic = 0x31544352;  // "RCT1"
constexpr size_t kHeaderBytes = 12;
constexpr uint32_t kMaxPayload = 1 << 20;

enum RecordType : uint8_t { kRecWriting = 1, kRecComplete = 2, kRecRemoved = 3 };

Status RebuildJournal(const std::string& store, bool force, CatalogRebuildStats* stats);

std::string JournalPath(const std::string& store) { return store + "/CATALOG"; }
std::string LockPath(const std::string& store) { return store + "/CATALOG.lock"; }
std::string CheckpointPath(const std::string& store) { return store + "/CATALOG.checkpoint"; }
std::string FilterPath(const std::string& store, uint32_t writer) { return IndexDirectory(store, writer) + "/FILTERS"; }

template <typename T>
void Put(std::string* s, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  s->append(buf, sizeof(T));
}

template <typename T>
bool Get(std::string_view* in, T* v) {
  if (in->size() < sizeof(T)) return false;
  std::memcpy(v, in->data(), sizeof(T));
  in->remove_prefix(sizeof(T));
  return true;
}

void PutString(std::string* s, const std::string& v) {
  Put<uint32_t>(s, static_cast<uint32_t>(v.size()));
  s->append(v);
}

bool GetString(std::string_view* in, std::string_view* v) {
  uint32_t n;
  if (!Get(in, &n) || in->size() < n) return false;
  *v = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

bool GetString(std::string_view* in, std::string* v) {
  std::string_view view;
  if (!GetString(in, &view)) return false;
  v->assign(view);
  return true;
}

std::string Frame(const std::string& payload) {
  std::string out;
  Put<uint32_t>(&out, kRecordMagic);
  Put<uint32_t>(&out, static_cast<uint32_t>(payload.size()));
  Put<uint32_t>(&out, Crc32c(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
  return out + payload;
}

std::string EncodeEntry(const CatalogEntry& e) {
  std::string p;
  Put<uint8_t>(&p, e.complete() ? kRecComplete : kRecWriting);
  Put<uint32_t>(&p, e.writer);
  PutString(&p, e.name);
  if (e.complete()) {
    PutString(&p, e.summary.Encode());
    Put<uint64_t>(&p, e.index_bytes);
    Put<uint64_t>(&p, e.filter_offset);
    Put<uint32_t>(&p, e.filter_blocks);
    Put<uint8_t>(&p, e.unfiltered ? 1 : 0);
  }
  return Frame(p);
}

// After the name: 1 and the removed entry's first packet time if it was complete, 2 if it was being written,
// so that a reader of a checkpoint knows where the entry was (older readers stop after the name).
std::string EncodeRemoved(const CatalogEntry& e) {
  std::string p;
  Put<uint8_t>(&p, kRecRemoved);
  Put<uint32_t>(&p, e.writer);
  PutString(&p, e.name);
  Put<uint8_t>(&p, e.complete() ? 1 : 2);
  if (e.complete()) Put<int64_t>(&p, e.summary.min_ts_ns);
  return Frame(p);
}

// How a removal record places the entry it removes.
enum class RemovedPlace : uint8_t { kUnknown, kAtTime, kBeingWritten };

// Decodes one payload. False if it does not parse. A removal sets *place (and for kAtTime the removed
// entry's first packet time in e->summary.min_ts_ns).
bool DecodePayload(std::string_view in, uint8_t* type, CatalogEntry* e, RemovedPlace* place) {
  *place = RemovedPlace::kUnknown;
  if (!Get(&in, type) || !Get(&in, &e->writer) || !GetString(&in, &e->name)) return false;
  if (*type == kRecWriting || *type == kRecRemoved) {
    e->state = CatalogEntry::State::kWriting;
    uint8_t how = 0;
    if (*type == kRecRemoved && Get(&in, &how)) {
      if (how == 1 && Get(&in, &e->summary.min_ts_ns)) *place = RemovedPlace::kAtTime;
      if (how == 2) *place = RemovedPlace::kBeingWritten;
    }
    return true;
  }
  if (*type != kRecComplete) return false;
  std::string_view summary;
  uint8_t unfiltered = 0;
  if (!GetString(&in, &summary) || !FileSummary::Decode(summary, &e->summary).ok() || !Get(&in, &e->index_bytes) ||
      !Get(&in, &e->filter_offset) || !Get(&in, &e->filter_blocks) || !Get(&in, &unfiltered)) {
    return false;
  }
  e->state = CatalogEntry::State::kComplete;
  e->unfiltered = unfiltered != 0;
  return true;
}

// Holds an flock on `path` for as long as it lives.
class FileLock {
 public:
  // `create`: make the file if it is missing (else that is an error).
  FileLock(const std::string& path, int op, bool create = true) {
    fd_ = open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (fd_ < 0) {
      error_ = Status::FromErrno("opening " + path, errno);
      return;
    }
    while (flock(fd_, op) != 0) {
      if (errno == EINTR) continue;
      error_ = Status::FromErrno("locking " + path, errno);
      return;
    }
  }
  ~FileLock() {
    if (fd_ >= 0) close(fd_);
  }
  const Status& status() const { return error_; }
  int fd() const { return fd_; }  // the locked file, open until the lock goes

 private:
  int fd_ = -1;
  Status error_;
};

Status WriteAll(int fd, const std::string& bytes, const std::string& what) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::FromErrno("writing " + what, n < 0 ? errno : ENOSPC);
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}


// Replaces the journal with `journal` atomically (a temporary file, fdatasync, rename), and removes the
// checkpoint of the old one first. Caller holds the exclusive lock.
Status ReplaceJournal(const std::string& store, const std::string& journal) {
  if (unlink(CheckpointPath(store).c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno("removing " + CheckpointPath(store), errno);
  }
  std::string tmp = JournalPath(store) + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("creating " + tmp, errno);
  // The new journal belongs to whoever the old one did: `rewind repair` run as root must not leave a
  // capture that runs as its own user unable to append (where not root, this changes nothing).
  struct stat old;
  if (stat(JournalPath(store).c_str(), &old) == 0) {
    (void)fchown(fd, old.st_uid, old.st_gid);
    (void)fchmod(fd, old.st_mode & 0777);
  }
  Status s = WriteAll(fd, journal, tmp);
  if (s.ok() && fdatasync(fd) != 0) s = Status::FromErrno("syncing " + tmp, errno);
  close(fd);
  if (s.ok() && rename(tmp.c_str(), JournalPath(store).c_str()) != 0) s = Status::FromErrno("renaming " + tmp, errno);
  if (!s.ok()) unlink(tmp.c_str());
  if (s.ok()) s = SyncParentDirectory(JournalPath(store));
  return s;
}

Status Append(const std::string& store, const std::string& record) {
  std::string path = JournalPath(store);
  for (int attempt = 0;; ++attempt) {
    {
      FileLock lock(LockPath(store), LOCK_SH);
      if (!lock.status().ok()) return lock.status();
      int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
      if (fd < 0 && !(errno == ENOENT && attempt == 0)) return Status::FromErrno("opening " + path, errno);
      if (fd >= 0) {
        // One write(2) with O_APPEND: records of concurrent appenders never interleave on a local file system.
        ssize_t n = write(fd, record.data(), record.size());
        Status s;
        if (n != static_cast<ssize_t>(record.size())) {
          s = Status::FromErrno("appending to " + path, n < 0 ? errno : ENOSPC);
          // A short write leaves a torn record, which readers skip; cut it off where we can: only while it is
          // still the journal's end (appenders hold the lock shared, so another record may follow it already).
          struct stat st;
          off_t end = n > 0 ? lseek(fd, 0, SEEK_CUR) : -1;  // with O_APPEND: the end of what this write put
          if (end >= n && fstat(fd, &st) == 0 && st.st_size == end) (void)ftruncate(fd, end - n);
        } else if (fdatasync(fd) != 0) {
          s = Status::FromErrno("syncing " + path, errno);
        }
        close(fd);
        return s;
      }
    }
    // A store without a journal (made by an older version, or its journal was deleted): build it from the
    // index tables first, so that appending does not start a journal that lacks the existing files.
    CatalogRebuildStats stats;
    Status s = RebuildJournal(store, false, &stats);
    if (!s.ok()) return s;
  }
}

// Appends `filter` to the writer's FILTERS file; sets *offset.
Status AppendFilter(const std::string& store, uint32_t writer, const std::string& filter, uint64_t* offset) {
  std::string path = FilterPath(store, writer);
  FileLock lock(path, LOCK_EX);
  if (!lock.status().ok()) return lock.status();
  struct stat st;
  if (fstat(lock.fd(), &st) != 0) return Status::FromErrno("sizing " + path, errno);
  struct stat dir;
  if (st.st_size == 0 && stat(IndexDirectory(store, writer).c_str(), &dir) == 0 &&
      (st.st_uid != dir.st_uid || st.st_gid != dir.st_gid)) {
    (void)fchown(lock.fd(), dir.st_uid, dir.st_gid);  // made by root (rewind repair): the writer's, as its directory
  }
  // Filters start at multiples of their block size, so a torn append never shifts the next one.
  uint64_t at = (static_cast<uint64_t>(st.st_size) + kKeyFilterBlockBytes - 1) / kKeyFilterBlockBytes *
                kKeyFilterBlockBytes;
  Status s;
  size_t done = 0;
  while (s.ok() && done < filter.size()) {
    ssize_t n = pwrite(lock.fd(), filter.data() + done, filter.size() - done, static_cast<off_t>(at + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) s = Status::FromErrno("writing " + path, n < 0 ? errno : ENOSPC);
    else done += static_cast<size_t>(n);
  }
  // Not synced: the journal record that points here is, and a filter lost in a power failure fails its
  // checksum, which makes readers open the file (never hide it).
  *offset = at;
  return s;
}

// True if a record with a valid checksum lies whole at bytes[pos, n).
bool WholeRecordAt(const char* bytes, size_t n, size_t pos) {
  uint32_t magic, len, crc;
  if (pos + kHeaderBytes > n) return false;
  std::memcpy(&magic, bytes + pos, 4);
  std::memcpy(&len, bytes + pos + 4, 4);
  std::memcpy(&crc, bytes + pos + 8, 4);
  if (magic != kRecordMagic || len > kMaxPayload || pos + kHeaderBytes + len > n) return false;
  return Crc32c(reinterpret_cast<const uint8_t*>(bytes + pos + kHeaderBytes), len) == crc;
}

}  // namespace

// The live entries by (name, writer), with running counts of the complete ones and a time index, so that
// Select() reads the slots of its time range only, not every entry: a store of a year holds about a million.
// Invariant (unless `time_index_stale`): every entry is in exactly one of `by_time` (complete, with packets,
// spanning at most kShortSpanNs), `unsorted` (being written, or spanning more) or neither (no packets).
struct CatalogEntrySet {
  static constexpr int64_t kShortSpanNs = 3600 * int64_t{1000000000};
  struct TimeSlot {
    int64_t min_ts_ns;
    int64_t max_ts_ns;
    const CatalogEntry* entry;  // a node of by_key (stable until erased)
  };

  // By a hash of (name, writer), compared in full on lookup: a first read inserts every entry, and looking
  // one up needs no copy of its name.
  std::unordered_multimap<uint64_t, CatalogEntry> by_key;
  uint64_t complete = 0;
  std::map<uint32_t, uint64_t> complete_by_linktype;
  std::vector<TimeSlot> by_time;           // ascending min_ts_ns
  int64_t max_short_span_ns = 0;           // of every slot ever put in by_time (never shrinks)
  std::set<const CatalogEntry*> unsorted;
  bool time_index_stale = false;           // set while records are applied in bulk; Reindex() clears it

  static uint64_t KeyOf(std::string_view name, uint32_t writer) {
    return std::hash<std::string_view>()(name) * 31 + writer;
  }
  using Iterator = std::unordered_multimap<uint64_t, CatalogEntry>::iterator;
  // The entry of (name, writer), or by_key.end().
  Iterator Find(std::string_view name, uint32_t writer);
  // Inserts `e`, or replaces the entry of its (name, writer) if `replace`.
  void Put(CatalogEntry e, bool replace);
  // Inserts `e`, known not to be there (a checkpoint's entries are distinct).
  void Insert(CatalogEntry e);
  void Erase(std::string_view name, uint32_t writer);
  void Reindex();

  enum class Place { kByTime, kUnsorted, kNowhere };
  static Place PlaceOf(const CatalogEntry& e);  // where the invariant above puts `e`

 private:
  void Index(const CatalogEntry* e);
  void Unindex(const CatalogEntry* e);
  void Count(const CatalogEntry& e, int sign);  // into (1) or out of (-1) the running counts
};

void CatalogEntrySet::Count(const CatalogEntry& e, int sign) {
  if (!e.complete()) return;
  complete += static_cast<uint64_t>(sign);
  for (uint32_t lt : e.summary.linktypes) {
    uint64_t& n = complete_by_linktype[lt];
    n += static_cast<uint64_t>(sign);
    if (n == 0) complete_by_linktype.erase(lt);
  }
}

CatalogEntrySet::Place CatalogEntrySet::PlaceOf(const CatalogEntry& e) {
  const FileSummary& s = e.summary;
  if (!e.complete()) return Place::kUnsorted;
  if (s.packets == 0) return Place::kNowhere;
  return s.max_ts_ns - s.min_ts_ns > kShortSpanNs ? Place::kUnsorted : Place::kByTime;
}

void CatalogEntrySet::Index(const CatalogEntry* e) {
  if (time_index_stale) return;
  const FileSummary& s = e->summary;
  switch (PlaceOf(*e)) {
    case Place::kUnsorted:
      unsorted.insert(e);
      break;
    case Place::kByTime: {
      // Files arrive mostly in time order: usually an append.
      auto at = std::upper_bound(by_time.begin(), by_time.end(), s.min_ts_ns,
                                 [](int64_t t, const TimeSlot& slot) { return t < slot.min_ts_ns; });
      by_time.insert(at, TimeSlot{s.min_ts_ns, s.max_ts_ns, e});
      max_short_span_ns = std::max(max_short_span_ns, s.max_ts_ns - s.min_ts_ns);
      break;
    }
    case Place::kNowhere:
      break;
  }
}

void CatalogEntrySet::Unindex(const CatalogEntry* e) {
  if (time_index_stale || unsorted.erase(e) > 0 || e->summary.packets == 0) return;
  auto it = std::lower_bound(by_time.begin(), by_time.end(), e->summary.min_ts_ns,
                             [](const TimeSlot& slot, int64_t t) { return slot.min_ts_ns < t; });
  while (it != by_time.end() && it->min_ts_ns == e->summary.min_ts_ns && it->entry != e) ++it;
  if (it != by_time.end() && it->entry == e) by_time.erase(it);
}

CatalogEntrySet::Iterator CatalogEntrySet::Find(std::string_view name, uint32_t writer) {
  auto [first, last] = by_key.equal_range(KeyOf(name, writer));
  auto it = std::find_if(first, last, [&](const auto& kv) { return kv.second.writer == writer && kv.second.name == name; });
  return it == last ? by_key.end() : it;
}

void CatalogEntrySet::Put(CatalogEntry e, bool replace) {
  auto it = Find(e.name, e.writer);
  if (it == by_key.end()) {
    Count(e, 1);
    uint64_t key = KeyOf(e.name, e.writer);
    it = by_key.emplace(key, std::move(e));
  } else {
    if (!replace) return;
    Count(e, 1);
    Unindex(&it->second);
    Count(it->second, -1);
    it->second = std::move(e);
  }
  Index(&it->second);
}

void CatalogEntrySet::Insert(CatalogEntry e) {
  Count(e, 1);
  uint64_t key = KeyOf(e.name, e.writer);
  Index(&by_key.emplace(key, std::move(e))->second);
}

void CatalogEntrySet::Erase(std::string_view name, uint32_t writer) {
  auto it = Find(name, writer);
  if (it == by_key.end()) return;
  Unindex(&it->second);
  Count(it->second, -1);
  by_key.erase(it);
}

void CatalogEntrySet::Reindex() {
  if (!time_index_stale) return;
  time_index_stale = false;
  by_time.clear();
  unsorted.clear();
  for (const auto& [key, e] : by_key) {
    const FileSummary& s = e.summary;
    if (PlaceOf(e) != Place::kByTime) {
      Index(&e);
    } else {  // appended here and sorted once below, not inserted in order one by one
      by_time.push_back(TimeSlot{s.min_ts_ns, s.max_ts_ns, &e});
      max_short_span_ns = std::max(max_short_span_ns, s.max_ts_ns - s.min_ts_ns);
    }
  }
  std::sort(by_time.begin(), by_time.end(),
            [](const TimeSlot& a, const TimeSlot& b) { return a.min_ts_ns < b.min_ts_ns; });
}

namespace {

// The order Select() and Entries() answer in: name (creation time), then writer.
bool NameOrder(const CatalogEntry& a, const CatalogEntry& b) {
  return a.name != b.name ? a.name < b.name : a.writer < b.writer;
}

// Calls fn(type, entry, removed_place) for each whole record in bytes[0, n), in order; returns how many bytes
// were consumed (a torn record at the end is left for the next read).
template <typename Fn>
size_t ForEachRecord(const char* bytes, size_t n, Fn&& fn) {
  size_t pos = 0;
  while (pos + kHeaderBytes <= n) {
    uint32_t magic, len, crc;
    std::memcpy(&magic, bytes + pos, 4);
    std::memcpy(&len, bytes + pos + 4, 4);
    std::memcpy(&crc, bytes + pos + 8, 4);
    if (magic != kRecordMagic || len > kMaxPayload) {
      ++pos;  // not a record here (garbage after a torn write): find the next one
      continue;
    }
    if (pos + kHeaderBytes + len > n) {
      // Not all there yet, or a record torn by a writer that died: then a whole record follows it.
      size_t next = pos + 1;
      while (next + kHeaderBytes <= n && !WholeRecordAt(bytes, n, next)) ++next;
      if (next + kHeaderBytes > n) break;
      pos = next;
      continue;
    }
    const char* payload = bytes + pos + kHeaderBytes;
    CatalogEntry e;
    uint8_t type = 0;
    RemovedPlace place;
    if (Crc32c(reinterpret_cast<const uint8_t*>(payload), len) != crc ||
        !DecodePayload(std::string_view(payload, len), &type, &e, &place)) {
      ++pos;
      continue;
    }
    pos += kHeaderBytes + len;
    fn(type, std::move(e), place);
  }
  return pos;
}

// Applies the records in bytes[0, n) to `entries`; returns the bytes consumed and counts records.
size_t ApplyRecords(const char* bytes, size_t n, CatalogEntrySet* entries, uint64_t* records) {
  return ForEachRecord(bytes, n, [&](uint8_t type, CatalogEntry&& e, RemovedPlace) {
    ++*records;
    if (type == kRecRemoved) {
      entries->Erase(e.name, e.writer);
    } else {
      entries->Put(std::move(e), type == kRecComplete);  // never turns a complete file back into one being written
    }
  });
}

Status FilterFromIndex(const IndexReader& index, std::string* filter, bool* unfiltered) {
  std::vector<uint64_t> hashes;
  bool incomplete = false;
  Status s = index.ForEachPostingKey([&](std::string_view key) {
    if (key == IncompleteKey()) incomplete = true;
    else hashes.push_back(KeyFilterHash(key));
  });
  if (!s.ok()) return s;
  *unfiltered = incomplete;
  for (const BlockEntry& b : index.blocks()) {
    if (b.packets > 0 && !DissectorSupportsLinkType(b.linktype)) *unfiltered = true;
  }
  *filter = BuildKeyFilter(hashes);
  return Status::OK();
}

}  // namespace

std::string CatalogEntry::packet_path(const std::string& store) const {
  return PacketDirectory(store, writer) + "/" + name;
}

std::string CatalogEntry::index_path(const std::string& store) const {
  return IndexDirectory(store, writer) + "/" + name;
}

Status RecordFileWriting(const std::string& store, uint32_t writer, const std::string& name) {
  CatalogEntry e;
  e.writer = writer;
  e.name = name;
  return Append(store, EncodeEntry(e));
}

Status RecordFileComplete(const std::string& store, uint32_t writer, const std::string& name,
                          const FileSummary& summary, uint64_t index_bytes, const std::string& filter,
                          bool unfiltered) {
  CatalogEntry e;
  e.writer = writer;
  e.name = name;
  e.state = CatalogEntry::State::kComplete;
  e.summary = summary;
  e.index_bytes = index_bytes;
  e.unfiltered = unfiltered;
  if (!filter.empty() && filter.size() % kKeyFilterBlockBytes == 0) {
    Status s = AppendFilter(store, writer, filter, &e.filter_offset);
    // Without its filter the file is still listed; lookups then read its index.
    if (s.ok()) e.filter_blocks = static_cast<uint32_t>(filter.size() / kKeyFilterBlockBytes);
  }
  return Append(store, EncodeEntry(e));
}

namespace {

// Gives a removed file's filter space back to the file system; the offsets of the other filters stay.
// Filters are packed end to end in 64-byte blocks, so most share their first and last pages with their
// neighbours, and punching a filter's range frees only the pages it covers whole (the rest it zeroes). So a
// page at either end that then reads all zeros (every filter in it is removed) is punched whole as well:
// that changes nothing a reader sees, and without it each removed file left up to a page allocated for good.
// Under the FILTERS lock, so that no append lands in such a page between the read and the punch. Best
// effort: a file system that cannot punch holes keeps the bytes.
void GiveBackFilter(const std::string& store, const CatalogEntry& entry) {
  FileLock lock(FilterPath(store, entry.writer), LOCK_EX, false);
  if (!lock.status().ok()) return;
  const int fd = lock.fd();
  constexpr uint64_t kPage = 4096;
  uint64_t begin = entry.filter_offset, end = begin + uint64_t{entry.filter_blocks} * kKeyFilterBlockBytes;
  PunchHoles(fd, {{begin, end - begin}});
  uint64_t first_page = begin / kPage * kPage, last_page = (end - 1) / kPage * kPage;
  for (uint64_t page : {first_page, last_page}) {
    uint8_t bytes[kPage];
    ssize_t n = pread(fd, bytes, kPage, static_cast<off_t>(page));
    if (n > 0 && std::all_of(bytes, bytes + n, [](uint8_t b) { return b == 0; })) PunchHoles(fd, {{page, kPage}});
    if (first_page == last_page) break;
  }
}

}  // namespace

Status RecordFileRemoved(const std::string& store, const CatalogEntry& entry) {
  Status s = Append(store, EncodeRemoved(entry));
  if (s.ok() && entry.filter_blocks > 0) GiveBackFilter(store, entry);
  return s;
}

Status HandCatalogTo(const std::string& store, int uid, int gid) {
  // Creates the lock file, and the journal unless it exists.
  CatalogRebuildStats stats;
  Status s = RebuildJournal(store, false, &stats);
  if (!s.ok()) return s;
  if (uid < 0 && gid < 0) return Status::OK();
  for (const std::string& path : {JournalPath(store), LockPath(store)}) {
    if (chown(path.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0) {
      return Status::FromErrno("chown " + path, errno);
    }
  }
  return Status::OK();
}

Status RecordFileCompleteFromIndex(const std::string& store, uint32_t writer, const std::string& name) {
  std::string path = IndexDirectory(store, writer) + "/" + name;
  auto index = IndexReader::Open(path);
  if (!index.ok()) return index.status();
  std::string filter;
  bool unfiltered = false;
  Status s = FilterFromIndex(**index, &filter, &unfiltered);
  if (!s.ok()) return s;
  return RecordFileComplete(store, writer, name, (*index)->summary(), (*index)->table_bytes(), filter, unfiltered);
}

StoreCatalog::StoreCatalog(std::string store)
    : store_(std::move(store)), entries_(std::make_unique<CatalogEntrySet>()) {}

StoreCatalog::~StoreCatalog() {
  if (fd_ >= 0) close(fd_);
  for (const auto& [w, fd] : filter_fds_) {
    if (fd >= 0) close(fd);
  }
}

Result<std::shared_ptr<StoreCatalog>> StoreCatalog::Open(const std::string& store) {
  struct stat st;
  if (stat(store.c_str(), &st) != 0) return Status::FromErrno("opening store " + store, errno);
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(store + " is not a directory");
  if (stat(JournalPath(store).c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::FromErrno("opening " + JournalPath(store), errno);
    // Never make a journal in a directory that is not a store (`--dir /etc` by mistake).
    if (!LooksLikeStore(store)) {
      return Status::NotFound(store + " is not a rewind store (it holds other files, and no CATALOG, PKT<n> or IDX<n>)");
    }
    CatalogRebuildStats stats;
    Status s = RebuildJournal(store, false, &stats);
    if (!s.ok()) return s;
  }
  std::shared_ptr<StoreCatalog> c(new StoreCatalog(store));
  Status s = c->Refresh();
  if (!s.ok()) return s;
  return c;
}

Status StoreCatalog::Refresh() {
  std::unique_lock<std::shared_mutex> l(mu_);
  std::string path = JournalPath(store_);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT && fd_ < 0) return Status::OK();  // nothing recorded yet
    if (errno != ENOENT) return Status::FromErrno("reading " + path, errno);
  } else if (fd_ < 0 || static_cast<uint64_t>(st.st_ino) != inode_) {
    // First read, or the journal was replaced (rebuilt or compacted): read the new one from the start.
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("opening " + path, errno);
    struct stat fst;
    fstat(fd, &fst);
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
    inode_ = static_cast<uint64_t>(fst.st_ino);
    read_offset_ = 0;
    records_ = 0;
    ranged_ = false;
    entries_ = std::make_unique<CatalogEntrySet>();
  }
  return ReadNew();
}

Status StoreCatalog::ReadNew() {
  struct stat st;
  if (fstat(fd_, &st) != 0) return Status::FromErrno("reading the catalog of " + store_, errno);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size <= read_offset_) return Status::OK();
  // Mapped, not copied: a journal of 100,000 files is about 12 MB, which a read into a fresh buffer would
  // zero and copy on every open.
  static const uint64_t kPage = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t map_from = read_offset_ / kPage * kPage;
  size_t map_len = static_cast<size_t>(size - map_from);
  void* map = mmap(nullptr, map_len, PROT_READ, MAP_SHARED, fd_, static_cast<off_t>(map_from));
  if (map == MAP_FAILED) return Status::FromErrno("reading the catalog of " + store_, errno);
  (void)madvise(map, map_len, MADV_SEQUENTIAL);
  const char* bytes = static_cast<const char*>(map) + (read_offset_ - map_from);
  // Many records (a first read, a writer's burst): apply them all, then sort the time index once.
  constexpr uint64_t kBulkBytes = 64 * 1024;
  if (read_offset_ == 0 || size - read_offset_ > kBulkBytes) entries_->time_index_stale = true;
  // A file takes about 120 bytes of records (being written, then complete): room for them all at once.
  if (read_offset_ == 0) entries_->by_key.reserve(std::min<uint64_t>(size / 100, uint64_t{1} << 22));
  read_offset_ += ApplyRecords(bytes, static_cast<size_t>(size - read_offset_), entries_.get(), &records_);
  entries_->Reindex();
  munmap(map, map_len);
  return Status::OK();
}

std::vector<CatalogEntry> StoreCatalog::Select(int64_t lo, int64_t hi,
                                               const std::function<bool(const CatalogEntry&)>& keep) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  const CatalogEntrySet& set = *entries_;
  std::vector<const CatalogEntry*> hits;
  auto take = [&](const CatalogEntry* e) {
    if (!e->complete() || !keep || keep(*e)) hits.push_back(e);
  };
  // A slot overlaps [lo, hi) if it starts before hi and ends at or after lo; it starts at or after lo minus
  // the longest span in by_time.
  int64_t from = lo < INT64_MIN + set.max_short_span_ns ? INT64_MIN : lo - set.max_short_span_ns;
  auto it = std::lower_bound(set.by_time.begin(), set.by_time.end(), from,
                             [](const CatalogEntrySet::TimeSlot& slot, int64_t t) { return slot.min_ts_ns < t; });
  for (; it != set.by_time.end() && it->min_ts_ns < hi; ++it) {
    if (it->max_ts_ns >= lo) take(it->entry);
  }
  for (const CatalogEntry* e : set.unsorted) {
    if (!e->complete() || (e->summary.max_ts_ns >= lo && e->summary.min_ts_ns < hi)) take(e);
  }
  std::sort(hits.begin(), hits.end(), [](const CatalogEntry* a, const CatalogEntry* b) { return NameOrder(*a, *b); });
  std::vector<CatalogEntry> out;
  out.reserve(hits.size());
  for (const CatalogEntry* e : hits) out.push_back(*e);
  return out;
}

std::vector<CatalogEntry> StoreCatalog::Entries() const {
  std::shared_lock<std::shared_mutex> l(mu_);
  std::vector<CatalogEntry> out;
  out.reserve(entries_->by_key.size());
  for (const auto& [key, e] : entries_->by_key) out.push_back(e);
  std::sort(out.begin(), out.end(), NameOrder);
  return out;
}

CatalogTotals StoreCatalog::Totals() const {
  std::shared_lock<std::shared_mutex> l(mu_);
  CatalogTotals t;
  for (const auto& [key, e] : entries_->by_key) {
    if (!e.complete()) {
      // A stale entry (its file was never created: a full disk refused it) is not a file without an index.
      struct stat st;
      if (stat(e.packet_path(store_).c_str(), &st) == 0) ++t.writing;
      continue;
    }
    const FileSummary& s = e.summary;
    ++t.files;
    if (s.packets > 0) {
      if (t.packets == 0 || s.min_ts_ns < t.first_ts_ns) t.first_ts_ns = s.min_ts_ns;
      if (t.packets == 0 || s.max_ts_ns > t.last_ts_ns) t.last_ts_ns = s.max_ts_ns;
    }
    t.packets += s.packets;
    t.captured_bytes += s.captured_bytes;
    t.wire_bytes += s.wire_bytes;
    t.packet_file_bytes += s.file_bytes;
    t.blocks += s.blocks;
    t.index_bytes += e.index_bytes;
    for (uint32_t lt : s.linktypes) {
      if (std::find(t.linktypes.begin(), t.linktypes.end(), lt) == t.linktypes.end()) t.linktypes.push_back(lt);
    }
  }
  std::sort(t.linktypes.begin(), t.linktypes.end());
  return t;
}

uint64_t StoreCatalog::CompleteFiles() const {
  std::shared_lock<std::shared_mutex> l(mu_);
  return entries_->complete;
}

std::vector<uint32_t> StoreCatalog::Linktypes() const {
  std::shared_lock<std::shared_mutex> l(mu_);
  std::vector<uint32_t> out;
  for (const auto& [lt, files] : entries_->complete_by_linktype) out.push_back(lt);
  return out;
}

int StoreCatalog::FilterFd(uint32_t writer) const {
  std::lock_guard<std::mutex> l(filter_mu_);
  auto it = filter_fds_.find(writer);
  if (it != filter_fds_.end() && it->second >= 0) return it->second;
  int fd = open(FilterPath(store_, writer).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd >= 0) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      close(fd);
      fd = -1;
    }
  }
  filter_fds_[writer] = fd;  // -1 is retried next time
  return fd;
}

constexpr uint64_t kFilterReadAheadBytes = 4 << 20;

bool StoreCatalog::MayContain(const CatalogEntry& entry, uint64_t key_hash, FilterWindows* windows) const {
  if (!entry.complete()) return true;
  if (entry.unfiltered || entry.filter_blocks == 0) return true;
  int fd = FilterFd(entry.writer);
  if (fd < 0) return true;
  uint32_t block = KeyFilterBlockFor(key_hash, entry.filter_blocks);
  uint64_t at = entry.filter_offset + uint64_t{block} * kKeyFilterBlockBytes;
  if (windows == nullptr) {
    uint8_t data[kKeyFilterBlockBytes];
    if (pread(fd, data, sizeof(data), static_cast<off_t>(at)) != static_cast<ssize_t>(sizeof(data))) return true;
    return KeyFilterBlockMayContain(data, block, key_hash);
  }
  FilterWindows::Window& w = windows->by_writer_[entry.writer];
  if (at < w.start || at + kKeyFilterBlockBytes > w.start + w.length) {
    // Read on from this file's filter (a filter is at most kKeyFilterMaxBlocks blocks, less than a window).
    if (!w.bytes) w.bytes.reset(new uint8_t[FilterWindows::kFilterWindowBytes]);
    w.start = entry.filter_offset;
    ssize_t n;
    do {
      n = pread(fd, w.bytes.get(), FilterWindows::kFilterWindowBytes, static_cast<off_t>(w.start));
    } while (n < 0 && errno == EINTR);
    w.length = n > 0 ? static_cast<size_t>(n) : 0;
    // Probes go on in time order, mostly into the next windows: have the kernel read those meanwhile.
    if (w.length == FilterWindows::kFilterWindowBytes) {
      posix_fadvise(fd, static_cast<off_t>(w.start + w.length), kFilterReadAheadBytes, POSIX_FADV_WILLNEED);
    }
    if (at < w.start || at + kKeyFilterBlockBytes > w.start + w.length) return true;
  }
  return KeyFilterBlockMayContain(w.bytes.get() + (at - w.start), block, key_hash);
}

// The checkpoint (DIR/CATALOG.checkpoint), all little-endian:
//   header (kCheckpointHeaderBytes): magic, journal inode, journal offset it covers, records applied up to
//     there, the longest span of a time-sorted entry, offset and length of the index, CRC-32C of the bytes
//     before it, 4 bytes of zeros.
//   body: the entries as journal records. First every entry that is not time-sorted (being written, no
//     packets, spanning over kShortSpanNs), then the time-sorted ones in ascending first packet time, cut
//     into chunks of kCheckpointChunkEntries.
//   index: one framed record: offset, length and count of the first section; complete files; complete
//     files per link type; per chunk its first entry's first packet time, offset, length and count.
// A reader checks the CRCs and that each section it reads holds the count of entries the index says.
namespace {

constexpr uint64_t kCheckpointMagic = 0x3130504b43445752ULL;  // "RWDCKP01"
constexpr size_t kCheckpointHeaderBytes = 64;
constexpr size_t kCheckpointChunkEntries = 256;

struct CheckpointChunk {
  int64_t first_min_ts_ns = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  uint32_t entries = 0;
};

struct CheckpointIndex {
  uint64_t loose_offset = 0, loose_length = 0, loose_entries = 0;
  uint64_t complete = 0;
  std::map<uint32_t, uint64_t> complete_by_linktype;
  std::vector<CheckpointChunk> chunks;
};

Status PreadAll(int fd, uint64_t offset, uint64_t length, std::string* out, const std::string& what) {
  out->resize(length);
  size_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, out->data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("reading " + what, errno);
    if (n == 0) return Status::Corruption(what + " is shorter than it says");
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

bool DecodeCheckpointIndex(std::string_view framed, CheckpointIndex* ix) {
  uint32_t magic, len, crc;
  if (!Get(&framed, &magic) || !Get(&framed, &len) || !Get(&framed, &crc) || magic != kRecordMagic ||
      len != framed.size() || Crc32c(reinterpret_cast<const uint8_t*>(framed.data()), len) != crc) {
    return false;
  }
  std::string_view in = framed;
  uint32_t n_lt = 0, n_chunks = 0;
  if (!Get(&in, &ix->loose_offset) || !Get(&in, &ix->loose_length) || !Get(&in, &ix->loose_entries) ||
      !Get(&in, &ix->complete) || !Get(&in, &n_lt)) {
    return false;
  }
  for (uint32_t i = 0; i < n_lt; ++i) {
    uint32_t lt;
    uint64_t files;
    if (!Get(&in, &lt) || !Get(&in, &files)) return false;
    ix->complete_by_linktype[lt] = files;
  }
  if (!Get(&in, &n_chunks) || in.size() != uint64_t{n_chunks} * 24) return false;
  ix->chunks.resize(n_chunks);
  for (CheckpointChunk& c : ix->chunks) {
    if (!Get(&in, &c.first_min_ts_ns) || !Get(&in, &c.offset) || !Get(&in, &c.length) || !Get(&in, &c.entries)) return false;
  }
  return true;
}

// Chunks [first, last) that may hold a time-sorted entry whose first packet time is in [from, to].
std::pair<size_t, size_t> ChunksFor(const std::vector<CheckpointChunk>& chunks, int64_t from, int64_t to) {
  auto lo = std::lower_bound(chunks.begin(), chunks.end(), from,
                             [](const CheckpointChunk& c, int64_t t) { return c.first_min_ts_ns < t; });
  auto hi = std::upper_bound(chunks.begin(), chunks.end(), to,
                             [](int64_t t, const CheckpointChunk& c) { return t < c.first_min_ts_ns; });
  size_t first = static_cast<size_t>(lo - chunks.begin());
  if (first > 0) --first;  // the chunk before may hold entries from `from` on
  return {first, std::max(first, static_cast<size_t>(hi - chunks.begin()))};
}

}  // namespace

Result<std::shared_ptr<StoreCatalog>> StoreCatalog::OpenRange(const std::string& store, int64_t lo, int64_t hi,
                                                             const KeepFn& keep) {
  std::shared_ptr<StoreCatalog> c(new StoreCatalog(store));
  if (c->ReadCheckpointFor(lo, hi, keep).ok()) return c;
  auto full = Open(store);
  if (!full.ok()) return full;
  if ((*full)->CheckpointDue() && access(store.c_str(), W_OK) == 0) (void)(*full)->WriteCheckpoint();
  return full;
}

Status StoreCatalog::ReadCheckpointFor(int64_t lo, int64_t hi, const KeepFn& keep) {
  std::unique_lock<std::shared_mutex> l(mu_);
  const std::string journal_path = JournalPath(store_), path = CheckpointPath(store_);
  int jfd = open(journal_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (jfd < 0) return Status::FromErrno("opening " + journal_path, errno);
  int cfd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  auto fail = [&](Status s) {
    close(jfd);
    if (cfd >= 0) close(cfd);
    entries_ = std::make_unique<CatalogEntrySet>();
    return s;
  };
  if (cfd < 0) return fail(Status::FromErrno("opening " + path, errno));
  struct stat jst, cst;
  if (fstat(jfd, &jst) != 0 || fstat(cfd, &cst) != 0 || !S_ISREG(cst.st_mode)) {
    return fail(Status::Corruption(path + " is not a regular file"));
  }
  // Mapped, not copied: a read of the whole store takes most of it (124 MB at a million files), a read of
  // one range touches a few pages.
  struct Mapping {
    void* at = MAP_FAILED;
    size_t length = 0;
    ~Mapping() {
      if (at != MAP_FAILED) munmap(at, length);
    }
  } map;
  map.length = static_cast<size_t>(cst.st_size);
  if (map.length < kCheckpointHeaderBytes) return fail(Status::Corruption(path + " is damaged"));
  map.at = mmap(nullptr, map.length, PROT_READ, MAP_SHARED, cfd, 0);
  if (map.at == MAP_FAILED) return fail(Status::FromErrno("reading " + path, errno));
  const char* const base = static_cast<const char*>(map.at);
  // No read-around on faults (with the disk's readahead it read megabytes around each of a range read's few
  // sections); each section is asked for whole just before it is read.
  (void)madvise(map.at, map.length, MADV_RANDOM);
  static const uint64_t kPage = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  auto will_need = [&](uint64_t at, uint64_t length) {
    if (at >= map.length || length == 0) return;
    uint64_t from = at / kPage * kPage;
    // A large section (most of the store) is read front to back: readahead as for a sequential read.
    (void)madvise(const_cast<char*>(base) + from, std::min<uint64_t>(at + length, map.length) - from,
                  length > (uint64_t{4} << 20) ? MADV_SEQUENTIAL : MADV_WILLNEED);
  };
  will_need(0, kCheckpointHeaderBytes);
  std::string_view header(base, kCheckpointHeaderBytes);
  std::string_view h = header;
  uint64_t magic, inode, offset, records, index_offset, index_length;
  int64_t max_span;
  uint32_t crc;
  Get(&h, &magic), Get(&h, &inode), Get(&h, &offset), Get(&h, &records), Get(&h, &max_span);
  Get(&h, &index_offset), Get(&h, &index_length), Get(&h, &crc);
  if (magic != kCheckpointMagic || crc != Crc32c(reinterpret_cast<const uint8_t*>(header.data()), 56) ||
      index_offset > map.length || index_length > map.length - index_offset) {
    return fail(Status::Corruption(path + " is damaged"));
  }
  uint64_t size = static_cast<uint64_t>(jst.st_size);
  if (inode != static_cast<uint64_t>(jst.st_ino) || offset > size) return fail(Status::NotFound(path + " is stale"));
  checkpoint_seen_ = offset;
  // Far behind: a full read now writes a new one for the next reader.
  if (size - offset > kCheckpointLagBytes && access(store_.c_str(), W_OK) == 0) {
    return fail(Status::NotFound(path + " is behind the journal"));
  }
  CheckpointIndex ix;
  will_need(index_offset, index_length);
  if (!DecodeCheckpointIndex(std::string_view(base + index_offset, index_length), &ix)) {
    return fail(Status::Corruption(path + ": damaged index"));
  }

  // The journal after the checkpoint, applied last. Its removals and re-completions say where the entries
  // they change sit in the checkpoint, and those chunks are read too.
  struct Record {
    uint8_t type;
    CatalogEntry entry;
  };
  std::vector<Record> tail;
  std::unordered_set<uint64_t> in_tail;  // CatalogEntrySet::KeyOf of the files the tail names: always loaded
  std::vector<int64_t> points;
  bool placed = true;
  std::string tail_bytes;
  Status s = PreadAll(jfd, offset, size - offset, &tail_bytes, journal_path);
  if (!s.ok()) return fail(s);
  size_t consumed = ForEachRecord(tail_bytes.data(), tail_bytes.size(), [&](uint8_t type, CatalogEntry&& e, RemovedPlace place) {
    if (type == kRecRemoved && place == RemovedPlace::kUnknown) placed = false;
    if ((type == kRecRemoved && place == RemovedPlace::kAtTime) || type == kRecComplete) points.push_back(e.summary.min_ts_ns);
    in_tail.insert(CatalogEntrySet::KeyOf(e.name, e.writer));
    tail.push_back(Record{type, std::move(e)});
  });
  if (!placed) return fail(Status::NotFound("the journal after " + path + " has removals it cannot place"));

  std::vector<bool> wanted(ix.chunks.size(), false);
  auto want = [&](int64_t from, int64_t to) {
    auto [first, last] = ChunksFor(ix.chunks, from, to);
    for (size_t i = first; i < last; ++i) wanted[i] = true;
  };
  if (lo < hi) want(lo < INT64_MIN + max_span ? INT64_MIN : lo - max_span, hi - 1);
  for (int64_t t : points) want(t, t);

  entries_ = std::make_unique<CatalogEntrySet>();
  entries_->time_index_stale = true;
  uint64_t expected_entries = ix.loose_entries + tail.size();
  for (size_t i = 0; i < ix.chunks.size(); ++i) expected_entries += wanted[i] ? ix.chunks[i].entries : 0;
  if (!keep) entries_->by_key.reserve(std::min<uint64_t>(expected_entries, uint64_t{1} << 24));
  auto load = [&](uint64_t at, uint64_t length, uint64_t expect) {
    if (at > map.length || length > map.length - at) return Status::Corruption(path + ": damaged index");
    will_need(at, length);
    uint64_t got = 0;
    ForEachRecord(base + at, static_cast<size_t>(length), [&](uint8_t type, CatalogEntry&& e, RemovedPlace) {
      if (type == kRecRemoved) return;
      ++got;
      if (keep && e.complete() && !in_tail.count(CatalogEntrySet::KeyOf(e.name, e.writer)) && !keep(*this, e)) return;
      entries_->Insert(std::move(e));
    });
    return got == expect ? Status::OK() : Status::Corruption(path + ": damaged entries");
  };
  s = load(ix.loose_offset, ix.loose_length, ix.loose_entries);
  for (size_t i = 0; s.ok() && i < ix.chunks.size(); ++i) {
    if (!wanted[i]) continue;
    // One read for a run of wanted chunks, in steps of kLoadStepBytes; the kernel reads the next
    // kLoadAheadBytes of a long run while this step is decoded (a whole-store read is 124 MB at a million files).
    constexpr uint64_t kLoadStepBytes = 4 << 20, kLoadAheadBytes = 16 << 20;
    size_t j = i;
    uint64_t expect = 0;
    while (j < ix.chunks.size() && wanted[j] &&
           (j == i || (ix.chunks[j].offset == ix.chunks[j - 1].offset + ix.chunks[j - 1].length &&
                       ix.chunks[j].offset - ix.chunks[i].offset < kLoadStepBytes))) {
      expect += ix.chunks[j].entries;
      ++j;
    }
    uint64_t end = ix.chunks[j - 1].offset + ix.chunks[j - 1].length;
    if (j < ix.chunks.size() && wanted[j]) posix_fadvise(cfd, static_cast<off_t>(end), kLoadAheadBytes, POSIX_FADV_WILLNEED);
    s = load(ix.chunks[i].offset, end - ix.chunks[i].offset, expect);
    i = j - 1;
  }
  if (!s.ok()) return fail(s);
  close(cfd);
  cfd = -1;
  entries_->complete = ix.complete;
  entries_->complete_by_linktype = ix.complete_by_linktype;
  entries_->max_short_span_ns = std::max(entries_->max_short_span_ns, max_span);
  for (Record& r : tail) {
    if (r.type == kRecRemoved) entries_->Erase(r.entry.name, r.entry.writer);
    else entries_->Put(std::move(r.entry), r.type == kRecComplete);
  }
  entries_->Reindex();
  if (fd_ >= 0) close(fd_);
  fd_ = jfd;
  inode_ = static_cast<uint64_t>(jst.st_ino);
  read_offset_ = offset + consumed;
  records_ = records + tail.size();
  ranged_ = true;
  return Status::OK();
}

bool StoreCatalog::CheckpointDue() const {
  std::shared_lock<std::shared_mutex> l(mu_);
  if (ranged_ || fd_ < 0) return false;
  if (checkpoint_seen_ != 0 && read_offset_ - std::min(read_offset_, checkpoint_seen_.load()) <= kCheckpointLagBytes) {
    return false;
  }
  int cfd = open(CheckpointPath(store_).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (cfd < 0) return read_offset_ > 0;
  uint64_t header[3] = {0, 0, 0};
  bool read = pread(cfd, header, sizeof(header), 0) == static_cast<ssize_t>(sizeof(header));
  close(cfd);
  if (read && header[0] == kCheckpointMagic && header[1] == inode_) checkpoint_seen_ = header[2];
  else return true;
  return read_offset_ - std::min(read_offset_, header[2]) > kCheckpointLagBytes;
}

Status StoreCatalog::WriteCheckpoint() const {
  std::string body, index;
  uint64_t inode, offset, records;
  int64_t max_span;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    if (ranged_ || fd_ < 0) return Status::OK();
    const CatalogEntrySet& set = *entries_;
    inode = inode_, offset = read_offset_, records = records_, max_span = set.max_short_span_ns;
    body.reserve(set.by_key.size() * 128);
    uint64_t loose = 0;
    for (const auto& [key, e] : set.by_key) {
      if (CatalogEntrySet::PlaceOf(e) == CatalogEntrySet::Place::kByTime) continue;
      body += EncodeEntry(e);
      ++loose;
    }
    Put<uint64_t>(&index, kCheckpointHeaderBytes);
    Put<uint64_t>(&index, body.size());
    Put<uint64_t>(&index, loose);
    Put<uint64_t>(&index, set.complete);
    Put<uint32_t>(&index, static_cast<uint32_t>(set.complete_by_linktype.size()));
    for (const auto& [lt, files] : set.complete_by_linktype) {
      Put<uint32_t>(&index, lt);
      Put<uint64_t>(&index, files);
    }
    std::string chunks;
    uint32_t n_chunks = 0;
    for (size_t i = 0; i < set.by_time.size(); i += kCheckpointChunkEntries) {
      size_t start = body.size();
      size_t end = std::min(set.by_time.size(), i + kCheckpointChunkEntries);
      for (size_t j = i; j < end; ++j) body += EncodeEntry(*set.by_time[j].entry);
      Put<int64_t>(&chunks, set.by_time[i].min_ts_ns);
      Put<uint64_t>(&chunks, kCheckpointHeaderBytes + start);
      Put<uint32_t>(&chunks, static_cast<uint32_t>(body.size() - start));
      Put<uint32_t>(&chunks, static_cast<uint32_t>(end - i));
      ++n_chunks;
    }
    Put<uint32_t>(&index, n_chunks);
    index += chunks;
  }
  index = Frame(index);
  std::string header;
  Put<uint64_t>(&header, kCheckpointMagic);
  Put<uint64_t>(&header, inode);
  Put<uint64_t>(&header, offset);
  Put<uint64_t>(&header, records);
  Put<int64_t>(&header, max_span);
  Put<uint64_t>(&header, kCheckpointHeaderBytes + body.size());
  Put<uint64_t>(&header, index.size());
  Put<uint32_t>(&header, Crc32c(reinterpret_cast<const uint8_t*>(header.data()), header.size()));
  header.resize(kCheckpointHeaderBytes, '\0');

  const std::string path = CheckpointPath(store_);
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("creating " + tmp, errno);
  Status s = WriteAll(fd, header, tmp);
  if (s.ok()) s = WriteAll(fd, body, tmp);
  if (s.ok()) s = WriteAll(fd, index, tmp);
  if (s.ok() && fdatasync(fd) != 0) s = Status::FromErrno("syncing " + tmp, errno);
  close(fd);
  if (s.ok()) {
    // Under the shared lock, and only while the journal is the one read: a compaction (exclusive) removes
    // the checkpoint before it replaces the journal, so no checkpoint of an old journal outlives it.
    FileLock lock(LockPath(store_), LOCK_SH);
    struct stat st;
    if (!lock.status().ok()) s = lock.status();
    else if (stat(JournalPath(store_).c_str(), &st) != 0 || static_cast<uint64_t>(st.st_ino) != inode) s = Status::OK();
    else if (rename(tmp.c_str(), path.c_str()) != 0) s = Status::FromErrno("renaming " + tmp, errno);
    else {
      checkpoint_seen_ = offset;
      return Status::OK();
    }
  }
  unlink(tmp.c_str());
  checkpoint_seen_ = offset;  // not retried before the journal grows by kCheckpointLagBytes again
  return s;
}

Status StoreCatalog::Rebuild(const std::string& store, CatalogRebuildStats* stats) {
  return RebuildJournal(store, true, stats);
}

namespace {

Status RebuildJournal(const std::string& store, bool force, CatalogRebuildStats* stats) {
  *stats = CatalogRebuildStats();
  FileLock lock(LockPath(store), LOCK_EX);
  if (!lock.status().ok()) return lock.status();
  struct stat jst;
  bool had_journal = stat(JournalPath(store).c_str(), &jst) == 0;
  if (!force && had_journal) return Status::OK();  // someone else built it
  auto files = ListStoreFiles(store, &stats->problems);
  if (!files.ok()) return files.status();
  // Names a writer recorded "writing" before making the file (the next file's, named ahead): kept, or the
  // writer would later write a file the catalog does not list (unseen by queries, unrepaired after a crash).
  std::vector<CatalogEntry> reserved;
  if (had_journal) {
    auto old = StoreCatalog::Open(store);  // no lock of its own: reads the journal this lock guards
    if (old.ok()) {
      for (const CatalogEntry& e : (*old)->Entries()) {
        struct stat st;
        if (!e.complete() && stat(e.packet_path(store).c_str(), &st) != 0 && errno == ENOENT) reserved.push_back(e);
      }
    }
  }
  // The filters are appended after what each FILTERS file holds now, and the old part given back only once
  // the new journal is in place: until then the old journal (read by other processes, and kept if this
  // rebuild fails) points at filters that are still there. A filter's checksum covers its own blocks only, so
  // rewriting in place would let another file's filter answer for it. A record appended meanwhile that names
  // an old offset reads zeros there afterwards, which answer "may contain" (never hide a file).
  std::map<uint32_t, uint64_t> old_filter_bytes;
  std::string journal;
  for (const StoreFile& f : *files) {
    if (!old_filter_bytes.count(f.writer)) {
      struct stat st;
      old_filter_bytes[f.writer] = stat(FilterPath(store, f.writer).c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    }
    CatalogEntry e;
    e.writer = f.writer;
    e.name = f.name;
    if (f.indexed) {
      auto index = IndexReader::Open(f.index_path);
      if (!index.ok()) {
        // Listed as being written (its packets are read from the packet file) rather than dropped from the
        // answers without a word; rewind repair re-indexes it.
        stats->problems.push_back(index.status().ToString());
        ++stats->writing;
        journal += EncodeEntry(e);
        continue;
      }
      std::string filter;
      Status s = FilterFromIndex(**index, &filter, &e.unfiltered);
      if (s.ok()) {
        s = AppendFilter(store, f.writer, filter, &e.filter_offset);
        if (s.ok()) e.filter_blocks = static_cast<uint32_t>(filter.size() / kKeyFilterBlockBytes);
      }
      e.state = CatalogEntry::State::kComplete;
      e.summary = (*index)->summary();
      e.index_bytes = (*index)->table_bytes();
      ++stats->complete;
    } else {
      ++stats->writing;
    }
    journal += EncodeEntry(e);
  }
  for (const CatalogEntry& e : reserved) journal += EncodeEntry(e);
  Status s = ReplaceJournal(store, journal);
  if (!s.ok()) return s;
  for (const auto& [writer, bytes] : old_filter_bytes) {
    if (bytes == 0) continue;
    int fd = open(FilterPath(store, writer).c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    PunchHoles(fd, {{0, bytes}});
    close(fd);
  }
  return s;
}

}  // namespace

Status StoreCatalog::CompactIfWorthIt(const std::string& store) {
  FileLock lock(LockPath(store), LOCK_EX);
  if (!lock.status().ok()) return lock.status();
  StoreCatalog c(store);
  Status s = c.Refresh();
  if (!s.ok()) return s;
  // Worth it when at least half the records are history and there are enough to matter.
  if (c.records_ < 4096 || c.records_ < 2 * c.entries_->by_key.size()) return Status::OK();
  std::string journal;
  for (const auto& [key, e] : c.entries_->by_key) journal += EncodeEntry(e);
  return ReplaceJournal(store, journal);
}

}  // namespace rwd
