// The `rewind` subcommands. Each takes the arguments after its name and returns the process exit status:
// 0 success, 1 failure (a message on stderr), 2 usage error or malformed query.
#ifndef REWIND_WEB_COMMANDS_H_
#define REWIND_WEB_COMMANDS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace rwd {

int RunImportCommand(int argc, char** argv);
int RunQueryCommand(int argc, char** argv);
int RunExportCommand(int argc, char** argv);
int RunStatsCommand(int argc, char** argv);
int RunCaptureCommand(int argc, char** argv);
int RunRepairCommand(int argc, char** argv);
int RunVerifyCommand(int argc, char** argv);
int RunServeCommand(int argc, char** argv);
int RunRunCommand(int argc, char** argv);
int RunPruneCommand(int argc, char** argv);
int RunConfigCommand(int argc, char** argv);

struct RepairResult;
class Status;
// Reads the first line of a token file.
Status ReadTokenFile(const std::string& path, std::string* token);
// Checks the server's admission bounds and timeouts (`rewind serve` flags, `rewind run` config).
Status CheckServerLimits(uint64_t lookups, uint64_t lookup_queue, uint64_t scans, uint64_t scan_queue,
                         uint64_t request_timeout_sec, uint64_t idle_timeout_sec, uint64_t queue_wait_sec,
                         uint64_t query_time_limit_sec);
// Parses a block compression setting: "none" (0), "zstd" (level 3) or "zstd:N" (1..19).
Status ParseCompression(const std::string& text, int* level);
// Splits "HOST:PORT" ("[::1]:9123" for IPv6).
Status ParseListen(const std::string& listen, std::string* host, int* port);
// Prints what a repair did, one line per file, prefixed with `who`.
void ReportRepairs(const char* who, const std::vector<RepairResult>& results);
struct RetentionPolicy;
class CommandLine;
// Reads --max_store_mb, --min_free_percent, --max_files and --max_age_sec (capture and prune).
Status ParseRetentionFlags(const CommandLine& cl, RetentionPolicy* policy);

}  // namespace rwd

#endif  // REWIND_WEB_COMMANDS_H_
