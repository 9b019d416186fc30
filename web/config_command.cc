// `rewind config --from-stenographer FILE`: prints the rewind.json that says what a Stenographer config says,
// with a note on stderr for each setting that has no counterpart or changes meaning.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "web/command_line.h"
#include "web/commands.h"

namespace rwd {
namespace {

const char kConfigUsage[] =
    "usage: rewind config --from-stenographer FILE\n"
    "Prints the rewind.json (for 'rewind run --config') equivalent to a Stenographer config\n"
    "(/etc/stenographer/config), and on stderr what does not carry over.\n";

}  // namespace

int RunConfigCommand(int argc, char** argv) {
  auto cl = CommandLine::Parse(argc, argv, {"from-stenographer"}, {"help"}, false);
  if (!cl.ok() || (!cl->Has("help") && !cl->Has("from-stenographer"))) {
    std::fprintf(stderr, "rewind config: %s\n%s", cl.ok() ? "needs --from-stenographer FILE" : cl.status().message().c_str(),
                 kConfigUsage);
    return 2;
  }
  if (cl->Has("help")) {
    std::fputs(kConfigUsage, stdout);
    return 0;
  }
  std::string path = cl->Get("from-stenographer");
  std::ifstream f(path);
  if (!f) {
    std::fprintf(stderr, "rewind config: cannot read %s\n", path.c_str());
    return 1;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  rapidjson::Document in;
  in.Parse(ss.str().c_str());
  if (in.HasParseError() || !in.IsObject()) {
    std::fprintf(stderr, "rewind config: %s is not a JSON object%s%s\n", path.c_str(), in.HasParseError() ? ": " : "",
                 in.HasParseError() ? rapidjson::GetParseError_En(in.GetParseError()) : "");
    return 2;
  }
  auto note = [](const std::string& text) { std::fprintf(stderr, "rewind config: note: %s\n", text.c_str()); };
  auto str = [&in](const char* k) { return in.HasMember(k) && in[k].IsString() ? std::string(in[k].GetString()) : ""; };

  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  w.StartObject();
  // Stenographer keeps each thread's packets and indexes in directories of their own; a rewind store is one
  // directory with PKT<n>/IDX<n> per thread.
  unsigned threads = 0;
  double disk_free = -1;
  uint64_t max_files = 0;
  std::string dir;
  if (in.HasMember("Threads") && in["Threads"].IsArray()) {
    for (const auto& t : in["Threads"].GetArray()) {
      if (!t.IsObject()) continue;
      ++threads;
      if (t.HasMember("DiskFreePercentage") && t["DiskFreePercentage"].IsNumber()) disk_free = t["DiskFreePercentage"].GetDouble();
      if (t.HasMember("MaxDirectoryFiles") && t["MaxDirectoryFiles"].IsUint64()) max_files = t["MaxDirectoryFiles"].GetUint64();
    }
  }
  // The packaged service's state directory: the only place its unit lets it write.
  if (dir.empty()) dir = "/var/lib/rewind";
  note("the store goes to " + dir + " (one directory for every thread; the packaged service writes nowhere else); "
       "Stenographer's own files stay where they are");
  w.Key("dir");
  w.String(dir.c_str());

  w.Key("capture");
  w.StartObject();
  if (!str("Interface").empty()) {
    w.Key("iface");
    w.String(str("Interface").c_str());
  }
  if (threads > 0) {
    w.Key("threads");
    w.Uint(threads);
  }
  if (in.HasMember("Flags") && in["Flags"].IsArray()) {
    // stenotype's flags of the same meaning; the rest are named on stderr.
    for (const auto& fl : in["Flags"].GetArray()) {
      if (!fl.IsString()) continue;
      std::string flag = fl.GetString();
      size_t start = flag.find_first_not_of('-');
      if (start == std::string::npos) continue;
      size_t eq = flag.find('=', start);
      std::string name = flag.substr(start, eq == std::string::npos ? std::string::npos : eq - start);
      std::string value = eq == std::string::npos ? "" : flag.substr(eq + 1);
      uint64_t number = 0;
      bool numeric = ParseDecimalUint(value, &number);
      if (numeric && (name == "blocks" || name == "fileage_sec" || name == "filesize_mb" || name == "blockage_sec")) {
        if (name == "blockage_sec" && number > 5) {
          note("--blockage_sec=" + value + " becomes 5: rewind hands over a part-filled block within 5 s (so that "
               "stopping can wait for it)");
          number = 5;
        }
        w.Key(name.c_str());
        w.Uint64(number);
      } else if (name == "filter" && !value.empty()) {
        note("--filter is a compiled BPF program in hex for stenotype; rewind's \"filter\" is tcpdump syntax: "
             "write the expression it was compiled from into capture.filter");
      } else {
        note("stenotype flag " + flag + " has no rewind.json counterpart (see 'rewind capture --help')");
      }
    }
  }
  w.EndObject();

  w.Key("server");
  w.StartObject();
  std::string host = str("Host").empty() ? "127.0.0.1" : str("Host");
  int port = in.HasMember("Port") && in["Port"].IsInt() ? in["Port"].GetInt() : 1234;
  w.Key("listen");
  w.String((host + ":" + std::to_string(port)).c_str());
  if (!str("CertPath").empty()) {
    std::string certs = str("CertPath");
    note("Stenographer serves mutual TLS with stenokeys' certificates in " + certs +
         "; rewind does the same with these paths (check the names, or make new ones with scripts/make-certs.sh)");
    w.Key("tls_cert");
    w.String((certs + "/server_cert.pem").c_str());
    w.Key("tls_key");
    w.String((certs + "/server_key.pem").c_str());
    w.Key("tls_client_ca");
    w.String((certs + "/ca_cert.pem").c_str());
  }
  w.EndObject();

  w.Key("retention");
  w.StartObject();
  w.Key("min_free_percent");
  w.Double(disk_free >= 0 ? disk_free : 10);
  if (max_files > 0) {
    w.Key("max_files");
    w.Uint64(max_files);
  }
  w.EndObject();
  w.EndObject();
  std::printf("%s\n", buf.GetString());
  return 0;
}

}  // namespace rwd
