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
    if (!ssl->is_valid()) return Status::InvalidArgument("cannot load the client certificate or key");
    if (o.insecure) {
      ssl->enable_server_certificate_verification(false);
    } else {
      // The system's CAs, plus --ca: the server's certificate and its name are always checked.
      X509_STORE* store = X509_STORE_new();
      if (store == nullptr || X509_STORE_set_default_paths(store) != 1 ||
          (!o.ca_cert.empty() && X509_STORE_load_locations(store, o.ca_cert.c_str(), nullptr) != 1)) {
        X509_STORE_free(store);
        return Status::InvalidArgument("cannot read the CA certificate " + o.ca_cert);
      }
      ssl->set_ca_cert_store(store);  // owned by the client from here on
      ssl->enable_server_certificate_verification(true);
    }
    cli = std::move(ssl);
  } else {
    if (!o.client_cert.empty()) return Status::InvalidArgument("client certificates need an https:// server");
    bool loopback = host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
    if (!o.token.empty() && !loopback && !o.insecure) {
      return Status::InvalidArgument("refusing to send the bearer token in clear text to " + host +
                                     ": use https:// (or --insecure)");
    }
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
    std::string why = httplib::to_string(res.error());
    if (res.error() == httplib::Error::SSLServerVerification) {
      why = "the server's certificate could not be verified (not signed by a CA this machine trusts, or not "
            "issued for " + host + "); name its CA with --ca, or pass --insecure";
    } else if (https && o.client_cert.empty() &&
               (res.error() == httplib::Error::SSLConnection || res.error() == httplib::Error::Write ||
                res.error() == httplib::Error::Read)) {
      // With TLS 1.3 a missing client certificate shows up after the handshake, as a failed write or read.
      why = "the server ended the TLS connection; it may want a client certificate (--cert and --key)";
    } else if (res.error() == httplib::Error::SSLConnection) {
      why = "the TLS handshake failed";
    }
    return Status::IOError("cannot query " + url + ": " + why);
  }
  if (status == 400) return Status::InvalidArgument(error_body);
  if (status != 200) return Status::IOError("server answered HTTP " + std::to_string(status) + ": " + error_body);
  return out->Flush();
}

}  // namespace rwd
