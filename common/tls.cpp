#include "common/tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace wsgate::tls {
namespace ssl = boost::asio::ssl;

namespace {

// Mozilla "intermediate" (v5.7) for TLS 1.2; TLS 1.3 suites are all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

std::string openssl_error() {
  unsigned long code = ERR_get_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

void harden(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1)
    throw std::runtime_error("TLS cipher list: " + openssl_error());
  if (SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1)
    throw std::runtime_error("TLS 1.3 suites: " + openssl_error());
  SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384");
  // Release idle read/write buffers: an idle TLS session then costs ~2 KiB
  // instead of ~34 KiB, which decides memory at thousands of connections.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

}  // namespace

std::shared_ptr<ssl::context> make_server_context(const ServerConfig& config) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  harden(native);
  // No TLS 1.3 session tickets either: they would be written after the
  // handshake, from inside a read.
  SSL_CTX_set_num_tickets(native, 0);
  if (SSL_CTX_use_certificate_chain_file(native, config.cert_file.c_str()) != 1)
    throw std::runtime_error("TLS certificate " + config.cert_file + ": " + openssl_error());
  if (SSL_CTX_use_PrivateKey_file(native, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("TLS key " + config.key_file + ": " + openssl_error());
  if (SSL_CTX_check_private_key(native) != 1)
    throw std::runtime_error("TLS key " + config.key_file + " does not match certificate " +
                             config.cert_file);
  return ctx;
}

std::shared_ptr<ssl::context> make_client_context(const ClientConfig& config) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  harden(native);
  if (config.verify) {
    ctx->set_verify_mode(ssl::verify_peer);
    if (config.ca_file.empty()) {
      ctx->set_default_verify_paths();
    } else if (SSL_CTX_load_verify_locations(native, config.ca_file.c_str(), nullptr) != 1) {
      throw std::runtime_error("upstream CA " + config.ca_file + ": " + openssl_error());
    }
  } else {
    ctx->set_verify_mode(ssl::verify_none);
  }
  if (!config.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(native, config.cert_file.c_str()) != 1)
      throw std::runtime_error("client certificate " + config.cert_file + ": " + openssl_error());
    if (SSL_CTX_use_PrivateKey_file(native, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      throw std::runtime_error("client key " + config.key_file + ": " + openssl_error());
  }
  return ctx;
}

std::optional<double> certificate_expiry(const std::string& cert_file) {
  FILE* f = std::fopen(cert_file.c_str(), "r");
  if (!f) return std::nullopt;
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!cert) return std::nullopt;
  std::optional<double> out;
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
    out = static_cast<double>(timegm(&tm));
  X509_free(cert);
  return out;
}

}  // namespace wsgate::tls
