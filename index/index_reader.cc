#include "index/index_reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <new>

#include <leveldb/env.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/table.h>

#include "index/block_format.h"
#include "index/posting_list.h"

namespace rwd {
namespace {

Status Corrupt(const std::string& path, const std::string& what) {
  return Status::Corruption("index " + path + ": " + what);
}

bool GetVarint64(const char** p, const char* end, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift <= 63 && *p < end; shift += 7) {
    uint64_t byte = static_cast<uint8_t>(*(*p)++);
    *v |= (byte & 127) << shift;
    if (byte < 128) return true;
  }
  return false;
}

// LevelDB's Table::Open allocates the index block at the size the footer names before it reads it, and the
// footer has no checksum: a damaged one could ask for petabytes (std::bad_alloc, found by index_reader_fuzz).
// True if both block handles of the 48-byte footer (metaindex, index; each a varint64 offset and size, plus
// LevelDB's 5-byte block trailer) lie inside a file of `file_size` bytes.
bool FooterHandlesInside(const char* footer, uint64_t file_size) {
  const char* p = footer;
  const char* end = footer + 40;  // the handles; then the 8-byte magic
  for (int i = 0; i < 2; ++i) {
    uint64_t offset = 0, size = 0;
    if (!GetVarint64(&p, end, &offset) || !GetVarint64(&p, end, &size)) return false;
    if (offset > file_size || size > file_size || offset + size + 5 > file_size) return false;
  }
  return true;
}

}  // namespace

IndexReader::~IndexReader() = default;

Result<std::unique_ptr<IndexReader>> IndexReader::Open(const std::string& path) {
  std::unique_ptr<IndexReader> r(new IndexReader());
  r->path_ = path;
  struct stat st;  // LevelDB would open a FIFO and wait for a writer
  if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) return Corrupt(path, "not a regular file");
  leveldb::Env* env = leveldb::Env::Default();
  leveldb::RandomAccessFile* file = nullptr;
  leveldb::Status ls = env->NewRandomAccessFile(path, &file);
  if (!ls.ok()) return Status::IOError("opening index " + path + ": " + ls.ToString());
  r->file_.reset(file);
  ls = env->GetFileSize(path, &r->table_bytes_);
  if (!ls.ok()) return Status::IOError("sizing index " + path + ": " + ls.ToString());
  constexpr size_t kFooterBytes = 48;
  if (r->table_bytes_ < kFooterBytes) return Corrupt(path, "shorter than a table's footer");
  char footer_space[kFooterBytes];
  leveldb::Slice footer;
  ls = file->Read(r->table_bytes_ - kFooterBytes, kFooterBytes, &footer, footer_space);
  if (!ls.ok()) return Status::IOError("reading index " + path + ": " + ls.ToString());
  if (footer.size() != kFooterBytes || !FooterHandlesInside(footer.data(), r->table_bytes_)) {
    return Corrupt(path, "damaged footer");
  }
  leveldb::Options options;
  options.paranoid_checks = true;
  leveldb::Table* table = nullptr;
  try {
    ls = leveldb::Table::Open(options, file, r->table_bytes_, &table);
  } catch (const std::bad_alloc&) {
    return Corrupt(path, "a block larger than memory");
  }
  if (!ls.ok()) return Corrupt(path, ls.ToString());
  r->table_.reset(table);

  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  std::unique_ptr<leveldb::Iterator> it(table->NewIterator(ro));
  it->Seek(SummaryKey());
  if (!it->Valid() || it->key().ToString() != SummaryKey()) {
    return Corrupt(path, it->status().ok() ? "no summary record" : it->status().ToString());
  }
  Status s = FileSummary::Decode(std::string_view(it->value().data(), it->value().size()), &r->summary_);
  if (!s.ok()) return Corrupt(path, s.message());
  r->blocks_.reserve(std::min<uint32_t>(r->summary_.blocks, kMaxBlocksPerFile));
  for (it->Seek(BlockKey(0)); it->Valid(); it->Next()) {
    leveldb::Slice key = it->key();
    if (key.size() != 5 || static_cast<uint8_t>(key[0]) != kKeyBlock) break;
    BlockEntry e;
    s = BlockEntry::Decode(std::string_view(it->value().data(), it->value().size()), &e);
    if (!s.ok()) return Corrupt(path, s.message());
    if (key.ToString() != BlockKey(static_cast<uint32_t>(r->blocks_.size()))) {
      return Corrupt(path, "block directory has a gap");
    }
    r->blocks_.push_back(e);
  }
  if (!it->status().ok()) return Corrupt(path, it->status().ToString());
  if (r->blocks_.size() != r->summary_.blocks) return Corrupt(path, "block directory incomplete");
  return r;
}

Status IndexReader::LookupRange(const std::string& first, const std::string& last,
                                std::vector<uint32_t>* out) const {
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  std::unique_ptr<leveldb::Iterator> it(table_->NewIterator(ro));
  size_t lists = 0;
  size_t start = out->size();
  leveldb::Slice last_slice(last);
  for (it->Seek(first); it->Valid() && it->key().compare(last_slice) <= 0; it->Next()) {
    Status s = DecodePostingList(std::string_view(it->value().data(), it->value().size()), out);
    if (!s.ok()) return Corrupt(path_, s.message());
    ++lists;
  }
  if (!it->status().ok()) return Corrupt(path_, it->status().ToString());
  if (lists > 1 || start > 0) {
    std::vector<uint32_t> v(out->begin(), out->end());
    NormalizePositions(&v);
    *out = std::move(v);
  }
  return Status::OK();
}

uint64_t IndexReader::EstimateBytes(const std::string& first, const std::string& last) const {
  // The first key after `last` bounds its list from above.
  std::string after = last + std::string(1, '\0');
  uint64_t a = table_->ApproximateOffsetOf(first), b = table_->ApproximateOffsetOf(after);
  return b > a ? b - a : 0;
}

Status IndexReader::ForEachPostingKey(const std::function<void(std::string_view)>& fn) const {
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  std::unique_ptr<leveldb::Iterator> it(table_->NewIterator(ro));
  for (it->Seek(std::string(1, static_cast<char>(kKeyIpv4))); it->Valid(); it->Next()) {
    fn(std::string_view(it->key().data(), it->key().size()));
  }
  if (!it->status().ok()) return Corrupt(path_, it->status().ToString());
  return Status::OK();
}

}  // namespace rwd
