#include "common/endpoint.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <cerrno>

using wsgate::parse_host_port;

TEST(HostPort, ParsesIpv4AndName) {
  auto a = parse_host_port("127.0.0.1:8443");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8443);
  auto b = parse_host_port("localhost:0");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "localhost");
  EXPECT_EQ(b->port, 0);
}

TEST(HostPort, ParsesBracketedIpv6AndEmptyHost) {
  auto a = parse_host_port("[::1]:9090");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->to_string(), "[::1]:9090");
  auto b = parse_host_port(":80");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "0.0.0.0");
}

TEST(HostPort, RejectsMalformed) {
  for (const char* bad : {"", "nohost", "1.2.3.4:", "1.2.3.4:65536", "::1:80", "[::1]80",
                          "[::1]:", "h:12x", "h:-1"})
    EXPECT_FALSE(parse_host_port(bad)) << bad;
}

TEST(HostPort, ErrorSaysWhatIsWrong) {
  EXPECT_EQ(wsgate::host_port_error("127.0.0.1:8443"), "");
  EXPECT_NE(wsgate::host_port_error("1.2.3.4:70000").find("out of range"), std::string::npos);
  EXPECT_NE(wsgate::host_port_error("1.2.3.4:99999999999999999999").find("out of range"),
            std::string::npos);
  EXPECT_NE(wsgate::host_port_error("nohost").find("HOST:PORT"), std::string::npos);
  EXPECT_NE(wsgate::host_port_error("h:-1").find("numeric port"), std::string::npos);
}

TEST(Listen, BindFailureNamesFlagAndAddressWithoutSourceLocation) {
  namespace net = boost::asio;
  using tcp = net::ip::tcp;
  net::io_context ioc;
  tcp::acceptor taken(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  wsgate::HostPort where{"127.0.0.1", taken.local_endpoint().port()};
  try {
    wsgate::listen_on(where, "--admin", [&] {
      tcp::acceptor second(ioc);
      auto ep = wsgate::resolve_listen(where, "--admin");
      second.open(ep.protocol());
      second.bind(ep);  // no SO_REUSEADDR sharing of a listening port on Linux
      return 0;
    });
    FAIL() << "second bind succeeded";
  } catch (const wsgate::ListenError& e) {
    std::string what = e.what();
    EXPECT_EQ(
        what,
        "cannot listen on " + where.to_string() + " (--admin): " +
            boost::system::error_code(EADDRINUSE, boost::system::system_category()).message());
    EXPECT_EQ(what.find(".hpp"), std::string::npos) << what;
  }
}

TEST(Listen, ResolveFailureNamesFlagAndHost) {
  try {
    wsgate::resolve_listen({"no-such-host.invalid", 1}, "--listen");
    FAIL() << "resolved an .invalid name";
  } catch (const wsgate::ListenError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("no-such-host.invalid"), std::string::npos) << what;
    EXPECT_NE(what.find("(--listen)"), std::string::npos) << what;
  }
}
