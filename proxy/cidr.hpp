#pragma once
// IPv4 and IPv6 networks in CIDR notation ("10.0.0.0/8", "fd00::/8", or a
// bare address meaning that one host), parsed once at start and matched per
// upstream connection.
#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wsgate::proxy {

struct Cidr {
  boost::asio::ip::address network;
  unsigned prefix = 0;  // 0-32 (IPv4) or 0-128 (IPv6)
  std::string to_string() const;
};

// Refuses host bits beyond the prefix ("10.1.0.0/8"): such an entry most
// likely means something other than what it allows.
std::optional<Cidr> parse_cidr(std::string_view text, std::string& error);

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 networks.
bool cidr_contains(const Cidr& cidr, const boost::asio::ip::address& address);
bool any_contains(const std::vector<Cidr>& networks, const boost::asio::ip::address& address);

}  // namespace wsgate::proxy
