// IndexReader: read access to one packet file's index table — its summary, block directory and posting
// lists. Immutable after Open(); safe to use from several threads at once.
#ifndef REWIND_INDEX_INDEX_READER_H_
#define REWIND_INDEX_INDEX_READER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <string>
#include <vector>

#include "index/index_format.h"
#include "index/index_view.h"
#include "index/status.h"

namespace leveldb {
class RandomAccessFile;
class Table;
}  // namespace leveldb

namespace rwd {

class IndexReader : public IndexView {
 public:
  ~IndexReader() override;
  // Opens the table at `path` and reads its summary and block directory.
  static Result<std::unique_ptr<IndexReader>> Open(const std::string& path);

  const FileSummary& summary() const override { return summary_; }
  const std::vector<BlockEntry>& blocks() const override { return blocks_; }
  uint64_t table_bytes() const { return table_bytes_; }

  Status LookupRange(const std::string& first, const std::string& last, std::vector<uint32_t>* out) const override;
  // Approximate bytes of the table holding the lists of keys in [first, last] (0 for lists that share a
  // small block with others): what reading them costs, before reading them.
  uint64_t EstimateBytes(const std::string& first, const std::string& last) const override;
  // Calls `fn` with every posting-list key (address, port, protocol, ethertype, VLAN, incomplete).
  Status ForEachPostingKey(const std::function<void(std::string_view)>& fn) const;

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
