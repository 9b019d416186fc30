#include "query/query_engine.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <queue>

#include "index/block_codec.h"
#include "index/key_filter.h"
#include "index/live_index.h"
#include "index/packet_file_reader.h"
#include "index/wall_clock.h"
#include "query/read_ahead_thread.h"

namespace rwd {
namespace {

// Below this many candidates in a block, packets are read one by one; above, the whole block is read.
constexpr size_t kSinglePacketReadLimit = 16;

}  // namespace

// Yields the matching packets of one packet file in file order. The current packet stays valid until
// Advance().
class Query::FileCursor {
 public:
  // `read_ahead` (may be null: every block is read on the calling thread) outlives the cursor.
  FileCursor(const Query* query, const OpenFile* file, const QueryPlan* plan, PacketFilter* filter,
             QueryStats* stats, ReadAheadThread* read_ahead)
      : query_(query), file_(file), plan_(plan), filter_(filter), stats_(stats), read_ahead_(read_ahead) {}
  ~FileCursor() { WaitForReadAhead(); }

  // Prepares the work list and moves to the first match. False on a file-level error (reported as a warning).
  bool Start() {
    if (file_->index) {
      index_ = file_->index;
    } else {
      auto index = query_->OpenIndex(file_->file);
      if (!index.ok()) return Fail(index.status());
      index_ = std::move(*index);
    }
    const auto& blocks = index_->blocks();
    FileCandidates cand;
    Status s = plan_->Candidates(*index_, &cand);
    if (!s.ok()) return Fail(s);
    const TimeRange& tr = plan_->time_range();
    auto in_range = [&](uint32_t b) {
      return b < blocks.size() && blocks[b].packets > 0 && tr.Overlaps(blocks[b].min_ts_ns, blocks[b].max_ts_ns);
    };
    if (cand.all) {
      for (uint32_t b = 0; b < blocks.size(); ++b) {
        if (in_range(b)) work_.push_back({b, {}, true});
      }
    } else {
      size_t i = 0, w = 0;
      for (uint32_t b = 0; b < blocks.size(); ++b) {
        WorkItem item{b, {}, false};
        while (w < cand.whole_blocks.size() && cand.whole_blocks[w] < b) ++w;
        item.whole = w < cand.whole_blocks.size() && cand.whole_blocks[w] == b;
        while (i < cand.positions.size() && PositionBlock(cand.positions[i]) < b) ++i;
        while (i < cand.positions.size() && PositionBlock(cand.positions[i]) == b) {
          item.offsets.push_back(PositionOffset(cand.positions[i++]));
        }
        if (item.offsets.size() > kSinglePacketReadLimit) item.whole = true;
        if ((item.whole || !item.offsets.empty()) && in_range(b)) work_.push_back(std::move(item));
      }
    }
    if (work_.empty()) return true;  // nothing to read (e.g. the key filter's false positive): not even opened
    auto reader = PacketFileReader::Open(file_->file.packet_path);
    if (!reader.ok()) return Fail(reader.status());
    reader_ = std::move(*reader);
    PrefetchAhead();
    Advance();
    return true;
  }

  bool valid() const { return valid_; }
  const PacketView& packet() const { return packet_; }
  uint32_t linktype() const { return linktype_; }
  // Block buffers held now: the block being walked and the one being read ahead (each 1 MiB, plus up to
  // 1 MiB for a compressed extent).
  size_t buffers() const {
    // While a read-ahead job may run, its reader belongs to the helper thread: counted as holding a buffer.
    size_t ahead = ahead_ticket_ != 0 ? 1 : (ahead_reader_ && ahead_reader_->holds_buffers());
    return (reader_ && reader_->holds_buffers()) + ahead;
  }
  uint64_t last_active = 0;  // set by the merge: when it last took a packet from this cursor

  // Gives the reader's buffers back. The current packet is copied out first, so it stays valid; the next
  // Advance() reads the current block again and goes on after it.
  void Park() {
    if (buffers() == 0) return;
    WaitForReadAhead();
    ahead_item_ = kNone;
    if (ahead_reader_) ahead_reader_->ReleaseBuffers();
    if (!reader_->holds_buffers()) return;
    if (valid_) {
      parked_packet_.assign(packet_.data, packet_.data + packet_.caplen);
      packet_.data = parked_packet_.data();
    }
    if (in_block_) {
      resume_offset_ = block_reader_->next_offset();
      resume_seen_ = block_reader_->seen();
      parked_ = true;
    }
    reader_->ReleaseBuffers();
  }

  void Advance() {
    valid_ = false;
    if (parked_) {
      parked_ = false;
      Status s = ReadCounted(reader_.get(), work_[item_].block, block_reader_.get(), &unverified_, &stats_->bytes_read);
      ++stats_->blocks_reread;
      if (s.ok()) {
        block_reader_->Resume(resume_offset_, resume_seen_);
      } else {
        Warn(s);
        in_block_ = false;
        NextItem();
      }
    }
    while (true) {
      if (in_block_) {
        PacketView p;
        while (block_reader_->Next(&p)) {
          ++stats_->packets_examined;
          if (filter_->Matches(linktype_, p)) {
            packet_ = p;
            valid_ = true;
            return;
          }
        }
        if (!block_reader_->status().ok()) Warn(block_reader_->status());
        in_block_ = false;
        NextItem();
        continue;
      }
      if (item_ >= work_.size() || query_->ShouldStop()) return;
      const WorkItem& item = work_[item_];
      const BlockEntry& entry = index_->blocks()[item.block];
      linktype_ = entry.linktype;
      if (item.whole) {
        Status s = ReadWholeItem();
        ++stats_->blocks_read;
        if (!s.ok()) {
          Warn(s);
          NextItem();
          continue;
        }
        in_block_ = true;
        continue;
      }
      while (offset_ < item.offsets.size()) {
        uint64_t before = reader_->bytes_read();
        PacketView p;
        Status s = reader_->ReadPacket(entry, item.offsets[offset_++], &p);
        stats_->bytes_read += reader_->bytes_read() - before;
        ++stats_->packets_read;
        if (!s.ok()) {
          Warn(s);
          continue;
        }
        ++stats_->packets_examined;
        if (filter_->Matches(linktype_, p)) {
          packet_ = p;
          valid_ = true;
          return;
        }
      }
      offset_ = 0;
      NextItem();
    }
  }

 private:
  struct WorkItem {
    uint32_t block;
    std::vector<uint32_t> offsets;
    bool whole;
  };

  static constexpr size_t kNone = SIZE_MAX;

  // Reads the whole block of work item item_ into block_reader_ (taking it from the read-ahead when that
  // read it), then has the next work item read ahead if it is a whole block too.
  Status ReadWholeItem() {
    Status s;
    if (ahead_item_ == item_) {
      WaitForReadAhead();
      ahead_item_ = kNone;
      std::swap(reader_, ahead_reader_);
      std::swap(block_reader_, ahead_block_reader_);
      std::swap(unverified_, ahead_unverified_);
      stats_->bytes_read += ahead_bytes_;
      ++stats_->blocks_read_ahead;
      s = ahead_status_;
    } else {
      s = ReadCounted(reader_.get(), work_[item_].block, block_reader_.get(), &unverified_, &stats_->bytes_read);
    }
    if (s.ok() && !unverified_.empty()) WarnSalvaged();
    size_t next = item_ + 1;
    if (read_ahead_ != nullptr && next < work_.size() && work_[next].whole) {
      WaitForReadAhead();  // none is pending here (items are read in order); kept so two jobs never share a reader
      if (!ahead_reader_) {
        auto opened = PacketFileReader::Open(file_->file.packet_path);
        if (!opened.ok()) return s;  // read on this thread, which reports any error
        ahead_reader_ = std::move(*opened);
      }
      ahead_item_ = next;
      ahead_bytes_ = 0;
      uint32_t block = work_[next].block;
      ahead_ticket_ = read_ahead_->Submit([this, block] {
        ahead_status_ = ReadCounted(ahead_reader_.get(), block, ahead_block_reader_.get(), &ahead_unverified_, &ahead_bytes_);
      });
    }
    return s;
  }
  // Reads block `block` whole through `reader` into `into` (see PacketFileReader::ReadBlock), adding the bytes
  // read to *bytes_read.
  Status ReadCounted(PacketFileReader* reader, uint32_t block, BlockReader* into, std::string* unverified,
                     uint64_t* bytes_read) const {
    uint64_t before = reader->bytes_read();
    Status s = reader->ReadBlock(index_->blocks()[block], into, unverified);
    *bytes_read += reader->bytes_read() - before;
    return s;
  }
  void WaitForReadAhead() {
    if (ahead_ticket_ != 0) read_ahead_->Wait(ahead_ticket_);
    ahead_ticket_ = 0;
  }

  // Keeps the next kPrefetchBytes of the work list asked for (posix_fadvise WILLNEED) ahead of the item being
  // read, so that the disk works while this thread filters, and scattered packets are fetched in parallel.
  // The kernel's own readahead restarts at every block the plan skips; this does not. Bounded, so a broad
  // answer does not flood the page cache. 32 MiB: on this disk a whole-store scan read faster than with 16.
  static constexpr uint64_t kPrefetchBytes = 32 << 20;
  uint64_t ItemBytes(const WorkItem& item) const {
    return item.whole ? index_->blocks()[item.block].disk_length : uint64_t{2048} * item.offsets.size();
  }
  void PrefetchAhead() {
    while (prefetch_next_ < work_.size() && prefetched_ahead_ < kPrefetchBytes) {
      const WorkItem& item = work_[prefetch_next_++];
      const BlockEntry& e = index_->blocks()[item.block];
      if (item.whole) reader_->Prefetch(e, 0, e.disk_length);
      else for (uint32_t off : item.offsets) reader_->Prefetch(e, off, 2048);
      prefetched_ahead_ += ItemBytes(item);
    }
  }
  // Done with the current work item: on to the next, and keep the prefetch window full.
  void NextItem() {
    if (item_ < prefetch_next_) prefetched_ahead_ -= std::min(prefetched_ahead_, ItemBytes(work_[item_]));
    ++item_;
    PrefetchAhead();
  }

  bool Fail(const Status& s) {
    struct stat st;
    bool removed = (stat(file_->file.packet_path.c_str(), &st) != 0 && errno == ENOENT) ||
                   (stat(file_->file.index_path.c_str(), &st) != 0 && errno == ENOENT);
    if (!removed) {
      Warn(s);
      return false;
    }
    // Retention removed the file after Prepare() opened its index (the rest of the answer is still exact),
    // or the packet file is gone while its index is there, which retention never leaves (it removes the
    // index first): deleted or moved by hand, or lost.
    bool index_there = stat(file_->file.index_path.c_str(), &st) == 0;
    stats_->cut_short = true;
    if (stats_->warnings.size() < 100) {
      stats_->warnings.push_back("answer cut short: " + file_->file.packet_path +
                                 (index_there ? " is missing (its index is there; see rewind verify)"
                                              : " was removed (retention) while the query ran") +
                                 "; its matches are missing");
    }
    return false;
  }
  void Warn(const Status& s) {
    if (stats_->warnings.size() < 100) stats_->warnings.push_back("skipped: " + s.ToString());
  }
  // The block just opened failed its checksum (unverified_) and is salvaged: says so once (a record whose
  // framing breaks is reported where the walk stops, as "skipped").
  void WarnSalvaged() {
    if (stats_->warnings.size() >= 100) return;
    if (index_->blocks()[work_[item_].block].flags & kBlockFlagZstd) {
      stats_->warnings.push_back("salvaged: " + unverified_);  // says what was lost and what is served
      return;
    }
    stats_->warnings.push_back("salvaged: " + unverified_ + ": its " + std::to_string(block_reader_->num_packets()) +
                               " packets are read unverified (one may carry the damage)");
  }

  const Query* query_;
  const OpenFile* file_;
  std::shared_ptr<const IndexView> index_;
  const QueryPlan* plan_;
  PacketFilter* filter_;
  QueryStats* stats_;
  ReadAheadThread* read_ahead_;
  std::unique_ptr<PacketFileReader> reader_;
  // The read-ahead: work item ahead_item_ (kNone: none) is being read into ahead_block_reader_ through
  // ahead_reader_ by job ahead_ticket_ (0: no job to wait for). The job alone touches these four and
  // ahead_status_/ahead_bytes_ until it has been waited for.
  std::unique_ptr<PacketFileReader> ahead_reader_;
  std::unique_ptr<BlockReader> ahead_block_reader_ = std::make_unique<BlockReader>();
  size_t ahead_item_ = kNone;
  ReadAheadThread::Ticket ahead_ticket_ = 0;
  Status ahead_status_;
  std::string ahead_unverified_;
  uint64_t ahead_bytes_ = 0;
  std::vector<WorkItem> work_;
  size_t item_ = 0;
  size_t prefetch_next_ = 0;       // first work item not yet prefetched
  uint64_t prefetched_ahead_ = 0;  // bytes prefetched for items [item_, prefetch_next_)
  size_t offset_ = 0;
  bool in_block_ = false;
  std::unique_ptr<BlockReader> block_reader_ = std::make_unique<BlockReader>();
  std::string unverified_;  // why block_reader_'s block is read unverified (salvaged); empty: it checked out
  uint32_t linktype_ = 0;
  PacketView packet_;
  bool valid_ = false;
  bool parked_ = false;            // in a block whose buffer was given back (Park)
  uint32_t resume_offset_ = 0;     // where block_reader_ goes on once the block is read again
  uint32_t resume_seen_ = 0;
  std::vector<uint8_t> parked_packet_;  // the current packet's bytes while parked
};

Query::~Query() = default;

bool Query::ShouldStop() const {
  if (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed)) return true;
  return options_.deadline_ns != 0 && WallClockNs() >= options_.deadline_ns;
}

Result<std::unique_ptr<Query>> Query::Prepare(const std::string& store, const std::string& text,
                                              const QueryOptions& options) {
  std::unique_ptr<Query> q(new Query());
  q->store_ = store;
  q->text_ = text;
  q->options_ = options;
  QuerySyntaxError err;
  int64_t now = options.now_ns != 0 ? options.now_ns : WallClockNs();
  if (!ParseQuery(text, now, &q->parsed_, &err)) return Status::InvalidArgument(err.ToString());
  q->plan_ = QueryPlan::Build(q->parsed_.root.get());
  q->filter_ = std::make_unique<PacketFilter>(q->parsed_.root.get(), options.vlan_fold);

  const TimeRange& tr = q->plan_.time_range();
  // The files whose key filter allows a match: only their index tables are ever opened. A catalog read for
  // this query alone loads only those (OpenRange's `keep`).
  bool filtered = q->plan_.uses_index();
  std::map<std::string, uint64_t> hashes;  // of the plan's keys, computed once
  auto may_match = [&](const StoreCatalog& cat, const CatalogEntry& e, StoreCatalog::FilterWindows* windows) {
    return q->plan_.MayMatch([&](const std::string& key) {
      auto h = hashes.find(key);
      if (h == hashes.end()) h = hashes.emplace(key, KeyFilterHash(key)).first;
      return cat.MayContain(e, h->second, windows);
    });
  };
  std::shared_ptr<StoreCatalog> catalog = options.catalog;
  uint64_t in_range_not_loaded = 0;  // complete files of the time range that `keep` left out
  if (!catalog) {
    StoreCatalog::FilterWindows load_windows;
    StoreCatalog::KeepFn keep;
    if (filtered) {
      keep = [&](const StoreCatalog& cat, const CatalogEntry& e) {
        const FileSummary& f = e.summary;
        if (f.packets == 0 || !tr.Overlaps(f.min_ts_ns, f.max_ts_ns)) return false;  // Select() skips it too
        if (may_match(cat, e, &load_windows)) return true;
        ++in_range_not_loaded;
        return false;
      };
    }
    auto opened = StoreCatalog::OpenRange(store, tr.lo, tr.hi, keep);
    if (!opened.ok()) return opened.status();
    catalog = *opened;
    if (options.opened_catalog != nullptr) *options.opened_catalog = catalog;
  } else {
    Status s = catalog->Refresh();
    if (!s.ok()) return s;
  }
  q->options_.catalog.reset();  // a query holds what it selected, not the catalog
  q->options_.opened_catalog = nullptr;
  q->total_files_ = catalog->CompleteFiles();

  uint64_t in_range = 0;
  StoreCatalog::FilterWindows windows;
  std::vector<CatalogEntry> selected = catalog->Select(tr.lo, tr.hi, [&](const CatalogEntry& e) {
    ++in_range;
    return !filtered || may_match(*catalog, e, &windows);
  });
  q->files_in_range_ = in_range + in_range_not_loaded;
  for (CatalogEntry& e : selected) {
    OpenFile f;
    f.file.writer = e.writer;
    f.file.name = e.name;
    f.file.packet_path = e.packet_path(store);
    f.file.index_path = e.index_path(store);
    f.file.indexed = true;
    if (!e.complete()) {
      // Being written: its live index in this process, else its complete index if it appeared since the
      // catalog was read, else the blocks already on disk, indexed now.
      Result<std::shared_ptr<const IndexView>> view = Status::NotFound("");
      if (std::shared_ptr<LiveIndex> live = FindLiveIndex(f.file.packet_path)) {
        view = live->Snapshot();
      } else {
        // (An index table that is there but cannot be read is damaged: the packet file is read instead.)
        struct stat st;
        if (stat(f.file.index_path.c_str(), &st) == 0) view = q->OpenIndex(f.file);
        if (!view.ok() && stat(f.file.packet_path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
          view = IndexFileBeingWritten(f.file.packet_path);
        }
      }
      if (!view.ok()) continue;
      f.summary = (*view)->summary();
      if (f.summary.packets == 0 || !tr.Overlaps(f.summary.min_ts_ns, f.summary.max_ts_ns)) continue;
      f.index = *view;
    } else {
      f.summary = e.summary;
    }
    for (uint32_t lt : f.summary.linktypes) {
      if (std::find(q->linktypes_.begin(), q->linktypes_.end(), lt) == q->linktypes_.end()) q->linktypes_.push_back(lt);
    }
    q->files_.push_back(std::move(f));
  }
  std::sort(q->linktypes_.begin(), q->linktypes_.end());
  std::vector<uint32_t> linktypes = catalog->Linktypes();
  q->store_linktypes_ = linktypes;
  for (uint32_t lt : q->linktypes_) {
    if (std::find(linktypes.begin(), linktypes.end(), lt) == linktypes.end()) linktypes.push_back(lt);
  }
  Status s = q->filter_->Validate(linktypes);
  if (!s.ok()) return s;
  return q;
}

Result<std::shared_ptr<const IndexView>> Query::OpenIndex(const StoreFile& file) const {
  if (options_.index_cache != nullptr) {
    auto cached = options_.index_cache->Get(file.index_path);
    if (!cached.ok()) return cached.status();
    return std::shared_ptr<const IndexView>(*cached);
  }
  auto opened = IndexReader::Open(file.index_path);
  if (!opened.ok()) return opened.status();
  return std::shared_ptr<const IndexView>(std::move(*opened));
}

Status Query::Run(bool (*emit)(void*, uint32_t, const PacketView&), void* ctx, QueryStats* stats) {
  *stats = QueryStats();
  stats->files = total_files_;
  stats->files_in_range = files_in_range_;
  stats->warnings = open_warnings_;
  std::vector<const OpenFile*> order;
  for (const OpenFile& f : files_) order.push_back(&f);
  std::stable_sort(order.begin(), order.end(), [](const OpenFile* a, const OpenFile* b) {
    return a->summary.min_ts_ns < b->summary.min_ts_ns;
  });
  stats->files_searched = order.size();

  // k-way merge by timestamp; files join the merge when the merge reaches their first timestamp, so only
  // files that overlap in time are open at once. Ties keep file order.
  // With room for two blocks, whole blocks are read ahead on a helper thread (see FileCursor). Declared
  // before the cursors, which wait for their read-ahead when destroyed.
  std::unique_ptr<ReadAheadThread> read_ahead;
  if (options_.max_block_buffers >= 2) read_ahead = std::make_unique<ReadAheadThread>();
  std::vector<std::unique_ptr<FileCursor>> cursors;
  auto later = [](const std::pair<int64_t, size_t>& a, const std::pair<int64_t, size_t>& b) { return a > b; };
  std::priority_queue<std::pair<int64_t, size_t>, std::vector<std::pair<int64_t, size_t>>, decltype(later)> heap(later);
  size_t next_file = 0;
  Status result;
  // More buffers held than allowed: the cursor that gave a packet longest ago gives its buffers back.
  // (A cursor holds at most two blocks, so with at most max_block_buffers / 2 open there is nothing to do.)
  uint64_t tick = 0;
  size_t max_buffers = std::max<size_t>(options_.max_block_buffers, 1);
  auto bound_buffers = [&](const FileCursor* active) {
    if (heap.size() * 2 <= max_buffers) return;
    while (true) {
      size_t held = 0;
      FileCursor* oldest = nullptr;
      for (const auto& c : cursors) {
        if (!c || c->buffers() == 0) continue;
        held += c->buffers();
        if (c.get() != active && (oldest == nullptr || c->last_active < oldest->last_active)) oldest = c.get();
      }
      if (held <= max_buffers || oldest == nullptr) return;
      oldest->Park();
    }
  };
  auto stopped = [&] {
    return Status::Cancelled(options_.deadline_ns != 0 && WallClockNs() >= options_.deadline_ns
                                 ? "query time limit reached"
                                 : "query cancelled");
  };
  while (true) {
    if (ShouldStop()) {
      result = stopped();
      break;
    }
    // (A cursor stopped by the deadline or a cancel looks exhausted: no file is started after that, and the
    // answer is reported cut short below, never complete.)
    while (next_file < order.size() && !ShouldStop() &&
           (heap.empty() || order[next_file]->summary.min_ts_ns <= heap.top().first)) {
      auto c = std::make_unique<FileCursor>(this, order[next_file], &plan_, filter_.get(), stats, read_ahead.get());
      ++next_file;
      if (!c->Start() || !c->valid()) continue;
      c->last_active = ++tick;
      heap.emplace(c->packet().ts_ns, cursors.size());
      cursors.push_back(std::move(c));
      bound_buffers(cursors.back().get());
    }
    if (heap.empty()) {
      if (ShouldStop()) result = stopped();
      break;
    }
    size_t i = heap.top().second;
    FileCursor* c = cursors[i].get();
    if (options_.limit_bytes != 0 && stats->bytes_matched + c->packet().caplen > options_.limit_bytes) break;
    if (options_.cut_bytes != 0 && stats->bytes_matched + c->packet().caplen > options_.cut_bytes) {
      result = Status::Cancelled("query size limit reached");
      break;
    }
    heap.pop();
    ++stats->packets_matched;
    stats->bytes_matched += c->packet().caplen;
    if (!emit(ctx, c->linktype(), c->packet())) {
      result = Status::Cancelled("output closed");
      break;
    }
    if (options_.limit != 0 && stats->packets_matched >= options_.limit) break;
    c->Advance();
    c->last_active = ++tick;
    if (c->valid()) {
      heap.emplace(c->packet().ts_ns, i);
      bound_buffers(c);
    } else {
      cursors[i].reset();
    }
  }
  for (const auto& [lt, why] : filter_->inapplicable()) {
    stats->warnings.push_back("the filter does not apply to link type " + std::to_string(lt) + ": " + why);
  }
  return result;
}

bool Query::NarrowedByIndex(size_t max_files, uint64_t max_candidates) const {
  if (!plan_.uses_index() || files_.size() > max_files) return false;
  uint64_t total = 0;
  for (const OpenFile& f : files_) {
    std::shared_ptr<const IndexView> index = f.index;
    if (!index) {
      auto opened = OpenIndex(f.file);
      if (!opened.ok()) continue;  // the query will warn about it; it costs nothing to read
      index = std::move(*opened);
    }
    FileCandidates c;
    if (!plan_.Candidates(*index, &c).ok()) continue;
    const std::vector<BlockEntry>& blocks = index->blocks();
    uint64_t n = c.all ? index->summary().packets : c.positions.size();
    for (uint32_t b : c.whole_blocks) n += b < blocks.size() ? blocks[b].packets : 0;
    total += n;
    if (total > max_candidates) return false;
  }
  return true;
}

Status Query::Explain(std::string* out) const {
  *out = plan_.Describe() + "\n";
  *out += std::to_string(total_files_) + " files in the store, " + std::to_string(files_in_range_) +
          " in the time range, " + std::to_string(files_.size()) + " to search\n";
  const TimeRange& tr = plan_.time_range();
  for (const OpenFile& f : files_) {
    auto index = OpenIndex(f.file);
    if (!index.ok()) {
      *out += f.file.packet_path + ": " + index.status().ToString() + "\n";
      continue;
    }
    const FileSummary& s = (*index)->summary();
    FileCandidates c;
    Status st = plan_.Candidates(**index, &c);
    if (!st.ok()) return st;
    uint64_t blocks = 0;
    for (const BlockEntry& b : (*index)->blocks()) blocks += b.packets > 0 && tr.Overlaps(b.min_ts_ns, b.max_ts_ns);
    *out += f.file.packet_path + ": " + std::to_string(s.packets) + " packets, " + std::to_string(blocks) +
            " blocks in range; candidates: " +
            (c.all ? "all" : std::to_string(c.positions.size()) + " packets + " +
                                 std::to_string(c.whole_blocks.size()) + " whole blocks") + "\n";
  }
  return Status::OK();
}

std::vector<uint32_t> Query::OutputLinktypes() const {
  std::vector<uint32_t> linktypes = linktypes_;
  // No file in the range (or none the index lets through): the store's link types, as tcpdump -w keeps its
  // input's for an empty answer; Ethernet for an empty store.
  if (linktypes.empty()) linktypes = store_linktypes_;
  if (linktypes.empty()) linktypes.push_back(1);
  return linktypes;
}
Status Query::Execute(ByteSink* sink, QueryStats* stats) {
  std::vector<uint32_t> linktypes = OutputLinktypes();
  CaptureFormat format = WritesPcapng() ? CaptureFormat::kPcapng : CaptureFormat::kPcap;
  PcapWriter writer(sink, format, options_.nanos);
  Status s = writer.Begin(linktypes, kMaxSnapLen);
  if (!s.ok()) return s;
  // Matches are flushed at least every kFlushIntervalNs, so a reader sees packets while the query runs.
  constexpr int64_t kFlushIntervalNs = 200 * 1000 * 1000;
  struct Ctx {
    PcapWriter* writer;
    Status status;
    int64_t last_flush;
    uint32_t since_clock = 0;  // packets since the clock was last read (it cost 7 % of a broad query's CPU)
  } ctx{&writer, Status::OK(), WallClockNs()};
  s = Run(
      [](void* p, uint32_t lt, const PacketView& pkt) {
        auto* c = static_cast<Ctx*>(p);
        c->status =
            c->writer->WritePacket(lt, pkt.ts_sec, pkt.ts_nsec, pkt.caplen, pkt.len, pkt.data, pkt.fraction);
        if (!c->status.ok() || ++c->since_clock < 64) return c->status.ok();
        c->since_clock = 0;
        int64_t now = WallClockNs();
        if (now - c->last_flush > kFlushIntervalNs) {
          c->status = c->writer->Flush();
          c->last_flush = now;
        }
        return c->status.ok();
      },
      &ctx, stats);
  if (!ctx.status.ok()) return ctx.status;
  Status f = writer.Flush();
  return s.ok() ? f : s;
}

}  // namespace rwd
