#include "web/remote_query.h"

#include <httplib.h>

#include <memory>

namespace rwd {

Status RunRemoteQuery(const RemoteQueryOptions& o, const std::string& query, ByteSink* out) {
  std::string url = o.url;
  bool https = url.rfind("https://", 0) == 0;
  if (!https && url.rfind("http://", 0) != 0) return Status::InvalidArgument("--server wants http:// or https://");
  std::string rest = url.substr(https ? 8 : 7);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string host = rest;
  int port = https ? 443 : 80;
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']') == std::string::npos) {
    host = rest.substr(0, colon);
    try {
      port = std::stoi(rest.substr(colon + 1));
    } catch (...) {
      return Status::InvalidArgument("bad port in --server " + url);
    }
  }
  std::unique_ptr<httplib::ClientImpl> cli;
  if (https) {
    auto ssl = o.client_cert.empty() ? std::make_unique<httplib::SSLClient>(host, port)
                                     : std::make_unique<httplib::SSLClient>(host, port, o.client_cert, o.client_key);
    if (!o.ca_cert.empty()) {
      ssl->set_ca_cert_path(o.ca_cert.c_str());
      ssl->enable_server_certificate_verification(true);
    } else {
      ssl->enable_server_certificate_verification(false);
    }
    cli = std::move(ssl);
  } else {
    if (!o.client_cert.empty()) return Status::InvalidArgument("client certificates need an https:// server");
    cli = std::make_unique<httplib::ClientImpl>(host, port);
  }
  cli->set_read_timeout(3600, 0);
  cli->set_tcp_nodelay(true);
  if (!o.token.empty()) cli->set_bearer_token_auth(o.token.c_str());
  httplib::Params params{{"q", query}};
  if (o.limit) params.emplace("limit", std::to_string(o.limit));
  if (o.nanos) params.emplace("nanos", "1");
  if (o.pcapng) params.emplace("format", "pcapng");
  if (o.exact) params.emplace("exact", "1");
  int status = 0;
  std::string error_body;
  Status sink_status;
  auto res = cli->Get(
      "/query", params, httplib::Headers{},
      [&](const httplib::Response& r) {
        status = r.status;
        return true;
      },
      [&](const char* data, size_t n) {
        if (status != 200) {
          if (error_body.size() < 65536) error_body.append(data, n);
          return true;
        }
        sink_status = out->Write(data, n);
        return sink_status.ok();
      });
  if (!sink_status.ok()) return sink_status;
  if (!res) {
    if (status == 200) return Status::Corruption("the server cut the answer short (" + httplib::to_string(res.error()) + ")");
    return Status::IOError("cannot query " + url + ": " + httplib::to_string(res.error()));
  }
  if (status == 400) return Status::InvalidArgument(error_body);
  if (status != 200) return Status::IOError("server answered HTTP " + std::to_string(status) + ": " + error_body);
  return out->Flush();
}

}  // namespace rwd
