// IndexReader: read access to one packet file's index table — its summary, block directory and posting
// lists. Immutable after Open(); safe to use from several threads at once.
#ifndef REWIND_INDEX_INDEX_READER_H_
#define REWIND_INDEX_INDEX_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/index_format.h"
#include "index/status.h"

namespace leveldb {
class RandomAccessFile;
class Table;
}  // namespace leveldb

namespace rwd {

class IndexReader {
 public:
  ~IndexReader();
  // Opens the table at `path` and reads its summary and block directory.
  static Result<std::unique_ptr<IndexReader>> Open(const std::string& path);

  const FileSummary& summary() const { return summary_; }
  const std::vector<BlockEntry>& blocks() const { return blocks_; }
  uint64_t table_bytes() const { return table_bytes_; }

  // Appends the positions stored under `key` (none if absent). Result is sorted.
  Status Lookup(const std::string& key, std::vector<uint32_t>* out) const;
  // Appends the union of the lists of every key in [first, last]; result sorted and duplicate-free.
  Status LookupRange(const std::string& first, const std::string& last, std::vector<uint32_t>* out) const;

 private:
  IndexReader() = default;
  std::string path_;
  std::unique_ptr<leveldb::RandomAccessFile> file_;
  std::unique_ptr<leveldb::Table> table_;
  uint64_t table_bytes_ = 0;
  FileSummary summary_;
  std::vector<BlockEntry> blocks_;
};

}  // namespace rwd

#endif  // REWIND_INDEX_INDEX_READER_H_
