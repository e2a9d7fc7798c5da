#include "proxy/cidr.hpp"

#include <array>
#include <charconv>

namespace wsgate::proxy {

namespace ip = boost::asio::ip;

namespace {

// The address as bytes, IPv4-mapped IPv6 unwrapped to IPv4.
std::vector<unsigned char> bytes_of(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    auto b = ip::make_address_v4(ip::v4_mapped, a.to_v6()).to_bytes();
    return {b.begin(), b.end()};
  }
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    return {b.begin(), b.end()};
  }
  auto b = a.to_v6().to_bytes();
  return {b.begin(), b.end()};
}

bool prefix_equal(const std::vector<unsigned char>& a, const std::vector<unsigned char>& b,
                  unsigned prefix) {
  if (a.size() != b.size()) return false;
  unsigned full = prefix / 8, rest = prefix % 8;
  for (unsigned i = 0; i < full; ++i)
    if (a[i] != b[i]) return false;
  if (rest == 0) return true;
  auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

}  // namespace

std::string Cidr::to_string() const { return network.to_string() + "/" + std::to_string(prefix); }

std::optional<Cidr> parse_cidr(std::string_view text, std::string& error) {
  auto slash = text.find('/');
  std::string addr_part(text.substr(0, slash));
  boost::system::error_code ec;
  auto address = ip::make_address(addr_part, ec);
  if (ec) {
    error = "'" + std::string(text) + "' is not an IPv4 or IPv6 network (ADDRESS[/PREFIX])";
    return std::nullopt;
  }
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = ip::make_address_v4(ip::v4_mapped, address.to_v6());
  const unsigned max = address.is_v4() ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || err != std::errc() || end != digits.data() + digits.size() ||
        prefix > max) {
      error = "'" + std::string(text) + "': prefix length must be 0-" + std::to_string(max);
      return std::nullopt;
    }
  }
  auto bytes = bytes_of(address);
  std::vector<unsigned char> masked(bytes.size(), 0);
  for (unsigned bit = 0; bit < prefix; ++bit)
    masked[bit / 8] |= bytes[bit / 8] & (0x80 >> (bit % 8));
  if (masked != bytes) {
    Cidr network;
    if (address.is_v4()) {
      ip::address_v4::bytes_type b{};
      std::copy(masked.begin(), masked.end(), b.begin());
      network.network = ip::address_v4(b);
    } else {
      ip::address_v6::bytes_type b{};
      std::copy(masked.begin(), masked.end(), b.begin());
      network.network = ip::address_v6(b);
    }
    network.prefix = prefix;
    error = "'" + std::string(text) + "' has host bits set (the network is " + network.to_string() +
            ")";
    return std::nullopt;
  }
  return Cidr{address, prefix};
}

bool cidr_contains(const Cidr& cidr, const ip::address& address) {
  return prefix_equal(bytes_of(cidr.network), bytes_of(address), cidr.prefix);
}

bool any_contains(const std::vector<Cidr>& networks, const ip::address& address) {
  for (const auto& n : networks)
    if (cidr_contains(n, address)) return true;
  return false;
}

}  // namespace wsgate::proxy
