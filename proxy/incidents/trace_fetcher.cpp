#include "proxy/incidents/trace_fetcher.hpp"

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdio>
#include <optional>

#include "common/url_encode.hpp"

namespace wsgate::proxy::incidents {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

struct HttpUrl {
  std::string host;
  std::string port = "80";
  std::string target = "/";
};

std::optional<HttpUrl> parse_http_url(std::string_view url, std::string& error) {
  constexpr std::string_view kScheme = "http://";
  if (url.size() < kScheme.size() ||
      !std::equal(kScheme.begin(), kScheme.end(), url.begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    error = url.starts_with("https://") ? "https trace URLs are not supported (use http://)"
                                        : "trace URL is not http://";
    return std::nullopt;
  }
  url.remove_prefix(kScheme.size());
  HttpUrl out;
  auto slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) out.target = std::string(url.substr(slash));
  if (authority.find('@') != std::string_view::npos) {
    error = "trace URL must not carry credentials";
    return std::nullopt;
  }
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "bad IPv6 host in trace URL";
      return std::nullopt;
    }
    out.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      out.port = std::string(authority.substr(close + 2));
  } else {
    auto colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
  }
  if (out.host.empty() || out.port.empty() ||
      out.port.find_first_not_of("0123456789") != std::string::npos) {
    error = "bad host or port in trace URL";
    return std::nullopt;
  }
  return out;
}

class FetchOp : public std::enable_shared_from_this<FetchOp> {
 public:
  FetchOp(net::io_context& ioc, HttpUrl url, FetchOptions options,
          std::function<void(TraceFetchResult)> done)
      : strand_(net::make_strand(ioc)),
        resolver_(strand_),
        timer_(strand_),
        url_(std::move(url)),
        options_(std::move(options)),
        done_(std::move(done)) {}

  void start() {
    net::dispatch(strand_, [self = shared_from_this()] { self->attempt(); });
  }

 private:
  void attempt() {
    ++attempts_;
    timed_out_ = false;
    stream_.emplace(strand_);
    buffer_.clear();
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    timer_.expires_after(options_.timeout);
    const unsigned this_attempt = attempts_;
    timer_.async_wait([self = shared_from_this(), this_attempt](beast::error_code ec) {
      if (ec || self->finished_ || self->attempts_ != this_attempt) return;
      self->timed_out_ = true;
      self->resolver_.cancel();
      beast::error_code ignored;
      self->stream_->socket().close(ignored);
    });
    resolver_.async_resolve(
        url_.host, url_.port,
        [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
          self->on_resolve(ec, std::move(results));
        });
  }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (ec) return fail(ec, "resolve");
    stream_->async_connect(
        results, [self = shared_from_this()](beast::error_code ec2, const tcp::endpoint&) {
          self->on_connect(ec2);
        });
  }

  void on_connect(beast::error_code ec) {
    if (ec) return fail(ec, "connect");
    request_ = {};
    request_.method(http::verb::get);
    request_.target(url_.target);
    request_.version(11);
    request_.set(http::field::host, url_.host + ":" + url_.port);
    request_.set(http::field::accept, "application/json");
    request_.set(http::field::user_agent, "wsgate-incidents");
    request_.set(http::field::connection, "close");
    if (!options_.authorization.empty())
      request_.set(http::field::authorization, options_.authorization);
    http::async_write(*stream_, request_,
                      [self = shared_from_this()](beast::error_code ec2, std::size_t) {
                        if (ec2) return self->fail(ec2, "write");
                        self->do_read();
                      });
  }

  void do_read() {
    http::async_read(
        *stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) return fail(ec, "read");
    timer_.cancel();
    close_stream();
    auto& res = parser_->get();
    const unsigned status = res.result_int();
    if (status == 404) {
      return retry_or_finish(FetchOutcome::not_found, "HTTP 404");
    }
    if (status != 200) {
      return finish(FetchOutcome::http_error, "HTTP " + std::to_string(status) + tries_suffix());
    }
    // Checked before parsing: a deep value overflows the stack in the
    // recursive walks (redaction, dump, destructor) that follow.
    if (json_nesting_exceeds(res.body(), kMaxTraceDepth))
      return finish(FetchOutcome::too_deep,
                    "trace nested deeper than " + std::to_string(kMaxTraceDepth) + " levels");
    auto doc = nlohmann::json::parse(res.body(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
      return finish(FetchOutcome::bad_response, "trace is not a JSON object");
    TraceFetchResult r;
    r.outcome = FetchOutcome::ok;
    r.trace = std::move(doc);
    r.attempts = attempts_;
    deliver(std::move(r));
  }

  void fail(beast::error_code ec, const char* what) {
    timer_.cancel();
    close_stream();
    if (timed_out_)
      return finish(
          FetchOutcome::timeout,
          "timeout after " + std::to_string(options_.timeout.count()) + " ms" + tries_suffix());
    if (ec == net::error::connection_refused)
      return retry_or_finish(FetchOutcome::refused, "connection refused");
    return finish(FetchOutcome::error, std::string(what) + ": " + ec.message() + tries_suffix());
  }

  std::string tries_suffix() const {
    return attempts_ > 1 ? " after " + std::to_string(attempts_) + " tries" : "";
  }

  void retry_or_finish(FetchOutcome outcome, std::string error) {
    if (attempts_ <= options_.retry_delays.size()) {
      timer_.expires_after(options_.retry_delays[attempts_ - 1]);
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec || self->finished_) return;
        self->attempt();
      });
      return;
    }
    finish(outcome, error + tries_suffix());
  }

  void finish(FetchOutcome outcome, std::string error) {
    TraceFetchResult r;
    r.outcome = outcome;
    r.error = std::move(error);
    r.attempts = attempts_;
    deliver(std::move(r));
  }

  void deliver(TraceFetchResult r) {
    if (finished_) return;
    finished_ = true;
    auto done = std::move(done_);
    done(std::move(r));
  }

  void close_stream() {
    if (!stream_) return;
    beast::error_code ignored;
    stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_->socket().close(ignored);
  }

  net::strand<net::io_context::executor_type> strand_;
  tcp::resolver resolver_;
  net::steady_timer timer_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  http::request<http::empty_body> request_;
  std::optional<http::response_parser<http::string_body>> parser_;
  HttpUrl url_;
  FetchOptions options_;
  std::function<void(TraceFetchResult)> done_;
  unsigned attempts_ = 0;
  bool timed_out_ = false;
  bool finished_ = false;
};

}  // namespace

std::string expand_trace_url(std::string_view tmpl, std::string_view cid) {
  return expand_trace_url(tmpl, cid, {});
}

std::string expand_trace_url(std::string_view tmpl, std::string_view cid,
                             std::string_view upstream_endpoint) {
  auto colon = upstream_endpoint.rfind(':');
  // A bracketed IPv6 host without a port has its last colon inside the brackets.
  if (colon != std::string_view::npos &&
      upstream_endpoint.find(']', colon) != std::string_view::npos)
    colon = std::string_view::npos;
  const std::string values[] = {url_encode(cid), std::string(upstream_endpoint.substr(0, colon)),
                                colon == std::string_view::npos
                                    ? std::string()
                                    : std::string(upstream_endpoint.substr(colon + 1))};
  std::string out;
  std::size_t pos = 0;
  while (pos < tmpl.size()) {
    auto brace = tmpl.find('{', pos);
    out += tmpl.substr(pos, brace - pos);
    if (brace == std::string_view::npos) break;
    pos = brace;
    bool replaced = false;
    for (std::size_t i = 0; i < std::size(kTracePlaceholders); ++i) {
      if (tmpl.substr(brace).starts_with(kTracePlaceholders[i])) {
        out += values[i];
        pos += kTracePlaceholders[i].size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out += tmpl[pos++];
  }
  return out;
}

std::string http_url_error(std::string_view url) {
  std::string error;
  return parse_http_url(url, error) ? std::string() : error;
}

void fetch_trace(net::io_context& ioc, std::string url, FetchOptions options,
                 std::function<void(TraceFetchResult)> done) {
  std::string error;
  auto parsed = parse_http_url(url, error);
  if (!parsed) {
    // Still asynchronous: the caller's completion never runs inside its call.
    net::post(ioc, [done = std::move(done), error] {
      TraceFetchResult r;
      r.outcome = FetchOutcome::error;
      r.error = error;
      done(std::move(r));
    });
    return;
  }
  std::make_shared<FetchOp>(ioc, std::move(*parsed), std::move(options), std::move(done))->start();
}

}  // namespace wsgate::proxy::incidents
