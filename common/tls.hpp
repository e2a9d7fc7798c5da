#pragma once
// TLS contexts: the listener's (Mozilla "intermediate": TLS 1.2/1.3, ECDHE
// with AEAD only, no compression, no renegotiation) and the upstream client's
// (certificate verification against system CAs or a given CA file).
#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <optional>
#include <string>

namespace wsgate::tls {

struct ServerConfig {
  std::string cert_file;
  std::string key_file;
};

// Throws std::runtime_error naming the file and OpenSSL's reason: this runs
// at start-up and on SIGHUP, never on the data path.
std::shared_ptr<boost::asio::ssl::context> make_server_context(const ServerConfig& config);

struct ClientConfig {
  std::string ca_file;    // empty: system default CAs
  std::string cert_file;  // optional client certificate
  std::string key_file;
  bool verify = true;
};
std::shared_ptr<boost::asio::ssl::context> make_client_context(const ClientConfig& config);

// notAfter of the first certificate in a PEM file, as Unix seconds.
std::optional<double> certificate_expiry(const std::string& cert_file);

}  // namespace wsgate::tls
