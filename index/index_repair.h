// Index repair: makes a packet file that has no index (a crash, power loss or kill -9 cut its writer off),
// or whose index is damaged, queryable again. Reads the file block by block, indexes every block whose
// checksum and packets read back whole (damaged blocks in the middle are left out; the index keeps an empty
// entry for them), truncates the file after the last good block (a torn or preallocated-but-unwritten
// tail), and writes the index table. What cannot be read at all goes to DIR/quarantine/.
// Free functions; safe to run on different files concurrently, never on a file a writer holds.
#ifndef REWIND_INDEX_INDEX_REPAIR_H_
#define REWIND_INDEX_INDEX_REPAIR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "index/status.h"
#include "index/store_layout.h"

namespace rwd {

struct RepairResult {
  std::string packet_path;
  uint32_t blocks_kept = 0;
  uint64_t packets = 0;
  uint32_t blocks_damaged = 0; // unreadable blocks before the last good one (left out of the index)
  uint32_t blocks_salvaged = 0; // of blocks_kept, those that fail their checksum: indexed up to any broken record
  std::vector<std::string> salvage_notes;  // one per salvaged block: where, why, packets kept
  uint64_t bytes_dropped = 0;  // torn or unwritten tail removed from the packet file
  std::string note;            // what was wrong
  std::string quarantined;     // where unreadable files were moved, if any
};

// Rebuilds the index of one packet file (which must not be being written). A file with no readable block
// gets no index (result->blocks_kept == 0).
Status RepairPacketFile(const StoreFile& file, RepairResult* result);

// Moves `path` (a file of the store that cannot be read) to STORE/quarantine/ as WRITERDIR-NAME; *moved_to
// says where. The caller records it removed in the catalog.
Status Quarantine(const std::string& store, const std::string& path, std::string* moved_to);

// Repairs every packet file of writer `writer` (or of all writers if writer < 0) that has no index or a
// damaged one; quarantines what cannot be read. The caller must hold the writer locks of the writers it
// repairs (WriterLock).
Status RepairStore(const std::string& store, int writer, std::vector<RepairResult>* results);
// Same as RepairStore (kept for the start-up path of writers).
Status RepairUnindexedFiles(const std::string& store, int writer, std::vector<RepairResult>* results);

}  // namespace rwd

#endif  // REWIND_INDEX_INDEX_REPAIR_H_
