// RemoteQuery: runs a query on a rewind server (`rewind query --server URL`) and streams the answer to a
// ByteSink, with mutual TLS and bearer tokens as the server asks. One call, one thread.
#ifndef REWIND_WEB_REMOTE_QUERY_H_
#define REWIND_WEB_REMOTE_QUERY_H_

#include <cstdint>
#include <string>

#include "index/status.h"
#include "query/pcap_writer.h"

namespace rwd {

struct RemoteQueryOptions {
  std::string url;          // http://host:port or https://host:port
  std::string client_cert;  // client certificate and key for mutual TLS
  std::string client_key;
  std::string ca_cert;      // a CA to trust besides the system's (the server's certificate is always checked)
  std::string token;        // bearer token
  // Do not check the server's certificate, and allow a token over plain HTTP to a host that is not this one.
  bool insecure = false;
  uint64_t limit = 0;
  bool nanos = false;
  bool pcapng = false;
  bool exact = false;
};

// InvalidArgument with the server's message for a malformed query (HTTP 400); IOError for connection and
// TLS failures; Cancelled if the sink's reader went away; Corruption if the server cut the answer short.
Status RunRemoteQuery(const RemoteQueryOptions& options, const std::string& query, ByteSink* out);

}  // namespace rwd

#endif  // REWIND_WEB_REMOTE_QUERY_H_
