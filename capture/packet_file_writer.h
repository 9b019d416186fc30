// PacketFileWriter: one writer's stream of packet files. Takes finished TPACKET_V3 blocks (from the capture
// ring or from import), writes them with BlockWriter, indexes them on its own indexing thread (so indexing
// never holds up the writes), rotates files by size and age, and once a file's writes are done syncs it and
// writes its index table and catalog record on a finishing thread of its own (so a rotation never holds up
// the next file's writes or indexing). A block's buffer is handed back (Reap) only when it is both on disk
// and indexed. Not thread-safe: one thread calls it (the indexing and finishing threads are internal).
#ifndef REWIND_CAPTURE_PACKET_FILE_WRITER_H_
#define REWIND_CAPTURE_PACKET_FILE_WRITER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "capture/aio_context.h"
#include "capture/block_writer.h"
#include "index/block_codec.h"
#include "index/block_format.h"
#include "index/index_builder.h"
#include "index/live_index.h"
#include "index/status.h"
#include "index/store_layout.h"

namespace rwd {

struct PacketFileWriterOptions {
  std::string store;                      // store root directory
  uint64_t max_file_bytes = 1ull << 30;   // rotate when a file reaches this size (at most 4 GiB)
  int64_t max_file_age_ns = 0;            // rotate when a file is this old (0: never)
  int max_writes_in_flight = 8;
  uint64_t preallocate_bytes = 0;         // reserve this much when a file is created (trimmed at completion)
  bool index = true;                      // false: no index tables (files stay unqueryable until indexed)
  int index_nice = 0;                     // nice level of the indexing and finishing threads
  int compress_level = 0;                 // > 0: zstd level for each block before it is written (0: raw)
  // Record the next file's name in the catalog half way to a rotation, on the finishing thread, so that the
  // rotation waits for no catalog sync: for a caller that must not stall (a capture ring). Costs a catalog
  // sync more when the writer stops with the name unused.
  bool name_ahead = false;
  // Called (on the writer's finishing thread) after a file and its index are complete; must not block.
  std::function<void(const std::string& packet_path, const std::string& index_path)> on_file_complete;
};

struct PacketFileWriterStats {
  uint64_t files = 0;    // completed files (index written)
  uint64_t blocks = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;    // bytes written to packet files
  uint64_t index_bytes = 0;
};

class PacketFileWriter {
 public:
  PacketFileWriter(PacketFileWriterOptions options, WriterLock lock);
  ~PacketFileWriter();
  PacketFileWriter(const PacketFileWriter&) = delete;
  PacketFileWriter& operator=(const PacketFileWriter&) = delete;

  // Writes one finished block (kBlockSize bytes, 4096-aligned, unchanged until its tag comes back from
  // Reap()) after sealing it with its checksum. `now_ns` drives age-based rotation. On error the block was
  // not taken: it is the caller's again and its tag never comes back from Reap(). A write that fails on
  // disk closes its file (indexed from what reads back once a later file is complete), and the next block
  // starts a new one; after a failed start, the next start is tried a second later (meanwhile blocks fail).
  Status WriteBlock(uint8_t* block, void* tag, int64_t now_ns);
  // Collects tags of blocks that are written and indexed; waits until at least `min` are (or none is
  // pending any more). Also returns the first error of a file finished in the background since the last
  // call (its index table or catalog record could not be written; the file stays unindexed), or of a write
  // that failed on disk (its block's tag comes back all the same).
  Status Reap(int min, std::vector<void*>* done);
  // Rotates the current file if it is older than max_file_age_ns (for idle links, where no block arrives
  // to trigger rotation), as WriteBlock rotates: its index table is written in the background.
  Status Tick(int64_t now_ns, std::vector<void*>* done);
  // Completes the current file and waits until every file is finished: written, indexed, its index table
  // and catalog record written. Tags of its blocks are appended to `*done`. Without an open file it waits
  // for the files still being finished.
  Status FinishFile(std::vector<void*>* done);
  // FinishFile for a writer that expects no more blocks: the aio context is released as soon as the file's
  // data is on disk, so its teardown overlaps the index build (a later WriteBlock sets up a new one).
  Status FinishLastFile(std::vector<void*>* done);

  uint32_t writer() const { return lock_.writer(); }
  PacketFileWriterStats stats() const;
  // Captured bytes of the packets indexed so far (any thread; 0 without indexing).
  uint64_t indexed_bytes() const { return indexed_bytes_total_.load(std::memory_order_relaxed); }
  // Path of the file being written ("" if none).
  const std::string& current_path() const { return packet_path_; }

 private:
  // A complete file (its writes done) to be synced and closed, then its index table and catalog record
  // written (without indexing: only synced and closed).
  struct FileToFinish {
    std::unique_ptr<BlockWriter> file;   // drained (see BlockWriter::Drain)
    std::shared_ptr<IndexBuilder> index;  // null without indexing
    std::shared_ptr<LiveIndex> live;
    std::string name;
    std::string packet_path;
    bool failed = false;  // a write failed: sealed only, and indexed from disk later (RetryUnindexed)
  };
  // A block to index, or (finish set) the mark after a file's last block: the file goes to the finishing
  // thread once every block before it is indexed.
  struct IndexJob {
    std::shared_ptr<IndexBuilder> index;
    std::shared_ptr<LiveIndex> live;
    uint32_t block_no;
    uint64_t offset;
    uint32_t disk_length;
    uint32_t flags;
    const uint8_t* block;
    void* tag;
    std::shared_ptr<FileToFinish> finish;
  };
  // At most this many complete files wait for (or are in) their index build; a rotation beyond waits.
  static constexpr int kMaxFilesFinishing = 2;
  Status StartFile(int64_t now_ns);
  // A name for a new file of this writer after `after` ("" for none): its start time, or after + 1 ns.
  static std::string NextFileName(const std::string& after);
  // With options_.name_ahead, once the current file is half way to its rotation, asks the finishing thread to
  // record the next file's name in the catalog ("writing"), so the rotation itself waits for no catalog sync.
  void ReserveNextName(int64_t now_ns);
  // Records this writer's file `name` removed in the catalog: a name recorded "writing" whose file was never
  // made (or was removed again), or a file that is gone.
  Status RecordRemoved(const std::string& name);
  // Waits for the current file's writes and takes it (and its index) out of the writer into `*closed`, to be
  // synced and closed on the finishing thread (after a failed write, marked failed: sealed and indexed from
  // disk later); a file none of whose writes landed is removed here instead, and `*closed` stays null.
  Status CloseFile(std::shared_ptr<FileToFinish>* closed);
  // After a failed write: closes the current file (handed over as failed, or removed if nothing of it reached
  // the disk), so that the next block starts a new one instead of failing on this file until it rotates.
  void AbandonFile();
  // StartFile(), except within kStartRetryInterval of a failed start (then that failure again): a full disk
  // must not cost a file creation and catalog syncs for every block.
  Status StartAfterFailureWait(int64_t now_ns);
  void NoteWriteError(const Status& s);  // keeps the first for the next Reap()
  static constexpr std::chrono::milliseconds kStartRetryInterval{1000};
  // Queues a closed file behind its last block on the indexing thread, then the finishing thread; waits while
  // kMaxFilesFinishing files are.
  void HandOver(std::shared_ptr<FileToFinish> file);
  // CloseFile() and HandOver(); `wait`: then waits until every file is finished and returns what went wrong
  // since the last report.
  Status CompleteFile(std::vector<void*>* done, bool last, bool wait);
  Status FinishWrittenFile(FileToFinish* file);  // on the finishing thread
  // After its index table is written: the catalog record (and the backlog's), stats, the rotation hook.
  void RecordIndexedFile(const FileToFinish& file, const std::string& index_path);
  void RetryUnindexed();                               // on the finishing thread, after a file's table is written
  Status TakeDeferredError();                          // the first error of the indexing or finishing threads
  void IndexLoop();
  void FinishLoop();
  void Release(void* tag);                      // one of a tag's two holds (write, index) is done
  Status CollectWrites(int min);                // moves finished writes into Release(); a failed one: AbandonFile()
  void WriteDone(void* tag);                    // a write finished: free its extent buffer or Release()

  PacketFileWriterOptions options_;
  WriterLock lock_;
  std::unique_ptr<AioContext> aio_;     // set up with the first file, shared by all; outlives file_
  std::unique_ptr<BlockWriter> file_;
  std::shared_ptr<IndexBuilder> index_;
  std::shared_ptr<LiveIndex> live_;              // index_ as queries in this process see it while it grows
  std::unordered_map<void*, uint32_t> write_block_;  // write tag -> block number, for writes in flight
  std::vector<bool> block_written_;              // of the current file
  uint32_t written_prefix_ = 0;                  // blocks [0, n) of the current file are on disk
  std::string name_;
  std::string packet_path_;
  std::string last_name_;
  std::vector<std::string> catalog_backlog_;  // finishing thread only: complete files the catalog does not list yet
  std::vector<std::string> unindexed_;        // finishing thread only: complete files whose index build failed
  int64_t file_started_ns_ = 0;
  bool reserve_asked_ = false;                // for the current file
  uint32_t blocks_in_file_ = 0;
  std::chrono::steady_clock::time_point no_start_until_{};  // see StartAfterFailureWait
  Status start_error_;
  Status write_error_;  // a failed write found while WriteBlock() waited for room, for the next Reap()
  std::unique_ptr<BlockCompressor> compressor_;
  std::vector<AlignedBuffer> extent_buffers_;  // compressed extents in flight
  std::vector<uint8_t*> free_extents_;
  std::unordered_set<const void*> extent_tags_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // the caller's thread waits here: ready_, holds_, files_finishing_, reserving_, idle
  std::condition_variable jobs_cv_;    // the indexing thread waits here for jobs_
  std::condition_variable finish_cv_;  // the finishing thread waits here for to_finish_ and reserve_wanted_
  std::deque<IndexJob> jobs_;         // guarded by mu_
  bool indexing_ = false;             // guarded by mu_: the indexing thread holds a job
  bool stop_ = false;                 // guarded by mu_
  std::unordered_map<void*, int> holds_;  // guarded by mu_: tag -> outstanding holds
  std::vector<void*> ready_;          // guarded by mu_: tags free for reuse
  Status index_error_;                // guarded by mu_
  std::deque<std::shared_ptr<FileToFinish>> to_finish_;  // guarded by mu_: indexed, for the finishing thread
  int files_finishing_ = 0;           // guarded by mu_: handed over, not yet finished
  Status finish_error_;               // guarded by mu_
  bool reserve_wanted_ = false;       // guarded by mu_: the finishing thread is to reserve a name after reserve_after_
  bool reserving_ = false;            // guarded by mu_: the finishing thread is recording that name
  std::string reserve_after_;         // guarded by mu_
  std::string reserved_name_;         // guarded by mu_: recorded "writing" in the catalog, no file yet ("" none)
  PacketFileWriterStats stats_;       // guarded by mu_
  std::atomic<uint64_t> indexed_bytes_total_{0};
  std::thread indexer_;
  std::thread finisher_;
};

}  // namespace rwd

#endif  // REWIND_CAPTURE_PACKET_FILE_WRITER_H_
