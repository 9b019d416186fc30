// rewind_make_store: builds a synthetic store for scale benchmarks (bench/scale_bench.sh) — any number of
// small packet files with real blocks and real index tables, readable by `rewind verify` and queries
// exactly like a captured store. See bench/synthetic_store_writer.h for what the store holds.
//
//   rewind_make_store --dir D --files N --source trace.pcap [--writers 2] [--packets_per_file 100]
//                     [--file_seconds 60] [--start 2026-01-01T00:00:00Z] [--compress zstd[:N]|none]
//                     [--window_offset_sec 1830] [--window_sec 60] [--scratch_dir /dev/shm]
//
// One thread per writer. Prints a manifest (key=value lines: what was written and the expected answers
// of the benchmark's queries) on stdout and progress on stderr. Writes nothing into D but packet files
// and index tables (no catalog).
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench/needle_frame.h"
#include "bench/source_trace.h"
#include "bench/synthetic_store_writer.h"
#include "index/status.h"
#include "index/store_layout.h"

namespace rwd {
namespace {

constexpr char kUsage[] =
    "usage: rewind_make_store --dir D --files N --source trace.pcap [--writers 2] [--packets_per_file 100]\n"
    "                         [--file_seconds 60] [--start 2026-01-01T00:00:00Z] [--compress zstd[:N]|none]\n"
    "                         [--window_offset_sec 1830] [--window_sec 60] [--scratch_dir /dev/shm]\n";

struct Flags {
  std::string dir, source;
  uint64_t files = 0;
  uint32_t writers = 2;
  uint32_t packets_per_file = 100;
  int64_t file_seconds = 60;
  std::string start = "2026-01-01T00:00:00Z";
  std::string compress = "zstd";
  int64_t window_offset_sec = 1830;
  int64_t window_sec = 60;
  std::string scratch_dir = "/dev/shm";
};

// Parses "YYYY-MM-DDTHH:MM:SSZ" (UTC, whole seconds) into ns since the epoch.
Result<int64_t> ParseUtcSecond(const std::string& text) {
  struct tm tm {};
  char zulu = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &zulu) != 7 || zulu != 'Z') {
    return Status::InvalidArgument("--start wants YYYY-MM-DDTHH:MM:SSZ, got " + text);
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1'000'000'000;
}

std::string FormatUtc(int64_t ns) {
  time_t sec = static_cast<time_t>(ns / 1'000'000'000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "zstd" (level 3, as `rewind capture --compress zstd`), "zstd:N" or "none" -> zstd level (0: raw).
Result<int> ParseCompress(const std::string& text) {
  if (text == "none") return 0;
  if (text == "zstd") return 3;
  if (text.rfind("zstd:", 0) == 0) {
    int level = std::atoi(text.c_str() + 5);
    if (level >= 1 && level <= 19) return level;
  }
  return Status::InvalidArgument("--compress wants none, zstd or zstd:N (1..19), got " + text);
}

Result<Flags> ParseFlags(int argc, char** argv) {
  Flags f;
  std::map<std::string, std::string> values;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") return Status::InvalidArgument("");
    if (arg.rfind("--", 0) != 0 || i + 1 >= argc) return Status::InvalidArgument("unexpected argument " + arg);
    values[arg.substr(2)] = argv[++i];
  }
  for (const auto& [key, value] : values) {
    if (key == "dir") f.dir = value;
    else if (key == "source") f.source = value;
    else if (key == "files") f.files = std::strtoull(value.c_str(), nullptr, 10);
    else if (key == "writers") f.writers = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    else if (key == "packets_per_file") f.packets_per_file = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    else if (key == "file_seconds") f.file_seconds = std::strtoll(value.c_str(), nullptr, 10);
    else if (key == "start") f.start = value;
    else if (key == "compress") f.compress = value;
    else if (key == "window_offset_sec") f.window_offset_sec = std::strtoll(value.c_str(), nullptr, 10);
    else if (key == "window_sec") f.window_sec = std::strtoll(value.c_str(), nullptr, 10);
    else if (key == "scratch_dir") f.scratch_dir = value;
    else return Status::InvalidArgument("unknown flag --" + key);
  }
  if (f.dir.empty() || f.source.empty() || f.files == 0) return Status::InvalidArgument("--dir, --files and --source are required");
  if (f.writers == 0 || f.writers > 64) return Status::InvalidArgument("--writers wants 1..64");
  if (f.packets_per_file == 0 || f.packets_per_file > 1'000'000) return Status::InvalidArgument("--packets_per_file wants 1..1000000");
  if (f.file_seconds <= 0) return Status::InvalidArgument("--file_seconds must be positive");
  return f;
}

int Run(const Flags& flags) {
  Result<int64_t> start = ParseUtcSecond(flags.start);
  Result<int> level = ParseCompress(flags.compress);
  if (!start.ok() || !level.ok()) {
    std::fprintf(stderr, "rewind_make_store: %s\n", (start.ok() ? level.status() : start.status()).message().c_str());
    return 2;
  }
  Result<SourceTrace> trace = SourceTrace::Load(flags.source);
  if (!trace.ok()) {
    std::fprintf(stderr, "rewind_make_store: %s\n", trace.status().message().c_str());
    return 1;
  }
  if (trace->linktype() != 1) {
    std::fprintf(stderr, "rewind_make_store: %s: needs an Ethernet capture (link type %u)\n", flags.source.c_str(),
                 trace->linktype());
    return 1;
  }
  // The needles must be the only packets of their addresses, or the host query's answer would grow
  // with the store.
  if (uint64_t clash = trace->CountIpv4InNetwork(kNeedleSource & 0xffffff00, 24); clash > 0) {
    std::fprintf(stderr, "rewind_make_store: %s: %llu packets already use 10.255.0.0/24, the needles' network\n",
                 flags.source.c_str(), static_cast<unsigned long long>(clash));
    return 1;
  }

  SyntheticStoreOptions options;
  options.store = flags.dir;
  options.writers = flags.writers;
  options.files = flags.files;
  options.packets_per_file = flags.packets_per_file;
  options.start_ns = *start;
  options.file_ns = flags.file_seconds * 1'000'000'000;
  options.compress_level = *level;
  options.scratch_dir = flags.scratch_dir;
  options.window_start_ns = *start + flags.window_offset_sec * 1'000'000'000;
  options.window_end_ns = options.window_start_ns + flags.window_sec * 1'000'000'000;

  std::vector<std::unique_ptr<SyntheticStoreWriter>> writers;
  for (uint32_t w = 0; w < flags.writers; ++w) {
    Result<WriterLock> lock = WriterLock::Acquire(flags.dir, w);
    if (!lock.ok()) {
      std::fprintf(stderr, "rewind_make_store: %s\n", lock.status().message().c_str());
      return 1;
    }
    writers.push_back(std::make_unique<SyntheticStoreWriter>(options, &*trace, std::move(*lock)));
  }

  auto began = std::chrono::steady_clock::now();
  std::atomic<uint64_t> files_done{0};
  std::vector<Status> results(flags.writers);
  std::vector<std::thread> threads;
  for (uint32_t w = 0; w < flags.writers; ++w) {
    threads.emplace_back([&, w] {
      uint64_t n = SyntheticStoreWriter::FilesOfWriter(options, w);
      for (uint64_t i = 0; i < n && results[w].ok(); ++i) {
        results[w] = writers[w]->WriteFile(i);
        files_done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::atomic<bool> finished{false};
  std::thread progress([&] {
    auto last = std::chrono::steady_clock::now();
    while (!finished.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      auto now = std::chrono::steady_clock::now();
      if (now - last >= std::chrono::seconds(5)) {
        last = now;
        std::fprintf(stderr, "rewind_make_store: %llu/%llu files\n",
                     static_cast<unsigned long long>(files_done.load()), static_cast<unsigned long long>(flags.files));
      }
    }
  });
  for (std::thread& t : threads) t.join();
  finished = true;
  progress.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  for (const Status& s : results) {
    if (!s.ok()) {
      std::fprintf(stderr, "rewind_make_store: %s\n", s.message().c_str());
      return 1;
    }
  }

  SyntheticWriterStats total;
  for (const auto& w : writers) {
    const SyntheticWriterStats& s = w->stats();
    total.files += s.files;
    total.blocks += s.blocks;
    total.packets += s.packets;
    total.needles += s.needles;
    total.window_packets += s.window_packets;
    total.packet_file_bytes += s.packet_file_bytes;
    total.index_bytes += s.index_bytes;
  }
  uint64_t files_of_writer0 = SyntheticStoreWriter::FilesOfWriter(options, 0);
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf("source=%s\nsource_packets=%llu\n", flags.source.c_str(), u(trace->size()));
  std::printf("files=%llu\nwriters=%u\npackets_per_file=%u\nfile_seconds=%lld\ncompress=%s\n", u(total.files),
              flags.writers, flags.packets_per_file, static_cast<long long>(flags.file_seconds), flags.compress.c_str());
  std::printf("first_packet=%s\nlast_file_end=%s\n", FormatUtc(*start).c_str(),
              FormatUtc(*start + static_cast<int64_t>(files_of_writer0) * options.file_ns).c_str());
  std::printf("packets=%llu\nblocks=%llu\npacket_file_bytes=%llu\nindex_bytes=%llu\n", u(total.packets),
              u(total.blocks), u(total.packet_file_bytes), u(total.index_bytes));
  std::printf("host_query=host 10.255.0.1\nhost_packets=%llu\n", u(total.needles));
  std::printf("window_start=%s\nwindow_end=%s\nwindow_packets=%llu\n", FormatUtc(options.window_start_ns).c_str(),
              FormatUtc(options.window_end_ns).c_str(), u(total.window_packets));
  std::printf("seconds=%.2f\nfiles_per_second=%.0f\n", seconds, total.files / (seconds > 0 ? seconds : 1));
  if (total.needles != kNeedleFiles) {
    std::fprintf(stderr, "rewind_make_store: warning: writer 0 has %llu files, too few for all %u needles\n",
                 u(files_of_writer0), kNeedleFiles);
  }
  return 0;
}

}  // namespace
}  // namespace rwd

int main(int argc, char** argv) {
  rwd::Result<rwd::Flags> flags = rwd::ParseFlags(argc, argv);
  if (!flags.ok()) {
    if (!flags.status().message().empty()) std::fprintf(stderr, "rewind_make_store: %s\n", flags.status().message().c_str());
    std::fputs(rwd::kUsage, stderr);
    return 2;
  }
  return rwd::Run(*flags);
}
