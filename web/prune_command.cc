// `rewind prune`: applies a retention policy to a store once (what `rewind capture`/`rewind run` do
// periodically), removing the oldest complete packet files with their indexes.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "index/retention.h"
#include "web/command_line.h"
#include "web/commands.h"

namespace rwd {
namespace {

const char kPruneUsage[] =
    "usage: rewind prune --dir DIR [limits] [--dry_run] [-q]\n"
    "Removes the oldest complete packet files (by creation time, each with its index) until every limit\n"
    "holds. Files being written and files without an index are never removed. Limits (at least one):\n"
    "  --max_store_mb N       packet files + index tables use at most N MiB of disk\n"
    "  --min_free_percent P   keep at least P% of the store's file system free (like DiskFreePercentage)\n"
    "  --max_files N          keep at most N complete files per writer (like MaxDirectoryFiles)\n"
    "  --max_age_sec N        remove files whose newest packet is older than N seconds\n"
    "  --dry_run              print what would be removed, remove nothing\n"
    "  -q                     print only problems\n";

}  // namespace

Status ParseRetentionFlags(const CommandLine& cl, RetentionPolicy* policy) {
  uint64_t mb = 0, files = 0, age = 0;
  Status s = cl.GetUint("max_store_mb", 0, &mb);
  if (s.ok()) s = cl.GetUint("max_files", 0, &files);
  if (s.ok()) s = cl.GetUint("max_age_sec", 0, &age);
  if (!s.ok()) return s;
  if (mb > (uint64_t{1} << 43) || files > 0xffffffffu || age > (uint64_t{1} << 33)) {
    return Status::InvalidArgument("--max_store_mb, --max_files or --max_age_sec is out of range");
  }
  double pct = 0;
  if (cl.Has("min_free_percent")) {
    std::string v = cl.Get("min_free_percent");
    char* end = nullptr;
    pct = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(pct >= 0 && pct < 100)) {
      return Status::InvalidArgument("--min_free_percent wants a number from 0 to below 100, got '" + v + "'");
    }
  }
  policy->max_bytes = mb << 20;
  policy->min_free_percent = pct;
  policy->max_files_per_writer = static_cast<uint32_t>(files);
  policy->max_age_ns = static_cast<int64_t>(age) * 1000000000;
  return Status::OK();
}

int RunPruneCommand(int argc, char** argv) {
  auto cl = CommandLine::Parse(argc, argv, {"dir", "max_store_mb", "min_free_percent", "max_files", "max_age_sec"},
                               {"help", "dry_run", "q"});
  if (!cl.ok()) {
    std::fprintf(stderr, "rewind prune: %s\n%s", cl.status().message().c_str(), kPruneUsage);
    return 2;
  }
  if (cl->Has("help")) {
    std::fputs(kPruneUsage, stdout);
    return 0;
  }
  RetentionPolicy policy;
  Status s = ParseRetentionFlags(*cl, &policy);
  if (!s.ok() || !cl->Has("dir") || !policy.enabled() || !cl->positional().empty()) {
    std::fprintf(stderr, "rewind prune: %s\n%s",
                 !s.ok() ? s.message().c_str() : "needs --dir and at least one limit, and no other arguments",
                 kPruneUsage);
    return 2;
  }
  policy.dry_run = cl->Has("dry_run");
  bool quiet = cl->Has("q");
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  PruneResult r;
  s = PruneStore(cl->Get("dir"), policy, now, &r);
  if (!quiet) {
    const char* verb = policy.dry_run ? "would remove" : "removed";
    for (const PrunedFile& f : r.removed) {
      std::printf("%s %s and its index (%.1f MiB, %s)\n", verb, f.file.packet_path.c_str(), f.bytes / 1048576.0,
                  f.reason.c_str());
    }
    std::printf("%s %llu file(s), %.1f MiB; %s %llu complete file(s) and %llu without an index, %.1f MiB",
                verb, static_cast<unsigned long long>(r.files), r.bytes / 1048576.0,
                policy.dry_run ? "would leave" : "left", static_cast<unsigned long long>(r.complete_files),
                static_cast<unsigned long long>(r.incomplete_files), r.store_bytes / 1048576.0);
    if (policy.min_free_percent > 0) std::printf(", %.1f%% of the file system free", r.free_percent);
    std::printf(" (limits: %s)\n", policy.Describe().c_str());
  }
  for (const std::string& u : r.unmet) std::fprintf(stderr, "rewind prune: warning: %s\n", u.c_str());
  for (const std::string& p : r.problems) std::fprintf(stderr, "rewind prune: %s\n", p.c_str());
  if (!s.ok()) {
    std::fprintf(stderr, "rewind prune: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace rwd
