// `rewind import`: stores capture files, with a progress bar on a terminal.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "capture/packet_file_writer.h"
#include "capture/pcap_importer.h"
#include "capture/stenographer_reader.h"
#include "index/index_repair.h"
#include "web/command_line.h"
#include "web/commands.h"

namespace rwd {
namespace {

const char kImportUsage[] =
    "usage: rewind import --dir DIR [--filesize_mb N] [--writer N] [-q] FILE...\n"
    "       rewind import --dir DIR --stenographer [flags] STENO...\n"
    "  --dir DIR        store directory (created if missing)\n"
    "  --filesize_mb N  rotate packet files at N MiB (default 1024, at most 4096)\n"
    "  --writer N       write into DIR/PKT<N> (default: the first one no other process holds, from 0)\n"
    "  --compress C     none (default), zstd (level 3) or zstd:N (1..19): compress each block before it is written\n"
    "  --stenographer   the inputs are a Stenographer installation: its config file (every thread's\n"
    "                   PacketsDirectory), stenotype's --dir (PKT<n>/) or a packet directory; its packet\n"
    "                   files are stored thread by thread in time order (files being written are skipped)\n"
    "  -q               no progress output\n"
    "A damaged input keeps every packet before the damage; the exit status is then 1.\n";

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

Status ParseCompression(const std::string& text, int* level) {
  if (text == "none" || text.empty()) {
    *level = 0;
    return Status::OK();
  }
  if (text == "zstd") {
    *level = 3;
    return Status::OK();
  }
  if (text.rfind("zstd:", 0) == 0) {
    try {
      *level = std::stoi(text.substr(5));
    } catch (...) {
      *level = -1;
    }
    if (*level >= 1 && *level <= 19) return Status::OK();
  }
  return Status::InvalidArgument("--compress wants none, zstd or zstd:N with N in 1..19, got '" + text + "'");
}

int RunImportCommand(int argc, char** argv) {
  auto cl = CommandLine::Parse(argc, argv, {"dir", "filesize_mb", "writer", "compress"}, {"help", "q", "stenographer"});
  if (!cl.ok()) {
    std::fprintf(stderr, "rewind import: %s\n%s", cl.status().message().c_str(), kImportUsage);
    return 2;
  }
  if (cl->Has("help")) {
    std::fputs(kImportUsage, stdout);
    return 0;
  }
  uint64_t filesize_mb = 0, writer_no = 0;
  Status s = cl->GetUint("filesize_mb", 1024, &filesize_mb);
  if (s.ok()) s = cl->GetUint("writer", 0, &writer_no);
  int compress_level = 0;
  if (s.ok()) s = ParseCompression(cl->Get("compress", "none"), &compress_level);
  if (!s.ok() || !cl->Has("dir") || cl->positional().empty() || filesize_mb == 0 || filesize_mb > 4096) {
    std::fprintf(stderr, "rewind import: %s\n%s",
                 !s.ok() ? s.message().c_str() : "needs --dir, 1 <= --filesize_mb <= 4096 and at least one file",
                 kImportUsage);
    return 2;
  }
  std::string dir = cl->Get("dir");
  const bool stenographer = cl->Has("stenographer");
  std::vector<std::string> inputs = cl->positional();
  if (stenographer) {
    inputs.clear();
    for (const std::string& path : cl->positional()) {
      std::vector<std::string> being_written, other;
      auto files = ListStenographerPacketFiles(path, &being_written, &other);
      if (!files.ok()) {
        std::fprintf(stderr, "rewind import: %s\n", files.status().message().c_str());
        return 1;
      }
      for (const std::string& f : being_written) {
        std::fprintf(stderr, "rewind import: skipping %s: stenotype is still writing it (stop Stenographer first)\n", f.c_str());
      }
      for (size_t i = 0; i < other.size() && i < 5; ++i) {
        std::fprintf(stderr, "rewind import: skipping %s: not a Stenographer packet file\n", other[i].c_str());
      }
      if (other.size() > 5) std::fprintf(stderr, "rewind import: ... and %zu more such files\n", other.size() - 5);
      if (files->empty()) std::fprintf(stderr, "rewind import: %s holds no Stenographer packet files\n", path.c_str());
      inputs.insert(inputs.end(), files->begin(), files->end());
    }
    // Pointed at the wrong place (the index directory, an empty disk): say so before making a store.
    if (inputs.empty()) return 1;
  }
  auto lock = cl->Has("writer") ? WriterLock::Acquire(dir, static_cast<uint32_t>(writer_no))
                                : WriterLock::AcquireFree(dir, 0);
  if (!lock.ok()) {
    std::fprintf(stderr, "rewind import: %s\n", lock.status().ToString().c_str());
    return 1;
  }
  {
    // Files a crash left without an index become queryable again first.
    std::vector<RepairResult> repaired;
    Status rs = RepairUnindexedFiles(dir, static_cast<int>(lock->writer()), &repaired);
    ReportRepairs("rewind import", repaired);
    if (!rs.ok()) std::fprintf(stderr, "rewind import: repair: %s\n", rs.ToString().c_str());
  }
  PacketFileWriterOptions opts;
  opts.store = dir;
  opts.max_file_bytes = filesize_mb << 20;
  opts.preallocate_bytes = opts.max_file_bytes;
  opts.compress_level = compress_level;  // writes inside the file size stay asynchronous on ext4
  PacketFileWriter writer(opts, std::move(*lock));
  PcapImporter importer(&writer);

  bool tty = isatty(STDERR_FILENO) && !cl->Has("q");
  uint64_t total_bytes = 0;
  for (const auto& f : inputs) {
    struct stat st;
    if (stat(f.c_str(), &st) == 0) total_bytes += static_cast<uint64_t>(st.st_size);
  }
  auto start = std::chrono::steady_clock::now();
  uint64_t done_bytes = 0, packets = 0, bytes = 0;
  int failures = 0;
  bool store_failed = false;  // the store refused a write (disk full, I/O error)
  size_t n = inputs.size();
  for (size_t i = 0; i < n; ++i) {
    const std::string& path = inputs[i];
    ImportFileStats st;
    auto progress = [&](uint64_t read, uint64_t) {
      if (!tty) return;
      double frac = total_bytes ? static_cast<double>(done_bytes + read) / total_bytes : 1.0;
      if (frac > 1) frac = 1;
      int filled = static_cast<int>(frac * 30);
      double secs = Seconds(start);
      std::fprintf(stderr, "\r[%-30s] %3d%%  %zu/%zu files  %.0f MB  %.0f MB/s ", std::string(filled, '#').c_str(),
                   static_cast<int>(frac * 100), i + 1, n, (done_bytes + read) / 1e6,
                   secs > 0 ? (done_bytes + read) / 1e6 / secs : 0.0);
    };
    Status fs = stenographer ? importer.ImportStenographerFile(path, &st, progress) : importer.ImportFile(path, &st, progress);
    if (st.wrapped_timestamps > 0) {
      if (tty) std::fputc('\n', stderr);
      std::fprintf(stderr,
                   "rewind import: warning: %s: %llu packet(s) dated past 2106 were stored with their seconds "
                   "modulo 2^32 (as a pcap record holds them, and as tcpdump prints them)\n",
                   path.c_str(), static_cast<unsigned long long>(st.wrapped_timestamps));
    }
    if (st.cut_packets > 0) {
      if (tty) std::fputc('\n', stderr);
      std::fprintf(stderr,
                   "rewind import: warning: %s: %llu packet(s) longer than %u bytes were stored cut to %u bytes "
                   "(their wire length is kept)\n",
                   path.c_str(), static_cast<unsigned long long>(st.cut_packets), kMaxSnapLen, kMaxSnapLen);
    }
    done_bytes += st.input_bytes;
    packets += st.packets;
    bytes += st.captured_bytes;
    if (!fs.ok()) {
      if (tty) std::fputc('\n', stderr);
      ++failures;
      if (fs.code() == Status::kNoSpace || fs.code() == Status::kIOError) {  // the store, not the input
        // The block that failed (and what followed) is not stored, whatever the input count says.
        std::fprintf(stderr, "rewind import: %s\nrewind import: stopped at %s\n", fs.ToString().c_str(), path.c_str());
        store_failed = true;
        break;
      }
      std::fprintf(stderr, "rewind import: %s (kept %llu packets from it)\n", fs.message().c_str(),
                   static_cast<unsigned long long>(st.packets));
    }
  }
  Status fin = importer.Finish();
  if (tty) std::fputc('\n', stderr);
  if (!fin.ok()) {
    std::fprintf(stderr, "rewind import: %s\n", fin.ToString().c_str());
    return 1;
  }
  double secs = Seconds(start);
  const auto& ws = writer.stats();
  if (store_failed) {
    std::fprintf(stderr,
                 "rewind import: kept %llu packets in the %llu packet file(s) completed before that (queryable); "
                 "the rest was not stored\n",
                 static_cast<unsigned long long>(ws.packets), static_cast<unsigned long long>(ws.files));
    return 1;
  }
  if (!cl->Has("q")) {
    std::fprintf(stderr,
                 "imported %llu packets (%.1f MB) from %zu file(s) into %s/PKT%u in %.2f s (%.0f MB/s, %.0f packets/s); "
                 "%llu packet file(s), index %.2f%% of packet bytes%s\n",
                 static_cast<unsigned long long>(packets), bytes / 1e6, n, dir.c_str(), writer.writer(), secs,
                 secs > 0 ? done_bytes / 1e6 / secs : 0.0, secs > 0 ? packets / secs : 0.0,
                 static_cast<unsigned long long>(ws.files), bytes ? 100.0 * ws.index_bytes / bytes : 0.0,
                 failures ? "; some inputs were damaged (see above)" : "");
  }
  return failures ? 1 : 0;
}

}  // namespace rwd
