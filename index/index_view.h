// IndexView: what the query planner reads of one packet file's index — its summary, block directory and
// posting lists — whether from an index table on disk (IndexReader) or from the index of a file still being
// written, held in memory (LiveIndex). Implementations are immutable views, safe to use from several threads.
#ifndef REWIND_INDEX_INDEX_VIEW_H_
#define REWIND_INDEX_INDEX_VIEW_H_

#include <cstdint>
#include <string>
#include <vector>

#include "index/index_format.h"
#include "index/status.h"

namespace rwd {

class IndexView {
 public:
  virtual ~IndexView() = default;
  virtual const FileSummary& summary() const = 0;
  virtual const std::vector<BlockEntry>& blocks() const = 0;
  // Appends the union of the lists of every key in [first, last]; result sorted and duplicate-free.
  virtual Status LookupRange(const std::string& first, const std::string& last, std::vector<uint32_t>* out) const = 0;
  // Appends the positions stored under `key` (none if absent). Result is sorted.
  Status Lookup(const std::string& key, std::vector<uint32_t>* out) const { return LookupRange(key, key, out); }
  // Approximate cost in bytes of reading the lists of keys in [first, last] (for choosing what to read first).
  virtual uint64_t EstimateBytes(const std::string& first, const std::string& last) const = 0;
};

}  // namespace rwd

#endif  // REWIND_INDEX_INDEX_VIEW_H_
