// rewind: full packet capture — store, index and query packets. Thin dispatch to the subcommands.
#include <csignal>
#include <cstdio>
#include <cstring>

#include "web/commands.h"

namespace {

const char kUsage[] =
    "usage: rewind <command> [flags]\n"
    "\n"
    "commands:\n"
    "  import --dir DIR FILE...          store capture files (pcap, pcapng)\n"
    "  query  --dir DIR [flags] EXPR     write the packets matching EXPR as pcap to stdout\n"
    "  export --dir DIR --out OUTDIR     write a time range (--after/--before/--filter) as pcap files\n"
    "  stats  --dir DIR [--json]         what the store holds\n"
    "  capture --iface IF --dir DIR      record an interface (stenotype's flags)\n"
    "  repair --dir DIR                  re-index files left without (or with a damaged) index\n"
    "  verify --dir DIR                  check every index table, block checksum and packet\n"
    "  serve  --dir DIR [--listen H:P]   HTTP query server (POST /query, GET /stats, web page at /)\n"
    "  run    [--config FILE]            the appliance: capture + server + housekeeping\n"
    "  prune  --dir DIR [limits]         remove the oldest files to keep the store within limits\n"
    "  config --from-stenographer FILE   print the rewind.json equivalent to a Stenographer config\n"
    "\n"
    "EXPR is tcpdump filter syntax plus 'before T' / 'after T' (T: 2026-11-22T10:00:00Z or '2h ago').\n"
    "Run 'rewind <command> --help' (or -h) for a command's flags, 'rewind --version' for the version.\n";

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed output pipe becomes EPIPE, handled as "reader went away"
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "help") == 0 ||
      std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "version") == 0) {
    std::printf("rewind %s\n", REWIND_VERSION);
    return 0;
  }
  const char* cmd = argv[1];
  if (std::strcmp(cmd, "import") == 0) return rwd::RunImportCommand(argc - 2, argv + 2);
  if (std::strcmp(cmd, "query") == 0) return rwd::RunQueryCommand(argc - 2, argv + 2);
  if (std::strcmp(cmd, "export") == 0) return rwd::RunExportCommand(argc - 2, argv + 2);
  if (std::strcmp(cmd, "stats") == 0) return rwd::RunStatsCommand(argc - 2, argv + 2);
  if (std::strcmp(cmd, "capture") == 0) return rwd::RunCaptureCommand(argc - 2, argv + 2);
  if (std::strcmp(cmd, "repair") == 0) return rwd::RunRepairCommand(argc - 2, argv + 2);
  if (std::strcmp(cmd, "verify") == 0) return rwd::RunVerifyCommand(argc - 2, argv + 2);
  if (std::strcmp(cmd, "serve") == 0) return rwd::RunServeCommand(argc - 2, argv + 2);
  if (std::strcmp(cmd, "run") == 0) return rwd::RunRunCommand(argc - 2, argv + 2);
  if (std::strcmp(cmd, "prune") == 0) return rwd::RunPruneCommand(argc - 2, argv + 2);
  if (std::strcmp(cmd, "config") == 0) return rwd::RunConfigCommand(argc - 2, argv + 2);
  std::fprintf(stderr, "rewind: unknown command '%s'\n\n%s", cmd, kUsage);
  return 2;
}
